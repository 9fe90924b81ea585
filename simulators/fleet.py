"""A fleet of simulated gate nodes flooding a broker with valid passage events at QoS 1.

One Python paho publisher tops out well below what Mosquitto and the gateway are meant
to take, so the fleet is split over several publisher processes, each owning a disjoint
set of nodes. Every process builds its payloads first, says it is ready, and only when
all are ready does the clock start: the timed phase is publishing and PUBACKs only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from edge.cli import broker_arg, endpoint_args
from edge.contract.topics import DEFAULT_PREFIX, Site
from edge.errors import GatepostError
from edge.mqtt import Endpoint
from simulators.processes import python_module, spawn, stop

# (topic, payload bytes): what a publisher sends, built before the clock starts.
Message = tuple[str, bytes]

# MQTT 5 default when the broker's CONNACK names no Receive Maximum.
MQTT_RECEIVE_MAXIMUM = 65_535


@dataclass(frozen=True)
class FleetPlan:
    """What the fleet sends.

    Args:
        site: the site every node belongs to.
        nodes: number of simulated gate nodes, named g0001, g0002, ...
        events_per_node: passages each node publishes, seq 1..N without gaps.
        processes: publisher processes; nodes are dealt out among them.
        window: most messages one publisher has unacknowledged at a time.
        prefix: topic prefix.
        births: each node first publishes a retained Birth on its status topic.
        seed: seeds the mix of outcomes, so two runs send the same story.
    """

    site: str = "bench"
    nodes: int = 200
    events_per_node: int = 500
    processes: int = 3
    window: int = 1000
    prefix: str = DEFAULT_PREFIX
    births: bool = True
    seed: int = 1

    def __post_init__(self) -> None:
        if min(self.nodes, self.events_per_node, self.processes, self.window) < 1:
            raise ValueError("nodes, events_per_node, processes and window must be at least 1")
        if self.window >= MQTT_RECEIVE_MAXIMUM:
            raise ValueError("window must stay below 65,535: paho reuses message ids past that")
        Site(self.site, self.prefix)  # raises on a name that is not a topic segment

    @property
    def total(self) -> int:
        """Events the whole fleet publishes."""
        return self.nodes * self.events_per_node

    @property
    def node_names(self) -> list[str]:
        """Every node's name, in order."""
        return [f"g{i:04d}" for i in range(1, self.nodes + 1)]

    def share(self, worker: int) -> list[str]:
        """The nodes publisher `worker` owns (disjoint from every other publisher's)."""
        return self.node_names[worker :: self.processes]


@dataclass(frozen=True)
class WorkerReport:
    """What one publisher process did; times are `time.monotonic()`, shared by all processes."""

    worker: int
    published: int = 0
    acknowledged: int = 0
    started: float = 0.0
    finished: float = 0.0
    window: int = 0  # the window it used: the plan's, or less if the broker said so
    error: str | None = None


@dataclass(frozen=True)
class FleetResult:
    """How the fleet's run went: `published` counts events the broker acknowledged."""

    plan: FleetPlan
    published: int
    seconds: float
    workers: tuple[WorkerReport, ...]

    @property
    def rate(self) -> float:
        """Acknowledged events per second, from the start signal to the last PUBACK."""
        return self.published / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> dict[int, str]:
        """Publisher index to what went wrong in it."""
        return {w.worker: w.error for w in self.workers if w.error}

    def summary(self) -> str:
        """One line of counts and rate, then a line per failed publisher."""
        plan = self.plan
        text = (
            f"published {self.published:,} of {plan.total:,} events from {plan.nodes} nodes "
            f"in {plan.processes} processes: {self.seconds:.2f} s, {self.rate:,.0f} events/s"
        )
        return "\n".join([text, *(f"publisher {i}: {e}" for i, e in self.errors.items())])


class FleetError(GatepostError):
    """A publisher could not do its part."""


# --- one publisher process: `python -m simulators.fleet --worker N ...` ---------------
#
# A plain child process rather than multiprocessing: it does not re-import the caller's
# main module, and it dies with its parent (simulators.processes). It speaks lines:
# it prints READY once connected with its stream built, waits for GO on stdin, and
# prints its REPORT as JSON last.

READY, GO, REPORT = "ready", "go", "report"


# --- the fleet ---------------------------------------------------------------------


def run_fleet(
    plan: FleetPlan, endpoints: Sequence[Endpoint], timeout_s: float = 300.0
) -> FleetResult:
    """Start the publisher processes, start them together once all are ready, wait for all.

    Args:
        plan: what to send.
        endpoints: where to send it, one per publisher process: on a locked broker each
            is a connection of its own, so each needs its own (simulator) certificate.
        timeout_s: each publisher gives up after this long (building included).

    Returns:
        The acknowledged count, seconds from the start signal to the last PUBACK, and
        each publisher's report (errors included; a failed publisher does not raise).
    """
    if len(endpoints) != plan.processes:
        raise FleetError(f"{plan.processes} publishers, {len(endpoints)} endpoints: one each")
    lines: queue.Queue[tuple[int, str | None]] = queue.Queue()
    processes = [
        _start_worker(plan, i, endpoint, timeout_s, lines) for i, endpoint in enumerate(endpoints)
    ]
    deadline = time.monotonic() + timeout_s + 30
    try:
        early = _collect(lines, processes, set(), deadline, until_ready=True)
        started = time.monotonic()
        for i, process in enumerate(processes):
            if i not in {r.worker for r in early}:
                _tell(process, GO)
        done = _collect(lines, processes, {r.worker for r in early}, deadline)
    finally:
        for process in processes:
            _tell(process, "")  # a publisher still waiting for GO gives up
        for i, process in enumerate(processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)  # reported: it is disconnecting and about to exit
            stop(process, f"fleet publisher {i}", grace_s=5)
    workers = tuple(sorted(early + done, key=lambda r: r.worker))
    published = sum(w.acknowledged for w in workers)
    finished = max((w.finished for w in workers if w.finished), default=started)
    return FleetResult(plan, published, finished - started, workers)


