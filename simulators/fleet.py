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
import random
import secrets
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import IO, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.contract import topics
from edge.contract.base import new_event_id
from edge.contract.catalogue import encode
from edge.contract.events import Passage
from edge.contract.presence import Birth
from edge.contract.topics import DEFAULT_PREFIX, EventKind, Node, Role, Site
from edge.errors import GatepostError
from edge.mqtt import BrokerUrl, new_client
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


# --- building the stream ---------------------------------------------------------


def passage(rng: random.Random, seq: int, at: datetime) -> Passage:
    """One realistic passage: mostly green and allowed, some fevers, yellow and red codes."""
    ids: dict[str, Any] = {"event_id": new_event_id(at), "seq": seq, "node_time": at}
    subject = f"{rng.getrandbits(256):064x}"
    roll = rng.random()
    if roll < 0.88:
        temperature = round(min(37.2, max(35.8, rng.gauss(36.5, 0.25))), 1)
        return Passage(
            **ids, direction=rng.choice(("in", "out")), outcome="allow", colour="green",
            credential="health-code", temperature_c=temperature, subject_ref=subject,
        )  # fmt: skip
    if roll < 0.92:
        return Passage(
            **ids, direction="in", outcome="hold", colour="green", credential="health-code",
            reasons=("fever",), temperature_c=round(rng.uniform(37.8, 38.6), 1),
            subject_ref=subject,
        )  # fmt: skip
    if roll < 0.97:
        return Passage(
            **ids, direction="in", outcome="hold", colour="yellow", credential="health-code",
            reasons=("yellow-code",), temperature_c=round(rng.uniform(36.2, 36.9), 1),
            subject_ref=subject,
        )  # fmt: skip
    return Passage(
        **ids, direction="in", outcome="deny", colour="red", credential="health-code",
        reasons=("red-code",), temperature_c=round(rng.uniform(36.1, 36.8), 1),
        subject_ref=subject,
    )  # fmt: skip


def build_stream(plan: FleetPlan, worker: int) -> list[Message]:
    """Every event publisher `worker` sends, encoded, nodes interleaved round-robin.

    Round-robin keeps each node's seq in order on the wire while spreading load over
    every topic, as a busy site would.
    """
    rng = random.Random(plan.seed * 1_000 + worker)
    site = Site(plan.site, plan.prefix)
    nodes = [site.node(Role.GATE, name) for name in plan.share(worker)]
    targets = [topics.event(node, EventKind.PASSAGE) for node in nodes]
    stream: list[Message] = []
    for seq in range(1, plan.events_per_node + 1):
        for topic in targets:
            stream.append((topic, encode(passage(rng, seq, datetime.now(UTC)))))
    return stream


def births(plan: FleetPlan, worker: int) -> list[Message]:
    """A retained Birth for each node publisher `worker` owns."""
    site = Site(plan.site, plan.prefix)
    nodes: list[Node] = [site.node(Role.GATE, name) for name in plan.share(worker)]
    return [
        (topics.status(node), encode(Birth(
            session=1, node_time=datetime.now(UTC), role=Role.GATE, version="fleet",
            config_hash=f"{plan.seed:016x}", devices={"scanner": "ok", "thermometer": "ok"},
            # Named as a real node's outbox is, so the gateway keeps and publishes its
            # receipts as it would for a fleet (the load generator needs none of them).
            heartbeat_s=10, outbox_id=secrets.token_hex(16), confirmed_seq=0,
        )))
        for node in nodes
    ]  # fmt: skip


# --- one publisher process -------------------------------------------------------


class FleetError(GatepostError):
    """A publisher could not do its part."""


