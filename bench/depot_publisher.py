"""The depot ingest bench's nodes: every node's chained DepotReadingBatches on one MQTT
connection, paced or flooded, in a process of its own (so the observers' clocks are not
its GIL's). bench/depot_ingest.py runs it and reads the one JSON line it prints.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.cli import broker_arg
from edge.contract import catalogue, topics
from edge.contract.base import chain_hash, new_event_id
from edge.contract.events import READINGS_MAX, DepotReading, DepotReadingBatch
from edge.contract.presence import Birth, Health
from edge.contract.topics import DEFAULT_PREFIX, Role, Site
from edge.mqtt import Endpoint, new_client
from simulators.processes import python_module, spawn

PROBE_ZONE = "z000"
PROBE_CLASS = "bench-cold"
PROBE_C, CLEAR_C = 13.0, 5.0  # above the class's instant 12 °C; back inside its band
WINDOW = 1000  # QoS 1 messages the publisher has unacknowledged at most
HEARTBEAT_S = 30.0  # each node's Health, as a node sends them (missing three: node-offline)


@dataclass(frozen=True)
class DepotPlan:
    """What the depot nodes send: `nodes` x `zones` readings every `interval_s`."""

    nodes: int = 1000
    zones: int = 100
    interval_s: float = 10.0
    seconds: float = 60.0
    probe_every_s: float = 1.0
    drain_batches: int = 3
    batch_max: int | None = None  # the gateway's ingest.batch_max; None: its default
    site: str = "bench"
    prefix: str = DEFAULT_PREFIX
    seed: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.nodes <= 10_000 and 1 <= self.zones <= READINGS_MAX):
            raise ValueError(f"1 to 10,000 nodes of 1 to {READINGS_MAX} zones")
        if min(self.interval_s, self.seconds, self.probe_every_s) <= 0 or self.drain_batches < 1:
            raise ValueError("interval, seconds and probe interval > 0; drain batches >= 1")

    @property
    def node_names(self) -> list[str]:
        return [f"d{i:05d}" for i in range(1, self.nodes + 1)]

    @property
    def zone_names(self) -> list[str]:
        return [f"z{i:03d}" for i in range(self.zones)]

    @property
    def batches_per_node(self) -> int:
        return max(1, math.ceil(self.seconds / self.interval_s))

    @property
    def rate(self) -> float:
        """Readings per second the paced stream offers."""
        return self.nodes * self.zones / self.interval_s

    def zone_class(self, zone: str) -> str:
        """The probe zone is kept at the bench's class; the others alternate cold and room."""
        if zone == PROBE_ZONE:
            return PROBE_CLASS
        return "cold" if int(zone[1:]) % 2 else "room"

    def gateway_config(self) -> dict[str, Any]:
        """What the gateway's config sets beside its site."""
        return {} if self.batch_max is None else {"ingest": {"batch_max": self.batch_max}}

    def site_config(self) -> dict[str, Any]:
        """The site's depots, zones and classes in the gateway's config."""
        classes = {zone: self.zone_class(zone) for zone in self.zone_names}
        return {
            "depots": self.node_names,
            "zones": dict.fromkeys(self.node_names, classes),
            "storage_classes": {PROBE_CLASS: {
                "description": "a cold store with an instant alarm at 12 °C",
                "conditions": [
                    {"name": "heat", "direction": "above", "threshold": 8.0, "delay_min": 600},
                    {"name": "hot", "direction": "above", "threshold": 12.0, "type": "instant"},
                    {"name": "freeze", "direction": "below", "threshold": -0.5, "delay_min": 60},
                ],
            }},
            "depot_stale_after_min": 0,
        }  # fmt: skip


