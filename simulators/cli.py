"""Subcommands that run simulated parts of the system: `gatepost demo` and `gatepost sim …`."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.cli import add_broker_options, endpoint, slug_arg
from edge.contract.topics import Site
from edge.errors import GatepostError
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
    add_sim_depot_bus(parts)
    add_sim_scale(parts)


def add_sim_scale(parts: Any) -> None:
    """`gatepost sim scale`: a platform scale's indicator behind a pty, pallets on and off."""
    scale = parts.add_parser(
        "scale",
        help="a platform scale's weighing indicator behind a pty, streaming its weight",
        description="Open a pseudo-terminal that streams weight frames as an indicator in "
        "continuous output does (ST,GS,+0012.34kg or Toledo, per the profile), at the "
        "profile's rate and baud, print its path and run until Ctrl-C. --steps is a cycle "
        "of what lies on the platform, each held --hold seconds: a weight (in the "
        "profile's unit; unstable for --settle s, then stable), `ol` (overload) or "
        "`garbage` (line noise, the weight kept).",
    )
    scale.add_argument(
        "--profile", default="scale-st-gs", metavar="NAME",
        help="a file in hardware/profiles (without .yaml) with part scale-continuous "
        "(default: scale-st-gs)",
    )  # fmt: skip
    scale.add_argument(
        "--steps", type=_scale_steps, default="0,1250.5,1250.5,812.25,ol,garbage,0",
        metavar="W|ol|garbage,…", help="the cycle (default: 0,1250.5,1250.5,812.25,ol,garbage,0)",
    )  # fmt: skip
    scale.add_argument(
        "--hold", type=float, default=20.0, metavar="S",
        help="seconds each step lasts, 1 to 3600 (default: 20)",
    )  # fmt: skip
    scale.add_argument(
        "--settle", type=float, default=2.0, metavar="S",
        help="seconds a newly loaded platform is in motion, 0 to 60 (default: 2)",
    )  # fmt: skip
    scale.add_argument(
        "--link", type=Path, default=None, metavar="PATH",
        help="a symlink to the pty (default: scale in a new temporary folder)",
    )  # fmt: skip
    scale.set_defaults(run=_run_sim_scale)  # fmt: skip


def _scale_steps(text: str) -> list[str]:
    """argparse type for --steps: 1 to 100 weights (0..999999), `ol` or `garbage`."""
    steps = [step.strip().lower() for step in text.split(",")]
    if not 1 <= len(steps) <= 100:
        raise argparse.ArgumentTypeError("--steps takes 1 to 100 steps")
    for step in steps:
        if step in ("ol", "garbage"):
            continue
        try:
            value = float(step)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"step {step[:20]!r} is neither a weight, ol nor garbage"
            ) from None
        if not 0 <= value <= 999_999:
            raise argparse.ArgumentTypeError(f"step {step} is outside 0..999999")
    return steps


def _run_sim_scale(args: argparse.Namespace) -> int:
    from edge.configfile import PROFILES_DIR
    from edge.devices.registry import load_profile
    from edge.devices.scale.profile import ScaleProfile
    from simulators.devices.scale import SimulatedScale

    if not 1.0 <= args.hold <= 3600.0 or not 0.0 <= args.settle <= 60.0:
        raise GatepostError(f"--hold {args.hold} or --settle {args.settle} is out of bounds")
    profile = load_profile(PROFILES_DIR / f"{Path(args.profile).name}.yaml")
    if not isinstance(profile, ScaleProfile):
        raise GatepostError(f"--profile {args.profile}: part {profile.part} is not a scale")
    if args.link is not None and not args.link.parent.is_dir():
        raise GatepostError(f"--link {args.link}: no folder {args.link.parent}")
    stop = stop_on_signals()
    with (
        tempfile.TemporaryDirectory(prefix="gatepost-scale-") as folder,
        SimulatedScale(args.link or Path(folder) / "scale", profile,
                       settle_s=args.settle) as scale,
    ):  # fmt: skip
        print(f"scale at {scale.path} ({profile.format}, {profile.baudrate} "
              f"{profile.bytesize}{profile.parity}1, {profile.frames_per_s:g} frames/s)",
              flush=True)  # fmt: skip
        while not stop.is_set():
            for step in args.steps:
                print(f"  {step}", flush=True)
                if step == "ol":
                    scale.overload()
                elif step == "garbage":
                    scale.faults.garbage = 24
                else:
                    scale.load(step)
                if stop.wait(args.hold):
                    break
    return 0


