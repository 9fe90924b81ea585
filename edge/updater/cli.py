"""`gatepost edge update BUNDLE`: install a signed bundle beside the running version."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from edge.configfile import read_mapping, validate
from edge.contract.presence import UpdateReport
from edge.updater.config import UpdateSection
from edge.updater.health import write_update_report
from edge.updater.install import Outcome, Updater, UpdateRefused

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/opt/gatepost")
DEFAULT_STATE_DIR = Path("/var/lib/gatepost")
REASON_MAX = 200


class UpdateSettings(BaseModel):
    """What the updater takes from the node's config file: its `update` section and where
    the node keeps its state (the health file and the update report)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    update: UpdateSection = UpdateSection()
    state_dir: Path = DEFAULT_STATE_DIR


def load_settings(path: Path) -> UpdateSettings:
    """The update settings of the node config at `path`.

    Raises:
        ConfigError: unreadable, or a bad field, named (e.g. `update.release_keys.0`).
    """
    data = read_mapping(path)
    node = data.get("node")
    node = node if isinstance(node, dict) else {}
    state_dir = path.parent / str(node.get("state_dir", DEFAULT_STATE_DIR))
    return validate(path, UpdateSettings, {"update": data.get("update") or {},
                                           "state_dir": state_dir})  # fmt: skip


def add_update(edge: Any) -> None:
    update = edge.add_parser(
        "update", help="install a signed update bundle; roll back if it does not come up",
        description="Verify BUNDLE (release key signature, every file's hash, newer version, "
        "free space) before changing anything; install it into the idle slot under --root, "
        "switch `current` to it, restart the node's service and wait for it to come up "
        "healthy within update.health_timeout_s; otherwise switch back. The result is "
        "published retained on <node>/update by the node. Exit 0 only when installed.",
    )  # fmt: skip
    update.add_argument("bundle", type=Path, metavar="BUNDLE", help="from `gatepost fw bundle`")
    update.add_argument("--config", type=Path, required=True, help="the node's YAML config file")
    update.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT,
        help=f"where the A/B slots live (default: {DEFAULT_ROOT})",
    )  # fmt: skip
    update.set_defaults(run=_run)


def report_of(outcome: Outcome) -> UpdateReport:
    reason = outcome.reason
    if reason and len(reason) > REASON_MAX:
        reason = reason[: REASON_MAX - 1] + "…"
    return UpdateReport(
        node_time=datetime.now(UTC), result=outcome.result, version=outcome.version,
        running_version=outcome.running, previous_version=outcome.previous, reason=reason,
    )  # fmt: skip


def run_update(updater: Updater, bundle: Path) -> Outcome:
    """Install `bundle`, a refusal being an outcome too, and leave the report for the node."""
    running = updater.running_version()
    try:
        outcome = updater.install(bundle)
    except UpdateRefused as exc:
        outcome = Outcome("refused", exc.version, running, running, str(exc))
    try:
        updater.state_dir.mkdir(parents=True, exist_ok=True)
        write_update_report(updater.state_dir, report_of(outcome))
    except OSError as exc:
        log.warning("the update report could not be written in %s: %s", updater.state_dir, exc)
    return outcome


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    updater = Updater(
        args.root, keys=settings.update.keys(), restart=settings.update.restart_command,
        state_dir=settings.state_dir, health_timeout_s=settings.update.health_timeout_s,
    )  # fmt: skip
    outcome = run_update(updater, args.bundle)
    because = f": {outcome.reason}" if outcome.reason else ""
    print(f"{outcome.result} (running {outcome.running or 'nothing'}){because}")
    return 0 if outcome.result == "installed" else 1
