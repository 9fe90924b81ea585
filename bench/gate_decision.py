"""Gate decision latency: scanner's last byte on a 115200 pty to the outbox commit and relay call.

The whole real path runs: pty, pyserial, the GM65 driver and DeviceLink thread, the
verifier (ES256), the decision engine, the SQLite outbox commit (WAL, synchronous
FULL, on this machine's disk) and the gpiozero barrier on mock pins. The temperature
was taken just before, so the decision does not wait for one. The first WARMUP scans
are not counted: while the WAL file first grows to its working size, a few commits wait
tens of milliseconds on the filesystem (once per start of a node, not per scan).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
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


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)
    )  # type: ignore[index]


def checkpoint_every(outbox: Outbox, stop: threading.Event, seconds: float) -> None:
    while not stop.wait(seconds):
        outbox.checkpoint()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="gatepost-bench-", dir=Path.cwd()))
    kit = SiteKit(work / "site")
    trust = TrustStore(root_keys_for([kit.root_key.public_key()]))
    trust.apply(kit.trust_list(), datetime.now(UTC))
    codes = [kit.code("green", id_number=f"{n:018d}") for n in range(WARMUP + SCANS)]
    node = Site("bench").node(Role.GATE, "g01")
    outbox = Outbox(work / "outbox.db", node, capacity=10 * SCANS)
    io = GateIO(GpioConfig(barrier=BarrierConfig(pulse_s=0.02)), pin_factory=MockFactory())
    committed: list[float] = []
    relayed: list[float] = []
    opener = io.open_barrier

    def open_and_time() -> None:
        relayed.append(time.monotonic())
        opener()

    io.open_barrier = open_and_time  # type: ignore[method-assign]
    checkpoint = GateCheckpoint(
        gate="g01", outbox=outbox, verifier=Verifier(trust), policy=GatePolicy(),
        actions=io, direction="in", zone=ZoneInfo("Asia/Shanghai"), cutoff_hour=0,
        id_hash_key=b"k" * 32, on_event=lambda: committed.append(time.monotonic()),
        node_view=lambda: NodeView(
            site="bench", node="g01", broker_connected=False, devices={}, outbox_depth=0,
            outbox_capacity=1, volunteers_on_duty=(), trust_list_age_s=None,
        ),
    )  # fmt: skip
    profile = load_profile(
        {**load_profile(PROFILES_DIR / "gm65-scanner.yaml").model_dump(),
         "baudrate": BAUD, "configure_on_start": False}
    )  # fmt: skip
    stop = threading.Event()
    with PseudoTerminal() as pty:
        link = DeviceLink(
            "scanner", pty.path, profile, DRIVERS[profile.part],
            on_reading=checkpoint.on_reading, on_fault=lambda change: None,
        )  # fmt: skip
        link.start(stop)
        # As on the node: the WAL is checkpointed every 2 s beside the decisions.
        threading.Thread(target=checkpoint_every, args=(outbox, stop, 2.0)).start()
        time.sleep(0.5)
        to_commit, to_relay = [], []
        for code in codes:
            checkpoint.on_reading(TemperatureReading("thermometer", time.monotonic(), 36.5))
            frame = code.encode() + b"\r"
            # The frame takes its time on the wire; the clock starts at its last byte.
            pty.write(frame[:-1])
            time.sleep(len(frame) * BITS_PER_BYTE / BAUD)
            committed.clear()
            relayed.clear()
            pty.write(frame[-1:])
            last_byte = time.monotonic()
            deadline = last_byte + 2
            while not relayed and time.monotonic() < deadline:
                time.sleep(0.0002)
            if not (committed and relayed):
                sys.exit(f"no decision for scan {len(to_commit) + 1}")
            to_commit.append(1000 * (committed[0] - last_byte))
            to_relay.append(1000 * (relayed[0] - last_byte))
            time.sleep(0.03)
        stop.set()
        link.join()
    io.close()
    outbox.close()
    to_commit, to_relay = to_commit[WARMUP:], to_relay[WARMUP:]
    rows = [
        {"path": name, "scans": len(values), "p50 ms": round(statistics.median(values), 2),
         "p99 ms": round(percentile(values, 99), 2), "max ms": round(max(values), 2)}
        for name, values in (("last byte -> outbox commit", to_commit),
                             ("last byte -> relay call", to_relay))
    ]  # fmt: skip
    record("gate_decision", rows, baud=BAUD, code_chars=len(codes[0]), warmup_scans=WARMUP)
    for path in sorted(work.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    work.rmdir()


if __name__ == "__main__":
    main()
