"""Depot time series: minute and hour rollups, retention, and the rollups API."""

from __future__ import annotations

import csv
import io
import random
import sqlite3
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from edge.contract.events import DepotReading, DepotReadingBatch
from gateway.alarms import AlarmBook
from gateway.api.context import GatewayContext
from gateway.config import AlarmSection, GatewayConfig, HttpSection, SiteSection
from gateway.depot_rollups import DepotRollups
from gateway.live import LiveFeed
from gateway.store import SqliteStore, SqlStore, StoreUnavailable, open_store
from gateway.store.depot_records import DepotRollupRecord
from gateway.store.migrations import MIGRATIONS, apply_migrations
from gateway.store.postgres import WRITE_LOCK
from gateway.store.records import utc_text
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from tests.conftest import gateway_broker, running_gateway
from tests.gateway.factory import Gates, look_inside
from tests.gateway.test_api_access import bearer, open_api

COLD, SHELF = "cold-store-1", "shelf-a"
# The readings' hour: 2026-12-01 02:00 UTC (10:00 in Shanghai).
HOUR = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
# (zone, bucket start) -> its figures, as the API names them
Buckets = dict[tuple[str, datetime], dict[str, Any]]


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(store_section: StoreSection) -> StoreSection:
    return store_section.model_copy(update={"depot_raw_days": 30, "depot_minute_days": 90})


@pytest.fixture
def rollups(store: SqlStore, settings: StoreSection, clock: Clock) -> DepotRollups:
    return DepotRollups(store, settings, clock)


def sample(
    zone: str, at: datetime, temperature_c: float | None, humidity: float = 60.0
) -> DepotReading:
    if temperature_c is None:
        return DepotReading(sensor=zone, bus_address=1, at=at, status="timeout")
    return DepotReading(
        sensor=zone, bus_address=1, at=at, status="ok", temperature_c=temperature_c,
        humidity_pct=humidity,
    )  # fmt: skip


def stored(store: SqlStore, readings: list[DepotReading], gates: Gates | None = None) -> None:
    gates = gates or Gates("north")
    for at in range(0, len(readings), 100):  # batches as a node sends them
        store.write(
            [gates.inbound("d01", DepotReadingBatch, readings=tuple(readings[at : at + 100]))]
        )


def two_hours(seed: int = 7) -> list[DepotReading]:
    """Two zones read every 10 s for two hours, values wandering, a timeout now and then."""
    rng = random.Random(seed)
    readings = []
    for step in range(720):
        at = HOUR + timedelta(seconds=10 * step)
        for zone, base in ((COLD, 5.0), (SHELF, 21.0)):
            value = None if rng.random() < 0.03 else round(base + rng.uniform(-2, 2), 1)
            readings.append(sample(zone, at, value, humidity=round(rng.uniform(40, 80), 1)))
    return readings


def expected(readings: list[DepotReading], width: timedelta) -> Buckets:
    """Each (zone, bucket)'s figures computed here from the readings themselves."""
    buckets: dict[tuple[str, datetime], list[DepotReading]] = defaultdict(list)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    for r in readings:
        buckets[(r.sensor, r.at - (r.at - epoch) % width)].append(r)
    figures = {}
    for key, found in buckets.items():
        ok = [r for r in found if r.status == "ok"]
        t = [r.temperature_c for r in ok if r.temperature_c is not None]
        h = [r.humidity_pct for r in ok if r.humidity_pct is not None]
        figures[key] = {
            "readings": len(ok), "faults": len(found) - len(ok),
            "temperature_min_c": min(t, default=None), "temperature_max_c": max(t, default=None),
            "temperature_mean_c": statistics.fmean(t) if t else None,
            "humidity_min_pct": min(h, default=None), "humidity_max_pct": max(h, default=None),
            "humidity_mean_pct": statistics.fmean(h) if h else None,
        }  # fmt: skip
    return figures