class _Publisher:
    """One MQTT connection sending a list of messages with a bounded unacknowledged window.

    Driven by hand (`client.loop`) rather than by paho's network thread: one thread
    per process means no lock hand-offs per message; measured here, about 15,000
    messages/s against 9,000 with `loop_start()` and a semaphore for the window.
    """

    def __init__(self, broker: BrokerUrl, client_id: str, window: int, deadline: float) -> None:
        self.window = window
        self.deadline = deadline
        self.acknowledged = 0
        self.refused: list[str] = []
        self.connack: ReasonCode | None = None
        self.client = new_client(client_id, broker)
        # No paho in-flight limit: the window is the limit. (With one, paho scans every
        # unacknowledged message on each PUBACK, a tenth of a publisher's time.) The
        # queue limit only makes an overrun of the window fail loudly.
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(window)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port, keepalive=60)
        while self.connack is None:
            self.pump(0.1)
        if self.connack.is_failure:
            raise FleetError(f"broker refused the connection: {self.connack}")

    def _on_connect(
        self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, props: Properties | None
    ) -> None:
        self.connack = reason
        # paho ignores the broker's Receive Maximum (Mosquitto: its max_inflight_messages)
        # and cannot change its own limit once connected, so the window obeys it:
        # a client with more in flight is disconnected.
        receive_maximum = getattr(props, "ReceiveMaximum", MQTT_RECEIVE_MAXIMUM)
        self.window = min(self.window, receive_maximum)

    def _on_publish(
        self, _c: paho.Client, _u: Any, _mid: int, reason: ReasonCode, _p: Properties
    ) -> None:
        self.acknowledged += 1
        if reason.is_failure and len(self.refused) < 10:
            self.refused.append(str(reason))

    def pump(self, timeout_s: float) -> None:
        """Run the client's network loop once; raise if the connection is gone or time is up."""
        rc = self.client.loop(timeout_s)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise FleetError(f"connection lost: {paho.error_string(rc)}")
        if time.monotonic() > self.deadline:
            raise FleetError(f"timed out with {self.acknowledged:,} acknowledged")

    def send(self, messages: Sequence[Message], retain: bool = False) -> int:
        """Publish `messages` at QoS 1 in order and return once every one is acknowledged."""
        base = self.acknowledged
        sent = 0
        while self.acknowledged - base < len(messages):
            unacked = sent - (self.acknowledged - base)
            room = min(self.window - unacked, len(messages) - sent)
            for topic, payload in messages[sent : sent + room]:
                info = self.client.publish(topic, payload, qos=1, retain=retain)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    raise FleetError(f"publish refused by paho: {paho.error_string(info.rc)}")
            sent += room
            # Nothing more may go out until PUBACKs come: wait for them (the loop
            # returns as soon as some arrive); otherwise just read what is there.
            blocked = sent == len(messages) or sent - (self.acknowledged - base) >= self.window
            self.pump(0.5 if blocked else 0.0)
        if self.refused:
            raise FleetError(f"broker refused publishes: {', '.join(self.refused)}")
        return sent

    def close(self) -> None:
        try:
            self.client.disconnect()
            self.client.loop(0.1)
        except (OSError, ValueError):
            pass  # going away anyway; the report says what matters


# --- one publisher process: `python -m simulators.fleet --worker N ...` ---------------
#
# A plain child process rather than multiprocessing: it does not re-import the caller's
# main module, and it dies with its parent (simulators.processes). It speaks lines:
# it prints READY once connected with its stream built, waits for GO on stdin, and
# prints its REPORT as JSON last.

READY, GO, REPORT = "ready", "go", "report"


def _worker(plan: FleetPlan, index: int, broker: BrokerUrl, timeout_s: float) -> WorkerReport:
    """Build, connect, say ready, wait for go, send; any failure becomes the report's error."""
    deadline = time.monotonic() + timeout_s
    publisher: _Publisher | None = None
    try:
        stream = build_stream(plan, index)
        publisher = _Publisher(broker, f"fleet-{plan.site}-{index}", plan.window, deadline)
        if plan.births:
            publisher.send(births(plan, index), retain=True)
        print(READY, flush=True)
        while not select.select([sys.stdin], [], [], 0.01)[0]:
            publisher.pump(0.0)  # keeps the connection alive while the others get ready
        if sys.stdin.readline().strip() != GO:
            raise FleetError("the fleet was called off before the start")
        started = time.monotonic()
        before = publisher.acknowledged
        published = publisher.send(stream)
        return WorkerReport(index, published, publisher.acknowledged - before, started,
                            time.monotonic(), publisher.window)  # fmt: skip
    except Exception as exc:  # the parent owns the outcome: it gets it in the report
        acknowledged = publisher.acknowledged if publisher else 0
        return WorkerReport(index, acknowledged=acknowledged, error=f"{type(exc).__name__}: {exc}")
    finally:
        if publisher is not None:
            publisher.close()


# --- the fleet ---------------------------------------------------------------------


def run_fleet(plan: FleetPlan, broker_url: BrokerUrl, timeout_s: float = 300.0) -> FleetResult:
    """Start the publisher processes, start them together once all are ready, wait for all.

    Args:
        plan: what to send.
        broker_url: where to send it.
        timeout_s: each publisher gives up after this long (building included).

    Returns:
        The acknowledged count, seconds from the start signal to the last PUBACK, and
        each publisher's report (errors included; a failed publisher does not raise).
    """
    lines: queue.Queue[tuple[int, str | None]] = queue.Queue()
    processes = [
        _start_worker(plan, i, broker_url, timeout_s, lines) for i in range(plan.processes)
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
    plan: FleetPlan, index: int, broker: BrokerUrl, timeout_s: float,
    lines: queue.Queue[tuple[int, str | None]],
) -> subprocess.Popen[bytes]:  # fmt: skip
    argv = python_module("simulators.fleet", "--worker", str(index), "--broker", str(broker),
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
    parser.add_argument("--broker", type=BrokerUrl.parse, required=True, help="mqtt://host:port")
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
    if args.worker is not None:
        report = _worker(plan, args.worker, args.broker, args.timeout)
        print(REPORT, json.dumps(asdict(report)), flush=True)
        return 0
    result = run_fleet(plan, args.broker, timeout_s=args.timeout)
    print(result.summary())
    return 1 if result.errors or result.published != plan.total else 0


if __name__ == "__main__":
    sys.exit(main())