def add_sim_depot_bus(parts: Any) -> None:
    """`gatepost sim depot-bus`: depot sensors behind a pty, running named scenarios."""
    from simulators.devices.depot_scenarios import SCENARIOS

    bus = parts.add_parser(
        "depot-bus",
        help="an RS485 bus of XY-MD02-class depot sensors behind a pty, running scenarios",
        description="Open a pseudo-terminal that answers Modbus RTU as temperature/humidity "
        "sensors do, at the bus baud, print its path and run until Ctrl-C. Scenarios "
        f"({', '.join(SCENARIOS)}) combine; name@zone picks the zone one acts on. Time runs "
        "--speedup times faster than the wall, from midnight: 3600 runs an hour a second.",
    )
    bus.add_argument(
        "--scenario", type=_depot_arg("scenarios"), default="normal", metavar="NAME[@ZONE],…",
        help="what happens in the depot (default: normal)",
    )  # fmt: skip
    bus.add_argument(
        "--sensors", type=_depot_arg("zones"), default="cold-store-1:1,shelf-a:2",
        metavar="ZONE:ID[:cold|room],…",
        help="one sensor per zone with its slave id; a zone named cold…, fridge… or freezer… "
        "is a cold store unless told (default: cold-store-1:1,shelf-a:2)",
    )  # fmt: skip
    bus.add_argument(
        "--speedup", type=float, default=1.0, metavar="X",
        help="simulated seconds per real second, 1 to 100000 (default: 1)",
    )  # fmt: skip
    bus.add_argument(
        "--baud", type=int, default=9600, choices=(2400, 4800, 9600, 14400, 19200),
        help="bus speed (default: 9600, 8N1)",
    )  # fmt: skip
    bus.add_argument(
        "--link", type=Path, default=None, metavar="PATH",
        help="a symlink to the pty, as a udev rule makes one (default: rs485 in a new "
        "temporary folder)",
    )  # fmt: skip
    bus.set_defaults(run=_run_sim_depot_bus)  # fmt: skip


def _depot_arg(what: str) -> Callable[[str], list[Any]]:
    """argparse type for --sensors (`what` zones) or --scenario (scenarios)."""
    from simulators.devices import depot_scenarios

    parse: Callable[[str], list[Any]] = (
        depot_scenarios.parse_zones if what == "zones" else depot_scenarios.parse_scenarios
    )

    def convert(text: str) -> list[Any]:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _run_sim_depot_bus(args: argparse.Namespace) -> int:
    from simulators.devices.depot_scenarios import Depot
    from simulators.devices.modbus_bus import CompressedClock

    if not 1.0 <= args.speedup <= 100_000.0:
        raise GatepostError(f"--speedup {args.speedup} is outside 1..100000")
    try:
        depot = Depot(args.sensors, args.scenario)
    except ValueError as exc:
        raise GatepostError(str(exc)) from None
    if args.link is not None and not args.link.parent.is_dir():
        raise GatepostError(f"--link {args.link}: no folder {args.link.parent}")
    stop = stop_on_signals()
    with (
        tempfile.TemporaryDirectory(prefix="gatepost-depot-bus-") as folder,
        depot.bus(args.link or Path(folder) / "rs485", args.baud,
                  clock=CompressedClock(args.speedup)) as bus,
    ):  # fmt: skip
        print(f"depot bus at {bus.path} ({args.baud} 8N1, speedup {args.speedup:g})", flush=True)
        for zone in depot.zones:
            acting = [s.name for s in depot.scenarios if zone in s.picks(depot.zones)]
            print(f"  slave {zone.slave_id}: {zone.name} ({zone.climate}): "
                  f"{', '.join(acting) or 'steady'}", flush=True)  # fmt: skip
        stop.wait()
    return 0


def _run_sim_node(args: argparse.Namespace) -> int:
    from simulators.node import SimulatedGateNode

    stop = stop_on_signals()
    SimulatedGateNode(
        endpoint(args), Site(args.site, args.prefix), args.node,
        heartbeat_s=args.heartbeat, event_interval_s=args.event_interval, seed=args.seed,
    ).run(stop)  # fmt: skip
    return 0
