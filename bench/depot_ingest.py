"""Depot readings a gateway stores and evaluates per second, its alarm latency, and the broker's.

N depot nodes, each with M zones assigned storage classes (a cold class with an instant
12 °C alarm, cold and room), publish one DepotReadingBatch of all their zones every
`interval` seconds at QoS 1, as a node's outbox does (seq from 1, each entry chained to
the one before). The target (issue #13) is 100,000 sensors at one reading each per 10 s:
1,000 nodes x 100 zones, 10,000 readings/s, on one gateway, with alarm latency p99 < 1 s.

Paced: the stream on its schedule for `seconds`. Once a second one node's batch carries
its probe zone at 13 °C (its next batch clears it): alarm latency is from that batch's
publishing to its depot-climate Alert arriving on the broker (a command identity
subscribed to the alert topic). A bare `mosquitto_sub` on the same reading stream shows
what the broker alone delivers, and how soon (its latency for every batch). The
gateway's row counts readings stored (its store's contiguous seq per node, times M); the
excursion rules run on each stored batch before the next is stored, so stored is
evaluated but for the batch under way. The gateway writes whatever has queued as one
batch: once behind, its writes grow, and the note gives the longest gap between two.

Drained: the gateway's own capacity. Its session and mosquitto_sub's (persistent, QoS 1)
are made, both leave, the publisher floods `drain-batches` batches per node as fast as
the broker takes them, and each starts again and is timed to its last reading: readings/s
each, with the machine to itself (the publisher done).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from bench.common import BenchSite, GatewayProcess, record, transport_arg, transports
from bench.depot_publisher import PROBE_ZONE, DepotPlan, publish
from bench.gateway_ingest import mosquitto_args
from edge.contract import topics
from edge.contract.command import Alert
from edge.contract.topics import CONTRACT_VERSION, AlertKind, Role, Site
from edge.mqtt import Endpoint, new_client
from firmware_tools.site_pki import IdentityRole
from simulators.processes import spawn, stop

IDLE_S = 30.0  # a receiver with nothing new for this long has got all it will get


# --- the observers ---------------------------------------------------------------


class ReadingSub:
    """A `mosquitto_sub` on the reading stream writing receive time and topic to a file.

    Args:
        persistent: a session the broker keeps (QoS 1) while it is away, to drain later.
    """

    def __init__(self, broker: Endpoint, plan: DepotPlan, out: Path, persistent: bool) -> None:
        self.out = out
        topic = f"{plan.prefix}/{CONTRACT_VERSION}/{plan.site}/{Role.DEPOT}/+/reading"
        with out.open("ab") as sink:
            self.process = spawn(
                ["mosquitto_sub", *mosquitto_args(broker, "bench-sub"), "-q", "1", "-t", topic,
                 "-F", "%U %t", *(["-c"] if persistent else [])],
                stdout=sink,
            )  # fmt: skip

    def lines(self) -> list[tuple[float, str]]:
        found = []
        for line in self.out.read_text().splitlines():
            stamp, _, topic = line.partition(" ")
            if topic:
                found.append((float(stamp), topic.split("/")[4]))
        return found

    def wait(self, expected: int) -> None:
        _wait_for(lambda: len(self.lines()), expected)

    def close(self) -> None:
        stop(self.process, "mosquitto_sub", grace_s=5)


class StoreWatch:
    """Polls a gateway's store: batches stored (each node's contiguous seq), and when."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.count = 0
        self.first: float | None = None
        self.first_count = 0
        self.stall = 0.0  # the longest time between two commits seen, once it had begun
        self.last = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _stored(self) -> int:
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1) as conn:
                row = conn.execute("SELECT COALESCE(SUM(seq_contiguous), 0) FROM nodes").fetchone()
            return int(row[0])
        except sqlite3.Error:
            return self.count  # not there yet, or mid-migration

    def rate(self, zones: int) -> float:
        """Readings per second from the first poll that saw some to the last that saw more."""
        span = self.last - (self.first or self.last)
        return (self.count - self.first_count) * zones / span if span else 0.0

    def _poll(self) -> None:
        while not self._done.wait(0.05):
            count = self._stored()
            if count != self.count:
                now = time.time()
                if self.first is None:  # what came in before the first poll saw it is not timed
                    self.first, self.first_count = now, count
                else:
                    self.stall = max(self.stall, now - self.last)
                self.count, self.last = count, now

    def wait(self, expected: int) -> None:
        _wait_for(lambda: self.count, expected)
        self.close()

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)


