"""PostgreSQL's month partitions of raw depot readings (migration 0024): readings land in
their month (or DEFAULT, and move in when their month is made), retention drops a month
whole only when each of its readings may go, and the migration and store-copy bring
existing readings into their months."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edge.contract.events import DepotReading
from gateway.depot_rollups import DepotRollups
from gateway.store import SqliteStore, SqlStore, StoreUnavailable
from gateway.store.copy import copy_store
from gateway.store.postgres import PostgresStore, apply_pg_migrations, connect
from gateway.store.records import utc_text
from gateway.store.schema_pg import PG_MIGRATIONS
from gateway.store.settings import StoreSection
from tests.conftest import PostgresDatabases
from tests.gateway.factory import Gates, look_inside
from tests.gateway.test_depot_rollups import COLD, SHELF, Clock, expected, rolled, sample, stored
from tests.gateway.test_depot_rollups import assert_same as same_figures

ON_POSTGRESQL = pytest.mark.parametrize("store_section", ["postgresql"], indirect=True)
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)  # retention cuts raw readings at 2026-11-06
_PARTITIONS = (
    "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
    "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST('depot_readings' AS regclass)"
)


@pytest.fixture
def rollups(store: SqlStore, store_section: StoreSection) -> DepotRollups:
    settings = store_section.model_copy(update={"depot_raw_days": 30, "depot_minute_days": 90})
    return DepotRollups(store, settings, Clock(NOW))


def partitions(store: SqlStore) -> dict[str, str]:
    """depot_readings' partitions, by name, with their bounds as PostgreSQL says them."""
    return dict(look_inside(store, _PARTITIONS))


def homes(store: SqlStore) -> dict[str, str]:
    """Each stored reading's time and the partition that holds it."""
    rows = look_inside(store, "SELECT at, tableoid::regclass::text FROM depot_readings")
    return dict(rows)


def day_of(start: datetime, zone: str = COLD, minutes: int = 1440) -> list[DepotReading]:
    return [sample(zone, start + timedelta(minutes=m), 4.0 + m % 7) for m in range(minutes)]


@ON_POSTGRESQL
def test_readings_land_in_their_month_s_partition(store: SqlStore) -> None:
    store.ensure_depot_partitions(NOW)
    assert {"depot_readings_2026_12", "depot_readings_2027_01", "depot_readings_2027_02"} <= set(
        partitions(store)
    )
    assert partitions(store)["depot_readings_2027_01"] == (
        "FOR VALUES FROM ('2027-01-01T00:00:00.000000+00:00') "
        "TO ('2027-02-01T00:00:00.000000+00:00')"
    )
    assert partitions(store)["depot_readings_default"] == "DEFAULT"
    times = [
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        datetime(2027, 2, 28, 12, tzinfo=UTC),
    ]
    stored(store, [sample(COLD, at, 5.0) for at in times])
    assert homes(store) == {
        utc_text(times[0]): "depot_readings_2026_12",
        utc_text(times[1]): "depot_readings_2027_01",
        utc_text(times[2]): "depot_readings_2027_02",
    }
    # Read back across the months as before, and rolled into their hours.
    found = store.depot_readings("north", "d01", times[0], times[2] + timedelta(seconds=1))
    assert [r.at for r in found] == times
    assert store.roll_depot_readings(limit=100).readings == 3
    # Only the raw readings are partitioned: events and passages keep their global keys.
    kinds = dict(
        look_inside(
            store,
            "SELECT relname, relkind FROM pg_class WHERE relname IN "
            "('depot_readings', 'events', 'passages', 'depot_rollups')",
        )
    )
    assert kinds == {"depot_readings": "p", "events": "r", "passages": "r", "depot_rollups": "r"}


