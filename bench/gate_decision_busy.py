"""The "cores busy" run of bench/gate_decision.py (`python -m bench.gate_decision --busy`).

The gate's decision latency is measured in a process of its own, first on idle cores, then
beside a hog per core and a kiosk (headless Chromium drawing an animated page, as the
console does), with every process at one priority, at the priorities the systemd units
give (node: Nice=-5, CPUWeight=1000, best-effort I/O 0; kiosk and load: Nice=10,
CPUWeight=20, idle I/O), and those plus SCHED_RR for the decision thread alone. Nice and
ionice need root for the node's side; the CPU weights need a writable cgroup (v2
cpu.weight, or v1 cpu.shares = weight x 1024 / 100, systemd's mapping). What could not be
applied is recorded in the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bench.common import record
from bench.gate_decision import BAUD, latency_rows
from simulators.processes import spawn, stop

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
