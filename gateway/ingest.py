"""Ingest: node messages from the broker into the store, batched, acknowledged only once stored.

The MQTT session is persistent (clean start off, session expiry set) and PUBACKs are
sent by hand after the batch holding the message has committed. A gateway that dies
at any moment has therefore acknowledged only what it stored: the broker redelivers
the rest when it comes back, and the store drops what it already has by event_id.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.contract import catalogue, topics
from edge.contract.base import Event
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import ParsedTopic
from edge.errors import ContractError
from edge.mqtt import new_client
from gateway.config import GatewayConfig
from gateway.stats import IngestStats
from gateway.store import Store
from gateway.store.records import DeadLetter, InboundEvent, InboundPresence

log = logging.getLogger(__name__)

OnStored = Callable[[Sequence[InboundEvent], Sequence[InboundPresence]], None]
# Paho's Receive Maximum default is 65,535; the broker's own in-flight limit applies too.
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 10.0


@dataclass(frozen=True, slots=True)
class Received:
    """One message as paho handed it over, with what is needed to acknowledge it later."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: datetime
    connection: int


@dataclass
class Triage:
    """A batch sorted: what to store, what to refuse."""

    events: list[InboundEvent]
    presence: list[InboundPresence]
    dead: list[DeadLetter]


def triage(config: GatewayConfig, batch: Sequence[Received]) -> Triage:
    """Decode each message; refuse unknown topics, invalid payloads and unknown nodes.

    A refusal is a dead letter with the reason, never an exception: one bad node must
    not stop everyone else's messages.
    """
    sorted_ = Triage([], [], [])
    for item in batch:
        try:
            message = catalogue.decode(item.topic, item.payload, config.broker.prefix)
        except ContractError as exc:
            sorted_.dead.append(DeadLetter(item.topic, item.payload, str(exc), item.received_at))
            continue
        parsed, payload = message.topic, message.payload
        if why := _not_ours(config, parsed):
            sorted_.dead.append(
                DeadLetter(item.topic, item.payload, f"unknown node: {why}", item.received_at)
            )
            continue
        assert parsed.node is not None  # _not_ours refuses every topic without one
        assert parsed.role is not None
        names = (parsed.site.name, parsed.node, parsed.role)
        if isinstance(payload, Event):
            sorted_.events.append(InboundEvent(*names, payload, item.payload, item.received_at))
        elif isinstance(payload, Birth | Death | Health):
            sorted_.presence.append(
                InboundPresence(*names, payload, item.received_at, retained=item.retain)
            )
    return sorted_


def _not_ours(config: GatewayConfig, parsed: ParsedTopic) -> str:
    if parsed.node is None or parsed.role is None:
        return "not a node topic: the gateway subscribes to node topics only"
    site = config.site(parsed.site.name)
    if site is None:
        return f"site {parsed.site.name!r} is not in the gateway's config"
    if site.role_of(parsed.node) is not parsed.role:
        return f"{parsed.role} {parsed.node!r} is not in site {site.name!r}'s inventory"
    return ""