def rolled(
    store: SqlStore, resolution: str = "minute", zone: str | None = None, node: str = "d01"
) -> Buckets:
    found = store.depot_rollups(
        "north", node, resolution,  # type: ignore[arg-type]
        datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), zone=zone,
        limit=100_000,
    )  # fmt: skip
    return {(r.zone, r.bucket): _figures(r) for r in found}


def _figures(r: DepotRollupRecord) -> dict[str, Any]:
    return r.model_dump(exclude={"site", "node", "zone", "resolution", "bucket"})


def assert_same(got: Buckets, want: Buckets) -> None:
    assert got.keys() == want.keys()
    for key, figures in want.items():
        for name, value in figures.items():
            assert got[key][name] == (value if value is None else pytest.approx(value)), (key, name)


# --- rollups ----------------------------------------------------------------------------


def test_rollups__minutes_and_hours_are_the_raw_readings_figures(
    store: SqlStore, rollups: DepotRollups
) -> None:
    readings = two_hours()
    stored(store, readings)
    assert store.depot_rollups("north", "d01", "minute", HOUR, HOUR + timedelta(hours=2)) == []
    assert rollups.roll() == len(readings)
    assert_same(rolled(store, "minute"), expected(readings, timedelta(minutes=1)))
    assert_same(rolled(store, "hour"), expected(readings, timedelta(hours=1)))
    assert len(rolled(store, "hour")) == 4  # two zones, two hours
    assert store.depot_rollup_backlog() == 0


def test_rollups__a_zone_of_faults_only_has_counts_and_no_figures(
    store: SqlStore, rollups: DepotRollups
) -> None:
    stored(store, [sample(COLD, HOUR + timedelta(seconds=s), None) for s in (0, 10, 20)])
    rollups.roll()
    for resolution in ("minute", "hour"):
        (figures,) = rolled(store, resolution).values()
        assert (figures["readings"], figures["faults"], figures["temperature_mean_c"]) == (
            0,
            3,
            None,
        )


def test_rollups__incremental_only_new_readings_are_taken(
    store: SqlStore, rollups: DepotRollups
) -> None:
    readings = two_hours()
    first, second = readings[:700], readings[700:]
    stored(store, first)
    assert rollups.roll() == 700
    assert rollups.roll() == 0  # nothing new: nothing rolled again
    stored(store, second)
    assert rollups.roll() == len(second)
    assert_same(rolled(store, "minute"), expected(readings, timedelta(minutes=1)))
    assert_same(rolled(store, "hour"), expected(readings, timedelta(hours=1)))


def test_rollups__a_late_reading_is_rolled_into_its_old_minute_and_hour(
    store: SqlStore, rollups: DepotRollups
) -> None:
    readings = two_hours()
    stored(store, readings)
    rollups.roll()
    # An hour later a node's outbox drains a reading of the first minute: colder than any.
    late = sample(COLD, HOUR + timedelta(seconds=5), -1.5)
    stored(store, [late])
    assert rollups.roll() == 1
    minute = rolled(store, "minute")[(COLD, HOUR)]
    hour = rolled(store, "hour")[(COLD, HOUR)]
    assert minute["temperature_min_c"] == hour["temperature_min_c"] == -1.5
    assert_same(rolled(store, "minute"), expected([*readings, late], timedelta(minutes=1)))
    assert_same(rolled(store, "hour"), expected([*readings, late], timedelta(hours=1)))


def test_rollups__a_redelivered_batch_counts_once(store: SqlStore, rollups: DepotRollups) -> None:
    gates = Gates("north")
    batch = gates.inbound("d01", DepotReadingBatch, readings=tuple(two_hours()[:50]))
    store.write([batch])
    rollups.roll()
    store.write([batch])  # the broker delivered it again
    assert rollups.roll() == 0
    assert sum(f["readings"] + f["faults"] for f in rolled(store, "hour").values()) == 50


