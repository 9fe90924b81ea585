"""Gate decision latency: scanner's last byte on a 115200 pty to the outbox commit and relay call.

The whole real path runs: pty, pyserial, the GM65 driver and DeviceLink thread, the
verifier (ES256), the decision engine, the SQLite outbox commit (WAL, synchronous
FULL, on this machine's disk) and the gpiozero barrier on mock pins. The temperature
was taken just before, so the decision does not wait for one. The first WARMUP scans
are not counted: while the WAL file first grows to its working size, a few commits wait
tens of milliseconds on the filesystem (once per start of a node, not per scan).

`--busy` is the "cores busy" run (issue #15): bench/gate_decision_busy.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gpiozero.pins.mock import MockFactory

from bench.common import record
from edge.configfile import PROFILES_DIR
from edge.contract.topics import Role, Site
from edge.credentials.store import TrustStore
from edge.credentials.trust import root_keys_for
from edge.credentials.verifier import Verifier
from edge.devices.base import TemperatureReading
from edge.devices.link import DeviceLink
from edge.devices.registry import DRIVERS, load_profile
from edge.gate.checkpoint import GateCheckpoint
from edge.gate.decision import GatePolicy
from edge.gate.gpio.config import BarrierConfig, GpioConfig
from edge.gate.gpio.gateio import GateIO
from edge.gate.views import NodeView
from edge.outbox import Outbox
from simulators.devices.base import BITS_PER_BYTE
from simulators.pty import PseudoTerminal
from simulators.site import SiteKit

BAUD = 115200
SCANS = 400
WARMUP = 100


def percentile(values: list[float], q: int) -> float:
    if q >= 100:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def checkpoint_every(outbox: Outbox, stop: threading.Event, seconds: float) -> None:
    while not stop.wait(seconds):
        outbox.checkpoint()


class Marks:
    """When the decision path committed a scan's event and when it called the relay."""

    def __init__(self) -> None:
        self.committed: list[float] = []
        self.relayed: list[float] = []
        self.decided = threading.Event()

    def commit(self) -> None:
        self.committed.append(time.monotonic())

    def relay(self) -> None:
        self.relayed.append(time.monotonic())
        self.decided.set()

    def clear(self) -> None:
        self.committed.clear()
        self.relayed.clear()
        self.decided.clear()


def gate_checkpoint(
    outbox: Outbox, verifier: Verifier, io: GateIO, on_event: Callable[[], None]
) -> GateCheckpoint:
    """The gate's decision path at gate g01 of site "bench"."""
    return GateCheckpoint(
        gate="g01", outbox=outbox, verifier=verifier, policy=GatePolicy(),
        actions=io, direction="in", zone=ZoneInfo("Asia/Shanghai"), cutoff_hour=0,
        id_hash_key=b"k" * 32, on_event=on_event,
        node_view=lambda: NodeView(
            site="bench", node="g01", broker_connected=False, devices={}, outbox_depth=0,
            outbox_capacity=1, volunteers_on_duty=(), trust_list_age_s=None,
        ),
    )  # fmt: skip