class AlertWatch:
    """A command identity's subscription to depot-climate alerts: when each arrived."""

    def __init__(self, broker: Endpoint, plan: DepotPlan) -> None:
        self.raised: list[tuple[float, str]] = []  # (arrival, node)
        self.cleared = 0
        topic = topics.alert(Site(plan.site, plan.prefix), AlertKind.DEPOT_CLIMATE)
        subscribed = threading.Event()
        self.client = new_client("bench-alerts", broker)
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=60)
        self.client.loop_start()
        if not subscribed.wait(30):
            raise RuntimeError("the alert watch could not subscribe")

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        arrived = time.time()
        alert = Alert.model_validate_json(message.payload)
        if alert.state == "raised" and alert.node and PROBE_ZONE in alert.message:
            self.raised.append((arrived, alert.node))
        elif alert.state == "cleared":
            self.cleared += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait_for(count: Any, expected: int) -> None:
    last, since = -1, time.monotonic()
    while (now := count()) < expected and time.monotonic() - since < IDLE_S:
        if now != last:
            last, since = now, time.monotonic()
        time.sleep(0.1)


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (share 0.99: p99); None of nothing."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(0, math.ceil(share * len(ranked)) - 1)]


def _ms(value: float | None) -> Any:
    return "-" if value is None else round(value * 1000, 1)


def latencies(sent: list[list[Any]], arrivals: list[tuple[float, str]]) -> list[float]:
    """Each arrival minus the send of the newest batch of its node sent before it."""
    by_node: dict[str, list[float]] = {}
    for node, _seq, at in sent:
        by_node.setdefault(node, []).append(at)
    found = []
    for arrived, node in arrivals:
        before = [at for at in by_node.get(node, []) if at <= arrived]
        if before:
            found.append(arrived - max(before))
    return found


# --- the runs --------------------------------------------------------------------


def start_gateway(plan: DepotPlan, site: BenchSite, workdir: Path) -> GatewayProcess:
    """`gatepost gateway run` with the plan's depots, zones and classes."""
    return GatewayProcess(site, workdir, [], plan.site_config(), plan.gateway_config())


def measure_paced(plan: DepotPlan, work: Path, transport: str) -> list[dict[str, Any]]:
    """The paced stream with every observer; one row each for mosquitto_sub and the gateway."""
    site = BenchSite(work / "paced", transport, plan.site, plan.prefix)
    publisher = site.endpoint(IdentityRole.SIMULATOR, "depots")
    # Readings are the gateway's to read: the ceiling is a gateway identity of its own.
    ceiling = site.endpoint(IdentityRole.GATEWAY, "bench-sub")
    command = site.endpoint(IdentityRole.COMMAND, "bench-alerts")
    batches = plan.nodes * plan.batches_per_node
    with site:
        gateway = start_gateway(plan, site, work / "paced-gateway")
        sub = ReadingSub(ceiling, plan, work / "paced-sub.txt", persistent=False)
        alerts = AlertWatch(command, plan)
        store = StoreWatch(gateway.db)
        try:
            report = publish(plan, publisher, "paced", start_at=time.time() + 5)
            sub.wait(batches)
            store.wait(batches)
            # A raise is a write of its own: it may wait behind the store's other writers.
            _wait_for(lambda: len(alerts.raised), len(report["probes"]))
        finally:
            sub.close()
            store.close()
            alerts.close()
            gateway.stop()
    seen = sub.lines()
    by_node: dict[str, int] = {}
    arrivals = []  # mosquitto_sub: each line is its node's next seq (QoS 1, in order)
    for stamp, node in seen:
        by_node[node] = by_node.get(node, 0) + 1
        arrivals.append((stamp, node, by_node[node]))
    sent_at = {(node, seq): at for node, seq, at in report["sent"]}
    delivery = [stamp - sent_at[(node, seq)] for stamp, node, seq in arrivals
                if (node, seq) in sent_at]  # fmt: skip
    probe_delivery = [stamp - sent_at[(node, seq)] for stamp, node, seq in arrivals
                      if [node, seq, sent_at.get((node, seq))] in report["probes"]]  # fmt: skip
    alarm = latencies(report["probes"], alerts.raised)
    first_sent, last_sent = report["sent"][0][2], report["sent"][-1][2]
    offered = len(report["sent"]) * plan.zones / (last_sent - first_sent)
    span = (max(s for s, _ in seen) - min(s for s, _ in seen)) if seen else 0.0
    return [
        _paced_row("publisher (PUBACKed)", report["acked"], plan, rate=offered,
                   p50=None, p99=None, note=f"{len(report['probes'])} probes"),
        _paced_row("mosquitto_sub", len(seen), plan,
                   rate=(len(seen) - 1) * plan.zones / span if span else 0,
                   p50=percentile(delivery, 0.5), p99=percentile(delivery, 0.99),
                   note=f"probe batches p99 {_ms(percentile(probe_delivery, 0.99))} ms"),
        _paced_row("gateway: stored + evaluated", store.count, plan,
                   rate=store.rate(plan.zones),
                   p50=percentile(alarm, 0.5), p99=percentile(alarm, 0.99),
                   note=f"alarm: {len(alarm)} of {len(report['probes'])} probes raised, max "
                   f"{_ms(max(alarm, default=None))} ms; last stored "
                   f"{store.last - report['ended']:+.1f} s after the publisher's end; "
                   f"longest gap between commits {store.stall:.1f} s"),
    ]  # fmt: skip


