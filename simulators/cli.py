"""Subcommands that run simulated parts of the system: `gatepost demo` and `gatepost sim …`."""

from __future__ import annotations

import argparse
from typing import Any

from edge.cli import add_broker_options, endpoint, slug_arg
from edge.contract.topics import Site
from edge.lifecycle import stop_on_signals


def add_demo(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the whole system on simulated hardware (what `make demo` runs)",
        description="Start a private Mosquitto, a watcher printing every message, and gate "
        "nodes on simulated scanners and thermometers with a crowd at each gate; Ctrl-C or "
        "SIGTERM stops everything and leaves no process.",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="broker port on 127.0.0.1 (default: a free one)"
    )
    parser.add_argument(
        "--gates",
        type=int,
        default=2,
        choices=range(1, 10),
        metavar="N",
        help="how many gate nodes on simulated devices (default: 2)",
    )
    parser.add_argument(
        "--arrivals",
        type=float,
        default=20.0,
        metavar="N",
        help="people arriving at each gate per minute (default: 20)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        default=None,
        help="print every message instead of the live status screen (the default when the "
        "output is not a terminal)",
    )
    parser.set_defaults(run=_run_demo)  # fmt: skip


def _run_demo(args: argparse.Namespace) -> int:
    from simulators.demo import Demo

    return Demo(args.port, args.gates, args.arrivals, raw=args.raw).run(stop_on_signals())


def add_sim(commands: Any) -> None:
    parser = commands.add_parser("sim", help="run one simulated part of the system")
    parts = parser.add_subparsers(dest="part", required=True, metavar="PART")
    node = parts.add_parser(
        "node",
        help="a gate node's MQTT presence, heartbeats and a seeded cycle of gate events",
        description="Connect with a Last Will, publish a retained birth, heartbeats, and "
        "contract events from a seeded gate script; publish a clean offline on SIGTERM.",
    )
    add_broker_options(node)
    node.add_argument("--site", type=slug_arg("site"), default="demo", help="site name")
    node.add_argument("--node", type=slug_arg("node"), default="g01", help="node name")
    node.add_argument(
        "--heartbeat",
        type=int,
        default=5,
        metavar="S",
        help="seconds between health messages (default: 5)",
    )
    node.add_argument(
        "--event-interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between two moments at the gate (default: 2)",
    )
    node.add_argument("--seed", type=int, default=1, help="seed of the gate script")
    node.set_defaults(run=_run_sim_node)  # fmt: skip


def _run_sim_node(args: argparse.Namespace) -> int:
    from simulators.node import SimulatedGateNode

    stop = stop_on_signals()
    SimulatedGateNode(
        endpoint(args), Site(args.site, args.prefix), args.node,
        heartbeat_s=args.heartbeat, event_interval_s=args.event_interval, seed=args.seed,
    ).run(stop)  # fmt: skip
    return 0
