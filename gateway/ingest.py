"""Ingest: node messages from the broker into the store, batched, acknowledged only once stored.

The MQTT session is persistent (clean start off, session expiry set) and PUBACKs are
sent by hand after the batch holding the message has committed. A gateway that dies
at any moment has therefore acknowledged only what it stored: the broker redelivers
the rest when it comes back, and the store drops what it already has by event_id.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.contract import catalogue, topics
from edge.contract.base import Event
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import ParsedTopic, TopicKind
from edge.errors import ContractError, GatepostError
from gateway.config import GatewayConfig
from gateway.stats import IngestStats
from gateway.store.base import Cases, IngestStore, StoreUnavailable
from gateway.store.records import (
    DeadLetter,
    InboundEvent,
    InboundPresence,
    IngestLimits,
    Written,
)
from gateway.subscriber import Delivery, MqttSubscriber, SessionSettings

log = logging.getLogger(__name__)

OnStored = Callable[[Written], None]
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 10.0


class IngestFailed(GatepostError):
    """Ingest stopped on an error it does not retry; the process should end and restart.

    Nothing unstored was acknowledged: the broker holds it for the next session.
    """


@dataclass
class Triage:
    """A batch sorted: what to store, what to refuse."""

    events: list[InboundEvent]
    presence: list[InboundPresence]
    dead: list[DeadLetter]


def triage(config: GatewayConfig, batch: Sequence[Delivery]) -> Triage:
    """Decode each message; refuse oversized ones, unknown topics, invalid payloads and
    unknown nodes.

    A refusal is a dead letter with the reason, never an exception: one bad node must
    not stop everyone else's messages.
    """
    sorted_ = Triage([], [], [])
    largest = config.ingest.payload_max_bytes
    for item in batch:
        if len(item.payload) > largest:
            # Refused before parsing: no valid node message is this large.
            reason = f"too large: {len(item.payload)} bytes (ingest.payload_max_bytes {largest})"
            sorted_.dead.append(DeadLetter(item.topic, item.payload, reason, item.received_at))
            continue
        try:
            message = catalogue.decode(item.topic, item.payload, config.broker.prefix)
        except ContractError as exc:
            sorted_.dead.append(DeadLetter(item.topic, item.payload, str(exc), item.received_at))
            continue
        except Exception as exc:  # a decoder bug must cost one message, not the ingest thread
            log.exception("could not decode a message on %s", item.topic)
            reason = f"could not be decoded: {type(exc).__name__}: {exc}"
            sorted_.dead.append(DeadLetter(item.topic, item.payload, reason, item.received_at))
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
            sorted_.events.append(
                InboundEvent(*names, payload, item.payload, item.received_at, item.topic)
            )
        elif isinstance(payload, Birth | Death | Health):
            sorted_.presence.append(
                InboundPresence(*names, payload, item.received_at, item.retain, item.topic,
                                item.payload)
            )  # fmt: skip
    return sorted_


def _not_ours(config: GatewayConfig, parsed: ParsedTopic) -> str:
    if parsed.node is None or parsed.role is None:
        return "not a node topic: the gateway subscribes to node topics only"
    if config.inventory.get((parsed.site.name, parsed.node)) is parsed.role:
        return ""
    if config.site(parsed.site.name) is None:
        return f"site {parsed.site.name!r} is not in the gateway's config"
    return f"{parsed.role} {parsed.node!r} is not in site {parsed.site.name!r}'s inventory"


class DeliveryQueue:
    """Chunks of deliveries from the reader to the writer, bounded in messages, not chunks.

    A message counts from `put` until the writer says it is `done` with it (stored or
    given back), so the bound holds what was received and not yet stored.

    A chunk is what one read gave: a few messages or thousands. Bounding the count of
    chunks would bound nothing (over TLS, before reads were merged, a chunk was one
    message and 64 chunks starved the batches). A chunk larger than the bound is let
    in alone, so no chunk waits forever.
    """

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self.size = 0
        self._chunks: collections.deque[list[Delivery]] = collections.deque()
        self._changed = threading.Condition()

    def put(self, chunk: list[Delivery], timeout_s: float) -> bool:
        """Queue `chunk`; False if there was no room for it within `timeout_s`."""
        with self._changed:
            room = self._changed.wait_for(
                lambda: self.size == 0 or self.size + len(chunk) <= self.max_messages, timeout_s
            )
            if room:
                self._chunks.append(chunk)
                self.size += len(chunk)
                self._changed.notify_all()
            return room

    def get(self, timeout_s: float) -> list[Delivery]:
        """The oldest chunk, or [] if none came within `timeout_s`; it counts until `done`."""
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._chunks), timeout_s):
                return []
            return self._chunks.popleft()

    def done(self, count: int) -> None:
        """The writer is through with `count` messages it got."""
        with self._changed:
            self.size -= count
            self._changed.notify_all()

    def empty(self) -> bool:
        """Nothing received that is not stored yet."""
        return self.size == 0


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
        on_stored: called after each commit with what it changed (alarm rules run there).
        cases: the alarms a new event opens, stored in the same transaction.
        on_subscribed: called on the reader's thread each time the subscriptions are
            (re)made, e.g. after a broker restart.
        on_fault: called once, on the failing thread, when ingest stops on an error it
            does not retry (the service ends the process so that systemd restarts it).
        clock: when each delivery was received (the gateway's clock).
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: IngestStore,
        stats: IngestStats,
        on_stored: OnStored,
        cases: Cases | None = None,
        *,
        on_subscribed: Callable[[], None] = lambda: None,
        on_fault: Callable[[BaseException], None] = lambda _error: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._cases = cases
        self._clock = clock
        self._on_subscribed = on_subscribed
        self._on_fault = on_fault
        self._fault_lock = threading.Lock()
        self.config = config
        self._store = store
        self._stats = stats
        self._on_stored = on_stored
        self._limits = IngestLimits(
            dead_letters_max=config.store.dead_letters_max,
            dead_letter_keep_bytes=config.store.dead_letter_keep_bytes,
            seq_jump_max=config.ingest.seq_jump_max,
        )
        # Chunks as the reader read them, at most queue_max messages in all.
        self._queue = DeliveryQueue(config.ingest.queue_max)
        self._accepting = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._subscriber = MqttSubscriber(
            subscriber_settings(config), self._on_deliveries, self._on_connection, clock
        )
        # One thread decodes each batch and stores it. A decoder thread beside it bought
        # little overlap (the Python lock lets one of them run at a time) and cost
        # hand-offs of that lock: each time the store lets go of it, a waiting thread
        # takes it, and the writer waits to get it back (bench/ingest_contention.py).
        self._writer = threading.Thread(target=self._guarded, name="ingest-writer",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        """Connect (in the background, retrying) and start storing."""
        self._accepting.set()
        self._writer.start()
        self._subscriber.start()

    def wait_connected(self, timeout_s: float) -> bool:
        """True once subscribed on a live connection."""
        return self._connected.wait(timeout_s)

    def caught_up(self) -> bool:
        """Subscribed, with nothing received waiting to be decoded or stored."""
        return self._connected.is_set() and self._queue.empty()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in hand, then disconnect; the session stays on the broker.

        Whatever was received and not yet stored is not acknowledged: the broker sends it
        again to the next start, so a stop is quick however long the backlog.
        """
        self._accepting.clear()
        self._stopping.set()
        if self._writer.is_alive():
            self._writer.join(timeout_s)
        self._subscriber.stop()  # its connection ending marks stats.connected false

    def _guarded(self) -> None:
        """Run the writer's loop; an error escaping it is a fault, never a silent end."""
        try:
            self._store_loop()
        except Exception as error:
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        """Stop consuming, loudly: logged with its traceback, counted, marked unhealthy.

        Nothing unstored was acknowledged; disconnecting hands it back to the broker at
        once (for a replica of the share group, or the next start).
        """
        with self._fault_lock:
            if not self._stats.healthy:
                return  # already reported
            fault = f"{type(error).__name__}: {error}"
            self._stats.failed(fault)
        log.error("ingest stopped on an error it does not retry (%s); nothing unstored was "
                  "acknowledged: restart the gateway", fault, exc_info=error)  # fmt: skip
        self._accepting.clear()
        self._stopping.set()
        self._subscriber.stop()
        try:
            self._on_fault(error)
        except Exception:
            log.exception("on_fault failed")

    # --- reader thread ----------------------------------------------------------------

    def _on_connection(self, up: bool, _resumed: bool) -> None:
        # The subscriber logs the connection (and whether the session was resumed).
        self._stats.connected = up
        if up:
            self._connected.set()
            try:
                self._on_subscribed()
            except Exception:
                log.exception("on_subscribed failed (ingest goes on)")
        else:
            self._connected.clear()

    def _on_deliveries(self, chunk: list[Delivery]) -> None:
        if not self._accepting.is_set():
            return  # not acknowledged: the broker redelivers it to the next session
        # Waits while the queue is full: the reader stops, TCP pushes back on the broker.
        # A stop meanwhile drops the chunk: it was never acknowledged.
        while self._accepting.is_set():
            if self._queue.put(chunk, timeout_s=0.2):
                return

    # --- writer thread ------------------------------------------------------------------

    def _store_loop(self) -> None:
        # What is still queued at a stop was never acknowledged: the broker sends it again
        # to the next session, so stopping does not wait to store a backlog.
        while not self._stopping.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                if not self._store_batch(batch, triage(self.config, batch)):
                    return  # stopping while the store refuses: nothing acknowledged, nothing lost
            finally:
                self._queue.done(len(batch))

    def _next_batch(self) -> list[Delivery]:
        """Up to `ingest.batch_max` deliveries: what is queued, after at most `batch_wait_ms`."""
        section = self.config.ingest
        batch = list(self._queue.get(timeout_s=0.2))
        if not batch:
            return batch
        deadline = time.monotonic() + section.batch_wait_ms / 1000
        while len(batch) < section.batch_max:
            if more := self._queue.get(timeout_s=0):
                batch += more
                continue
            left = deadline - time.monotonic()
            if left <= 0 or self._stopping.is_set():
                break
            time.sleep(min(left, 0.002))
        self._stats.queue_depth = self._queue.size
        return batch

    def _store_batch(self, batch: list[Delivery], sorted_: Triage) -> bool:
        written = self._write(sorted_)
        if written is None:
            return False
        by_connection: dict[int, list[int]] = {}
        for item in batch:
            if item.qos:
                by_connection.setdefault(item.connection, []).append(item.packet_id)
        for connection, packet_ids in by_connection.items():
            self._subscriber.ack(packet_ids, connection)
        lag = (self._clock() - batch[0].received_at).total_seconds()
        events = [q for q in written.quarantined if q.what == "event"]
        self._stats.batch_done(
            received=len(batch), stored=len(written.events),
            duplicates=len(sorted_.events) - len(written.events) - len(events),
            dead=len(sorted_.dead) + len(events), lag_s=lag,
        )  # fmt: skip
        try:
            self._on_stored(written)
        except Exception:
            log.exception("alarm rules failed on a batch (stored; ingest goes on)")
        return True

    def _write(self, sorted_: Triage, *, whole: bool = True) -> Written | None:
        """Store the batch; None if told to stop while the store cannot write.

        StoreUnavailable is retried with back-off; a new failure is logged with its
        traceback, a repeat of the one before in a line.

        Raises:
            Exception: with `whole` false, whatever the store refused the batch with.
        """
        delay, last, tries = RETRY_FIRST_S, "", 0
        while True:
            try:
                written = self._store.write(
                    sorted_.events, sorted_.presence, sorted_.dead, self._cases, self._limits
                )
            except StoreUnavailable as error:
                self._stats.retried()
                tries += 1
                problem = f"{type(error).__name__}: {error}"
                log.warning("the store is unavailable (%s); retrying the batch in %.1f s",
                            problem, delay, exc_info=problem != last)  # fmt: skip
                last = problem
                if self._stopping.wait(delay):
                    return None
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except Exception:  # something in it the store cannot take: refuse that alone
                if not whole:
                    raise
                log.exception("a batch could not be stored; storing it message by message")
                return self._write_each(sorted_)
            if tries:
                log.warning("the store is back: batch stored after %d retries", tries)
            return written

    def _write_each(self, sorted_: Triage) -> Written | None:
        """Store a batch one message at a time, dead-lettering those the store refuses."""
        written = Written([], [], [])
        for item in [*sorted_.events, *sorted_.presence, None]:
            events = [item] if isinstance(item, InboundEvent) else []
            presence = [item] if isinstance(item, InboundPresence) else []
            dead = sorted_.dead if item is None else []
            try:
                one = self._write(Triage(events, presence, dead), whole=False)
            except Exception as exc:  # only the one message to blame
                if item is None:
                    raise  # dead letters alone refused: the store is at fault, not a message
                letter = DeadLetter(item.topic, item.raw, f"could not be stored: {exc}",
                                    item.received_at)  # fmt: skip
                # A store that cannot take even the dead letter is at fault: it raises.
                one = self._write(Triage([], [], [letter]), whole=False)
            if one is None:
                return None
            written.events.extend(one.events)
            written.presence.extend(one.presence)
            written.alarms.extend(one.alarms)
            written.marks.extend(one.marks)
            written.quarantined.extend(one.quarantined)
            written.chain.extend(one.chain)
        return written


def subscriber_settings(config: GatewayConfig) -> SessionSettings:
    """The ingest session: status unshared (retained births), the rest through `$share/`.

    One set of filters per configured site: the broker's ACL grants a gateway its sites,
    and a filter reaching past them would be refused.
    """
    broker = config.broker
    group = broker.share_group
    subscriptions = []
    for site in config.sites:
        kinds = topics.kind_filters(config.topic_site(site.name))
        shared = (TopicKind.HEALTH, TopicKind.EVENT, TopicKind.READING)
        subscriptions += [(kinds[TopicKind.STATUS], 1)]
        subscriptions += [(topics.shared(group, kinds[kind]), 1) for kind in shared]
    return SessionSettings(
        endpoint=broker.endpoint(), client_id=broker.client_id,
        session_expiry_s=broker.session_expiry_s, keepalive_s=broker.keepalive_s,
        subscriptions=tuple(subscriptions),
    )  # fmt: skip
