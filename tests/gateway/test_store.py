"""The SQLite store: migrations, connections of ended threads, counts as the gate's."""

from __future__ import annotations

import random
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.contract.events import CheckpointCounts, DepotReading, DepotReadingBatch
from edge.gate.daily import tally
from gateway.store import SqliteStore, SqlStore
from gateway.store.migrations import MIGRATIONS, apply_migrations
from gateway.store.schema import Migration
from tests.gateway.factory import Gates, look_inside


def test_store__connections_of_ended_threads_are_closed(store: SqlStore) -> None:
    for _ in range(50):
        thread = threading.Thread(target=store.nodes)  # each opens its own connection
        thread.start()
        thread.join()
    store.nodes()
    assert len(store._all) <= 2  # type: ignore[attr-defined]  # this thread's, and at most the last worker's


def test_counts__the_store_counts_as_the_gate_tallies(store: SqlStore) -> None:
    # The gateway's SQL and the gate's own tally (edge.gate.daily) must agree, or a
    # gate's daily report and the gateway's summary of the same day would differ.
    rng = random.Random(7)
    gates = Gates("north")
    events = []
    for _ in range(400):
        draw = rng.random()
        if draw < 0.7:
            outcome = rng.choice(["allow", "hold", "deny"])
            vehicle = rng.random() < 0.2
            fields: dict[str, Any] = {
                "outcome": outcome,
                "colour": rng.choice(["green", "yellow", "red", None]),
                "temperature_c": rng.choice([None, 36.5, 38.4]),
                "reasons": ()
                if outcome == "allow"
                else (rng.choice(["fever", "red", "vehicle-fever"]),),
            }
            if vehicle:
                fields |= {"subject": "vehicle", "occupants": rng.choice([None, 1, 3])}
            events.append(gates.passage(rng.choice(["g01", "g02"]), **fields))
        elif draw < 0.85:
            hold = gates.hold(gates.passage(outcome="hold", reasons=("fever",)))
            events.append(gates.resolved(hold, rng.choice(["released", "turned-back"])))
        else:
            events.append(gates.disinfection(rng.choice(["g01", "g02"])))
    store.write(events)
    since = gates.now - timedelta(hours=1)
    for node in ("g01", "g02", None):
        expected = CheckpointCounts()
        for item in events:
            if node is None or item.node == node:
                expected = tally(expected, item.event)
        assert store.counts("north", node, since) == expected


def test_write__a_batch_of_any_size_stores_each_event_and_its_row_once(store: SqlStore) -> None:
    # 777 = 256 + 256 + 256 + 8 + 1: SQLite inserts new rows a few hundred to a
    # statement, PostgreSQL copies them in; no row may be lost, doubled or mixed up.
    gates = Gates("north")
    temperatures = [round(35.5 + n % 40 / 10, 1) for n in range(777)]
    sent = [gates.passage(f"g0{1 + n % 3}", temperature_c=t) for n, t in enumerate(temperatures)]
    assert len(store.write(sent).events) == 777
    stored = look_inside(
        store,
        "SELECT e.event_id, e.node, e.seq, e.payload, p.temperature_c "
        "FROM events e JOIN passages p ON p.event_id = e.event_id",
    )
    assert sorted(tuple(row) for row in stored) == sorted(
        (i.event.event_id, i.node, i.event.seq, i.raw.decode(), temperature)
        for i, temperature in zip(sent, temperatures, strict=True)
    )


def test_migrations__applied_once_each_and_recorded(tmp_path: Path) -> None:
    # SQLite-only: SQLite's migrations 0001..0022 (PostgreSQL's baseline: test_schema_pg.py).
    store = SqliteStore(tmp_path / "gateway.db")
    db = store.db  # sqlite-utils, for looking inside
    assert [row["name"] for row in db["_migrations"].rows] == [m.name for m in MIGRATIONS]
    assert {"events", "passages", "nodes", "alarms", "tokens", "audit_log"} <= set(db.table_names())
    store.close()
    assert apply_migrations(sqlite3.connect(tmp_path / "gateway.db", isolation_level=None)) == []


def test_migrations__one_that_fails_is_rolled_back_whole(tmp_path: Path) -> None:
    # SQLite-only: SQLite's migration runner and its schema table.
    conn = sqlite3.connect(tmp_path / "gateway.db", isolation_level=None)
    broken = Migration("0099-broken", "CREATE TABLE half (x); CREATE TABLE half (y)")
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        apply_migrations(conn, (*MIGRATIONS, broken))
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "half" not in tables
    recorded = [row[0] for row in conn.execute("SELECT name FROM _migrations")]
    assert recorded == [m.name for m in MIGRATIONS]


def test_migrations__a_trigger_with_semicolons_in_its_body_is_one_statement(
    tmp_path: Path,
) -> None:
    # The stock ledger's immutability is made by the migrations, before any write: a row
    # put in by hand is refused a change as one the ledger wrote. SQLite-only: SQLite's
    # migration text split into statements (PostgreSQL's refusals: test_schema_pg.py).
    SqliteStore(tmp_path / "gateway.db").close()
    conn = sqlite3.connect(tmp_path / "gateway.db", isolation_level=None)
    triggers = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
    }
    assert {"stock_entries_no_update", "stock_entries_no_delete", "stock_lots_no_update",
            "stock_lots_no_delete"} <= triggers  # fmt: skip
    conn.execute("INSERT INTO stock_lots VALUES ('n95-mask', 'L1', '2027-12-31')")
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("UPDATE stock_lots SET lot = 'L2'")


def test_depot_readings__every_poll_round_of_a_batch_is_kept(store: SqlStore) -> None:
    # A depot node batches several poll rounds of its bus: two samples of each sensor.
    gates = Gates()
    start = gates.now
    readings = tuple(
        DepotReading(
            sensor=sensor, bus_address=address, at=start + timedelta(seconds=30 * round_),
            status="ok", temperature_c=4.0 + round_, humidity_pct=60.0,
        )
        for round_ in range(2)
        for sensor, address in (("cold-store-1", 1), ("cold-store-2", 2))
    )  # fmt: skip
    batch = gates.inbound("d01", DepotReadingBatch, readings=readings)
    store.write([batch])
    store.write([batch])  # redelivered: stored once
    rows = look_inside(
        store, "SELECT sensor, temperature_c FROM depot_readings ORDER BY sensor, at"
    )
    assert rows == [
        ("cold-store-1", 4.0), ("cold-store-1", 5.0), ("cold-store-2", 4.0), ("cold-store-2", 5.0),
    ]  # fmt: skip


def test_migration_0009__keeps_the_readings_stored_before(tmp_path: Path) -> None:
    # SQLite-only: a SQLite file from before migration 0009, migrated forward.
    path = tmp_path / "gateway.db"
    conn = sqlite3.connect(path, isolation_level=None)
    before = tuple(m for m in MIGRATIONS if m.name < "0009")
    apply_migrations(conn, before)
    conn.execute(
        "INSERT INTO depot_readings VALUES ('E1', 'north', 'd01', 'cold-store-1', 1, "
        "'2026-12-06T00:00:00Z', 'ok', 4.5, 61.0)"
    )
    through = tuple(m for m in MIGRATIONS if m.name < "0010")
    assert apply_migrations(conn, through) == ["0009-depot-readings-per-sample"]
    assert conn.execute("SELECT temperature_c FROM depot_readings").fetchall() == [(4.5,)]
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(depot_readings)")}
    assert "depot_readings_by_sensor" in indexes
    conn.close()