def test_rollups__restart_in_the_middle_rolls_the_rest_once(settings: StoreSection) -> None:
    readings = two_hours()
    first = open_store(settings)
    stored(first, readings)
    part = first.roll_depot_readings(limit=333)  # a pass, then the gateway stops
    assert part.readings == 333
    assert first.depot_rollup_backlog() == len(readings) - 333
    first.close()
    again = open_store(settings)
    try:
        assert DepotRollups(again, settings, Clock()).roll() == len(readings) - 333
        assert_same(rolled(again, "minute"), expected(readings, timedelta(minutes=1)))
        assert_same(rolled(again, "hour"), expected(readings, timedelta(hours=1)))
    finally:
        again.close()


def test_rollups__two_gateways_storing_and_rolling_side_by_side_take_each_reading_once(
    store: SqlStore, settings: StoreSection
) -> None:
    # Two gateways on one database: each stores its own node's batches while both roll.
    # A pass must not move the watermark past a reading stored later with a lower arrival.
    readings = two_hours()
    other, third = open_store(settings), open_store(settings)
    writing = {"d01": store, "d02": other, "d03": third}
    done = threading.Event()
    faults: list[BaseException] = []

    def ingest(node: str) -> None:
        gates = Gates("north")
        try:
            for at in range(0, len(readings), 10):  # small batches: many commits
                batch = tuple(readings[at : at + 10])
                writing[node].write([gates.inbound(node, DepotReadingBatch, readings=batch)])
        except BaseException as fault:
            faults.append(fault)

    def roll() -> None:
        try:
            while not done.is_set():
                for gateway in (store, other):
                    gateway.roll_depot_readings(limit=37)
        except BaseException as fault:
            faults.append(fault)

    threads = [threading.Thread(target=ingest, args=(node,)) for node in writing]
    roller = threading.Thread(target=roll)
    try:
        for thread in [*threads, roller]:
            thread.start()
        for thread in threads:
            thread.join(120)
        done.set()
        roller.join(120)
        assert faults == []
        while other.roll_depot_readings(limit=1000).readings:
            pass
        assert store.depot_rollup_backlog() == 0
        for node in writing:
            assert_same(
                rolled(store, "minute", node=node), expected(readings, timedelta(minutes=1))
            )
            assert_same(rolled(store, "hour", node=node), expected(readings, timedelta(hours=1)))
    finally:
        done.set()
        other.close()
        third.close()


