"""`gatepost edge …`: run a node, or check its config file without running it.

The config's `node.role` picks the node: `depot` a depot node (edge/depot), none a gate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge.contract.topics import Role
from edge.depot.config import DepotConfig, node_role
from edge.depot.config import load_config as load_depot_config
from edge.gate.config import GateConfig, load_config
from edge.lifecycle import stop_on_signals


def add_edge(commands: Any) -> None:
    parser = commands.add_parser(
        "edge", help="run a gate or depot node, or check its config",
        description="The edge node at a gate (devices, decisions, barrier, outbox, console) "
        "or at a depot (temperature/humidity sensors polled into the outbox). The config's "
        "node.role says which: depot, or none for a gate.",
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


def _load(path: Path) -> GateConfig | DepotConfig:
    if node_role(path) is Role.DEPOT:
        return load_depot_config(path)
    return load_config(path)


def _check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    role = config.node_id.role
    print(f"{args.config}: valid, config hash {config.config_hash()} ({role} node)")
    return 0


def _run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    stop = stop_on_signals()
    if isinstance(config, DepotConfig):
        from edge.depot.node import DepotNode

        DepotNode(config).run(stop)
        return 0
    from edge.gate.node import GateNode

    GateNode(config).run(stop)
    return 0
