"""A node's MQTT side: presence, heartbeats, the outbox drain and the signed documents coming down.

Each connection gets a fresh paho client. paho keeps unacknowledged messages in
memory and resends them on its own reconnects; here the outbox is the only record of
what is unsent, so a lost connection is dropped whole and the next one sends every row
still in the outbox again, oldest first.

A broker's PUBACK is not the gateway's storage (a broker restarted without its shared
subscriptions drops what it acknowledged), so a row leaves the outbox only when the
gateway's retained receipt says it stored it. The gateway asks, in a receipt, for what
it finds missing; the node then sends every unconfirmed row again. At most
`unconfirmed_window` rows are out past the last receipt, so a gateway that is away
costs a bounded number of duplicates, never an unbounded queue.
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
from edge.contract.base import Payload
from edge.contract.catalogue import Message, decode, encode
from edge.contract.presence import Birth, Death, Health
from edge.contract.receipt import Receipt
from edge.contract.topics import Node
from edge.errors import ContractError
from edge.mqtt import Endpoint, new_client, publish
from edge.outbox import Outbox

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
IDLE_WAIT_S = 0.5


@dataclass(frozen=True)
class UplinkSettings:
    """How the node talks to its broker (the `broker` section of a node's config)."""

    broker: Endpoint
    keepalive_s: int = 10
    heartbeat_s: int = 10
    reconnect_min_s: float = 1.0
    # A broker back from a restart is found within this; events it dropped meanwhile are
    # sent again when the gateway asks, so a short wait matters more than a gentle one.
    reconnect_max_s: float = 5.0
    # Unacknowledged messages per connection. paho's own queue drops new messages at
    # 65,535 and slows as it grows; the outbox holds the rest.
    window: int = 1000
    # Rows sent past the gateway's last receipt: what one resend can cost.
    unconfirmed_window: int = 10_000


@dataclass
class _Connection:
    """One session with the broker, and the outbox rows it has in flight."""

    client: paho.Client
    session: int
    connected: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: set[int] = field(default_factory=set)  # mids the broker has not acknowledged
    early: set[int] = field(default_factory=set)  # PUBACKs that beat the mid's bookkeeping
    sent_up_to: int = 0

    def sent(self, mid: int, seq: int) -> None:
        with self.lock:
            if mid in self.early:
                self.early.discard(mid)
            else:
                self.in_flight.add(mid)
            self.sent_up_to = seq

    def acknowledged(self, mid: int) -> None:
        with self.lock:
            if mid in self.in_flight:
                self.in_flight.discard(mid)
            else:
                self.early.add(mid)

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
        on_refused: called with the topic and the error of a message on a downlink topic
            that the contract refuses (malformed, or past a bound).
    """

    def __init__(
        self, settings: UplinkSettings, node: Node, outbox: Outbox, *,
        birth: Callable[[int], Birth], health: Callable[[int], Health],
        downlink: Sequence[str] = (), on_document: Callable[[Message], None] | None = None,
        on_refused: Callable[[str, ContractError], None] | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.node = node
        self.outbox = outbox
        self._birth = birth
        self._health = health
        self._downlink = tuple(downlink)
        self._on_document = on_document
        self._on_refused = on_refused
        self._wake = threading.Event()
        # A document just handled: the next heartbeat goes now, carrying what became of it.
        self._report_now = threading.Event()
        self._current: _Connection | None = None
        self.session = int(outbox.get_meta("session", 0))
        self._receipt_topic = topics.receipt(node.site, node.name)
        self._receipt_lock = threading.Lock()
        self._receipt: Receipt | None = None  # the newest one, not yet applied

    @property
    def connected(self) -> bool:
        current = self._current
        return bool(current and current.connected.is_set() and not current.lost.is_set())

    def publish_now(self, topic: str, payload: Payload) -> bool:
        """Publish one message (the catalogue's QoS and retain) if connected; False if not.

        For the few retained reports outside the outbox (edge/updater's update result):
        one that is not acknowledged is sent again by the caller on its next try.
        """
        current = self._current
        if not self.connected or current is None:
            return False
        info = publish(current.client, topic, payload)
        try:
            info.wait_for_publish(timeout=5)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

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
        for topic in (self._receipt_topic, *self._downlink):
            client.subscribe(topic, qos=1)
        connection.connected.set()

    def _serve(self, connection: _Connection, stop: threading.Event) -> None:
        self._current = connection
        birth = self._birth(connection.session).model_copy(
            update={"outbox_id": self.outbox.outbox_id, "confirmed_seq": self.outbox.confirmed}
        )
        publish(connection.client, topics.status(self.node), birth)
        log.info(
            "%s online at %s (session %d)", self.node, self.settings.broker, connection.session
        )
        next_health = 0.0
        clock = time.monotonic
        while not (stop.is_set() or connection.lost.is_set()):
            self._apply_receipt(connection)
            self._top_up(connection)
            if clock() >= next_health or self._report_now.is_set():
                self._report_now.clear()
                publish(
                    connection.client, topics.health(self.node), self._health(connection.session)
                )
                next_health = clock() + self.settings.heartbeat_s
            # New rows and PUBACKs wake the loop; the timeout only paces the heartbeat.
            self._wake.wait(IDLE_WAIT_S)
            self._wake.clear()

    def _lost(self, connection: _Connection) -> None:
        connection.lost.set()
        self._wake.set()

    def _acknowledged(self, connection: _Connection, mid: int) -> None:
        connection.acknowledged(mid)
        self._wake.set()

    def _top_up(self, connection: _Connection) -> None:
        start = max(connection.sent_up_to, self.outbox.confirmed)
        unconfirmed_room = self.outbox.confirmed + self.settings.unconfirmed_window - start
        room = min(self.settings.window - connection.pending, unconfirmed_room)
        if room <= 0:
            return
        for row in self.outbox.after(start, room):
            info = connection.client.publish(row.topic, row.payload, qos=1)
            connection.sent(info.mid, row.seq)

    def _apply_receipt(self, connection: _Connection) -> None:
        """Delete what the gateway stored; send everything else again if it asks."""
        with self._receipt_lock:
            receipt, self._receipt = self._receipt, None
        if receipt is None:
            return
        if receipt.outbox_id != self.outbox.outbox_id:
            # The receipt of an outbox this node had before its state was wiped, until
            # the gateway sees the new one in our birth.
            log.info("receipt for outbox %s is not for ours; ignored", receipt.outbox_id)
            return
        try:
            gone = self.outbox.confirm(receipt.stored_seq)
        except ValueError as exc:
            log.warning("receipt refused: %s", exc)
            return
        if gone:
            log.debug("gateway stored up to seq %d; %d rows deleted", receipt.stored_seq, gone)
        if receipt.resend and connection.sent_up_to > self.outbox.confirmed:
            log.info(
                "gateway asks again for seq %d to %d", self.outbox.confirmed + 1,
                connection.sent_up_to,
            )  # fmt: skip
            connection.sent_up_to = self.outbox.confirmed

    def _close(self, connection: _Connection, *, clean: bool) -> None:
        client = connection.client
        if clean and self.connected:
            death = Death(session=connection.session, node_time=_now(), reason="shutdown")
            publish(client, topics.status(self.node), death).wait_for_publish(timeout=5)
        connection.lost.set()
        self._current = None
        client.disconnect()
        client.loop_stop()

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        if not message.payload and message.topic in self._downlink:
            return  # a retained document cleared: the node keeps what it holds
        try:
            decoded = decode(message.topic, message.payload, prefix=self.node.site.prefix)
        except ContractError as exc:
            log.warning("ignored %s: %s", message.topic, exc)
            if self._on_refused and message.topic in self._downlink:
                self._on_refused(message.topic, exc)
                self._report_now.set()
                self._wake.set()
            return
        if isinstance(decoded.payload, Receipt):
            self._received(decoded.payload)
        elif self._on_document:
            self._on_document(decoded)
            self._report_now.set()
            self._wake.set()

    def _received(self, receipt: Receipt) -> None:
        # Receipts may come out of order (replicas, a retained copy on subscribe): the
        # newest mark counts, and a request to send again is never lost by merging.
        with self._receipt_lock:
            held = self._receipt
            if held is not None and held.outbox_id == receipt.outbox_id:
                receipt = receipt.model_copy(update={
                    "stored_seq": max(held.stored_seq, receipt.stored_seq),
                    "resend": held.resend or receipt.resend,
                })  # fmt: skip
            self._receipt = receipt
        self._wake.set()


def _now() -> datetime:
    return datetime.now(UTC)
