"""Ingest against a real Mosquitto: stored once, in seq order, gaps alarmed, bad input dead-lettered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as paho
import pytest

from edge.contract import catalogue, topics
from edge.contract.catalogue import encode
from edge.contract.command import Alert
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import AlertKind, EventKind, Role, Site
from gateway.alarm_cases import alarm_cases
from gateway.alarms import AlarmBook
from gateway.config import AlarmSection, GatewayConfig, IngestSection, SiteSection
from gateway.ingest import DeliveryQueue, Ingest, triage
from gateway.live import LiveFeed
from gateway.rules import AlarmRules
from gateway.stats import IngestStats
from gateway.store import SqlStore, StoreUnavailable, open_store
from gateway.store.records import EventQuery, InboundEvent, Written
from gateway.store.settings import StoreSection
from gateway.subscriber import Delivery
from simulators.broker import PrivateBroker
from tests.conftest import connect, gateway_broker, identity
from tests.gateway.factory import Gates

NORTH = Site("north")
G01 = NORTH.node(Role.GATE, "g01")


def wait_until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def config_for(
    broker: PrivateBroker, store_section: StoreSection, **alarms: float
) -> GatewayConfig:
    return GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01", "g02")),),
        broker=gateway_broker(broker, "gw-test", session_expiry_s=600),
        store=store_section,
        ingest=IngestSection(batch_wait_ms=5),
        alarms=AlarmSection(**alarms),
    )


class Doubled:
    """A real store of either engine with its `write` replaced by the subclass's; every
    other call goes to the real one."""

    def __init__(self, real: SqlStore) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def write(self, *args: Any, **kwargs: Any) -> Written:
        raise NotImplementedError

    def as_store(self) -> SqlStore:
        """This double where a store is taken (it answers every call a store does)."""
        return cast("SqlStore", self)


class Running:
    """An Ingest with its alarm rules, as the gateway wires them."""

    def __init__(self, config: GatewayConfig, store: SqlStore | None = None) -> None:
        self.store = store or open_store(config.store)
        self.alerts: list[Alert] = []
        self.stats = IngestStats()
        live = LiveFeed()
        self.book = AlarmBook(self.store, self.alerts.append, live)
        self.rules = AlarmRules(config, self.store, self.book, self.book._clock, self.book._clock())
        self.ingest = Ingest(config, self.store, self.stats, self._on_stored, alarm_cases)

    def _on_stored(self, written: Written) -> None:
        self.rules.on_stored(written)

    def seqs(self) -> list[int]:
        return self.store.event_seqs("north", "g01")


@contextmanager
def running(config: GatewayConfig, store: SqlStore | None = None) -> Iterator[Running]:
    gateway = Running(config, store)
    gateway.ingest.start()
    assert gateway.ingest.wait_connected(10)
    time.sleep(0.2)  # SUBACK
    try:
        yield gateway
    finally:
        gateway.ingest.stop()
        gateway.store.close()


@pytest.fixture
def node(broker: PrivateBroker) -> Iterator[paho.Client]:
    """A publisher standing in for gate g01."""
    client = connect(identity(broker, "node-g01"))
    yield client
    client.disconnect()
    client.loop_stop()


def send(client: paho.Client, item: InboundEvent, topic: str | None = None) -> None:
    kind = EventKind(item.event.kind)
    target = topic or topics.event(NORTH.node(item.role, item.node), kind)
    client.publish(target, encode(item.event), qos=1).wait_for_publish(5)


def test_ingest__a_redelivered_event_is_stored_once(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    first = gates.passage()
    with running(config_for(broker, store_section)) as gateway:
        for _ in range(3):
            send(node, first)
        send(node, gates.passage())
        wait_until(lambda: gateway.stats.received == 4)
        assert gateway.seqs() == [1, 2]
        assert gateway.stats.duplicates == 2
        assert len(gateway.store.passages(EventQuery())) == 2


def test_ingest__out_of_order_events_are_listed_in_seq_order(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    made = [gates.passage() for _ in range(5)]
    with running(config_for(broker, store_section)) as gateway:
        for index in (3, 0, 4, 2, 1):
            send(node, made[index])
        wait_until(lambda: len(gateway.seqs()) == 5)
        listed = gateway.store.passages(EventQuery(node="g01", newest_first=False))
        assert [p.seq for p in listed] == [1, 2, 3, 4, 5]
        record = gateway.store.node("north", "g01")
        assert record is not None
        assert (record.seq_contiguous, record.gap_since) == (5, None)


def test_ingest__a_seq_gap_raises_data_loss_and_filling_it_clears_the_alarm(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    made = [gates.passage() for _ in range(4)]
    with running(config_for(broker, store_section, gap_grace_s=0.3)) as gateway:
        for item in (made[0], made[3]):
            send(node, item)
        wait_until(lambda: len(gateway.seqs()) == 2)
        gateway.rules.check()
        assert not gateway.store.live_alarm(AlertKind.DATA_LOSS, "north", "g01", "")
        time.sleep(0.4)
        gateway.rules.check()
        alarm = gateway.store.live_alarm(AlertKind.DATA_LOSS, "north", "g01", "")
        assert alarm is not None
        assert "first missing 2" in alarm.message
        gateway.rules.check()  # still missing: no second alarm
        assert [a.state for a in gateway.alerts if a.kind == AlertKind.DATA_LOSS] == ["raised"]
        for item in made[1:3]:
            send(node, item)
        wait_until(lambda: len(gateway.seqs()) == 4)
        gateway.rules.check()
        assert gateway.store.alarm(alarm.alarm_id).state == "cleared"
        assert [a.state for a in gateway.alerts if a.kind == AlertKind.DATA_LOSS] == [
            "raised",
            "cleared",
        ]


def test_ingest__a_seq_past_the_configured_jump_is_quarantined_and_counted_as_refused(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    config = config_for(broker, store_section).model_copy(
        update={"ingest": IngestSection(batch_wait_ms=5, seq_jump_max=1000)}
    )
    with running(config) as gateway:
        for item in (gates.passage(seq=1), gates.passage(seq=2), gates.passage(seq=5000)):
            send(node, item)
        send(node, gates.passage(seq=3))
        wait_until(lambda: gateway.stats.received == 4)
        assert gateway.seqs() == [1, 2, 3]
        stats = gateway.stats
        assert (stats.stored, stats.duplicates, stats.dead_letters) == (3, 0, 1)
        (letter,) = gateway.store.dead_letters()
        assert letter.reason.startswith("implausible seq: 5000 is ")
        assert "(ingest.seq_jump_max 1000)" in letter.reason
        assert [a.kind for a in gateway.alerts] == [AlertKind.SEQ_JUMP]


@pytest.mark.parametrize(
    "case",
    [
        (topics.event(G01, EventKind.PASSAGE), b"{not json", "Invalid JSON"),
        (topics.event(G01, EventKind.PASSAGE), b'{"schema_version": 2}', "schema_version"),
        (topics.event(NORTH.node(Role.GATE, "g99"), EventKind.PASSAGE), None, "unknown node"),
        (topics.event(G01, EventKind.SHIFT), None, "kind"),
        ("gatepost/v1/north/gate/g01/event/teleport", b"{}", "unknown topic"),
    ],
    ids=["malformed-json", "schema-version-2", "unknown-node", "kind-not-topic", "unknown-kind"],
)  # fmt: skip
def test_ingest__bad_messages_land_in_dead_letters_and_ingest_goes_on(
    broker: PrivateBroker,
    store_section: StoreSection,
    node: paho.Client,
    gates: Gates,
    case: tuple[str, bytes | None, str],
) -> None:
    topic, payload, reason = case
    with running(config_for(broker, store_section)) as gateway:
        bad = payload if payload is not None else encode(gates.passage().event)
        node.publish(topic, bad, qos=1).wait_for_publish(5)
        send(node, gates.passage())
        wait_until(lambda: gateway.stats.received == 2)
        letters = gateway.store.dead_letters()
        assert len(letters) == 1
        assert letters[0].topic == topic
        assert reason in letters[0].reason
        assert len(gateway.store.passages(EventQuery())) == 1


def test_ingest__a_site_not_in_the_config_is_not_subscribed_to(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    # The gateway subscribes to its own sites only (a site's ACL grants it no others).
    with running(config_for(broker, store_section)) as gateway:
        south = topics.event(Site("south").node(Role.GATE, "g01"), EventKind.PASSAGE)
        node.publish(south, encode(gates.passage().event), qos=1).wait_for_publish(5)
        send(node, gates.passage())
        wait_until(lambda: gateway.stats.received >= 1)
        time.sleep(0.3)
        assert gateway.stats.received == 1
        assert gateway.store.dead_letters() == []
        assert [p.site for p in gateway.store.passages(EventQuery())] == ["north"]


def test_ingest__a_gateway_restarted_while_events_flow_loses_none(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    config = config_for(broker, store_section)
    made = [gates.passage() for _ in range(600)]
    sent = threading.Event()

    def publish_all() -> None:
        for item in made:
            node.publish(topics.event(G01, EventKind.PASSAGE), encode(item.event), qos=1)
            time.sleep(0.002)
        sent.set()

    with running(config) as gateway:
        publisher = threading.Thread(target=publish_all)
        publisher.start()
        wait_until(lambda: len(gateway.seqs()) >= 100)
    looked = open_store(config.store)  # closed after: no connection left open on PostgreSQL
    stored_before_restart = len(looked.event_seqs("north", "g01"))
    looked.close()
    assert stored_before_restart < 600, "the restart happened too late to test anything"
    with running(config) as gateway:
        publisher.join(20)
        assert sent.is_set()
        wait_until(lambda: len(gateway.seqs()) == 600, timeout_s=20)
        assert gateway.seqs() == list(range(1, 601))


def test_ingest__births_deaths_and_heartbeats_set_presence_and_offline_alarms(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client
) -> None:
    now = datetime.now(UTC)
    birth = Birth(
        session=3, node_time=now, role=Role.GATE, version="1.0", config_hash="ab" * 8,
        heartbeat_s=10, trust_list_age_s=60.0,
    )  # fmt: skip
    with running(config_for(broker, store_section)) as gateway:
        node.publish(topics.status(G01), encode(birth), qos=1, retain=True).wait_for_publish(5)
        wait_until(lambda: (r := gateway.store.node("north", "g01")) is not None and r.online)
        record = gateway.store.node("north", "g01")
        assert record is not None
        assert (record.session, record.version) == (3, "1.0")
        assert record.clock_skew_s is None, "a birth may have waited in the session: no skew"
        ahead = Health(
            node_time=datetime.now(UTC) + timedelta(seconds=40), session=3, uptime_s=1,
            last_seq=0, outbox_depth=0, outbox_capacity=100,
        )  # fmt: skip
        node.publish(topics.health(G01), encode(ahead), qos=0).wait_for_publish(5)
        wait_until(lambda: gateway.store.node("north", "g01").clock_skew_s is not None)  # type: ignore[union-attr]
        skew = gateway.store.node("north", "g01").clock_skew_s  # type: ignore[union-attr]
        assert skew == pytest.approx(40, abs=5)
        assert gateway.store.live_alarm(AlertKind.CLOCK_SKEW, "north", "g01", "")
        will = Death(session=3, node_time=now, reason="lost")
        node.publish(topics.status(G01), encode(will), qos=1, retain=True).wait_for_publish(5)
        wait_until(lambda: not gateway.store.node("north", "g01").online)  # type: ignore[union-attr]
        alarm = gateway.store.live_alarm(AlertKind.NODE_OFFLINE, "north", "g01", "")
        assert alarm is not None
        assert alarm.severity == "critical"
        stale = Death(session=2, node_time=now, reason="lost")  # an older session's will
        node.publish(topics.status(G01), encode(birth), qos=1, retain=True).wait_for_publish(5)
        node.publish(topics.status(G01), encode(stale), qos=1, retain=True).wait_for_publish(5)
        wait_until(lambda: gateway.stats.received >= 4)
        assert gateway.store.node("north", "g01").online  # type: ignore[union-attr]
        assert gateway.store.alarm(alarm.alarm_id).state == "cleared"


class FullDisk(Doubled):
    """The real store, except that its first writes find it unavailable, as a full disk or
    a lost database server leaves it."""

    failures = 3

    def write(self, *args: Any, **kwargs: Any) -> Written:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("database or disk is full")
        return self.real.write(*args, **kwargs)


def test_ingest__a_store_that_cannot_write_holds_the_batch_and_loses_nothing(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    config = config_for(broker, store_section)
    full = FullDisk(open_store(config.store))
    with running(config, full.as_store()) as gateway:
        for _ in range(5):
            send(node, gates.passage())
        wait_until(lambda: len(gateway.seqs()) == 5, timeout_s=15)
        assert gateway.seqs() == [1, 2, 3, 4, 5]
        assert full.failures == 0


class SlowDisk(Doubled):
    """The real store, whose writes wait until the test lets them through."""

    def __init__(self, real: SqlStore) -> None:
        super().__init__(real)
        self.writing, self.go = threading.Event(), threading.Event()

    def write(self, *args: Any, **kwargs: Any) -> Written:
        self.writing.set()
        assert self.go.wait(10)
        return self.real.write(*args, **kwargs)


def test_ingest__is_not_caught_up_while_a_batch_is_being_stored(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    # Receipts ask nodes again for what is missing only when ingest is caught up: a
    # batch in the writer's hands is received, not missing.
    config = config_for(broker, store_section)
    slow = SlowDisk(open_store(config.store))
    with running(config, slow.as_store()) as gateway:
        try:
            wait_until(gateway.ingest.caught_up)
            send(node, gates.passage())
            assert slow.writing.wait(10)
            assert not gateway.ingest.caught_up()
        finally:
            slow.go.set()  # else the stop waits for the held write
        wait_until(lambda: gateway.seqs() == [1])
        wait_until(gateway.ingest.caught_up)


def test_ingest__stopped_while_the_store_refuses_acknowledges_nothing_and_the_next_start_has_all(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    config = config_for(broker, store_section)
    full = FullDisk(open_store(config.store))
    full.failures = 1_000
    gateway = Running(config, full.as_store())
    gateway.ingest.start()
    assert gateway.ingest.wait_connected(10)
    time.sleep(0.2)
    for _ in range(3):
        send(node, gates.passage())
    time.sleep(1.0)
    gateway.ingest.stop()
    gateway.store.close()
    with running(config) as restarted:
        wait_until(lambda: len(restarted.seqs()) == 3)


def test_ingest__stopped_with_a_backlog_stops_at_once_and_the_next_start_stores_it_all(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    config = config_for(broker, store_section)
    with running(config):
        pass  # the session exists: the broker queues for it from here on
    made = [gates.passage() for _ in range(20_000)]
    for item in made[:-1]:
        node.publish(topics.event(G01, EventKind.PASSAGE), encode(item.event), qos=1)
    send(node, made[-1])
    gateway = Running(config)
    gateway.ingest.start()
    wait_until(lambda: gateway.stats.received > 0)
    gateway.ingest.stop(timeout_s=10)
    threads = {t.name for t in threading.enumerate()}
    assert not {"ingest-decoder", "ingest-writer", "ingest-reader"} & threads
    stored_then = len(gateway.seqs())
    gateway.store.close()
    assert stored_then < 20_000, "the backlog was gone before the stop: nothing tested"
    with running(config) as restarted:
        wait_until(lambda: len(restarted.seqs()) == 20_000, timeout_s=60)
        assert restarted.seqs() == list(range(1, 20_001))


class RefusesOne(Doubled):
    """The real store, refusing any batch that holds one particular event."""

    refused = ""

    def write(self, events: Any, *args: Any, **kwargs: Any) -> Written:
        if any(item.event.event_id == self.refused for item in events):
            raise ValueError("cannot store this one")
        return self.real.write(events, *args, **kwargs)


def test_ingest__an_event_the_store_refuses_is_dead_lettered_alone(
    broker: PrivateBroker, store_section: StoreSection, node: paho.Client, gates: Gates
) -> None:
    config = config_for(broker, store_section)
    refuses = RefusesOne(open_store(config.store))
    made = [gates.passage() for _ in range(5)]
    refuses.refused = made[2].event.event_id
    gateway = Running(config, refuses.as_store())
    gateway.ingest.start()
    try:
        assert gateway.ingest.wait_connected(10)
        time.sleep(0.2)
        for index in (0, 1, 2):
            node.publish(topics.event(G01, EventKind.PASSAGE), encode(made[index].event), qos=1)
        send(node, made[3])
        wait_until(lambda: gateway.stats.received == 4)
        send(node, made[4])
        wait_until(lambda: len(gateway.seqs()) == 4)
        assert gateway.seqs() == [1, 2, 4, 5]
        letters = gateway.store.dead_letters()
        assert [letter.reason for letter in letters] == [
            "could not be stored: cannot store this one"
        ]
        assert made[2].event.event_id in letters[0].payload
    finally:
        gateway.ingest.stop()
        gateway.store.close()


def test_triage__a_decoder_failure_costs_one_message_not_the_batch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gates: Gates
) -> None:
    config = GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01",)),),
        store=StoreSection(path=tmp_path / "gateway.db"),
    )
    good, bad = gates.passage(), gates.passage()
    real_decode = catalogue.decode

    def decode(topic: str, data: bytes, prefix: str) -> catalogue.Message:
        if data == bad.raw:
            raise RuntimeError("a bug in the decoder")
        return real_decode(topic, data, prefix)

    monkeypatch.setattr(catalogue, "decode", decode)
    topic = topics.event(G01, EventKind.PASSAGE)
    now = datetime.now(UTC)
    sorted_ = triage(
        config, [Delivery(topic, item.raw, 1, 1, False, now, 1) for item in (bad, good)]
    )
    assert [item.event.event_id for item in sorted_.events] == [good.event.event_id]
    assert [letter.reason for letter in sorted_.dead] == [
        "could not be decoded: RuntimeError: a bug in the decoder"
    ]


def deliveries(count: int) -> list[Delivery]:
    at = datetime.now(UTC)
    return [Delivery("t", b"{}", n + 1, 1, False, at, 1) for n in range(count)]


def test_delivery_queue__is_bounded_in_messages_not_chunks() -> None:
    bounded = DeliveryQueue(max_messages=100)
    assert bounded.put(deliveries(60), timeout_s=0)
    assert bounded.put(deliveries(40), timeout_s=0)
    # Full at 100 messages, though it holds two chunks only: the reader waits.
    assert not bounded.put(deliveries(1), timeout_s=0.05)
    assert bounded.size == 100
    assert len(bounded.get(timeout_s=0)) == 60
    # Taken is not stored: the 60 still count until the writer is done with them.
    assert not bounded.put(deliveries(1), timeout_s=0.05)
    bounded.done(60)
    assert bounded.put(deliveries(50), timeout_s=0)
    assert [len(bounded.get(timeout_s=0)) for _ in range(3)] == [40, 50, 0]
    assert not bounded.empty()
    bounded.done(90)
    assert bounded.empty()


def test_delivery_queue__a_chunk_larger_than_the_bound_goes_in_alone() -> None:
    bounded = DeliveryQueue(max_messages=10)
    assert bounded.put(deliveries(25), timeout_s=0)  # else a large read would wait forever
    assert not bounded.put(deliveries(1), timeout_s=0.05)
    assert len(bounded.get(timeout_s=0)) == 25
    bounded.done(25)
    assert bounded.empty()