@contextmanager
def write_lock_held_elsewhere(store: SqlStore, settings: StoreSection) -> Iterator[None]:
    """Another process holds the store's write lock; the store waits 50 ms at most for it.
    How a writer is kept out is the engine's own: a SQLite write transaction, or the
    PostgreSQL store's advisory write lock."""
    if settings.url is None:
        other = sqlite3.connect(settings.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        store._conn().execute("PRAGMA busy_timeout = 50")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    holder = psycopg.connect(settings.url, autocommit=True)
    holder.execute(f"SELECT pg_advisory_lock({WRITE_LOCK})")
    store._conn().execute("SET lock_timeout = '50ms'")
    try:
        yield
    finally:
        holder.close()
        store._conn().execute("RESET lock_timeout")


def test_rollups__a_pass_that_fails_leaves_nothing_half_done(
    store: SqlStore, rollups: DepotRollups, settings: StoreSection
) -> None:
    readings = two_hours()[:200]
    stored(store, readings)
    # Another process holds the write lock: the pass times out, nothing moved.
    refused = pytest.raises((sqlite3.OperationalError, StoreUnavailable), match="lock")
    with write_lock_held_elsewhere(store, settings), refused:
        rollups.roll()
    assert store.depot_rollup_backlog() == 200
    assert rollups.roll() == 200
    assert_same(rolled(store, "minute"), expected(readings, timedelta(minutes=1)))


def test_rollups__readings_stored_before_the_migration_are_rolled(tmp_path: Path) -> None:
    # SQLite-only: a file of SQLite's migration history (before 0012) brought forward.
    db = tmp_path / "gateway.db"
    conn = sqlite3.connect(db, isolation_level=None)
    apply_migrations(conn, tuple(m for m in MIGRATIONS if m.name < "0012"))
    at, later = utc_text(HOUR), utc_text(HOUR + timedelta(seconds=10))
    conn.executemany(
        "INSERT INTO depot_readings (event_id, site, node, sensor, bus_address, at, status, "
        "temperature_c, humidity_pct) VALUES (?,?,?,?,?,?,?,?,?)",
        [("e1", "north", "d01", COLD, 1, at, "ok", 4.0, 50.0),
         ("e1", "north", "d01", SHELF, 2, at, "ok", 20.0, 55.0),
         ("e2", "north", "d01", COLD, 1, later, "crc", None, None)],
    )  # fmt: skip
    conn.close()
    store = SqliteStore(db)
    try:
        kept = store.depot_readings("north", "d01", HOUR, HOUR + timedelta(minutes=1))
        assert [(r.zone, r.temperature_c) for r in kept] == [
            (COLD, 4.0),
            (SHELF, 20.0),
            (COLD, None),
        ]
        assert store.roll_depot_readings(limit=100).readings == 3
        hours = sorted(rolled(store, "hour").items())
        assert [(zone, f["readings"], f["faults"], f["temperature_mean_c"])
                for (zone, _), f in hours] == [(COLD, 1, 1, 4.0), (SHELF, 1, 0, 20.0)]  # fmt: skip
    finally:
        store.close()


# --- retention --------------------------------------------------------------------------


def days_of(store: SqlStore, start: datetime, days: int) -> list[DepotReading]:
    """One reading a minute of the cold store over whole days from `start`."""
    readings = [
        sample(COLD, start + timedelta(minutes=m), 4.0 + (m % 60) / 10) for m in range(days * 1440)
    ]
    stored(store, readings)
    return readings


def raw_count(store: SqlStore) -> int:
    return int(look_inside(store, "SELECT COUNT(*) FROM depot_readings")[0][0])


def test_retention__old_raw_readings_go_their_rollups_stay(
    store: SqlStore, rollups: DepotRollups, clock: Clock
) -> None:
    old_day = NOW - timedelta(days=40)
    start = datetime(old_day.year, old_day.month, old_day.day, tzinfo=UTC)
    recent = NOW - timedelta(days=2)
    recent_start = datetime(recent.year, recent.month, recent.day, tzinfo=UTC)
    old = days_of(store, start, 1)
    kept = days_of(store, recent_start, 1)
    rollups.roll()
    hours_before = rolled(store, "hour")
    assert rollups.purge_all() == (len(old), 0)
    assert raw_count(store) == len(kept)
    assert store.depot_readings("north", "d01", start, start + timedelta(days=1)) == []
    assert len(
        store.depot_readings("north", "d01", recent_start, recent_start + timedelta(days=1))
    ) == len(kept)
    # Minute rollups are kept 90 days, hours for good: both still there, unchanged.
    assert rolled(store, "hour") == hours_before
    assert_same(rolled(store, "minute"), expected([*old, *kept], timedelta(minutes=1)))
    # 60 days on the old day's minutes go too (past 90 days), its hours stay.
    clock.now = NOW + timedelta(days=60)
    raw, minutes = rollups.purge_all()
    assert (raw, minutes) == (len(kept), 1440)
    assert rolled(store, "hour") == hours_before
    assert {bucket.date() for _, bucket in rolled(store, "minute")} == {recent_start.date()}


def test_retention__the_summary_of_a_day_inside_it_is_unchanged(
    settings: StoreSection, store: SqlStore, rollups: DepotRollups
) -> None:
    api = depot_api(settings, store)
    days_of(store, datetime(2026, 10, 20, 16, tzinfo=UTC), 1)  # Oct 21 in Shanghai: past 30 days
    days_of(store, datetime(2026, 12, 3, 16, tzinfo=UTC), 1)  # Dec 4 in Shanghai: inside them
    rollups.roll()

    def summary(day: str) -> Any:
        url = f"/api/depots/north/d01/summary?day={day}"
        return api.get(url, headers=bearer("depot")).json()

    inside, outside = summary("2026-12-04"), summary("2026-10-21")
    assert inside[0]["readings"] == outside[0]["readings"] == 1440
    rollups.purge_all()
    assert summary("2026-12-04") == inside
    assert summary("2026-10-21")[0]["readings"] == 0  # its raw readings are gone...
    hours = api.get(
        "/api/depots/north/d01/rollups?resolution=hour&from=2026-10-21T00:00:00%2B08:00"
        "&to=2026-10-22T00:00:00%2B08:00",
        headers=bearer("depot"),
    ).json()
    assert sum(h["readings"] for h in hours) == 1440  # ...its hours are not


def test_retention__readings_not_rolled_yet_are_kept(
    store: SqlStore, rollups: DepotRollups
) -> None:
    first = [sample(COLD, NOW - timedelta(days=50), 4.0)]
    stored(store, first)
    rollups.roll()  # the zone is known, its first reading rolled
    old = days_of(store, NOW - timedelta(days=40), 1)
    assert rollups.purge_all() == (1, 0)  # only the reading rolled up is deleted
    assert raw_count(store) == len(old)
    rollups.roll()
    assert rollups.purge_all() == (len(old), 0)
    assert raw_count(store) == 0
    assert_same(rolled(store, "hour"), expected([*first, *old], timedelta(hours=1)))


def test_retention__deletes_in_bounded_chunks(store: SqlStore, rollups: DepotRollups) -> None:
    old = days_of(store, NOW - timedelta(days=40), 1)
    rollups.roll()
    zones = store.depot_series()
    cut = NOW - timedelta(days=30)
    step = store.purge_depot_series(zones, cut, NOW - timedelta(days=90), limit=500)
    assert (step.readings, step.zones_done) == (500, 0)  # one chunk, the zone not finished
    assert raw_count(store) == len(old) - 500
    steps = 1
    while store.purge_depot_series(zones, cut, NOW - timedelta(days=90), limit=500).zones_done == 0:
        steps += 1
    assert raw_count(store) == 0
    assert steps == len(old) // 500


def test_retention__a_reading_arriving_after_its_minute_was_deleted_is_added(
    store: SqlStore, rollups: DepotRollups
) -> None:
    start = datetime(2026, 10, 20, 3, 0, tzinfo=UTC)  # 47 days before NOW
    old = [sample(COLD, start + timedelta(seconds=10 * s), 5.0) for s in range(12)]  # 2 minutes
    stored(store, old)
    rollups.roll()
    rollups.purge_all()
    assert raw_count(store) == 0
    late = [
        sample(COLD, start + timedelta(seconds=25), 9.0),
        sample(COLD, start + timedelta(seconds=30), None),
    ]
    stored(store, late)
    rollups.roll()
    # Added to the kept figures, not rolled again from the one raw reading left.
    assert_same(rolled(store, "minute"), expected([*old, *late], timedelta(minutes=1)))
    assert_same(rolled(store, "hour"), expected([*old, *late], timedelta(hours=1)))
    rollups.purge_all()
    assert raw_count(store) == 0
    rollups.roll()  # nothing new: nothing added twice
    assert_same(rolled(store, "hour"), expected([*old, *late], timedelta(hours=1)))


def test_retention__a_reading_arriving_after_its_minutes_were_deleted_is_added_to_its_hour(
    store: SqlStore, rollups: DepotRollups
) -> None:
    start = datetime(2026, 8, 1, 3, 0, tzinfo=UTC)  # 127 days before NOW: minutes gone too
    old = [sample(COLD, start + timedelta(minutes=m), 5.0) for m in range(60)]
    stored(store, old)
    rollups.roll()
    rollups.purge_all()
    assert rolled(store, "minute") == {}
    late = sample(COLD, start + timedelta(minutes=30, seconds=5), 11.0)
    stored(store, [late])
    rollups.roll()
    assert rolled(store, "minute") == {}
    assert_same(rolled(store, "hour"), expected([*old, late], timedelta(hours=1)))


def test_retention__is_a_step_of_the_tick_at_most_hourly(
    store: SqlStore, rollups: DepotRollups, clock: Clock
) -> None:
    days_of(store, NOW - timedelta(days=40), 1)
    rollups.step()  # rolls, then starts a retention pass
    assert raw_count(store) == 0
    old = [sample(SHELF, NOW - timedelta(days=35), 20.0)]
    stored(store, old)
    rollups.step()
    assert raw_count(store) == 1  # rolled, but the next pass is not due yet
    clock.now += timedelta(hours=1)
    rollups.step()
    assert raw_count(store) == 0


def test_rollups__the_running_gateway_rolls_in_its_tick(
    broker: PrivateBroker, store_section: StoreSection
) -> None:
    readings = two_hours()[:120]
    config = GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01",)),),
        broker=gateway_broker(broker, "gw-rollups"), store=store_section,
        http=HttpSection(port=0), alarms=AlarmSection(check_every_s=0.2),
    )  # fmt: skip
    with running_gateway(config) as gateway:
        stored(gateway.store, readings)  # as ingest stores them
        deadline = time.monotonic() + 10
        while gateway.store.depot_rollup_backlog() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gateway.store.depot_rollup_backlog() == 0
        assert_same(rolled(gateway.store, "minute"), expected(readings, timedelta(minutes=1)))


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"depot_raw_days": 0}, "greater than or equal to 1"),
     ({"depot_raw_days": 3651}, "less than or equal to 3650"),
     ({"depot_raw_days": 60, "depot_minute_days": 30}, "at least depot_raw_days")],
)  # fmt: skip
def test_retention__config_bounds(fields: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StoreSection(**fields)


# --- API --------------------------------------------------------------------------------


def depot_api(settings: StoreSection, store: SqlStore) -> TestClient:
    site = SiteSection(name="north", gates=("g01",), depots=("d01",), zones={"d01": {COLD: "cold"}})
    config = GatewayConfig(sites=(site,), store=settings)
    live = LiveFeed()
    context = GatewayContext(
        config=config, store=store, alarms=AlarmBook(store, lambda alert: None, live), live=live
    )
    return open_api(context)


@pytest.fixture
def api(settings: StoreSection, store: SqlStore, rollups: DepotRollups) -> TestClient:
    stored(store, two_hours())
    rollups.roll()
    return depot_api(settings, store)


RANGE = "from=2026-12-01T10:00:00%2B08:00&to=2026-12-01T12:00:00%2B08:00"  # the two hours


def test_api__hours_and_minutes_of_a_range(api: TestClient, store: SqlStore) -> None:
    response = api.get(f"/api/depots/north/d01/rollups?{RANGE}", headers=bearer("depot"))
    assert response.status_code == 200, response.text
    hours = response.json()
    assert [(h["zone"], h["bucket"]) for h in hours] == [
        (COLD, "2026-12-01T02:00:00Z"), (SHELF, "2026-12-01T02:00:00Z"),
        (COLD, "2026-12-01T03:00:00Z"), (SHELF, "2026-12-01T03:00:00Z"),
    ]  # fmt: skip
    want = expected(two_hours(), timedelta(hours=1))[(COLD, HOUR)]
    assert hours[0]["readings"] == want["readings"]
    assert hours[0]["temperature_mean_c"] == pytest.approx(want["temperature_mean_c"])
    minutes = api.get(
        f"/api/depots/north/d01/rollups?resolution=minute&zone={SHELF}&{RANGE}",
        headers=bearer("command"),
    ).json()
    assert len(minutes) == 120
    assert {m["zone"] for m in minutes} == {SHELF}
    assert minutes == sorted(minutes, key=lambda m: m["bucket"])


def test_api__bounds_include_from_and_exclude_to(api: TestClient) -> None:
    url = (
        "/api/depots/north/d01/rollups?resolution=minute"
        "&from=2026-12-01T02:00:00Z&to=2026-12-01T02:02:00Z"
    )
    minutes = api.get(url, headers=bearer("depot")).json()
    assert sorted({m["bucket"] for m in minutes}) == [
        "2026-12-01T02:00:00Z",
        "2026-12-01T02:01:00Z",
    ]


def test_api__csv_opens_in_excel(api: TestClient) -> None:
    response = api.get(
        f"/api/depots/north/d01/rollups?zone={COLD}&format=csv&{RANGE}", headers=bearer("depot")
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert "gatepost-north-d01-hour-2026-12-01T0200.csv" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    want = expected(two_hours(), timedelta(hours=1))
    first, second = want[(COLD, HOUR)], want[(COLD, HOUR + timedelta(hours=1))]
    assert [(r["zone"], r["bucket"], int(r["readings"]), int(r["faults"])) for r in rows] == [
        (COLD, "2026-12-01T02:00:00+00:00", first["readings"], first["faults"]),
        (COLD, "2026-12-01T03:00:00+00:00", second["readings"], second["faults"]),
    ]  # fmt: skip
    assert float(rows[0]["temperature_max_c"]) == first["temperature_max_c"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [("south/d01", "unknown-site"), ("north/g01", "unknown-depot"), ("north/d09", "unknown-depot")],
)
def test_api__unknown__404(api: TestClient, path: str, reason: str) -> None:
    response = api.get(f"/api/depots/{path}/rollups?{RANGE}", headers=bearer("command"))
    assert (response.status_code, response.json()["reason"]) == (404, reason)


def test_api__registrars_may_not_read_them(api: TestClient) -> None:
    url = f"/api/depots/north/d01/rollups?{RANGE}"
    assert api.get(url, headers=bearer("registrar")).status_code == 403
    assert api.get(url).status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-12-01T10:00:00&to=2026-12-01T12:00:00",  # no UTC offset
        "from=2026-12-01T12:00:00Z&to=2026-12-01T12:00:00Z",  # empty
        "from=2026-12-01T12:00:00Z&to=2026-12-01T10:00:00Z",  # backwards
        "from=2026-12-01T00:00:00Z&to=2026-12-03T00:00:01Z&resolution=minute",  # > 2 days
        "from=2026-01-01T00:00:00Z&to=2027-02-05T00:00:01Z",  # > 400 days of hours
        "from=1999-12-31T00:00:00Z&to=2000-01-01T01:00:00Z",
        "from=yesterday&to=2026-12-01T12:00:00Z",
        "to=2026-12-01T12:00:00Z",  # no start
        "from=2026-12-01T12:00:00Z",  # no end
        "from=9999-12-31T00:00:00Z&to=9999-12-31T01:00:00Z",
        f"{RANGE}&resolution=second",
        f"{RANGE}&zone=Cold%20Store",
        f"{RANGE}&zone={'z' * 200}",
        f"{RANGE}&format=xlsx",
    ],
)
def test_api__bad_ranges__422(api: TestClient, query: str) -> None:
    response = api.get(f"/api/depots/north/d01/rollups?{query}", headers=bearer("depot"))
    assert response.status_code == 422, response.text


def test_api__at_most_10000_rows(
    settings: StoreSection, store: SqlStore, rollups: DepotRollups
) -> None:
    zones = ("z1", "z2", "z3", "z4")
    start = datetime(2026, 12, 1, tzinfo=UTC)
    stored(
        store, [sample(z, start + timedelta(minutes=m), 5.0) for m in range(2880) for z in zones]
    )
    rollups.roll()
    api = depot_api(settings, store)
    url = (
        "/api/depots/north/d01/rollups?resolution=minute"
        "&from=2026-12-01T00:00:00Z&to=2026-12-03T00:00:00Z"
    )
    found = api.get(url, headers=bearer("command")).json()
    assert len(found) == 10_000  # of 11,520: the first ones by time
    assert found[-1]["bucket"] == "2026-12-02T17:39:00Z"
    assert [f["zone"] for f in found[:4]] == list(zones)
