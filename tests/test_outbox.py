"""The outbox keeps every event until the broker has it: seq without gaps, across restarts and outages."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.contract import catalogue, topics
from edge.contract.events import DeviceFault, Disinfection, Passage
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import Role, Site
from edge.outbox import Outbox, OutboxError, OutboxFull
from edge.uplink import Uplink, UplinkSettings
from simulators.broker import PrivateBroker
from tests.conftest import Subscriber

NODE = Site("north").node(Role.GATE, "g01")
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def disinfection(ids: dict[str, Any]) -> Disinfection:
    return Disinfection(**ids, volunteer_id="v01", area="hut")


def test_outbox__numbers_events_from_1_and_continues_after_a_restart(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE)
    first = [outbox.add(disinfection, T0).seq for _ in range(3)]
    outbox.acknowledge(first)
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.db", NODE)
    assert first == [1, 2, 3]
    # Every row was acknowledged and deleted, yet seq is never reused.
    assert reopened.add(disinfection, T0).seq == 4
    assert reopened.depth == 1


def test_outbox__a_transaction_records_all_of_its_events_or_none(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE)

    def fail_mid_way() -> None:
        with outbox.transaction() as batch:
            batch.add(disinfection(batch.ids(T0)))
            raise RuntimeError("the relay driver failed mid-way")

    with pytest.raises(RuntimeError):
        fail_mid_way()
    with outbox.transaction() as batch:
        passage = batch.add(
            Passage(**batch.ids(T0), direction="in", outcome="allow", credential="none")
        )
        batch.add(disinfection(batch.ids(T0)))
    assert [r.seq for r in outbox.after(0, 10)] == [1, 2]
    assert passage.seq == 1


def test_outbox__refuses_events_beyond_capacity_but_keeps_room_for_the_fault(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "o.db", NODE, capacity=5)
    for _ in range(5):
        outbox.add(disinfection, T0)
    with pytest.raises(OutboxFull, match="capacity 5"):
        outbox.add(disinfection, T0)
    with outbox.transaction(fault=True) as batch:
        batch.add(DeviceFault(**batch.ids(T0), device="outbox", fault="full", state="raised"))
    assert outbox.depth == 6
    assert [r.seq for r in outbox.after(0, 10)] == [1, 2, 3, 4, 5, 6]


def test_outbox__a_disk_that_refuses_the_write_is_an_outbox_error_and_seq_is_not_used(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "o.db", NODE)
    outbox.add(disinfection, T0)
    # A full disk looks like this to SQLite: the page limit is reached.
    outbox._db.execute("PRAGMA max_page_count = 1")

    def fill() -> None:
        for _ in range(200):
            outbox.add(disinfection, T0)

    with pytest.raises(OutboxError, match="cannot record events"):
        fill()
    stored = outbox.last_seq
    outbox._db.execute("PRAGMA max_page_count = 1000000")
    assert outbox.add(disinfection, T0).seq == stored + 1
    seqs = [r.seq for r in outbox.after(0, 1000)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_outbox__is_a_wal_database_with_full_sync(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", NODE)
    assert outbox._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    outbox.add(disinfection, T0)
    # Another process sees the committed row at once.
    assert (
        sqlite3.connect(tmp_path / "o.db").execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    )


class RunningUplink:
    def __init__(self, uplink: Uplink) -> None:
        self.uplink = uplink
        self.stop = threading.Event()
        self.thread = threading.Thread(target=uplink.run, args=(self.stop,))
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()


@pytest.fixture
def uplink_for(broker: PrivateBroker) -> Iterator[Any]:
    running: list[RunningUplink] = []

    def start(outbox: Outbox, **settings: Any) -> RunningUplink:
        uplink = Uplink(
            UplinkSettings(broker.url, reconnect_min_s=0.2, reconnect_max_s=0.5, **settings),
            NODE, outbox,
            birth=lambda session: Birth(
                session=session, node_time=datetime.now(UTC), role=Role.GATE,
                version="test", config_hash="0" * 16, heartbeat_s=10,
            ),
            health=lambda session: Health(
                node_time=datetime.now(UTC), session=session, uptime_s=0, last_seq=outbox.last_seq,
                outbox_depth=outbox.depth, outbox_capacity=outbox.capacity,
            ),
        )  # fmt: skip
        running.append(RunningUplink(uplink))
        return running[-1]

    yield start
    for r in running:
        r.close()


def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def event_seqs(sub: Subscriber, count: int, timeout_s: float = 10.0) -> list[int]:
    seqs: list[int] = []
    deadline = time.monotonic() + timeout_s
    while len(seqs) < count:
        message = sub.next(max(0.1, deadline - time.monotonic()))
        decoded = catalogue.decode(message.topic, message.payload)
        if decoded.topic.kind == topics.TopicKind.EVENT:
            seqs.append(decoded.payload.seq)  # type: ignore[attr-defined]
    return seqs


def test_uplink__drains_the_outbox_in_order_and_deletes_what_the_broker_acknowledged(
    tmp_path: Path, broker: PrivateBroker, mqtt_subscriber: Subscriber, uplink_for: Any
) -> None:
    mqtt_subscriber.subscribe(topics.everything())
    outbox = Outbox(tmp_path / "o.db", NODE)
    for _ in range(300):
        outbox.add(disinfection, T0)
    running = uplink_for(outbox, window=50)
    assert sorted(event_seqs(mqtt_subscriber, 300)) == list(range(1, 301))
    wait_until(lambda: outbox.depth == 0)
    assert outbox.after(0, 10) == []
    running.close()
    # The clean shutdown leaves a retained `offline` with reason shutdown.
    last = catalogue.decode(*_last_status(broker))
    assert isinstance(last.payload, Death)
    assert last.payload.reason == "shutdown"


def test_uplink__keeps_events_through_a_broker_outage_and_sends_them_when_it_returns(
    tmp_path: Path, broker: PrivateBroker, uplink_for: Any
) -> None:
    subscriber = Subscriber.connect(broker.url, "gateway", session_expiry_s=300)
    subscriber.subscribe(topics.event(NODE, topics.EventKind.DISINFECTION))
    outbox = Outbox(tmp_path / "o.db", NODE)
    running = uplink_for(outbox)
    wait_until(lambda: running.uplink.connected)
    for _ in range(20):
        outbox.add(disinfection, T0)
    running.uplink.wake()
    assert event_seqs(subscriber, 20) == list(range(1, 21))
    wait_until(lambda: outbox.depth == 0)

    broker.stop()
    wait_until(lambda: not running.uplink.connected)
    for _ in range(2000):
        outbox.add(disinfection, T0)
    assert outbox.depth >= 2000
    broker.start()
    wait_until(lambda: running.uplink.connected, timeout_s=15)
    received: set[int] = set()
    while not received >= set(range(21, 2021)):
        received.update(event_seqs(subscriber, 1, timeout_s=30))
    # At least once: the broker may redeliver to its subscriber what was in flight
    # when it stopped (ids are unique, so that is harmless); nothing is lost.
    assert received <= set(range(1, 2021))
    wait_until(lambda: outbox.depth == 0)
    subscriber.close()


def _last_status(broker: PrivateBroker) -> tuple[str, bytes | bytearray]:
    reader = Subscriber.connect(broker.url, "status-reader")
    reader.subscribe(topics.status(NODE))
    message = reader.next()
    reader.close()
    return message.topic, message.payload
