"""Ingest when the store fails: unavailable is retried, anything else stops ingest where it is seen.

Against a real Mosquitto; the unavailable store is a real SQLite file locked by another
writer, or a real PostgreSQL server stopped and started again; the faulty one a double of just `IngestStore` (or, for the process, a trigger
that makes the real store refuse every insert).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient

from edge.contract import topics
from edge.contract.catalogue import encode
from edge.contract.topics import EventKind, Role, Site
from gateway.alarm_cases import alarm_cases
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, IngestSection, SiteSection
from gateway.ingest import Ingest
from gateway.stats import IngestStats
from gateway.store import SqliteStore, open_store
from gateway.store.base import IngestStore, StoreUnavailable
from gateway.store.records import DeadLetterRecord, InboundEvent, Written
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker, free_port
from simulators.postgres import PrivatePostgres
from tests.conftest import connect, gateway_broker, identity
from tests.gateway.factory import Gates, look_inside
from tests.gateway.test_api_metrics import scrape
from tests.gateway.test_gateway_process import (
    GatewayProcess,
    StoredEvents,
    broker_config,
    settings,
    write_config,
)

G01 = Site("north").node(Role.GATE, "g01")


def wait_until(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def config_for(broker: PrivateBroker, store: StoreSection) -> GatewayConfig:
    return GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01",)),),
        broker=gateway_broker(broker, "gw-faults", session_expiry_s=600),
        store=store,
        ingest=IngestSection(batch_wait_ms=5),
    )


@pytest.fixture
def node(broker: PrivateBroker) -> Iterator[paho.Client]:
    client = connect(identity(broker, "node-g01"))
    yield client
    client.disconnect()
    client.loop_stop()


def send(client: paho.Client, items: Sequence[InboundEvent]) -> None:
    for item in items:
        target = topics.event(G01, EventKind(item.event.kind))
        client.publish(target, encode(item.event), qos=1).wait_for_publish(5)


@contextmanager
def ingesting(
    config: GatewayConfig, store: IngestStore, stats: IngestStats, **kwargs: Any
) -> Iterator[Ingest]:
    ingest = Ingest(config, store, stats, lambda _written: None, alarm_cases, **kwargs)
    ingest.start()
    try:
        assert ingest.wait_connected(10)
        time.sleep(0.2)  # SUBACK
        yield ingest
    finally:
        ingest.stop()


class BrokenStore:
    """A store with a bug: every write raises what no retry would mend."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, *args: Any, **kwargs: Any) -> Written:
        self.writes += 1
        raise RuntimeError("a bug in the store")

    def mark_offline(self, nodes: Any, reason: str) -> list[tuple[str, str]]:
        return []

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRecord]:
        return []

    def dead_letter_count(self) -> int:
        return 0

    def dead_letters_dropped(self) -> int:
        return 0