def _paced_row(
    receiver: str, batches: int, plan: DepotPlan, *, rate: float, p50: float | None,
    p99: float | None, note: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        "phase": "paced", "receiver": receiver, "batches": batches,
        "readings": batches * plan.zones, "readings/s": round(rate),
        "p50 ms": _ms(p50), "p99 ms": _ms(p99), "note": note,
    }  # fmt: skip


def measure_drained(plan: DepotPlan, work: Path, transport: str) -> list[dict[str, Any]]:
    """A flood queued in the gateway's and mosquitto_sub's sessions, each then timed draining."""
    site = BenchSite(work / "drained", transport, plan.site, plan.prefix)
    publisher = site.endpoint(IdentityRole.SIMULATOR, "depots")
    ceiling = site.endpoint(IdentityRole.GATEWAY, "bench-sub")
    batches = plan.nodes * plan.drain_batches
    rows = []
    with site:
        start_gateway(plan, site, work / "drained-gateway").stop()
        sub = ReadingSub(ceiling, plan, work / "drained-sub.txt", persistent=True)
        time.sleep(1)  # its SUBACK
        sub.close()
        (work / "drained-sub.txt").write_bytes(b"")
        report = publish(plan, publisher, "flood")
        flood_s = report["ended"] - report["began"]
        # Watched from before the start: it stores while its HTTP side still comes up.
        store = StoreWatch(work / "drained-gateway" / "gateway.db")
        gateway = start_gateway(plan, site, work / "drained-gateway")
        try:
            store.wait(batches)
        finally:
            store.close()
            gateway.stop()
        sub = ReadingSub(ceiling, plan, work / "drained-sub.txt", persistent=True)
        try:
            sub.wait(batches)
        finally:
            sub.close()
    seen = sub.lines()
    span = (max(s for s, _ in seen) - min(s for s, _ in seen)) if seen else 0.0
    stored_span = store.last - (store.first or store.last)
    for receiver, count, rate, seconds in (
        ("publisher (flood, PUBACKed)", report["acked"],
         report["acked"] * plan.zones / flood_s, flood_s),
        ("mosquitto_sub, draining its queue", len(seen),
         (len(seen) - 1) * plan.zones / span if span else 0.0, span),
        ("gateway, draining its queue", store.count, store.rate(plan.zones), stored_span),
    ):  # fmt: skip
        ours = receiver.startswith("gateway")
        stall = f"; longest gap between commits {store.stall:.1f} s" if ours else ""
        rows.append({
            "phase": "drained", "receiver": receiver, "batches": count,
            "readings": count * plan.zones, "readings/s": round(rate), "p50 ms": "-",
            "p99 ms": "-", "note": f"first→last {seconds:.1f} s{stall}",
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    defaults = DepotPlan()
    parser.add_argument("--nodes", type=int, default=defaults.nodes, help="depot nodes")
    parser.add_argument("--zones", type=int, default=defaults.zones, help="zones per node")
    parser.add_argument("--interval", type=float, default=defaults.interval_s,
                        help="seconds between a node's batches")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=defaults.seconds,
                        help="how long the paced stream runs")  # fmt: skip
    parser.add_argument("--probe-every", type=float, default=defaults.probe_every_s,
                        help="seconds between two alarm probes")  # fmt: skip
    parser.add_argument("--drain-batches", type=int, default=defaults.drain_batches,
                        help="batches per node in the drained phase")  # fmt: skip
    parser.add_argument(
        "--batch-max",
        type=int,
        default=None,
        help="the gateway's ingest.batch_max (default: its own, 2000 messages)",
    )
    transport_arg(parser, default="tls+cert")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = parser.parse_args()
    plan = DepotPlan(nodes=args.nodes, zones=args.zones, interval_s=args.interval,
                     seconds=args.seconds, probe_every_s=args.probe_every,
                     drain_batches=args.drain_batches, batch_max=args.batch_max)  # fmt: skip
    print(f"{plan.nodes} depot nodes x {plan.zones} zones every {plan.interval_s:g} s: "
          f"{plan.rate:,.0f} readings/s offered for {plan.seconds:g} s", flush=True)  # fmt: skip
    rows: list[dict[str, Any]] = []
    for transport in transports(args):
        work = Path(tempfile.mkdtemp(prefix=f"gatepost-depot-{transport}-"))
        try:
            rows += [{"transport": transport} | row for row in measure_paced(plan, work, transport)]
            rows += [{"transport": transport} | row
                     for row in measure_drained(plan, work, transport)]  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
    record(
        "depot_ingest", rows, plan=asdict(plan), offered_readings_s=plan.rate, note=args.note,
        target="10,000 readings/s (100,000 sensors every 10 s) on one gateway, "
        "alarm latency p99 < 1 s",
    )  # fmt: skip


if __name__ == "__main__":
    main()
