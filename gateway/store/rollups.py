"""Depot rollups in the store, either engine: each zone's minutes and hours, and retention.

Raw readings carry an arrival number (migration 0012). A rollup pass takes the readings
stored since the watermark (`counters.depot_rolled_through`), in arrival order, rolls each
minute they fall in again from its raw readings (replacing it), and adds their figures to
each hour's (count, min, max, weighted mean). The watermark moves in the same
transaction, so a pass that fails leaves nothing half done, and no reading is added to
its hour twice. A late reading is rolled into its (old) minute and hour as soon as it is
stored, whatever its time.

Retention deletes raw readings only once they are rolled (arrival at or below the
watermark), and minute rollups after them. Each zone keeps how far it was deleted
(`depot_series`): a reading that arrives later still for a minute whose raw readings are
gone is added to that minute's and hour's figures (merged) instead of rolling them again
from what is left.

On PostgreSQL raw readings are partitioned by month of `at` (migration 0024,
gateway/store/depot_months.py): a month goes whole once all its readings are past
retention and rolled, with no row deletes or vacuum; only the DEFAULT partition's
readings (a month not made) go row by row, as every reading does on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.store.depot_records import DepotResolution, DepotRollupRecord
from gateway.store.records import utc_text
from gateway.store.sql import Connection

Series = tuple[str, str, str]  # site, node, zone

_WATERMARK = "depot_rolled_through"
# The figures of the ok readings of a set of raw rows, and the number of the others.
_RAW_FIGURES = """
    COALESCE(SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status != 'ok' THEN 1 ELSE 0 END), 0),
    MIN(CASE WHEN status = 'ok' THEN temperature_c END),
    MAX(CASE WHEN status = 'ok' THEN temperature_c END),
    AVG(CASE WHEN status = 'ok' THEN temperature_c END),
    MIN(CASE WHEN status = 'ok' THEN humidity_pct END),
    MAX(CASE WHEN status = 'ok' THEN humidity_pct END),
    AVG(CASE WHEN status = 'ok' THEN humidity_pct END)
"""
# The figures of several buckets' together: means weighted by their ok readings.
_SUMMED_FIGURES = """
    COALESCE(SUM(readings), 0), COALESCE(SUM(faults), 0),
    MIN(temperature_min_c), MAX(temperature_max_c),
    SUM(temperature_mean_c * readings) / NULLIF(SUM(readings), 0),
    MIN(humidity_min_pct), MAX(humidity_max_pct),
    SUM(humidity_mean_pct * readings) / NULLIF(SUM(readings), 0)
"""
_COLUMNS = (
    "readings, faults, temperature_min_c, temperature_max_c, temperature_mean_c, "
    "humidity_min_pct, humidity_max_pct, humidity_mean_pct"
)
_TYPED_COLUMNS = ", ".join(
    f"{name} {'BIGINT' if name in ('readings', 'faults') else 'DOUBLE PRECISION'}"
    for name in _COLUMNS.split(", ")
)
# Stored buckets: the minute's or hour's start as stored times are written.
_MINUTE_TAIL = ":00.000000+00:00"
_HOUR_TAIL = ":00:00.000000+00:00"
# The pass's new readings per zone and minute (minute 'YYYY-MM-DDTHH:MM', hour
# 'YYYY-MM-DDTHH': prefixes of stored times, so they bound ranges of them as they are).
# mode: raw (the minute is rolled again from its raw readings), merge (those are deleted:
# the new ones are added to its figures) or skip (its minute rollup is deleted too).
# A temporary table is the connection's own on both engines (unqualified: a temporary
# table's name is looked up first on both).
_NEW_TABLE = f"""
CREATE TEMP TABLE IF NOT EXISTS depot_roll_new (
    site TEXT NOT NULL, node TEXT NOT NULL, zone TEXT NOT NULL, minute TEXT NOT NULL,
    hour TEXT NOT NULL, mode TEXT NOT NULL, {_TYPED_COLUMNS},
    PRIMARY KEY (site, node, zone, minute)
)
"""
_PG_EMPTIED = " ON COMMIT DELETE ROWS"
# Grouped by the hour and the zone's marks too: they are one per group (the hour is the
# minute's prefix, a zone has one depot_series row), and PostgreSQL selects only what is
# grouped or aggregated.
_NEW_FILL = f"""
INSERT INTO depot_roll_new
SELECT r.site, r.node, r.sensor, substr(r.at, 1, 16) AS minute, substr(r.at, 1, 13),
    CASE WHEN s.raw_before IS NULL OR substr(r.at, 1, 16) || '{_MINUTE_TAIL}' >= s.raw_before
         THEN 'raw'
         WHEN s.minutes_before IS NULL
              OR substr(r.at, 1, 16) || '{_MINUTE_TAIL}' >= s.minutes_before
         THEN 'merge' ELSE 'skip' END,
    {_RAW_FIGURES}