@ON_POSTGRESQL
def test_a_reading_of_a_month_not_made_waits_in_default_and_moves_in(store: SqlStore) -> None:
    march, april = datetime(2020, 3, 15, 9, tzinfo=UTC), datetime(2020, 4, 2, tzinfo=UTC)
    december = datetime(2019, 12, 31, 23, 59, tzinfo=UTC)
    stored(store, [sample(COLD, at, 5.0) for at in (march, april, december)])
    before = dict(look_inside(store, "SELECT at, arrival FROM depot_readings"))
    assert set(homes(store).values()) == {"depot_readings_default"}
    made = store.ensure_depot_partitions(datetime(2020, 3, 10, tzinfo=UTC))
    assert made == ["depot_readings_2020_03", "depot_readings_2020_04", "depot_readings_2020_05"]
    assert homes(store) == {
        utc_text(march): "depot_readings_2020_03",
        utc_text(april): "depot_readings_2020_04",
        utc_text(december): "depot_readings_default",
    }
    assert dict(look_inside(store, "SELECT at, arrival FROM depot_readings")) == before
    assert partitions(store)["depot_readings_default"] == "DEFAULT"  # attached again
    assert store.ensure_depot_partitions(datetime(2020, 3, 10, tzinfo=UTC)) == []
    # A later reading of a month now made goes straight to it, a redelivery stays once.
    stored(store, [sample(COLD, march + timedelta(minutes=1), 6.0)])
    assert homes(store)[utc_text(march + timedelta(minutes=1))] == "depot_readings_2020_03"
    assert store.roll_depot_readings(limit=100).readings == 4


@ON_POSTGRESQL
def test_retention_drops_an_old_rolled_month_whole(store: SqlStore, rollups: DepotRollups) -> None:
    store.ensure_depot_partitions(datetime(2026, 10, 1, tzinfo=UTC), ahead=2)
    october = day_of(datetime(2026, 10, 10, tzinfo=UTC))  # its month ended before the cut
    november = day_of(datetime(2026, 11, 2, tzinfo=UTC), SHELF)  # its month did not
    december = day_of(datetime(2026, 12, 4, tzinfo=UTC))  # inside depot_raw_days
    gates = Gates("north")
    for readings in (october, november, december):
        stored(store, readings, gates)
    rollups.roll()
    hours = rolled(store, "hour")
    assert rollups.purge_all() == (len(october), 0)
    names = partitions(store)
    assert "depot_readings_2026_10" not in names  # dropped whole
    # November is past the cut but its month is not: it goes whole too, later, and is
    # not thinned by row deletes meanwhile.
    assert {"depot_readings_2026_11", "depot_readings_2026_12"} <= set(names)
    assert sorted(homes(store)) == sorted(utc_text(r.at) for r in [*november, *december])
    # The rollups stay: hours for good, the dropped month's minutes for 90 days.
    assert rolled(store, "hour") == hours
    everything = [*october, *november, *december]
    same_figures(rolled(store, "minute"), expected(everything, timedelta(minutes=1)))
    # The zone's mark moved past the month: a reading arriving now for one of its minutes
    # is added to the minute's kept figures (it waits in DEFAULT, its month gone).
    late = sample(COLD, datetime(2026, 10, 10, 0, 0, 30, tzinfo=UTC), 30.0)
    stored(store, [late], gates)
    assert homes(store)[utc_text(late.at)] == "depot_readings_default"
    rollups.roll()
    same_figures(rolled(store, "minute"), expected([*everything, late], timedelta(minutes=1)))
    same_figures(rolled(store, "hour"), expected([*everything, late], timedelta(hours=1)))


@ON_POSTGRESQL
def test_a_reading_arriving_after_its_month_was_dropped_is_added_to_its_minute(
    store: SqlStore,
) -> None:
    store.ensure_depot_partitions(datetime(2026, 10, 1, tzinfo=UTC), ahead=0)
    gates = Gates("north")
    october = day_of(datetime(2026, 10, 10, tzinfo=UTC), minutes=3)
    stored(store, october, gates)
    store.roll_depot_readings(limit=100)
    dropped = store.drop_depot_month(NOW - timedelta(days=30))  # no row purge after it
    assert dropped is not None and dropped.readings == 3
    late = sample(COLD, october[1].at + timedelta(seconds=20), 40.0)
    stored(store, [late], gates)
    store.roll_depot_readings(limit=100)
    # Added to the minute's figures, not rolled again from the one raw reading there.
    same_figures(rolled(store, "minute"), expected([*october, late], timedelta(minutes=1)))
    same_figures(rolled(store, "hour"), expected([*october, late], timedelta(hours=1)))


