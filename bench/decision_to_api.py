"""Decision to REST API: how long after a gate decides a passage can be read at /api/passages.

One gate (`bench/g0001`) runs the real edge path without devices: every passage is
committed to a SQLite outbox (`edge.outbox.Outbox`, as the gate does at its decision)
on a fixed monotonic schedule (50 events/s by default, no sleep drift), and the real
uplink (`edge.uplink.Uplink`, woken after each commit as the gate node does) drains it
at QoS 1 to a private Mosquitto. The real gateway (`gatepost gateway run`, a separate
process, default ingest batching) stores them in its SQLite file and serves the API.

The decision time is `time.monotonic()` right after the commit. Two observers in this
process stamp the first time they see each event_id on the same clock:

- a paho subscriber on the gate's passage topic: decision -> broker delivery;
- one thread polling `GET /api/passages?node=g0001&limit=50` with a command-role bearer
  token over a keep-alive `http.client` connection, starting a request every 5 ms (or
  right after the last one if it took longer): decision -> visible through the API.

An API latency is stamped when the response that first holds the event arrives, so it
is an upper bound: the resolution is one poll interval plus one request's round trip
(the "API poll round trip" row). Events seen by no observer within 10 s are lost. The
first 50 events (the gateway's and the outbox's first writes) are not counted.

Each transport runs in turn on a broker of its own (issue #11, the cost of TLS):
`plain`, anonymous MQTT, and `tls+cert`, the locked site broker as deployed, where the
gate, the gateway's two connections and the paho subscriber (a gateway identity: only
those may read events) each connect
with their own certificate under the site ACL. "p50 vs plain" and "p99 vs plain" are
the differences in ms from the same path on plain MQTT in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from bench.common import (
    PLAIN,
    SITE,
    BenchSite,
    GatewayProcess,
    bench_uplink,
    record,
    transport_arg,
    transports,
)
from edge.contract import topics
from edge.contract.events import Passage
from edge.contract.topics import EventKind, Node, Role, Site
from edge.mqtt import Endpoint, new_client
from edge.outbox import Outbox
from firmware_tools.site_pki import IdentityRole
from gateway.access import hash_token, new_token
from gateway.store import SqliteStore

GATE = "g0001"
RATE = 50.0
SECONDS = 30.0
SKIP = 50  # first events, not counted
POLL_S = 0.005
LOST_AFTER_S = 10.0
CHECKPOINT_S = 2.0  # as edge.gate.node's OUTBOX_CHECKPOINT_S
EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"]+)"')

Stamps = dict[str, float]  # event_id -> time.monotonic() when first decided / seen


class Gate:
    """The gate's side: the real outbox and uplink, committing a passage per decision."""

    def __init__(self, work: Path, broker: Endpoint, node: Node) -> None:
        self.outbox = Outbox(work / "outbox.db", node)
        self.uplink = bench_uplink(broker, node, self.outbox)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.uplink.run, args=(self._stop,), daemon=True)
        self._next_checkpoint = 0.0

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.uplink.connected:
            if time.monotonic() > deadline:
                raise RuntimeError("the gate's uplink did not connect")
            time.sleep(0.01)

    def decide(self) -> tuple[str, float]:
        """Commit one passage as the gate does at its decision; its event_id and commit time."""
        with self.outbox.transaction() as batch:
            event = batch.add(
                Passage(**batch.ids(datetime.now(UTC)), direction="in", outcome="allow",
                        colour="green", credential="health-code", temperature_c=36.5)
            )  # fmt: skip
        decided = time.monotonic()
        self.uplink.wake()
        if decided >= self._next_checkpoint:  # the node's main loop does this every 2 s
            self.outbox.checkpoint()
            self._next_checkpoint = decided + CHECKPOINT_S
        return event.event_id, decided

    def close(self) -> None:
        self._stop.set()
        self._thread.join(15)
        self.outbox.close()


class BrokerWatch:
    """A paho subscriber on the gate's passage topic: when each event_id reached it."""

    def __init__(self, broker: Endpoint, topic: str) -> None:
        self.seen: Stamps = {}
        self._subscribed = threading.Event()
        self.client = new_client("bench-decision-watch", broker)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the broker watch did not subscribe")

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        now = time.monotonic()
        if found := EVENT_ID.search(message.payload):
            self.seen.setdefault(found.group(1).decode(), now)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ApiWatch:
    """Polls /api/passages from one thread: when each event_id first came back."""

    def __init__(self, port: int, token: str, node: str, poll_s: float) -> None:
        self.seen: Stamps = {}
        self.round_trips: list[float] = []
        self.errors = 0
        self.port, self.poll_s = port, poll_s
        self.path = f"/api/passages?node={node}&limit=50"
        self.headers = {"Authorization": f"Bearer {token}"}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        next_at = time.monotonic()
        while not self._done.is_set():
            try:
                self._poll(conn)
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()  # reconnects on the next request
            now = time.monotonic()
            next_at = max(next_at + self.poll_s, now)
            self._done.wait(next_at - now)
        conn.close()

    def _poll(self, conn: http.client.HTTPConnection) -> None:
        sent = time.monotonic()
        conn.request("GET", self.path, headers=self.headers)
        response = conn.getresponse()
        body = response.read()
        got = time.monotonic()
        if response.status != 200:
            raise http.client.HTTPException(f"{response.status}: {body[:200]!r}")
        self.round_trips.append(got - sent)
        for event_id in EVENT_ID.findall(body):  # a regex: no JSON parse on the hot path
            self.seen.setdefault(event_id.decode(), got)

    def close(self) -> None:
        self._done.set()
        self._thread.join(10)