def _start_worker(
    plan: FleetPlan, index: int, endpoint: Endpoint, timeout_s: float,
    lines: queue.Queue[tuple[int, str | None]],
) -> subprocess.Popen[bytes]:  # fmt: skip
    argv = python_module("simulators.fleet", "--worker", str(index), *endpoint_args(endpoint),
                         "--timeout", str(timeout_s), *_plan_args(plan))  # fmt: skip
    process = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    threading.Thread(target=_read_lines, args=(index, process.stdout, lines), daemon=True).start()
    return process


def _read_lines(index: int, stream: IO[bytes], lines: queue.Queue[tuple[int, str | None]]) -> None:
    for raw in stream:
        lines.put((index, raw.decode(errors="replace").strip()))
    lines.put((index, None))  # end of output: the process is gone or going


def _tell(process: subprocess.Popen[bytes], word: str) -> None:
    assert process.stdin is not None
    try:
        if word:
            process.stdin.write(f"{word}\n".encode())
            process.stdin.flush()
        else:
            process.stdin.close()
    except OSError:
        pass  # it died; its end of output tells the collector


def _collect(
    lines: queue.Queue[tuple[int, str | None]], processes: list[subprocess.Popen[bytes]],
    finished: set[int], deadline: float, until_ready: bool = False,
) -> list[WorkerReport]:  # fmt: skip
    """Reports from every publisher not in `finished`.

    With `until_ready`, it returns once each has said it is ready or has reported (a
    failure before the start); the reports it returns are those failures.
    """
    waiting = set(range(len(processes))) - finished
    got: list[WorkerReport] = []
    while waiting:
        try:
            index, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            got += [WorkerReport(i, error="no report before the deadline") for i in waiting]
            break
        if index not in waiting:
            continue
        if line is None:
            code = processes[index].wait()
            got.append(WorkerReport(index, error=f"exited with code {code} without a report"))
        elif line.startswith(REPORT + " "):
            got.append(WorkerReport(**json.loads(line.removeprefix(REPORT + " "))))
        elif not (line == READY and until_ready):
            continue
        waiting.discard(index)
    return got


def _plan_args(plan: FleetPlan) -> list[str]:
    """Command-line options that give `main` the same plan."""
    return [
        "--site", plan.site, "--prefix", plan.prefix, "--nodes", str(plan.nodes),
        "--events-per-node", str(plan.events_per_node), "--processes", str(plan.processes),
        "--window", str(plan.window), "--seed", str(plan.seed),
        *([] if plan.births else ["--no-births"]),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m simulators.fleet`: run a fleet against a broker and print the result."""
    parser = argparse.ArgumentParser(prog="python -m simulators.fleet", description=__doc__)
    parser.add_argument("--broker", type=broker_arg, required=True, help="mqtts://host:port")
    parser.add_argument("--ca", type=Path, help="the site CA (PEM)")
    parser.add_argument(
        "--cert", type=Path, action="append", default=[],
        help="a simulator certificate (PEM), once per publisher process",
    )  # fmt: skip
    parser.add_argument("--key", type=Path, action="append", default=[], help="its key, as often")
    parser.add_argument("--site", default=FleetPlan.site)
    parser.add_argument("--prefix", default=FleetPlan.prefix)
    parser.add_argument("--nodes", type=int, default=FleetPlan.nodes)
    parser.add_argument("--events-per-node", type=int, default=FleetPlan.events_per_node)
    parser.add_argument("--processes", type=int, default=FleetPlan.processes)
    parser.add_argument("--window", type=int, default=FleetPlan.window, help="max unacked")
    parser.add_argument("--seed", type=int, default=FleetPlan.seed)
    parser.add_argument("--no-births", dest="births", action="store_false")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per publisher")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # run_fleet's children
    args = parser.parse_args(argv)
    plan = FleetPlan(
        site=args.site, nodes=args.nodes, events_per_node=args.events_per_node,
        processes=args.processes, window=args.window, prefix=args.prefix,
        births=args.births, seed=args.seed,
    )  # fmt: skip
    identities = list(zip(args.cert, args.key, strict=True)) or [(None, None)]
    endpoints = [Endpoint(args.broker, args.ca, cert, key) for cert, key in identities]
    if args.worker is not None:
        from simulators.fleet_worker import work  # the child's side, only in the child

        report = work(plan, args.worker, endpoints[0], args.timeout)
        print(REPORT, json.dumps(asdict(report)), flush=True)
        return 0
    if len(endpoints) == 1:  # a plain broker: every publisher connects the same way
        endpoints *= plan.processes
    result = run_fleet(plan, endpoints, timeout_s=args.timeout)
    print(result.summary())
    return 1 if result.errors or result.published != plan.total else 0


if __name__ == "__main__":
    sys.exit(main())