class Ingest:
    """Subscribes to every node topic and stores what arrives, in batches.

    Node events, health and depot readings come through `$share/<group>/…`, so
    replicas in one group split them. Status is subscribed to by every replica (not
    shared): retained births and deaths are not sent to shared subscriptions, and
    each replica must know who is online.

    Args:
        config: the gateway's config (broker, inventory, batching).
        store: where batches go.
        stats: counters to keep up to date.
        on_stored: called after each commit with the events stored for the first time
            and the presence updates (alarm rules run there).
    """

    def __init__(
        self, config: GatewayConfig, store: Store, stats: IngestStats, on_stored: OnStored
    ) -> None:
        self.config = config
        self._store = store
        self._stats = stats
        self._on_stored = on_stored
        section = config.ingest
        self._queue: queue.Queue[Received] = queue.Queue(maxsize=section.queue_max)
        self._accepting = threading.Event()
        self._stopping = threading.Event()
        self._connection = 0
        self._connected = threading.Event()
        self._client = self._new_client()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)

    @property
    def client(self) -> paho.Client:
        """The MQTT client, also used to publish alerts and summaries."""
        return self._client

    def start(self) -> None:
        """Connect (in the background; paho retries) and start storing."""
        broker = self.config.broker
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = broker.session_expiry_s
        self._accepting.set()
        self._writer.start()
        self._client.connect_async(
            broker.broker.host, broker.broker.port, keepalive=broker.keepalive_s,
            clean_start=False, properties=props,
        )  # fmt: skip
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        """True once subscribed on a live connection."""
        return self._connected.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Store and acknowledge what was received, then disconnect; the session stays.

        Messages arriving after this are not acknowledged: the broker keeps them for
        the next start.
        """
        self._accepting.clear()
        self._stopping.set()
        if self._writer.is_alive():
            self._writer.join(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()
        self._stats.connected = False

    # --- MQTT side (paho's thread) ------------------------------------------------------

    def _new_client(self) -> paho.Client:
        broker = self.config.broker
        client = new_client(broker.client_id, broker.broker)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: paho.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the gateway: %s", reason)
            return
        self._connection += 1
        prefix = self.config.broker.prefix
        group = self.config.broker.share_group
        root = f"{prefix}/v1/+"
        options = SubscribeOptions(qos=1)
        client.subscribe(
            [
                (f"{root}/+/+/status", options),
                (topics.shared(group, f"{root}/+/+/health"), options),
                (topics.shared(group, f"{root}/+/+/event/+"), options),
                (topics.shared(group, f"{root}/depot/+/reading"), options),
            ]
        )
        log.info(
            "gateway ingest connected to %s (session %s)",
            self.config.broker.broker,
            "resumed" if flags.session_present else "new",
        )
        self._stats.connected = True
        self._connected.set()

    def _on_disconnect(
        self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self._connected.clear()
        self._stats.connected = False
        if not self._stopping.is_set():
            log.warning("gateway ingest lost the broker (%s); paho reconnects", reason)

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        if not self._accepting.is_set():
            return  # not acknowledged: the broker redelivers it to the next session
        # Blocks when the queue is full: paho stops reading, TCP pushes back on the broker.
        self._queue.put(
            Received(
                message.topic, bytes(message.payload), message.mid, message.qos,
                bool(message.retain), datetime.now(UTC), self._connection,
            )
        )  # fmt: skip

    # --- store side (writer thread) -----------------------------------------------------

    def _write_loop(self) -> None:
        section = self.config.ingest
        wait_s = section.batch_wait_ms / 1000
        while True:
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            batch = [first]
            deadline = time.monotonic() + wait_s
            while len(batch) < section.batch_max:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stopping.is_set():
                        break
                    time.sleep(min(left, 0.002))
            self._stats.queue_depth = self._queue.qsize()
            if not self._store_batch(batch):
                return  # stopping while the store refuses: nothing acknowledged, nothing lost

    def _store_batch(self, batch: list[Received]) -> bool:
        sorted_ = triage(self.config, batch)
        delay = RETRY_FIRST_S
        while True:
            try:
                new = self._store.write(sorted_.events, sorted_.presence, sorted_.dead)
                break
            except Exception:  # a full disk, a locked or broken file: keep the batch, retry
                log.exception("could not store %d messages; retrying in %.1f s", len(batch), delay)
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, RETRY_MAX_S)
        for item in batch:
            # An ack for a message of an earlier connection would name the wrong packet.
            if item.qos and item.connection == self._connection:
                self._client.ack(item.mid, item.qos)
        lag = (datetime.now(UTC) - batch[0].received_at).total_seconds()
        self._stats.batch_done(len(batch), len(new), len(sorted_.dead), lag)
        try:
            self._on_stored(new, sorted_.presence)
        except Exception:
            log.exception("alarm rules failed on a batch (stored; ingest goes on)")
        return True
