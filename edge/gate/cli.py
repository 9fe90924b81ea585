"""`gatepost edge …`: run a node, or check its config file without running it.

The config's `node.role` picks the node: `depot` a depot node (edge/depot), `gate` (or
none) a gate. Each kind's modules are imported only for its own: `gatepost` builds every
command's parser at each start, and a depot node should not carry the gate's verifier.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.contract.topics import Role
from edge.lifecycle import stop_on_signals

if TYPE_CHECKING:
    from edge.depot.config import DepotConfig
    from edge.gate.config import GateConfig


def add_edge(commands: Any) -> None:
    parser = commands.add_parser(
        "edge", help="run a gate or depot node, or check its config",
        description="The edge node at a gate (devices, decisions, barrier, outbox, console) "
        "or at a depot (temperature/humidity sensors polled into the outbox). The config's "
        "node.role says which: depot, or gate (the default).",
    )  # fmt: skip
    edge = parser.add_subparsers(dest="edge_command", required=True, metavar="COMMAND")
    run = edge.add_parser(
        "run", help="run the node until Ctrl-C or SIGTERM",
        description="Validate the config, then run the node. Exits 1 naming every bad field.",
    )  # fmt: skip
    run.add_argument("--config", type=Path, required=True, help="the node's YAML config file")
    run.set_defaults(run=_run)
    check = edge.add_parser(
        "check", help="validate a node config file and its device profiles",
        description="Exit 0 and print the config hash if FILE is valid; exit 1 naming "
        "each bad field otherwise.",
    )  # fmt: skip
    check.add_argument("--config", type=Path, required=True, help="the node's YAML config file")
    check.set_defaults(run=_check)
    from edge.updater.cli import add_update

    add_update(edge)


def _load(path: Path) -> GateConfig | DepotConfig:
    from edge.depot.config import node_role

    if node_role(path) is Role.DEPOT:
        from edge.depot.config import load_config as load_depot_config

        return load_depot_config(path)
    from edge.gate.config import load_config

    return load_config(path)


def _check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    role = config.node_id.role
    print(f"{args.config}: valid, config hash {config.config_hash()} ({role} node)")
    return 0


def _run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    stop = stop_on_signals()
    from edge.depot.config import DepotConfig  # imported by _load already

    if isinstance(config, DepotConfig):
        from edge.depot.node import DepotNode

        DepotNode(config).run(stop)
        return 0
    from edge.gate.node import GateNode

    GateNode(config).run(stop)
    return 0