@ON_POSTGRESQL
def test_a_month_holding_an_unrolled_reading_is_not_dropped(
    store: SqlStore, rollups: DepotRollups
) -> None:
    store.ensure_depot_partitions(datetime(2026, 10, 1, tzinfo=UTC), ahead=0)
    gates = Gates("north")
    october = day_of(datetime(2026, 10, 10, tzinfo=UTC), minutes=120)
    stored(store, october, gates)
    rollups.roll()
    straggler = sample(COLD, datetime(2026, 10, 20, tzinfo=UTC), 5.0)
    stored(store, [straggler], gates)  # stored, not rolled yet
    assert store.drop_depot_month(NOW - timedelta(days=30)) is None
    assert rollups.purge_all() == (0, 0)  # the month waits whole, none deleted by rows
    assert "depot_readings_2026_10" in partitions(store)
    assert len(homes(store)) == len(october) + 1
    rollups.roll()
    assert rollups.purge_all() == (len(october) + 1, 0)  # now the month goes, whole
    assert "depot_readings_2026_10" not in partitions(store)
    same_figures(rolled(store, "hour"), expected([*october, straggler], timedelta(hours=1)))


@ON_POSTGRESQL
def test_a_month_not_yet_past_retention_is_kept(store: SqlStore) -> None:
    store.ensure_depot_partitions(datetime(2026, 10, 1, tzinfo=UTC), ahead=0)
    stored(store, [sample(COLD, datetime(2026, 10, 31, 23, 59, tzinfo=UTC), 5.0)])
    store.roll_depot_readings(limit=10)
    # The cut at the month's very end still keeps it; a minute after, it may go.
    assert store.drop_depot_month(datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)) is None
    dropped = store.drop_depot_month(datetime(2026, 11, 1, 0, 0, 30, tzinfo=UTC))
    assert dropped is not None
    assert (dropped.partition, dropped.readings) == ("depot_readings_2026_10", 1)
    assert store.drop_depot_month(datetime(2026, 11, 1, 0, 0, 30, tzinfo=UTC)) is None


