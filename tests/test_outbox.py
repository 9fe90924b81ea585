"""The outbox keeps every event until the gateway stored it: seq without gaps, across restarts and outages."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from edge.contract import catalogue, topics
from edge.contract.base import chain_hash
from edge.contract.events import (
    DepotReading,
    DepotReadingBatch,
    DeviceFault,
    Disinfection,
    Passage,
)
from edge.contract.presence import Birth, Death, Health
from edge.contract.receipt import Receipt
from edge.contract.topics import Role, Site
from edge.mqtt import publish
from edge.outbox import Outbox, OutboxError, OutboxFull
from edge.uplink import Uplink, UplinkSettings
from simulators.broker import PrivateBroker
from tests.conftest import Subscriber, connect, identity

NODE = Site("north").node(Role.GATE, "g01")
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def disinfection(ids: dict[str, Any]) -> Disinfection:
    return Disinfection(**ids, volunteer_id="v01", area="hut")


def test_outbox__numbers_events_from_1_and_continues_after_a_restart(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE)
    first = [outbox.add(disinfection, T0).seq for _ in range(3)]
    outbox.confirm(3)
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.db", NODE)
    assert first == [1, 2, 3]
    # Every row was confirmed and deleted, yet seq is never reused.
    assert reopened.add(disinfection, T0).seq == 4
    assert (reopened.depth, reopened.confirmed) == (1, 3)
    assert reopened.outbox_id == outbox.outbox_id


def test_outbox__a_depots_readings_go_out_on_its_reading_topic_chained_with_its_faults(
    tmp_path: Path,
) -> None:
    depot = Site("north").node(Role.DEPOT, "d01")
    outbox = Outbox(tmp_path / "outbox.db", depot)
    reading = DepotReading(
        sensor="cold-store-1", bus_address=1, at=T0, status="ok", temperature_c=4.2,
        humidity_pct=61.0,
    )  # fmt: skip
    with outbox.transaction() as batch:
        batch.add(DepotReadingBatch(**batch.ids(T0), readings=(reading,)))
        batch.add(DeviceFault(**batch.ids(T0), device="cold-store-2", fault="timeout",
                              state="raised"))  # fmt: skip
    rows = outbox.after(0, 10)
    outbox.close()
    assert [row.topic for row in rows] == [
        topics.reading(depot), topics.event(depot, topics.EventKind.DEVICE_FAULT),
    ]  # fmt: skip
    first, second = (catalogue.decode(row.topic, row.payload).payload for row in rows)
    assert isinstance(first, DepotReadingBatch) and first.readings == (reading,)
    assert isinstance(second, DeviceFault) and second.prev_hash == chain_hash(rows[0].payload)


def test_outbox__deletes_only_what_a_receipt_covers(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE)
    for _ in range(5):
        outbox.add(disinfection, T0)
    assert outbox.confirm(3) == 3
    assert outbox.confirm(2) == 0  # an older receipt, late: nothing changes
    assert [r.seq for r in outbox.after(0, 10)] == [4, 5]
    with pytest.raises(ValueError, match="never written"):
        outbox.confirm(6)  # not this outbox's: refused, nothing deleted
    assert outbox.depth == 2


def test_outbox__a_wiped_state_dir_is_another_outbox(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "a" / "outbox.db", NODE)
    second = Outbox(tmp_path / "b" / "outbox.db", NODE)
    assert first.outbox_id != second.outbox_id
    assert len(first.outbox_id) == 32


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
    with outbox.transaction(reserved=True) as batch:
        batch.add(DeviceFault(**batch.ids(T0), device="outbox", fault="full", state="raised"))
    assert outbox.depth == 6
    assert [r.seq for r in outbox.after(0, 10)] == [1, 2, 3, 4, 5, 6]


def test_outbox__fault_rows_do_not_take_the_capacity_of_passages(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", NODE, capacity=5)
    for _ in range(3):
        with outbox.transaction(reserved=True) as batch:
            batch.add(DeviceFault(**batch.ids(T0), device="scanner", fault="garbage",
                                  state="raised"))  # fmt: skip
    for _ in range(5):
        outbox.add(disinfection, T0)  # all five fit beside the three fault rows
    assert outbox.depth == 8
    # ...also after a restart, when the rows are counted again from the file.
    outbox.close()
    reopened = Outbox(tmp_path / "o.db", NODE, capacity=5)
    with pytest.raises(OutboxFull):
        reopened.add(disinfection, T0)
    with reopened.transaction(reserved=True) as batch:
        batch.add(DeviceFault(**batch.ids(T0), device="scanner", fault="garbage",
                              state="cleared"))  # fmt: skip


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
            UplinkSettings(identity(broker, NODE.name), reconnect_min_s=0.2, reconnect_max_s=0.5, **settings),
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


def event_seq(message: paho.MQTTMessage) -> int | None:
    """The seq of an event; None for any other message (a birth, a heartbeat)."""
    decoded = catalogue.decode(message.topic, message.payload)
    if decoded.topic.kind == topics.TopicKind.EVENT:
        return decoded.payload.seq  # type: ignore[attr-defined, no-any-return]
    return None


def event_seqs(sub: Subscriber, count: int, timeout_s: float = 10.0) -> list[int]:
    seqs: list[int] = []
    deadline = time.monotonic() + timeout_s
    while len(seqs) < count:
        if (seq := event_seq(sub.next(max(0.1, deadline - time.monotonic())))) is not None:
            seqs.append(seq)
    return seqs


def event_seqs_within(sub: Subscriber, window_s: float) -> list[int]:
    """The seqs of every event that arrives within `window_s` (other messages, such as
    the birth or a heartbeat, are skipped)."""
    seqs: list[int] = []
    deadline = time.monotonic() + window_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = sub.next(left)
        except AssertionError:
            break
        if (seq := event_seq(message)) is not None:
            seqs.append(seq)
    return seqs


def send_receipt(
    broker: PrivateBroker, outbox: Outbox, stored_seq: int, *, resend: bool = False,
    outbox_id: str | None = None,
) -> None:  # fmt: skip
    """Publish the retained receipt the gateway would, for `outbox`."""
    receipt = Receipt(
        outbox_id=outbox_id or outbox.outbox_id, stored_seq=stored_seq, resend=resend,
        at=datetime.now(UTC),
    )  # fmt: skip
    client = connect(identity(broker, "gateway-receipts"))
    publish(client, topics.receipt(NODE.site, NODE.name), receipt).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_uplink__drains_in_order_and_deletes_only_what_the_gateway_stored(
    tmp_path: Path, broker: PrivateBroker, mqtt_subscriber: Subscriber, uplink_for: Any
) -> None:
    mqtt_subscriber.subscribe(topics.everything())
    outbox = Outbox(tmp_path / "o.db", NODE)
    for _ in range(300):
        outbox.add(disinfection, T0)
    running = uplink_for(outbox, window=50)
    assert sorted(event_seqs(mqtt_subscriber, 300)) == list(range(1, 301))
    # The broker acknowledged all 300; nothing goes before the gateway says it stored it.
    time.sleep(0.5)
    assert outbox.depth == 300
    send_receipt(broker, outbox, 300, outbox_id="f" * 32)  # another outbox's: ignored
    time.sleep(0.5)
    assert outbox.depth == 300
    send_receipt(broker, outbox, 120)
    wait_until(lambda: outbox.depth == 180)
    send_receipt(broker, outbox, 300)
    wait_until(lambda: outbox.depth == 0)
    running.close()
    # The clean shutdown leaves a retained `offline` with reason shutdown.
    last = catalogue.decode(*_last_status(broker))
    assert isinstance(last.payload, Death)
    assert last.payload.reason == "shutdown"


def test_uplink__the_birth_names_the_outbox_and_what_it_no_longer_holds(
    tmp_path: Path, broker: PrivateBroker, mqtt_subscriber: Subscriber, uplink_for: Any
) -> None:
    outbox = Outbox(tmp_path / "o.db", NODE)
    for _ in range(5):
        outbox.add(disinfection, T0)
    outbox.confirm(3)
    mqtt_subscriber.subscribe(topics.status(NODE))
    uplink_for(outbox)
    birth = catalogue.decode(*_message(mqtt_subscriber.next())).payload
    assert isinstance(birth, Birth)
    assert (birth.outbox_id, birth.confirmed_seq) == (outbox.outbox_id, 3)


def test_uplink__sends_again_what_the_gateway_asks_for(
    tmp_path: Path, broker: PrivateBroker, mqtt_subscriber: Subscriber, uplink_for: Any
) -> None:
    mqtt_subscriber.subscribe(topics.everything())
    outbox = Outbox(tmp_path / "o.db", NODE)
    for _ in range(20):
        outbox.add(disinfection, T0)
    uplink_for(outbox)
    assert event_seqs(mqtt_subscriber, 20) == list(range(1, 21))
    # The gateway stored 1..10; 11..20 went to nobody (a broker that lost its shared
    # subscription): it asks again.
    send_receipt(broker, outbox, 10, resend=True)
    assert event_seqs(mqtt_subscriber, 10) == list(range(11, 21))
    assert outbox.depth == 10


def test_uplink__sends_at_most_the_unconfirmed_window_past_the_last_receipt(
    tmp_path: Path, broker: PrivateBroker, mqtt_subscriber: Subscriber, uplink_for: Any
) -> None:
    mqtt_subscriber.subscribe(topics.everything())
    outbox = Outbox(tmp_path / "o.db", NODE)
    for _ in range(300):
        outbox.add(disinfection, T0)
    uplink_for(outbox, unconfirmed_window=100)
    assert event_seqs(mqtt_subscriber, 100) == list(range(1, 101))
    assert event_seqs_within(mqtt_subscriber, 1.0) == []
    send_receipt(broker, outbox, 60)
    assert event_seqs(mqtt_subscriber, 60) == list(range(101, 161))


def test_uplink__keeps_events_through_a_broker_outage_and_sends_them_when_it_returns(
    tmp_path: Path, broker: PrivateBroker, uplink_for: Any
) -> None:
    subscriber = Subscriber.connect(identity(broker, "gateway"), session_expiry_s=300)
    subscriber.subscribe(topics.event(NODE, topics.EventKind.DISINFECTION))
    outbox = Outbox(tmp_path / "o.db", NODE)
    running = uplink_for(outbox)
    wait_until(lambda: running.uplink.connected)
    for _ in range(20):
        outbox.add(disinfection, T0)
    running.uplink.wake()
    assert event_seqs(subscriber, 20) == list(range(1, 21))
    send_receipt(broker, outbox, 20)
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
    assert outbox.depth == 2000  # still unconfirmed
    send_receipt(broker, outbox, 2020)
    wait_until(lambda: outbox.depth == 0)
    subscriber.close()


def _message(message: Any) -> tuple[str, bytes]:
    return message.topic, message.payload


def _last_status(broker: PrivateBroker) -> tuple[str, bytes | bytearray]:
    reader = Subscriber.connect(identity(broker, "status-reader"))
    reader.subscribe(topics.status(NODE))
    message = reader.next()
    reader.close()
    return message.topic, message.payload