FROM depot_readings r
JOIN depot_series s ON s.site = r.site AND s.node = r.node AND s.zone = r.sensor
WHERE r.arrival > ? AND r.arrival <= ?
GROUP BY r.site, r.node, r.sensor, substr(r.at, 1, 16), substr(r.at, 1, 13), s.raw_before,
    s.minutes_before
"""  # noqa: S608
# A minute's stored times are those with its prefix: from the prefix itself up to (not
# including) the prefix followed by ';', the character after the ':' that follows it.
_REPLACE = "ON CONFLICT (site, node, zone, resolution, bucket) DO UPDATE SET " + ", ".join(
    f"{name} = excluded.{name}" for name in _COLUMNS.split(", ")
)
_MINUTES_FROM_RAW = f"""
INSERT INTO depot_rollups (site, node, zone, resolution, bucket, {_COLUMNS})
SELECT n.site, n.node, n.zone, 'minute', n.minute || '{_MINUTE_TAIL}', {_RAW_FIGURES}
FROM depot_roll_new n
JOIN depot_readings r ON r.site = n.site AND r.node = n.node AND r.sensor = n.zone
    AND r.at >= n.minute AND r.at < (n.minute || ';')
WHERE n.mode = 'raw'
GROUP BY n.site, n.node, n.zone, n.minute
{_REPLACE}
"""  # noqa: S608
# The new readings' figures added to a bucket's (its count, min, max, weighted mean):
# every SET expression reads the row as it was (named by its table: PostgreSQL finds a
# bare column name ambiguous beside `excluded`).
_ADD = """
ON CONFLICT (site, node, zone, resolution, bucket) DO UPDATE SET
    readings = depot_rollups.readings + excluded.readings,
    faults = depot_rollups.faults + excluded.faults,
    temperature_min_c = MIN(
        COALESCE(depot_rollups.temperature_min_c, excluded.temperature_min_c),
        COALESCE(excluded.temperature_min_c, depot_rollups.temperature_min_c)),
    temperature_max_c = MAX(
        COALESCE(depot_rollups.temperature_max_c, excluded.temperature_max_c),
        COALESCE(excluded.temperature_max_c, depot_rollups.temperature_max_c)),
    temperature_mean_c = (
        COALESCE(depot_rollups.temperature_mean_c * depot_rollups.readings, 0)
        + COALESCE(excluded.temperature_mean_c * excluded.readings, 0))
        / NULLIF(depot_rollups.readings + excluded.readings, 0),
    humidity_min_pct = MIN(
        COALESCE(depot_rollups.humidity_min_pct, excluded.humidity_min_pct),
        COALESCE(excluded.humidity_min_pct, depot_rollups.humidity_min_pct)),
    humidity_max_pct = MAX(
        COALESCE(depot_rollups.humidity_max_pct, excluded.humidity_max_pct),
        COALESCE(excluded.humidity_max_pct, depot_rollups.humidity_max_pct)),
    humidity_mean_pct = (
        COALESCE(depot_rollups.humidity_mean_pct * depot_rollups.readings, 0)
        + COALESCE(excluded.humidity_mean_pct * excluded.readings, 0))
        / NULLIF(depot_rollups.readings + excluded.readings, 0)
