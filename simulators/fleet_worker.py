"""One fleet publisher process: its nodes' stream built first, then sent with a bounded window.

`run_fleet` (simulators/fleet.py) starts several of these as `python -m simulators.fleet
--worker N …` and speaks to them in lines (see there).
"""

from __future__ import annotations

import random
import secrets
import select
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.contract import topics
from edge.contract.base import chain_hash, new_event_id
from edge.contract.catalogue import encode
from edge.contract.events import Passage
from edge.contract.presence import Birth
from edge.contract.topics import EventKind, Node, Role, Site
from edge.mqtt import Endpoint, new_client
from simulators.fleet import (
    GO,
    MQTT_RECEIVE_MAXIMUM,
    READY,
    FleetError,
    FleetPlan,
    Message,
    WorkerReport,
)

# --- building the stream ---------------------------------------------------------


def passage(rng: random.Random, seq: int, at: datetime, prev_hash: str | None = None) -> Passage:
    """One realistic passage: mostly green and allowed, some fevers, yellow and red codes."""
    ids: dict[str, Any] = {
        "event_id": new_event_id(at), "seq": seq, "node_time": at, "prev_hash": prev_hash,
    }  # fmt: skip
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
    every topic, as a busy site would. Each node's events form its hash chain, as a real
    outbox makes it, so the gateway checks every link as it would at a site.
    """
    rng = random.Random(plan.seed * 1_000 + worker)
    site = Site(plan.site, plan.prefix)
    nodes = [site.node(Role.GATE, name) for name in plan.share(worker)]
    targets = [topics.event(node, EventKind.PASSAGE) for node in nodes]
    stream: list[Message] = []
    heads: dict[str, str | None] = dict.fromkeys(targets)
    for seq in range(1, plan.events_per_node + 1):
        for topic in targets:
            payload = encode(passage(rng, seq, datetime.now(UTC), heads[topic]))
            heads[topic] = chain_hash(payload)
            stream.append((topic, payload))
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


class _Publisher:
    """One MQTT connection sending a list of messages with a bounded unacknowledged window.

    Driven by hand (`client.loop`) rather than by paho's network thread: one thread
    per process means no lock hand-offs per message; measured here, about 15,000
    messages/s against 9,000 with `loop_start()` and a semaphore for the window.
    """

    def __init__(self, broker: Endpoint, client_id: str, window: int, deadline: float) -> None:
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


def work(plan: FleetPlan, index: int, broker: Endpoint, timeout_s: float) -> WorkerReport:
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