class DepotPublisher:
    """Every node's batches on one MQTT connection, each node's outbox chain kept."""

    def __init__(self, plan: DepotPlan, broker: Endpoint) -> None:
        self.plan = plan
        self.site = Site(plan.site, plan.prefix)
        self.rng = random.Random(plan.seed)
        self.seq = dict.fromkeys(plan.node_names, 0)
        self.head: dict[str, str | None] = dict.fromkeys(plan.node_names)
        self.inflight = threading.BoundedSemaphore(WINDOW)
        self.acked = 0
        self.presence = 0  # births and healths sent, beside the batches
        connected = threading.Event()
        self.client = new_client("bench-depots", broker)
        self.client.max_inflight_messages_set(WINDOW)
        self.client.on_connect = lambda *_: connected.set()
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port, keepalive=60)
        self.client.loop_start()
        if not connected.wait(30):
            raise RuntimeError("the publisher could not connect")

    def _on_publish(self, *_: Any) -> None:
        self.acked += 1
        self.inflight.release()

    def births(self) -> None:
        for name in self.plan.node_names:
            birth = Birth(
                session=1, node_time=datetime.now(UTC), role=Role.DEPOT, version="bench",
                config_hash="0" * 16, heartbeat_s=int(HEARTBEAT_S), confirmed_seq=0,
                outbox_id=hashlib.sha256(name.encode()).hexdigest()[:32],
            )  # fmt: skip
            self._send(topics.status(self.site.node(Role.DEPOT, name)), catalogue.encode(birth))
            self.presence += 1

    def health(self, name: str) -> None:
        health = Health(
            node_time=datetime.now(UTC), session=1, uptime_s=0.0, last_seq=self.seq[name],
            outbox_depth=0, outbox_capacity=100_000,
        )  # fmt: skip
        self._send(topics.health(self.site.node(Role.DEPOT, name)), catalogue.encode(health))
        self.presence += 1

    def batch(self, name: str, probe: bool = False) -> float:
        """Send `name`'s next batch (its probe zone hot if `probe`); returns when it was sent."""
        now = datetime.now(UTC)
        readings = tuple(
            DepotReading(sensor=zone, bus_address=i + 1, at=now, status="ok",
                         temperature_c=self._value(zone, probe), humidity_pct=55.0)
            for i, zone in enumerate(self.plan.zone_names)
        )  # fmt: skip
        self.seq[name] += 1
        payload = catalogue.encode(DepotReadingBatch(
            event_id=new_event_id(now), seq=self.seq[name], node_time=now,
            prev_hash=self.head[name], readings=readings,
        ))  # fmt: skip
        self.head[name] = chain_hash(payload)
        sent = time.time()
        self._send(topics.reading(self.site.node(Role.DEPOT, name)), payload)
        return sent

    def _value(self, zone: str, probe: bool) -> float:
        if zone == PROBE_ZONE:
            return PROBE_C if probe else CLEAR_C
        centre = 5.0 if self.plan.zone_class(zone) == "cold" else 21.0
        return round(centre + self.rng.uniform(-0.5, 0.5), 1)

    def _send(self, topic: str, payload: bytes) -> None:
        self.inflight.acquire()
        self.client.publish(topic, payload, qos=1, retain=topic.endswith("/status"))

    def finish(self, timeout_s: float = 120.0) -> int:
        """Wait for every PUBACK (or `timeout_s`); returns how many came."""
        for _ in range(WINDOW):
            self.inflight.acquire(timeout=timeout_s)
        self.client.disconnect()
        self.client.loop_stop()
        return self.acked


def run_paced(plan: DepotPlan, publisher: DepotPublisher, start_at: float) -> dict[str, Any]:
    """Each node's batch on its slot, `interval_s` apart; a probe once per probe interval."""
    sent: list[tuple[str, int, float]] = []
    probes: list[tuple[str, int, float]] = []
    probed_last: set[str] = set()  # nodes whose previous batch was a probe (not cleared yet)
    next_probe = start_at + plan.probe_every_s
    names = plan.node_names
    heartbeat_every = max(1, round(HEARTBEAT_S / plan.interval_s))  # in batches
    for k in range(plan.batches_per_node):
        for i, name in enumerate(names):
            due = start_at + (k + i / len(names)) * plan.interval_s
            if (wait := due - time.time()) > 0:
                time.sleep(wait)
            if k % heartbeat_every == 0:
                publisher.health(name)
            probe = due >= next_probe and name not in probed_last
            at = publisher.batch(name, probe)
            sent.append((name, publisher.seq[name], at))
            if probe:
                probes.append(sent[-1])
                probed_last.add(name)
                next_probe += plan.probe_every_s
            else:
                probed_last.discard(name)
    return {"sent": sent, "probes": probes}


def worker(argv: list[str]) -> None:
    """`python -m bench.depot_publisher MODE PLAN BROKER START`: prints one JSON line."""
    mode, plan_json, broker_json, start = argv
    plan = DepotPlan(**json.loads(plan_json))
    given = json.loads(broker_json)
    files = {name: Path(given[name]) if given[name] else None for name in ("ca", "cert", "key")}
    broker = Endpoint(
        broker_arg(given["url"]), ca=files["ca"], cert=files["cert"], key=files["key"]
    )
    publisher = DepotPublisher(plan, broker)
    publisher.births()
    if mode == "paced":
        report = run_paced(plan, publisher, float(start))
    else:
        began = time.time()
        for _ in range(plan.drain_batches):
            for name in plan.node_names:
                publisher.batch(name)
        report = {"sent": [], "probes": [], "began": began}
    report["acked"] = publisher.finish() - publisher.presence  # batches
    report["ended"] = time.time()
    print(json.dumps(report), flush=True)


def publish(plan: DepotPlan, broker: Endpoint, mode: str, start_at: float = 0.0) -> dict[str, Any]:
    """Run the publisher process to its end; its report."""
    process = spawn(
        python_module("bench.depot_publisher", mode, json.dumps(asdict(plan)),
                      json.dumps({"url": str(broker.url), "ca": str(broker.ca or ""),
                                  "cert": str(broker.cert or ""), "key": str(broker.key or "")}),
                      str(start_at)),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = process.communicate(timeout=plan.seconds + 600)
    if process.returncode:
        raise RuntimeError(f"the publisher failed ({process.returncode})")
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


if __name__ == "__main__":
    worker(sys.argv[1:])