"""
# Minutes whose raw readings are deleted (their figures kept): the new ones added.
_MINUTES_ADDED = f"""
INSERT INTO depot_rollups (site, node, zone, resolution, bucket, {_COLUMNS})
SELECT site, node, zone, 'minute', minute || '{_MINUTE_TAIL}', {_COLUMNS}
FROM depot_roll_new WHERE mode = 'merge'
{_ADD}
"""  # noqa: S608
# Every hour the pass touches: its new readings added, whatever became of their minutes.
_HOURS_ADDED = f"""
INSERT INTO depot_rollups (site, node, zone, resolution, bucket, {_COLUMNS})
SELECT site, node, zone, 'hour', hour || '{_HOUR_TAIL}', {_SUMMED_FIGURES}
FROM depot_roll_new WHERE true GROUP BY site, node, zone, hour
{_ADD}
"""  # noqa: S608
_R_COLUMNS = ", ".join(f"r.{c}" for c in _COLUMNS.split(", "))
# CROSS JOIN: the zones first (SQLite keeps that order), each read by a range of its key;
# the join's terms in WHERE (PostgreSQL's CROSS JOIN takes no ON).
_READ = f"""
SELECT r.site, r.node, r.zone, r.resolution, r.bucket, {_R_COLUMNS}
FROM depot_series s
CROSS JOIN depot_rollups r
WHERE r.site = s.site AND r.node = s.node AND r.zone = s.zone
    AND r.resolution = ? AND r.bucket >= ? AND r.bucket < ?
    AND s.site = ? AND s.node = ? AND s.zone = COALESCE(?, s.zone)