def gate_schedule(gate: Gate, total: int, rate: float) -> Stamps:
    """`total` decisions, the i-th at start + i/rate on the monotonic clock."""
    decided: Stamps = {}
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        event_id, at = gate.decide()
        decided[event_id] = at
    return decided


def wait_seen(watches: list[Stamps], wanted: list[str]) -> None:
    """Until every watch saw every wanted event, or LOST_AFTER_S passed."""
    deadline = time.monotonic() + LOST_AFTER_S
    while time.monotonic() < deadline:
        if all(all(e in seen for e in wanted) for seen in watches):
            return
        time.sleep(0.1)


def start_gateway(site: BenchSite, work: Path, gate: str) -> tuple[GatewayProcess, str]:
    """The gateway with a command-role token in its store, added before it starts."""
    token = new_token()
    work.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(work / "gateway.db")
    store.add_token(hash_token(token), "bench", "command", datetime.now(UTC))
    store.close()
    return GatewayProcess(site, work, [gate]), token


def latency_row(path: str, decided: Stamps, seen: Stamps, measured: list[str]) -> dict[str, Any]:
    """Count, lost and percentiles in ms of seen - decided over the measured events."""
    ms = [(seen[e] - decided[e]) * 1000 for e in measured if e in seen]
    ms = [m for m in ms if m <= LOST_AFTER_S * 1000]
    return _stats_row(path, ms, lost=len(measured) - len(ms))


def _stats_row(path: str, ms: list[float], lost: Any) -> dict[str, Any]:
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [0.0] * 99
    return {
        "path": path, "samples": len(ms), "lost": lost, "p50 ms": q[49], "p90 ms": q[89],
        "p99 ms": q[98], "max ms": max(ms, default=0.0),
    }  # fmt: skip


def measure(
    work: Path, transport: str, seconds: float, rate: float, poll_s: float
) -> list[dict[str, Any]]:
    """Run gate, broker, gateway and both observers over `transport`; one row per path."""
    node = Site(SITE).node(Role.GATE, GATE)
    total = SKIP + round(seconds * rate)
    site = BenchSite(work / "site", transport, node.site.name, node.site.prefix)
    gate_endpoint = site.endpoint(IdentityRole.GATE, node.name)
    # Events are the gateway's to read: the watch is a gateway identity of its own.
    watch_endpoint = site.endpoint(IdentityRole.GATEWAY, "decision-watch")
    with site:
        gateway, token = start_gateway(site, work / "gateway", node.name)
        gate = Gate(work / "gate", gate_endpoint, node)
        watch = BrokerWatch(watch_endpoint, topics.event(node, EventKind.PASSAGE))
        api = ApiWatch(gateway.port, token, node.name, poll_s)
        try:
            gate.start()
            decided = gate_schedule(gate, total, rate)
            measured = list(decided)[SKIP:]
            wait_seen([watch.seen, api.seen], measured)
        finally:
            api.close()
            watch.close()
            gate.close()
            gateway.stop()
    if api.errors:
        print(f"{transport}: API poll errors: {api.errors}")
    return [
        latency_row("decision → broker (subscriber)", decided, watch.seen, measured),
        latency_row("decision → REST API (poll)", decided, api.seen, measured),
        _stats_row("API poll round trip (resolution)",
                   [s * 1000 for s in api.round_trips], lost="-"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS, help="measured seconds")
    parser.add_argument("--rate", type=float, default=RATE, help="passages per second")
    parser.add_argument("--poll-ms", type=float, default=POLL_S * 1000, help="API poll period")
    transport_arg(parser, default="both")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for transport in transports(args):
        work = Path(tempfile.mkdtemp(prefix=f"gatepost-d2api-{transport}-"))
        try:
            rows += [
                {"transport": transport} | row
                for row in measure(work, transport, args.seconds, args.rate, args.poll_ms / 1000)
            ]
        finally:
            shutil.rmtree(work, ignore_errors=True)
    compare_with_plain(rows)
    record(
        "decision_to_api", rows, rate=args.rate, seconds=args.seconds, skipped=SKIP,
        poll_ms=args.poll_ms, lost_after_s=LOST_AFTER_S,
    )  # fmt: skip


def compare_with_plain(rows: list[dict[str, Any]]) -> None:
    """Each row's p50 and p99 minus the same path's on plain MQTT in this run, in ms."""
    plain = {row["path"]: row for row in rows if row["transport"] == PLAIN}
    for row in rows:
        base = plain.get(row["path"])
        for q in ("p50", "p99"):
            diff = f"{row[f'{q} ms'] - base[f'{q} ms']:+.1f}" if base else "-"
            row[f"{q} vs plain"] = diff


if __name__ == "__main__":
    main()
