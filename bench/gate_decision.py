"""Gate decision latency: scanner's last byte on a 115200 pty to the outbox commit and relay call.

The whole real path runs: pty, pyserial, the GM65 driver and DeviceLink thread, the
verifier (ES256), the decision engine, the SQLite outbox commit (WAL, synchronous
FULL, on this machine's disk) and the gpiozero barrier on mock pins. The temperature
was taken just before, so the decision does not wait for one. The first WARMUP scans
are not counted: while the WAL file first grows to its working size, a few commits wait
tens of milliseconds on the filesystem (once per start of a node, not per scan).

`--busy` is the "cores busy" run (issue #15): the same measurement in a process of its
own, first on idle cores, then beside a hog per core and a kiosk (headless Chromium
drawing an animated page, as the console does), with every process at one priority, at
the priorities the systemd units give (node: Nice=-5, CPUWeight=1000, best-effort I/O 0;
kiosk and load: Nice=10, CPUWeight=20, idle I/O), and those plus SCHED_RR for the
decision thread alone. Nice and ionice need root for the node's side; the CPU weights
need a writable cgroup (v2 cpu.weight, or v1 cpu.shares = weight x 1024 / 100, systemd's
mapping). What could not be applied is recorded in the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
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
from edge.devices.base import Reading, TemperatureReading
from edge.devices.link import DeviceLink
from edge.devices.registry import DRIVERS, load_profile
from edge.gate.checkpoint import GateCheckpoint
from edge.gate.decision import GatePolicy
from edge.gate.gpio.config import BarrierConfig, GpioConfig
from edge.gate.gpio.gateio import GateIO
from edge.gate.views import NodeView
from edge.outbox import Outbox
from simulators.devices.base import BITS_PER_BYTE
from simulators.processes import spawn, stop
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
    thread) under SCHED_RR at that priority, from its first reading on. The outbox file is
    in `outbox_dir` (default: the current directory, this machine's disk).
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
    realtime: list[int] = []

    def on_scanner_reading(reading: Reading) -> None:
        if rr_priority and not realtime:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(rr_priority))
            realtime.append(rr_priority)
        checkpoint.on_reading(reading)

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
            on_reading=on_scanner_reading, on_fault=lambda change: None,
        )  # fmt: skip
        link.start(stop_event)
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


# --- the "cores busy" run ------------------------------------------------------------

CGROUP_NAME = "gatepost-bench"
CHROMIUM = "/usr/bin/chromium"  # Debian's, as the tests' browser fixtures use
RR_PRIORITY = 10  # SCHED_RR 1..99; above every normal thread, far below the kernel's own
RT_RUNTIME_US = 200_000  # v1 with RT group scheduling: a child group has none until given


@dataclass(frozen=True)
class Priority:
    """What a systemd unit sets for a service, as this bench applies it to a process."""

    nice: int
    cpu_weight: int  # CPUWeight=, 1..10000, 100 the default
    io: tuple[str, ...]  # ionice arguments: IOSchedulingClass/IOSchedulingPriority
    group: str = ""  # its cgroup: CGROUP_NAME-<group> ("" = where the bench runs)


SAME = Priority(nice=0, cpu_weight=100, io=("-c", "2", "-n", "4"))
NODE = Priority(nice=-5, cpu_weight=1000, io=("-c", "2", "-n", "0"), group="node")
KIOSK = Priority(nice=10, cpu_weight=20, io=("-c", "3"), group="kiosk")

KIOSK_PAGE = """<!doctype html><meta charset="utf-8"><title>kiosk</title>
<body style="margin:0;font:32px sans-serif"><canvas id="c" width="1280" height="740"></canvas>
<div id="t"></div><script>
const c = document.getElementById("c").getContext("2d"); let n = 0;
function frame() {
  n++;
  for (let i = 0; i < 400; i++) {
    c.fillStyle = `hsl(${(n * 7 + i) % 360},70%,50%)`;
    c.fillRect((i * 37 + n * 3) % 1280, (i * 53 + n) % 740, 60, 40);
  }
  document.getElementById("t").textContent = "通行 pass " + n;
  requestAnimationFrame(frame);
}
frame();
</script>"""


class CpuGroups:
    """Cgroups `gatepost-bench-node` and `-kiosk` with CPU weights, at the top of the tree.

    At the top, as systemd's units sit in system.slice beside little else: nested under
    one bench group, the node would share that group's weight with the load at the level
    where the machine's other processes compete. Uses cgroup v2 (cpu.weight) or v1
    (cpu.shares); `available` is False (and `why` says why) where neither is writable,
    and the weights are then not applied.
    """

    def __init__(self, weights: dict[str, int]) -> None:
        self.weights = weights
        self.base: Path | None = None
        self.version = 0
        self.why = ""

    @property
    def available(self) -> bool:
        return self.base is not None

    def path(self, group: str) -> Path:
        assert self.base is not None
        return self.base / f"{CGROUP_NAME}-{group}"

    def procs(self, group: str) -> Path:
        return self.path(group) / "cgroup.procs"

    def __enter__(self) -> CpuGroups:
        top = Path("/sys/fs/cgroup")
        try:
            if (top / "cgroup.controllers").exists():
                (top / "cgroup.subtree_control").write_text("+cpu")
                self.base, self.version = top, 2
            elif (top / "cpu" / "cpu.shares").exists():
                self.base, self.version = top / "cpu", 1
            else:
                self.why = "no cpu cgroup controller mounted"
                return self
            for group, weight in self.weights.items():
                self.path(group).mkdir(exist_ok=True)
                if self.version == 2:
                    (self.path(group) / "cpu.weight").write_text(str(weight))
                else:
                    (self.path(group) / "cpu.shares").write_text(str(weight * 1024 // 100))
            rt_runtime = self.path("node") / "cpu.rt_runtime_us"
            if self.version == 1 and rt_runtime.exists():
                # SCHED_RR in a v1 group needs run time of its own (none by default).
                rt_runtime.write_text(str(RT_RUNTIME_US))
        except OSError as error:
            self.why = f"cgroup not writable: {error}"
            self.__exit__()
            self.base = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.base is None:
            return
        for group in self.weights:
            with suppress(OSError):
                self.path(group).rmdir()


# The kiosk runs as its own user, without CAP_SYS_NICE; Chromium run as root raises its GPU
# process to nice -8 (above the node), so the load is started without that capability.
DROP_SYS_NICE = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice"]


def prioritised(
    argv: list[str], priority: Priority, groups: CpuGroups, *, may_raise: bool = True
) -> list[str]:
    """`argv` wrapped so that it starts in its cgroup with its nice and I/O class."""
    wrapped = ["ionice", *priority.io, "nice", "-n", str(priority.nice), *argv]
    if not may_raise and os.geteuid() == 0:
        wrapped = [*DROP_SYS_NICE, *wrapped]
    if priority.group and groups.available:
        procs = shlex.quote(str(groups.procs(priority.group)))
        return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *wrapped]
    return wrapped


@contextmanager
def load(priority: Priority, groups: CpuGroups, work: Path) -> Iterator[list[str]]:
    """A busy loop per core and the kiosk browser, at `priority`; yields what runs."""
    hogs = [
        spawn(
            prioritised(
                [sys.executable, "-c", "while True: pass"], priority, groups, may_raise=False
            )
        )
        for _ in range(os.cpu_count() or 1)
    ]
    running = [f"{len(hogs)} busy loops"]
    kiosk: subprocess.Popen[bytes] | None = None
    if Path(CHROMIUM).exists():
        page = work / "kiosk.html"
        page.write_text(KIOSK_PAGE, encoding="utf-8")
        kiosk = spawn(
            prioritised(
                [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 f"--user-data-dir={work / 'kiosk-profile'}", "--remote-debugging-port=0",
                 "--window-size=1280,800", page.as_uri()],
                priority, groups, may_raise=False,
            ),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        running.append("headless Chromium drawing an animated page")
    time.sleep(2)  # let the browser reach its steady drawing
    try:
        yield running
    finally:
        for process in hogs:
            stop(process, "busy loop", grace_s=2)
        if kiosk is not None:
            stop(kiosk, "kiosk", grace_s=5)


def measured_in_child(
    priority: Priority, groups: CpuGroups, args: argparse.Namespace, rr: int
) -> tuple[list[float], list[float]]:
    argv = [sys.executable, "-m", "bench.gate_decision", "--child", "--scans", str(args.scans),
            "--warmup", str(args.warmup), "--rr", str(rr)]  # fmt: skip
    if args.outbox_dir:
        argv += ["--outbox-dir", str(args.outbox_dir)]
    process = spawn(
        prioritised(argv, priority, groups),
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    out, _ = process.communicate(timeout=600)
    if process.returncode != 0:
        sys.exit(f"the measuring process failed with exit code {process.returncode}")
    result = json.loads(out)
    return result["commit"], result["relay"]


def busy(args: argparse.Namespace) -> None:
    """Each configuration in turn, `args.rounds` times, so the machine's own load is shared."""
    can_raise = os.geteuid() == 0
    node = NODE if can_raise else Priority(0, NODE.cpu_weight, ("-c", "2", "-n", "0"), "node")
    runs: list[tuple[str, Priority, Priority | None, int]] = [
        ("idle", SAME, None, 0),
        ("busy, same priority", SAME, SAME, 0),
        ("busy, unit priorities", node, KIOSK, 0),
        (f"busy, unit priorities + SCHED_RR {RR_PRIORITY}", node, KIOSK, RR_PRIORITY),
    ][: None if can_raise else 3]  # SCHED_RR needs CAP_SYS_NICE or an RLIMIT_RTPRIO
    measured: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, *_ in runs}
    load_avg: dict[str, list[list[float]]] = {name: [] for name, *_ in runs}
    running = ["nothing"]
    with CpuGroups({"node": NODE.cpu_weight, "kiosk": KIOSK.cpu_weight}) as groups:
        work = Path(tempfile.mkdtemp(prefix="gatepost-bench-busy-"))
        for round_ in range(1, args.rounds + 1):
            for name, node_priority, load_priority, rr in runs:
                print(f"round {round_}/{args.rounds}: {name} ...", flush=True)
                load_avg[name].append([round(x, 2) for x in os.getloadavg()])
                if load_priority is None:
                    commit, relay = measured_in_child(node_priority, groups, args, rr)
                else:
                    with load(load_priority, groups, work) as running:
                        commit, relay = measured_in_child(node_priority, groups, args, rr)
                measured[name][0].extend(commit)
                measured[name][1].extend(relay)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    rows = [row for name, (commit, relay) in measured.items()
            for row in latency_rows(commit, relay, run=name)]  # fmt: skip
    applied = {
        "as root": can_raise,
        "cgroup": f"v{groups.version} {groups.path('node').parent}/{CGROUP_NAME}-node, -kiosk"
        if groups.available else groups.why,
        "load started by": " ".join(DROP_SYS_NICE) if can_raise else "not root",
        "io scheduler honours ionice classes": io_classes_honoured(),
    }  # fmt: skip
    record(
        "gate_decision_busy", rows, baud=BAUD, rounds=args.rounds,
        scans_per_round=args.scans, warmup_scans_per_round=args.warmup, cores=os.cpu_count(),
        outbox_dir=str(args.outbox_dir or Path.cwd()), load=running, node=node.__dict__,
        kiosk=KIOSK.__dict__, applied=applied, load_average_before_each_run=load_avg,
    )  # fmt: skip


def io_classes_honoured() -> dict[str, bool]:
    """Per block device: is its I/O scheduler one that honours ionice classes (BFQ)?"""
    found: dict[str, bool] = {}
    for scheduler in sorted(Path("/sys/block").glob("*/queue/scheduler")):
        text = scheduler.read_text()
        if "[" in text and not scheduler.parent.parent.name.startswith(("loop", "ram", "zram")):
            found[scheduler.parent.parent.name] = "[bfq]" in text
    return found


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
        busy(args)
    else:
        commit, relay = scan_latencies(args.scans, args.warmup, outbox_dir=args.outbox_dir)
        record("gate_decision", latency_rows(commit, relay), baud=BAUD, warmup_scans=args.warmup)


if __name__ == "__main__":
    main()
