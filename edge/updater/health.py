"""The node's health file: what the updater reads to decide a new version came up.

A running node rewrites `<state_dir>/health.json` every few seconds (NodeRuntime.tick):
its version, its pid, whether the uplink is connected to the broker and each device's
state. The updater waits for a file written after it restarted the service that names the
new version, says connected, and has no device in fault.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from edge.contract import topics
from edge.contract.presence import UpdateReport

if TYPE_CHECKING:
    from edge.contract.topics import Node
    from edge.uplink import Uplink

log = logging.getLogger(__name__)

HEALTH_FILE = "health.json"
UPDATE_REPORT = "update-report.json"
HEALTH_FILE_S = 2.0
# A device in one of these states has not answered: the new version is not healthy.
FAILED_STATES = frozenset({"fault", "unplugged"})


class NodeHealth(BaseModel):
    """One snapshot of a running node, as it writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    pid: int = Field(ge=1)
    at: AwareDatetime
    connected: bool
    devices: dict[str, str] = Field(default_factory=dict, max_length=256)

    def failed_devices(self) -> list[str]:
        return sorted(name for name, state in self.devices.items() if state in FAILED_STATES)


def write_health_file(state_dir: Path, health: NodeHealth) -> None:
    """Replace the health file whole (temp file and rename: a reader never sees half)."""
    path = state_dir / HEALTH_FILE
    temp = path.with_name(f".{HEALTH_FILE}.{os.getpid()}")
    temp.write_text(health.model_dump_json(), encoding="utf-8")
    temp.replace(path)


def node_health(
    state_dir: Path, *, version: str, connected: bool, devices: dict[str, str]
) -> NodeHealth:
    return NodeHealth(
        version=version, pid=os.getpid(), at=datetime.now(UTC), connected=connected,
        devices=devices,
    )  # fmt: skip


def read_health_file(state_dir: Path) -> NodeHealth | None:
    """The node's last snapshot; None when there is none or it is not one."""
    try:
        return NodeHealth.model_validate_json((state_dir / HEALTH_FILE).read_bytes())
    except (OSError, ValidationError, json.JSONDecodeError):
        return None


class NodeReporter:
    """What a running node does for its updater, from its main loop: the health file, and
    the result of the last update published retained once the uplink is connected.

    The updater writes that result to `<state_dir>/update-report.json` (it cannot publish
    itself: the node's certificate is one client id, and a second connection would end
    the node's). A report whose file changed since the last publish goes again.
    """

    def __init__(self, state_dir: Path, version: str) -> None:
        self.state_dir = state_dir
        self.version = version
        self._next = 0.0
        self._published_mtime: int | None = None

    def tick(self, uplink: Uplink, node: Node, devices: Mapping[str, str]) -> None:
        """Every HEALTH_FILE_S: the health file, and the update report if not yet sent."""
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + HEALTH_FILE_S
        connected = uplink.connected
        try:
            write_health_file(self.state_dir, node_health(
                self.state_dir, version=self.version, connected=connected, devices=dict(devices)
            ))  # fmt: skip
        except OSError as exc:
            log.warning("cannot write the health file in %s: %s", self.state_dir, exc)
        if connected:
            self._publish_report(lambda report: uplink.publish_now(topics.update(node), report))

    def _publish_report(self, publish: Callable[[UpdateReport], bool]) -> None:
        path = self.state_dir / UPDATE_REPORT
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._published_mtime:
            return
        try:
            report = UpdateReport.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            log.warning("%s is not an update report: %s", path, exc)
            self._published_mtime = mtime
            return
        if publish(report):
            self._published_mtime = mtime


def write_update_report(state_dir: Path, report: UpdateReport) -> None:
    """Leave the updater's result where the node publishes it from (NodeReporter)."""
    path = state_dir / UPDATE_REPORT
    temp = path.with_name(f".{UPDATE_REPORT}.{os.getpid()}")
    temp.write_text(report.model_dump_json(exclude_none=True), encoding="utf-8")
    temp.replace(path)