def scan_latencies(
    scans: int, warmup: int, rr_priority: int = 0, outbox_dir: Path | None = None
) -> tuple[list[float], list[float]]:
    """Ms from each scan's last byte to its outbox commit and to its relay call (warmup cut).

    `rr_priority` > 0 puts the thread that reads the scanner and decides (the DeviceLink
    thread) under SCHED_RR at that priority, as the gate does (`node.decision_priority`).
    The outbox file is in `outbox_dir` (default: the current directory, this machine's disk).
    """
    work = Path(tempfile.mkdtemp(prefix="gatepost-bench-", dir=outbox_dir or Path.cwd()))
    kit = SiteKit(work / "site")
    trust = TrustStore(root_keys_for([kit.root_key.public_key()]))
    trust.apply(kit.trust_list(), datetime.now(UTC))
    codes = [kit.code("green", id_number=f"{n:018d}") for n in range(warmup + scans)]
    node = Site("bench").node(Role.GATE, "g01")
    outbox = Outbox(work / "outbox.db", node, capacity=10 * (warmup + scans))
    io = GateIO(GpioConfig(barrier=BarrierConfig(pulse_s=0.02)), pin_factory=MockFactory())
    marks = Marks()
    opener = io.open_barrier

    def open_and_time() -> None:
        marks.relay()
        opener()

    io.open_barrier = open_and_time  # type: ignore[method-assign]
    checkpoint = gate_checkpoint(outbox, Verifier(trust), io, marks.commit)
    profile = load_profile(
        {**load_profile(PROFILES_DIR / "gm65-scanner.yaml").model_dump(),
         "baudrate": BAUD, "configure_on_start": False}
    )  # fmt: skip
    stop_event = threading.Event()
    to_commit: list[float] = []
    to_relay: list[float] = []
    with PseudoTerminal() as pty:
        link = DeviceLink(
            "scanner", pty.path, profile, DRIVERS[profile.part],
            on_reading=checkpoint.on_reading, on_fault=lambda change: None,
        )  # fmt: skip
        # The node's own way (node.decision_priority); a refusal is logged, as on a node.
        link.start(stop_event, realtime_priority=rr_priority)
        # As on the node: the WAL is checkpointed every 2 s beside the decisions.
        threading.Thread(target=checkpoint_every, args=(outbox, stop_event, 2.0)).start()
        time.sleep(0.5)
        for code in codes:
            checkpoint.on_reading(TemperatureReading("thermometer", time.monotonic(), 36.5))
            frame = code.encode() + b"\r"
            # The frame takes its time on the wire; the clock starts at its last byte.
            pty.write(frame[:-1])
            time.sleep(len(frame) * BITS_PER_BYTE / BAUD)
            marks.clear()
            pty.write(frame[-1:])
            last_byte = time.monotonic()
            if not marks.decided.wait(2) or not marks.committed:
                sys.exit(f"no decision for scan {len(to_commit) + 1}")
            to_commit.append(1000 * (marks.committed[0] - last_byte))
            to_relay.append(1000 * (marks.relayed[0] - last_byte))
            time.sleep(0.03)
        stop_event.set()
        link.join()
    io.close()
    outbox.close()
    for path in sorted(work.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    work.rmdir()
    return to_commit[warmup:], to_relay[warmup:]


def latency_rows(
    to_commit: list[float], to_relay: list[float], **first: Any
) -> list[dict[str, Any]]:
    return [
        {**first, "path": name, "scans": len(values),
         "p50 ms": round(statistics.median(values), 2),
         "p95 ms": round(percentile(values, 95), 2), "p99 ms": round(percentile(values, 99), 2),
         "max ms": round(max(values), 2)}
        for name, values in (("last byte -> outbox commit", to_commit),
                             ("last byte -> relay call", to_relay))
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", action="store_true", help="the cores busy run (#15)")
    parser.add_argument(
        "--scans", type=int, help=f"counted scans per run (default {SCANS}; --busy: per round, "
        f"{SCANS} / --rounds)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=WARMUP, help="scans not counted")
    parser.add_argument("--rounds", type=int, default=4, help="--busy: rounds of every run")
    parser.add_argument("--outbox-dir", type=Path, help="where the outbox file goes (default: .)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rr", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scans is None:
        args.scans = SCANS // args.rounds if args.busy else SCANS
    if args.child:
        commit, relay = scan_latencies(args.scans, args.warmup, args.rr, args.outbox_dir)
        print(json.dumps({"commit": commit, "relay": relay}))
    elif args.busy:
        from bench.gate_decision_busy import busy  # it imports this module

        busy(args)
    else:
        commit, relay = scan_latencies(args.scans, args.warmup, outbox_dir=args.outbox_dir)
        record("gate_decision", latency_rows(commit, relay), baud=BAUD, warmup_scans=args.warmup)


if __name__ == "__main__":
    main()
