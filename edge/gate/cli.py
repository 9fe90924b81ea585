"""`gatepost edge …`: run a gate node, or check its config file without running it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge.gate.config import load_config
from edge.lifecycle import stop_on_signals


def add_edge(commands: Any) -> None:
    parser = commands.add_parser(
        "edge", help="run a gate node, or check its config",
        description="The edge node at a gate: devices, decisions, barrier, outbox, console.",
    )  # fmt: skip
    edge = parser.add_subparsers(dest="edge_command", required=True, metavar="COMMAND")
    run = edge.add_parser(
        "run", help="run a gate node until Ctrl-C or SIGTERM",
        description="Validate the config, then run the node. Exits 1 naming every bad field.",
    )  # fmt: skip
    run.add_argument("--config", type=Path, required=True, help="the node's YAML config file")
    run.set_defaults(run=_run)
    check = edge.add_parser(
        "check", help="validate a gate config file and its device profiles",
        description="Exit 0 and print the config hash if FILE is valid; exit 1 naming "
        "each bad field otherwise.",
    )  # fmt: skip
    check.add_argument("--config", type=Path, required=True, help="the node's YAML config file")
    check.set_defaults(run=_check)


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"{args.config}: valid, config hash {config.config_hash()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from edge.gate.node import GateNode

    config = load_config(args.config)
    stop = stop_on_signals()
    node = GateNode(config)
    node.run(stop)
    return 0
