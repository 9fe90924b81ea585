"""A gate node's MQTT face on simulated traffic: presence, heartbeats and a cycle of gate events.

It stands in for the real gate node until that node runs on simulated devices. Every
message it sends is one the contract allows and a real gate could send; nothing else
is faked (its health reports its own process, and it has no devices or outbox).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge.contract import topics
from edge.contract.base import Event, Payload, chain_hash, new_event_id
from edge.contract.catalogue import CATALOGUE, encode
from edge.contract.events import (
    Disinfection,
    Hold,
    HoldResolved,
    Passage,
    Registration,
    Shift,
)
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import EventKind, Role, Site
from edge.lifecycle import ProcessUsage
from edge.mqtt import Endpoint, new_client, publish

log = logging.getLogger(__name__)

QUEUE_CAPACITY = 10_000

Clock = Callable[[], datetime]
# Each step of the script builds the events of one moment at the gate.
Step = Callable[["GateScript", datetime], list[Event]]


class GateScript:
    """An endless, seeded cycle of what happens at a gate, as contract events.

    `seq` runs from 1 without gaps, and `prev_hash` chains each event to the bytes of the
    one before, as a node's outbox would make them.
    """

    def __init__(self, seed: int, volunteer: str = "v017") -> None:
        self.rng = random.Random(seed)
        self.volunteer = volunteer
        self.seq = 0
        self._head: str | None = None

    def events(self, clock: Clock) -> Iterator[list[Event]]:
        for moment in self._moments(clock):
            yield [self._linked(event) for event in moment]

    def _linked(self, event: Event) -> Event:
        linked = event.model_copy(update={"prev_hash": self._head})
        self._head = chain_hash(encode(linked))
        return linked

    def _moments(self, clock: Clock) -> Iterator[list[Event]]:
        yield self._shift_start(clock())
        steps: list[Step] = [
            GateScript._green,
            GateScript._green,
            GateScript._fever,
            GateScript._green,
            GateScript._yellow_registered,
            GateScript._red,
            GateScript._green,
            GateScript._disinfection,
        ]
        while True:
            for step in steps:
                yield step(self, clock())

    def _ids(self, at: datetime) -> dict[str, Any]:
        self.seq += 1
        return {"event_id": new_event_id(at), "seq": self.seq, "node_time": at}

    def _subject(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def _temperature(self, low: float, high: float) -> float:
        return round(self.rng.uniform(low, high), 1)

    def _shift_start(self, at: datetime) -> list[Event]:
        return [Shift(**self._ids(at), action="start", volunteer_id=self.volunteer)]

    def _green(self, at: datetime) -> list[Event]:
        return [
            Passage(
                **self._ids(at), direction=self.rng.choice(["in", "out"]), outcome="allow",
                colour="green", credential="health-code",
                temperature_c=self._temperature(36.0, 37.0), subject_ref=self._subject(),
            )
        ]  # fmt: skip

    def _fever(self, at: datetime) -> list[Event]:
        temperature = self._temperature(37.8, 38.6)
        subject = self._subject()
        passage = Passage(
            **self._ids(at), direction="in", outcome="hold", colour="green",
            credential="health-code", reasons=("fever",), temperature_c=temperature,
            subject_ref=subject,
        )  # fmt: skip
        hold = Hold(
            **self._ids(at), passage_id=passage.event_id, reasons=("fever",), colour="green",
            temperature_c=temperature, subject_ref=subject,
        )  # fmt: skip
        resolved = HoldResolved(
            **self._ids(at), hold_id=hold.event_id, resolution="referred",
            volunteer_id=self.volunteer, temperature_c=self._temperature(37.6, 38.4),
        )  # fmt: skip
        return [passage, hold, resolved]

    def _yellow_registered(self, at: datetime) -> list[Event]:
        subject = self._subject()
        passage = Passage(
            **self._ids(at), direction="in", outcome="hold", colour="yellow",
            credential="health-code", reasons=("yellow-code",),
            temperature_c=self._temperature(36.2, 36.9), subject_ref=subject,
        )  # fmt: skip
        hold = Hold(
            **self._ids(at), passage_id=passage.event_id, reasons=("yellow-code",),
            colour="yellow", subject_ref=subject,
        )  # fmt: skip
        registration = Registration(
            **self._ids(at), name=self.rng.choice(["王芳", "李伟", "Zhang Min"]),
            id_hash=self._subject(), id_last4=f"{self.rng.randrange(10_000):04d}",
            origin="Xicheng", destination="Dongcun market", hold_id=hold.event_id,
            volunteer_id=self.volunteer,
        )  # fmt: skip
        resolved = HoldResolved(
            **self._ids(at), hold_id=hold.event_id, resolution="registered",
            volunteer_id=self.volunteer, registration_id=registration.event_id,
        )  # fmt: skip
        return [passage, hold, registration, resolved]

    def _red(self, at: datetime) -> list[Event]:
        return [
            Passage(
                **self._ids(at), direction="in", outcome="deny", colour="red",
                credential="health-code", reasons=("red-code",),
                temperature_c=self._temperature(36.1, 36.8), subject_ref=self._subject(),
            )
        ]  # fmt: skip

    def _disinfection(self, at: datetime) -> list[Event]:
        return [
            Disinfection(
                **self._ids(at), volunteer_id=self.volunteer, area="hut",
                agent="chlorine 500 mg/L",
            )
        ]  # fmt: skip


class SimulatedGateNode:
    """Connects with a Last Will, announces itself, then publishes heartbeats and script events.

    Args:
        broker: where to connect.
        site: the site's branch of the topic tree.
        name: the node's name (a topic segment).
        heartbeat_s: seconds between health messages.
        event_interval_s: seconds between two moments of the gate script.
        seed: seeds the script, so two runs tell the same story.
    """

    def __init__(
        self, broker: Endpoint, site: Site, name: str, *,
        heartbeat_s: int = 5, event_interval_s: float = 2.0, seed: int = 1,
    ) -> None:  # fmt: skip
        self.broker = broker
        self.node = site.node(Role.GATE, name)
        self.heartbeat_s = heartbeat_s
        self.event_interval_s = event_interval_s
        self.script = GateScript(seed)
        self.session = 0
        self.started = time.monotonic()
        settings = {"site": site.name, "node": name, "seed": seed, "heartbeat_s": heartbeat_s}
        self.config_hash = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        self.client = new_client(f"{site.name}-{name}", broker)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        # No outbox here: paho's own queue is what holds unacknowledged messages, so
        # health reports it as the outbox, bounded so it cannot grow without limit.
        self.client.max_queued_messages_set(QUEUE_CAPACITY)
        self._unacked: set[int] = set()
        self._connected = threading.Event()
        self._usage = ProcessUsage()
        self._lock = threading.Lock()

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set, then publish a clean `offline` and disconnect."""
        self._arm_will()
        self.client.connect_async(
            self.broker.host, self.broker.port, keepalive=max(5, self.heartbeat_s * 2)
        )
        self.client.loop_start()
        try:
            # Birth before anything else, as a real node's outbox would wait for it.
            while not (self._connected.wait(0.1) or stop.is_set()):
                pass
            moments = self.script.events(self.now)
            next_event = next_health = time.monotonic()
            while not stop.is_set():
                clock = time.monotonic()
                if clock >= next_event:
                    for event in next(moments):
                        self._send(topics.event(self.node, EventKind(event.kind)), event)
                    next_event = clock + self.event_interval_s
                if clock >= next_health:
                    self._send(topics.health(self.node), self._health())
                    next_health = clock + self.heartbeat_s
                stop.wait(max(0.0, min(next_event, next_health) - time.monotonic()))
        finally:
            death = Death(session=self.session, node_time=self.now(), reason="shutdown")
            info = self._send(topics.status(self.node), death)
            if self.client.is_connected():
                info.wait_for_publish(timeout=5)
            self.client.disconnect()
            self.client.loop_stop()

    def _send(self, topic: str, payload: Payload) -> paho.MQTTMessageInfo:
        info = publish(self.client, topic, payload)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            log.warning("%s: queue full, %s dropped", self.node.name, topic)
        elif info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or self._qos(topic) > 0:
            # Offline, paho keeps QoS 1 messages for the next connection; QoS 0 are gone.
            with self._lock:
                # The acknowledgement can arrive before we get here.
                self._unacked.symmetric_difference_update({info.mid})
        return info

    def _qos(self, topic: str) -> int:
        return CATALOGUE[topics.parse(topic, self.node.site.prefix).kind].qos

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, *_: Any) -> None:
        with self._lock:
            self._unacked.symmetric_difference_update({mid})

    def _arm_will(self) -> None:
        # A new session for every connect; its Last Will names it.
        self.session += 1
        death = Death(session=self.session, node_time=self.now(), reason="lost")
        self.client.will_set(topics.status(self.node), encode(death), qos=1, retain=True)

    def _on_connect(
        self, client: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            log.warning("broker %s refused %s: %s", self.broker, self.node.name, reason)
            return
        birth = Birth(
            session=self.session, node_time=self.now(), role=Role.GATE,
            version=version("gatepost"), config_hash=self.config_hash,
            heartbeat_s=self.heartbeat_s,
        )  # fmt: skip
        self._send(topics.status(self.node), birth)
        self._connected.set()
        log.info("%s online at %s (session %d)", self.node.name, self.broker, self.session)

    def _on_disconnect(
        self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        log.info("%s disconnected: %s", self.node.name, reason)
        self._arm_will()

    def _health(self) -> Health:
        uptime = time.monotonic() - self.started
        return Health(
            node_time=self.now(), session=self.session, uptime_s=round(uptime, 1),
            last_seq=self.script.seq, outbox_depth=len(self._unacked),
            outbox_capacity=QUEUE_CAPACITY,
            rss_bytes=self._usage.rss_bytes(), cpu_percent=self._usage.cpu_percent(),
        )  # fmt: skip