@ON_POSTGRESQL
def test_two_replicas_making_the_same_months_at_once_both_succeed(
    store: SqlStore, store_section: StoreSection
) -> None:
    assert store_section.url is not None
    stored(store, [sample(COLD, datetime(2031, 2, 3, tzinfo=UTC), 5.0)])  # in DEFAULT
    other = PostgresStore(store_section.url)
    barrier = threading.Barrier(2)
    made: list[list[str]] = []
    failed: list[BaseException] = []

    def ensure(replica: SqlStore) -> None:
        replica.depot_series()  # a warm connection each
        barrier.wait()
        try:
            made.append(replica.ensure_depot_partitions(datetime(2031, 1, 20, tzinfo=UTC)))
        except BaseException as error:
            failed.append(error)

    try:
        threads = [threading.Thread(target=ensure, args=(s,)) for s in (store, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        other.close()
    assert failed == []
    assert sorted(name for names in made for name in names) == [
        "depot_readings_2031_01", "depot_readings_2031_02", "depot_readings_2031_03",
    ]  # fmt: skip
    assert set(homes(store).values()) == {"depot_readings_2031_02"}


@ON_POSTGRESQL
def test_partition_work_is_left_for_the_next_pass_while_a_read_holds_the_table(
    store: SqlStore, store_section: StoreSection, rollups: DepotRollups
) -> None:
    assert store_section.url is not None
    store.ensure_depot_partitions(datetime(2026, 10, 1, tzinfo=UTC), ahead=0)
    october = day_of(datetime(2026, 10, 10, tzinfo=UTC), minutes=60)
    stored(store, october)
    rollups.roll()
    ahead = datetime(2032, 1, 1, tzinfo=UTC)
    with connect(store_section.url) as reader, reader.transaction():
        reader.execute("SELECT count(*) FROM depot_readings")  # holds its lock till the end
        started = datetime.now(UTC)
        # Neither a month ahead nor the drop waits long (ingest waits behind them): the
        # old month waits for the next pass.
        with pytest.raises(StoreUnavailable, match="lock timeout"):
            store.ensure_depot_partitions(ahead)
        assert rollups.purge_all() == (0, 0)
        assert datetime.now(UTC) - started < timedelta(seconds=5)
    assert "depot_readings_2026_10" in partitions(store)
    assert "depot_readings_2032_01" not in partitions(store)
    rollups.clock = Clock(NOW + timedelta(hours=2))
    assert rollups.purge_all() == (len(october), 0)
    assert "depot_readings_2026_10" not in partitions(store)
    assert store.ensure_depot_partitions(ahead, ahead=0) == ["depot_readings_2032_01"]


def test_sqlite_has_no_partitions(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    try:
        stored(store, [sample(COLD, datetime(2026, 10, 10, tzinfo=UTC), 5.0)])
        store.roll_depot_readings(limit=10)
        assert store.ensure_depot_partitions(NOW) == []
        assert store.drop_depot_month(NOW) is None
        assert len(look_inside(store, "SELECT * FROM depot_readings")) == 1
    finally:
        store.close()


def test_the_migration_moves_existing_readings_into_their_months(
    postgres_databases: PostgresDatabases,
) -> None:
    url = postgres_databases.cluster.create_database("depot_months_0023")
    columns = "event_id, site, node, sensor, bus_address, at, status, temperature_c, humidity_pct"
    rows: list[tuple[Any, ...]] = [
        ("e1", "north", "d01", COLD, 1, "2026-09-30T23:59:59.999999+00:00", "ok", 4.5, 60.0),
        ("e1", "north", "d01", SHELF, 2, "2026-09-30T23:59:59.999999+00:00", "crc", None, None),
        ("e2", "north", "d01", COLD, 1, "2026-10-01T00:00:00.000000+00:00", "ok", 5.5, 61.0),
        ("e3", "north", "d02", COLD, 1, "2026-11-15T08:00:00.000000+00:00", "ok", 6.5, 62.0),
        ("e4", "north", "d02", COLD, 1, "2026-11-15T08:01:00.000000+00:00", "ok", 7.5, 63.0),
    ]  # fmt: skip
    with psycopg.connect(url, autocommit=True) as raw:
        assert apply_pg_migrations(raw, PG_MIGRATIONS[:2])[-1] == "0023-retention"
        raw.cursor().executemany(
            f"INSERT INTO depot_readings ({columns}) VALUES ({', '.join(['%s'] * 9)})", rows
        )
        raw.execute("DELETE FROM depot_readings WHERE event_id = 'e4'")  # its number is spent
        raw.execute("UPDATE counters SET value = 2 WHERE name = 'depot_rolled_through'")
        before = raw.execute(f"SELECT arrival, {columns} FROM depot_readings").fetchall()
    store = PostgresStore(url)  # migrates to the newest
    try:
        after = look_inside(store, f"SELECT arrival, {columns} FROM depot_readings")
        assert sorted(after) == sorted(before)
        homes_now = look_inside(
            store, "SELECT arrival, tableoid::regclass::text FROM depot_readings"
        )
        assert sorted(homes_now) == [
            (1, "depot_readings_2026_09"), (2, "depot_readings_2026_09"),
            (3, "depot_readings_2026_10"), (4, "depot_readings_2026_11"),
        ]  # fmt: skip
        # The months ahead of now are there too, and DEFAULT.
        now = datetime.now(UTC)
        assert f"depot_readings_{now.year:04d}_{now.month:02d}" in partitions(store)
        assert partitions(store)["depot_readings_default"] == "DEFAULT"
        # Numbering goes on past every number given, the deleted reading's too.
        stored(store, [sample(COLD, datetime(2026, 11, 16, tzinfo=UTC), 5.0)])
        assert look_inside(store, "SELECT MAX(arrival) FROM depot_readings") == [(6,)]
        # The watermark still means what it meant: the rest is rolled, once.
        assert store.roll_depot_readings(limit=100).readings == 3
        assert store.depot_rollup_backlog() == 0
    finally:
        store.close()


def test_store_copy_puts_readings_in_their_months(
    postgres_databases: PostgresDatabases, tmp_path: Path
) -> None:
    lite = SqliteStore(tmp_path / "gateway.db")
    times = [datetime(2025, 7, 4, tzinfo=UTC), datetime(2025, 8, 31, 23, 59, tzinfo=UTC)]
    try:
        stored(lite, [sample(COLD, at, 5.0) for at in times])
    finally:
        lite.close()
    url = postgres_databases.new()
    copy_store(tmp_path / "gateway.db", url)
    store = PostgresStore(url)
    try:
        assert homes(store) == {
            utc_text(times[0]): "depot_readings_2025_07",
            utc_text(times[1]): "depot_readings_2025_08",
        }
    finally:
        store.close()
