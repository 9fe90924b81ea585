"""A node's MQTT side: presence, heartbeats, the outbox drain and the signed documents coming down.

Each connection gets a fresh paho client. paho keeps unacknowledged messages in
memory and resends them on its own reconnects; here the outbox is the only record of
what is unsent, so a lost connection is dropped whole and the next one republishes
every row still in the outbox, oldest first. A row is deleted only when the broker's
PUBACK for it arrives on the connection that sent it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from edge.contract import topics
from edge.contract.catalogue import Message, decode, encode
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import Node
from edge.errors import ContractError
from edge.mqtt import BrokerUrl, new_client, publish
from edge.outbox import Outbox

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
IDLE_WAIT_S = 0.5


@dataclass(frozen=True)
class UplinkSettings:
    """How the node talks to its broker (the `broker` section of a node's config)."""

    broker: BrokerUrl
    keepalive_s: int = 10
    heartbeat_s: int = 10
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    # Unacknowledged messages per connection. paho's own queue drops new messages at
    # 65,535 and slows as it grows; the outbox holds the rest.
    window: int = 1000


@dataclass
class _Connection:
    """One session with the broker, and the outbox rows it has in flight."""

    client: paho.Client
    session: int
    connected: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: dict[int, int] = field(default_factory=dict)  # mid -> seq
    early: set[int] = field(default_factory=set)  # PUBACKs that beat the mid's bookkeeping
    acked: list[int] = field(default_factory=list)
    sent_up_to: int = 0

    def sent(self, mid: int, seq: int) -> None:
        with self.lock:
            if mid in self.early:
                self.early.discard(mid)
                self.acked.append(seq)
            else:
                self.in_flight[mid] = seq
            self.sent_up_to = seq

    def acknowledged(self, mid: int) -> None:
        with self.lock:
            seq = self.in_flight.pop(mid, None)
            if seq is None:
                self.early.add(mid)
            else:
                self.acked.append(seq)

    def take_acked(self) -> list[int]:
        with self.lock:
            acked, self.acked = self.acked, []
            return acked

    @property
    def pending(self) -> int:
        with self.lock:
            return len(self.in_flight)


class Uplink:
    """Keeps a node connected and its outbox drained.

    Args:
        settings: broker and timings.
        node: whose presence this is.
        outbox: the node's outbox; drained in seq order.
        birth: builds the birth for a session number (devices, config hash, trust age).
        health: builds a heartbeat for a session number.
        downlink: topics to subscribe to (signed config, trust list, revocations).
        on_document: called with each valid message on a downlink topic.
    """

    def __init__(
        self, settings: UplinkSettings, node: Node, outbox: Outbox, *,
        birth: Callable[[int], Birth], health: Callable[[int], Health],
        downlink: Sequence[str] = (), on_document: Callable[[Message], None] | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.node = node
        self.outbox = outbox
        self._birth = birth
        self._health = health
        self._downlink = tuple(downlink)
        self._on_document = on_document
        self._wake = threading.Event()
        self._current: _Connection | None = None
        self.session = int(outbox.get_meta("session", 0))

    @property
    def connected(self) -> bool:
        current = self._current
        return bool(current and current.connected.is_set() and not current.lost.is_set())

    def wake(self) -> None:
        """New rows are in the outbox: send them now rather than at the next tick."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Connect, drain and heartbeat until `stop`; reconnect with backoff after a loss."""
        delay = self.settings.reconnect_min_s
        while not stop.is_set():
            connection = self._connect()
            if connection is not None:
                delay = self.settings.reconnect_min_s
                try:
                    self._serve(connection, stop)
                finally:
                    self._close(connection, clean=stop.is_set())
            if stop.is_set():
                break
            # Jitter, so a fleet does not come back in step after a broker restart.
            stop.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _connect(self) -> _Connection | None:
        self.session += 1
        self.outbox.set_meta("session", self.session)
        node = self.node
        client = new_client(f"{node.site.name}-{node.role}-{node.name}", self.settings.broker)
        connection = _Connection(client, self.session)
        # The will is fixed at connect time: it names this session.
        will = Death(session=self.session, node_time=_now(), reason="lost")
        client.will_set(topics.status(node), encode(will), qos=1, retain=True)
        client.on_connect = lambda *a: self._on_connect(connection, *a)
        client.on_disconnect = lambda *_: self._lost(connection)
        client.on_publish = lambda _c, _u, mid, *_: self._acknowledged(connection, mid)
        client.on_message = self._on_message
        try:
            client.connect(
                self.settings.broker.host, self.settings.broker.port, self.settings.keepalive_s
            )
        except OSError as exc:
            log.warning("broker %s unreachable: %s", self.settings.broker, exc)
            return None
        client.loop_start()
        if not connection.connected.wait(CONNECT_TIMEOUT_S) or connection.lost.is_set():
            log.warning("broker %s did not accept the connection", self.settings.broker)
            self._close(connection, clean=False)
            return None
        return connection

    def _on_connect(
        self, connection: _Connection, client: paho.Client, _u: Any, _f: Any,
        reason: ReasonCode, _p: Any,
    ) -> None:  # fmt: skip
        if reason.is_failure or connection.connected.is_set():
            # A refusal, or paho reconnecting a session we have already given up on.
            connection.lost.set()
            return
        for topic in self._downlink:
            client.subscribe(topic, qos=1)
        connection.connected.set()

    def _serve(self, connection: _Connection, stop: threading.Event) -> None:
        self._current = connection
        publish(connection.client, topics.status(self.node), self._birth(connection.session))
        log.info(
            "%s online at %s (session %d)", self.node, self.settings.broker, connection.session
        )
        next_health = 0.0
        clock = time.monotonic
        while not (stop.is_set() or connection.lost.is_set()):
            self.outbox.acknowledge(connection.take_acked())
            self._top_up(connection)
            if clock() >= next_health:
                publish(
                    connection.client, topics.health(self.node), self._health(connection.session)
                )
                next_health = clock() + self.settings.heartbeat_s
            # New rows and PUBACKs wake the loop; the timeout only paces the heartbeat.
            self._wake.wait(IDLE_WAIT_S)
            self._wake.clear()
        self.outbox.acknowledge(connection.take_acked())

    def _lost(self, connection: _Connection) -> None:
        connection.lost.set()
        self._wake.set()

    def _acknowledged(self, connection: _Connection, mid: int) -> None:
        connection.acknowledged(mid)
        self._wake.set()

    def _top_up(self, connection: _Connection) -> None:
        room = self.settings.window - connection.pending
        if room <= 0:
            return
        for row in self.outbox.after(connection.sent_up_to, room):
            info = connection.client.publish(row.topic, row.payload, qos=1)
            connection.sent(info.mid, row.seq)

    def _close(self, connection: _Connection, *, clean: bool) -> None:
        client = connection.client
        if clean and self.connected:
            death = Death(session=connection.session, node_time=_now(), reason="shutdown")
            publish(client, topics.status(self.node), death).wait_for_publish(timeout=5)
            # Last PUBACKs for events that were in flight.
            self.outbox.acknowledge(connection.take_acked())
        connection.lost.set()
        self._current = None
        client.disconnect()
        client.loop_stop()

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        try:
            decoded = decode(message.topic, message.payload, prefix=self.node.site.prefix)
        except ContractError as exc:
            log.warning("ignored %s: %s", message.topic, exc)
            return
        if self._on_document:
            self._on_document(decoded)


def _now() -> datetime:
    return datetime.now(UTC)