def test_a_locked_store_is_retried_and_nothing_is_lost_or_stored_twice(
    broker: PrivateBroker, tmp_path: Path, node: paho.Client, gates: Gates
) -> None:
    # SQLite-only: a file locked by another writer (PostgreSQL's outage: below).
    config = config_for(broker, StoreSection(path=tmp_path / "gateway.db"))
    store = SqliteStore(config.store.path, busy_timeout_s=0.1)
    store.dead_letter_count()  # the file and its tables exist before another writer locks it
    stats = IngestStats()
    with closing(sqlite3.connect(config.store.path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")  # another writer holds the file
        with ingesting(config, store, stats):
            send(node, [gates.passage() for _ in range(5)])
            wait_until(lambda: stats.store_retries >= 2)
            assert store.event_seqs("north", "g01") == []
            other.execute("COMMIT")
            wait_until(lambda: stats.stored == 5)
            assert store.event_seqs("north", "g01") == [1, 2, 3, 4, 5]
            assert (stats.received, stats.duplicates, stats.dead_letters) == (5, 0, 0)
            assert stats.healthy
    store.close()


def test_sqlite_write_raises_store_unavailable_when_the_file_is_locked(
    tmp_path: Path, gates: Gates
) -> None:
    # SQLite-only: SQLite's busy timeout on a locked file.
    store = SqliteStore(tmp_path / "gateway.db", busy_timeout_s=0.05)
    store.dead_letter_count()
    with closing(sqlite3.connect(tmp_path / "gateway.db", isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write([gates.passage()])
        other.execute("ROLLBACK")
    assert len(store.write([gates.passage()]).events) == 1
    store.close()


class FullFile(SqliteStore):
    """A real SQLite file that cannot grow past its size while `full`: what a full disk
    is to SQLite (the page limit reached: "database or disk is full")."""

    full = False

    def _conn(self) -> sqlite3.Connection:
        conn = super()._conn()
        limit = conn.execute("PRAGMA page_count").fetchone()[0] if self.full else 2**31
        conn.execute(f"PRAGMA max_page_count = {limit}")
        return conn


def test_a_full_sqlite_file_is_retried_and_nothing_is_lost_or_stored_twice(
    broker: PrivateBroker, tmp_path: Path, node: paho.Client, gates: Gates,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # SQLite-only: the file's own limit (PostgreSQL's outage: below).
    config = config_for(broker, StoreSection(path=tmp_path / "gateway.db"))
    store, stats = FullFile(config.store.path), IngestStats()  # migrated
    store.full = True
    sent = [gates.passage() for _ in range(300)]  # more than the empty file's pages hold
    with caplog.at_level(logging.WARNING, logger="gateway.ingest"), ingesting(config, store, stats):
        send(node, sent)
        wait_until(lambda: stats.store_retries >= 2)
        assert stats.healthy, "a full disk is waited for, not a fault"
        store.full = False  # the operator made room
        wait_until(lambda: stats.stored == 300, timeout_s=30)
        assert store.event_seqs("north", "g01") == list(range(1, 301))
        assert (stats.received, stats.duplicates, stats.dead_letters) == (300, 0, 0)
    assert "database or disk is full" in caplog.text
    store.close()


def test_a_store_fault_stops_ingest_visibly_and_the_next_session_gets_the_batch(
    broker: PrivateBroker,
    node: paho.Client,
    gates: Gates,
    gateway_context: GatewayContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = config_for(broker, gateway_context.config.store)
    stats = IngestStats()
    faults: list[BaseException] = []
    broken = BrokenStore()
    sent = [gates.passage() for _ in range(3)]
    with ingesting(config, broken, stats, on_fault=faults.append):
        send(node, sent)
        wait_until(lambda: not stats.healthy)
        wait_until(lambda: not stats.connected)  # let go of the session at once
        assert [str(error) for error in faults] == ["a bug in the store"]
        assert stats.fault == "RuntimeError: a bug in the store"
        assert (stats.writer_faults, stats.stored, stats.batches) == (1, 0, 0)
        metrics = scrape(TestClient(create_app(replace(gateway_context, stats=stats))))
        assert metrics[("gatepost_ingest_healthy", ())] == 0
        assert metrics[("gatepost_ingest_writer_faults_total", ())] == 1
        writes = broken.writes
        send(node, [gates.passage()])  # no longer consumed: nothing more is tried
        time.sleep(0.5)
        assert broken.writes == writes
    assert "ingest stopped on an error it does not retry" in caplog.text
    assert "RuntimeError: a bug in the store" in caplog.text  # the traceback

    # Nothing was acknowledged: the broker gives all of it to the next session, once.
    store, stats = gateway_context.store, IngestStats()  # the same store as the config's
    with ingesting(config, store, stats):
        wait_until(lambda: stats.stored == 4)
        assert store.event_seqs("north", "g01") == [1, 2, 3, 4]
        assert stats.healthy


def refuse_every_insert(db: Path) -> None:
    """Triggers that make the real store refuse events and dead letters alike (not retried)."""
    with closing(sqlite3.connect(db)) as conn, conn:
        for table in ("events", "dead_letters"):
            conn.execute(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )


def test_gateway_process_exits_1_on_an_ingest_fault_and_a_restart_stores_it_all(
    tmp_path: Path, broker: PrivateBroker, node: paho.Client, gates: Gates
) -> None:
    # SQLite-only: the store made to refuse by SQLite triggers under a real process.
    config = write_config(tmp_path / "gateway.yaml", settings(broker_config(broker), free_port()))
    db = tmp_path / "gateway.db"
    SqliteStore(db).close()  # migrated, as the gateway would
    refuse_every_insert(db)
    gateway = GatewayProcess(config)
    try:
        gateway.wait_ready()
        send(node, [gates.passage() for _ in range(3)])
        assert gateway.process.wait(30) == 1  # for systemd's Restart=on-failure
    finally:
        gateway.stop()
    text = "\n".join(gateway.output.finish())
    assert "ingest stopped on an error it does not retry" in text
    assert "error: ingest stopped: IntegrityError: refused by the test" in text

    with closing(sqlite3.connect(db)) as conn, conn:  # the operator mends the store
        conn.execute("DROP TRIGGER refuse_events")
        conn.execute("DROP TRIGGER refuse_dead_letters")
    stored = StoredEvents(db)
    restarted = GatewayProcess(config)
    try:
        restarted.wait_ready(session="resumed")
        wait_until(lambda: stored.count() == 3, timeout_s=20)
        assert stored.seqs() == [1, 2, 3]
    finally:
        restarted.stop()


@pytest.fixture
def own_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL of this test's own (durable, so what was committed outlives a stop)."""
    cluster = PrivatePostgres(durable=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


def test_postgresql_stopped_under_ingest_is_retried_and_nothing_is_lost_or_stored_twice(
    broker: PrivateBroker, node: paho.Client, gates: Gates, own_postgres: PrivatePostgres,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    config = config_for(broker, StoreSection(url=own_postgres.create_database("gw")))
    store, stats = open_store(config.store), IngestStats()
    sent = [gates.passage() for _ in range(10)]
    with caplog.at_level(logging.WARNING, logger="gateway.ingest"), ingesting(config, store, stats):
        send(node, sent[:4])
        wait_until(lambda: stats.stored == 4)
        own_postgres.stop()  # the database server goes away under a running ingest
        send(node, sent[4:8])
        wait_until(lambda: stats.store_retries >= 2)
        assert stats.healthy, "an unavailable store is waited for, not a fault"
        own_postgres.start()  # back on the same port
        send(node, sent[8:])
        wait_until(lambda: stats.stored == 10, timeout_s=30)
        assert store.event_seqs("north", "g01") == list(range(1, 11))
        assert (stats.received, stats.duplicates, stats.dead_letters) == (10, 0, 0)
        assert stats.healthy
    assert "the store is unavailable (StoreUnavailable: PostgreSQL" in caplog.text
    assert "the store is back: batch stored after" in caplog.text
    ids = look_inside(store, "SELECT event_id FROM events ORDER BY seq")
    assert [row[0] for row in ids] == [item.event.event_id for item in sent]
    store.close()