ORDER BY r.bucket, r.zone LIMIT ?
"""  # noqa: S608

# The DEFAULT partition of depot_readings on PostgreSQL (gateway/store/depot_months.py):
# the only raw readings retention deletes by rows there.
DEFAULT_PARTITION = "depot_readings_default"


@dataclass(frozen=True)
class Rolled:
    """What one rollup pass did: raw readings taken, minutes and hours written, and the
    watermark after it (the newest arrival rolled)."""

    readings: int
    minutes: int
    hours: int
    through: int


@dataclass(frozen=True)
class Purged:
    """What one retention step deleted, and how many of the zones it was given it finished
    (the first ones; the rest are for the next step)."""

    readings: int
    minutes: int
    zones_done: int


class Rollups:
    """Depot rollups and retention of SqlStore (mixed in)."""

    engine: str

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # --- rolling up -----------------------------------------------------------------

    def roll_depot_readings(self, limit: int) -> Rolled:
        """Roll up to `limit` readings past the watermark (in arrival order), one transaction."""
        conn = self._conn()
        through = watermark(conn)
        sql = "SELECT 1 FROM depot_readings WHERE arrival > ? LIMIT 1"
        if conn.execute(sql, (through,)).fetchone() is None:
            return Rolled(0, 0, 0, through)  # nothing new: no write lock taken from ingest
        # The store's write transaction (on PostgreSQL the exclusive write lock, which waits
        # for every ingest batch in flight): each arrival up to the newest is committed or
        # gone, so no reading committed later can fall below the watermark.
        with self._transaction() as conn:
            through = watermark(conn)
            upto = conn.execute(
                "SELECT MAX(arrival) FROM (SELECT arrival FROM depot_readings "
                "WHERE arrival > ? ORDER BY arrival LIMIT ?) AS pass",
                (through, limit),
            ).fetchone()[0]
            if upto is None:
                return Rolled(0, 0, 0, through)
            window = (through, upto)
            # Set-based: a statement for all the buckets of the pass, not a few per bucket.
            conn.execute(
                "INSERT INTO depot_series (site, node, zone) SELECT DISTINCT site, node, "
                "sensor FROM depot_readings WHERE arrival > ? AND arrival <= ? "
                "ON CONFLICT DO NOTHING",
                window,
            )
            # PostgreSQL never vacuums a temporary table: emptied at each commit there, it
            # does not grow with dead rows; SQLite's is emptied by the DELETE.
            conn.execute(_NEW_TABLE + _PG_EMPTIED if self.engine == "postgresql" else _NEW_TABLE)
            conn.execute("DELETE FROM depot_roll_new")
            conn.execute(_NEW_FILL, window)
            conn.execute(_MINUTES_FROM_RAW)
            conn.execute(_MINUTES_ADDED)
            conn.execute(_HOURS_ADDED)
            readings, minutes, hours = conn.execute(
                "SELECT SUM(readings + faults), SUM(CASE WHEN mode != 'skip' THEN 1 ELSE 0 END), "
                "COUNT(DISTINCT site || '/' || node || '/' || zone || '/' || hour) "
                "FROM depot_roll_new"
            ).fetchone()
            conn.execute("UPDATE counters SET value = ? WHERE name = ?", (upto, _WATERMARK))
        return Rolled(readings, minutes, hours, upto)

    def depot_rollup_backlog(self) -> int:
        """How many stored readings are not rolled up yet."""
        conn = self._conn()
        through = watermark(conn)
        sql = "SELECT COUNT(*) FROM depot_readings WHERE arrival > ?"
        return int(conn.execute(sql, (through,)).fetchone()[0])

    # --- retention --------------------------------------------------------------------

    def depot_series(self) -> list[Series]:
        """Every zone rolled up so far, by site, node, zone."""
        rows = self._conn().execute("SELECT site, node, zone FROM depot_series ORDER BY 1, 2, 3")
        return [(site, node, zone) for site, node, zone in rows]

    def purge_depot_series(
        self, zones: Sequence[Series], raw_before: datetime, minutes_before: datetime,
        limit: int,
    ) -> Purged:  # fmt: skip
        """Delete the zones' rolled raw readings before `raw_before` (a minute) and minute
        rollups before `minutes_before` (an hour, never past raw_before's), in one
        transaction, at most `limit` rows; hour rollups stay.

        On PostgreSQL only the DEFAULT partition's readings go row by row: a month's go
        whole with their partition (`drop_depot_month`), so no month is thinned by deletes
        whose space nothing would reuse. Every zone's mark moves all the same: a reading
        arriving later for a minute below it is added to the minute's kept figures, which
        is right whether that minute's raw readings are gone or still there.
        """
        raw_cut = utc_text(floor_to(raw_before, timedelta(minutes=1)))
        raw_table = DEFAULT_PARTITION if self.engine == "postgresql" else "depot_readings"
        minute_cut = utc_text(floor_to(min(minutes_before, raw_before), timedelta(hours=1)))
        readings = minutes = done = 0
        with self._transaction() as conn:
            through = watermark(conn)
            for site, node, zone in zones:
                # The mark first: a pass that rolls this zone between two steps adds what
                # arrives for a bucket below it to the kept figures.
                conn.execute(
                    "UPDATE depot_series SET raw_before = MAX(COALESCE(raw_before, ''), ?), "
                    "minutes_before = MAX(COALESCE(minutes_before, ''), ?) "
                    "WHERE site=? AND node=? AND zone=?",
                    (raw_cut, minute_cut, site, node, zone),
                )
                ask = limit - readings - minutes
                readings += (gone := conn.execute(
                    f"DELETE FROM {raw_table} WHERE arrival IN (SELECT arrival FROM "  # noqa: S608
                    f"{raw_table} WHERE site=? AND node=? AND sensor=? AND at < ? "
                    "AND arrival <= ? LIMIT ?)",
                    (site, node, zone, raw_cut, through, ask),
                ).rowcount)  # fmt: skip
                if gone == ask:
                    break
                ask -= gone
                minutes += (gone := conn.execute(
                    "DELETE FROM depot_rollups WHERE site=? AND node=? AND zone=? "
                    "AND resolution='minute' AND bucket IN (SELECT bucket FROM depot_rollups "
                    "WHERE site=? AND node=? AND zone=? AND resolution='minute' AND bucket < ? "
                    "LIMIT ?)",
                    (site, node, zone, site, node, zone, minute_cut, ask),
                ).rowcount)  # fmt: skip
                if gone == ask:
                    break
                done += 1
        return Purged(readings, minutes, done)

    # --- reading ---------------------------------------------------------------------

    def depot_rollups(
        self, site: str, node: str, resolution: DepotResolution, since: datetime,
        until: datetime, *, zone: str | None = None, limit: int = 10_000,
    ) -> list[DepotRollupRecord]:  # fmt: skip
        cursor = self._conn().execute(
            _READ,
            (resolution, utc_text(since), utc_text(until), site, node, zone, limit),
        )
        names = [d[0] for d in cursor.description]
        return [DepotRollupRecord(**dict(zip(names, row, strict=True))) for row in cursor]


def watermark(conn: Connection) -> int:
    """The newest arrival rolled up: readings at or below it are in their rollups."""
    row = conn.execute("SELECT value FROM counters WHERE name = ?", (_WATERMARK,)).fetchone()
    return int(row[0])


def floor_to(at: datetime, width: timedelta) -> datetime:
    """`at` in UTC, down to a whole `width` (a minute, an hour)."""
    at = at.astimezone(UTC)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return at - (at - epoch) % width
