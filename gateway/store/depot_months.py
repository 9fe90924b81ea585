"""Month partitions of raw depot readings on PostgreSQL (migration 0024), for SqlStore.

`depot_readings_2026_12` holds the readings of December 2026 (UTC, by `at`); the DEFAULT
partition holds any month not made (yet). Retention makes the months ahead and drops a
month whole once it is past `depot_raw_days` and rolled up (gateway/depot_rollups.py); no
raw reading in a month partition is deleted by rows. SQLite has no partitions: every
method here does nothing there. docs/gateway.md, "Raw depot readings on PostgreSQL".
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from gateway.store.records import utc_text
from gateway.store.rollups import DEFAULT_PARTITION, floor_to, watermark
from gateway.store.sql import Connection

MONTHS_AHEAD = 2  # months made ahead of the current one
_MONTH_NAME = re.compile(r"depot_readings_(\d{4})_(\d{2})")
_READING_COLUMNS = (
    "arrival, event_id, site, node, sensor, bus_address, at, status, temperature_c, humidity_pct"
)
_PARTITIONS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = CAST('depot_readings' AS regclass)"
)
# How long partition DDL waits for a table lock behind a long read: it holds the store's
# write lock meanwhile, so ingest waits no longer than that; a month not made or dropped
# now is tried again at the next retention pass.
_DDL_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '300ms'"


@dataclass(frozen=True)
class DroppedMonth:
    """A month partition of raw readings dropped by retention, and how many readings it
    held (counted just before)."""

    partition: str
    readings: int


class DepotMonths:
    """Month partitions of depot_readings (mixed into SqlStore)."""

    engine: str

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def ensure_depot_partitions(self, now: datetime, ahead: int = MONTHS_AHEAD) -> list[str]:
        """Make the partitions of `now`'s month and the `ahead` next ones where missing
        (PostgreSQL; SQLite has none): readings of a month not made wait in DEFAULT, and
        are moved into their month when it is made.

        Returns:
            The partitions made now (none when all were there: then no lock is taken).
        """
        if self.engine != "postgresql":
            return []
        first = _month_of(now)
        months = [first]
        for _ in range(ahead):
            months.append(_next_month(months[-1]))
        have = {name for (name,) in self._conn().execute(_PARTITIONS)}
        if all(_partition(month) in have for month in months):
            return []
        # The write lock: two replicas making one month queue, the second finds it made.
        with self._transaction() as conn:
            conn.execute(_DDL_LOCK_TIMEOUT)
            return [_partition(month) for month in months if make_depot_month(conn, month)]

    def drop_depot_month(self, raw_before: datetime) -> DroppedMonth | None:
        """Drop the oldest month partition whose readings may all go by retention's rules:
        the month ends by `raw_before` (a minute, as purge_depot_series cuts) and each of
        its readings is rolled up. PostgreSQL only; the caller asks again until None.

        Every zone's mark moves to the month's end first, as a row purge at `raw_before`
        moves it: a reading arriving later for a minute of that month is added to the
        minute's kept figures, not rolled again from raw readings that are gone.

        Returns:
            The month dropped, or None when no month may go (they go row by row then).
        """
        if self.engine != "postgresql":
            return None
        raw_cut = utc_text(floor_to(raw_before, timedelta(minutes=1)))
        conn = self._conn()
        months = sorted(
            month
            for (name,) in conn.execute(_PARTITIONS)
            if (month := _month_named(name)) is not None and _bound(_next_month(month)) <= raw_cut
        )
        for month in months:
            name, end = _partition(month), _bound(_next_month(month))
            # Counted before the lock (a full read of the month must not hold ingest up).
            readings = int(conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0])  # noqa: S608
            with self._transaction() as conn:
                conn.execute(_DDL_LOCK_TIMEOUT)
                unrolled = f"SELECT 1 FROM {name} WHERE arrival > ? LIMIT 1"  # noqa: S608
                if conn.execute(unrolled, (watermark(conn),)).fetchone() is not None:
                    continue
                conn.execute(
                    "UPDATE depot_series SET raw_before = MAX(COALESCE(raw_before, ''), ?)",
                    (end,),
                )
                conn.execute(f"DROP TABLE {name}")
            return DroppedMonth(name, readings)
        return None


def make_depot_month(conn: Connection, month: date) -> bool:
    """Make `month`'s partition of depot_readings unless it is there (PostgreSQL, inside a
    transaction holding the store's write lock).

    PostgreSQL refuses a partition whose rows DEFAULT holds: those are moved in, DEFAULT
    detached meanwhile (a lock on depot_readings either way).

    Returns:
        Whether it was made now.
    """
    name = _partition(month)
    if conn.execute("SELECT to_regclass(CAST(? AS TEXT))", (name,)).fetchone()[0] is not None:
        return False
    low, high = _bound(month), _bound(_next_month(month))
    create = (
        f"CREATE TABLE {name} PARTITION OF depot_readings FOR VALUES FROM ('{low}') TO ('{high}')"
    )
    strays = f"SELECT 1 FROM {DEFAULT_PARTITION} WHERE at >= ? AND at < ? LIMIT 1"  # noqa: S608
    if conn.execute(strays, (low, high)).fetchone() is None:
        conn.execute(create)
        return True
    conn.execute(f"ALTER TABLE depot_readings DETACH PARTITION {DEFAULT_PARTITION}")
    conn.execute(create)
    conn.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE at >= ? AND at < ? "  # noqa: S608
        f"RETURNING {_READING_COLUMNS}) INSERT INTO depot_readings ({_READING_COLUMNS}) "
        f"SELECT {_READING_COLUMNS} FROM moved",
        (low, high),
    )
    conn.execute(f"ALTER TABLE depot_readings ATTACH PARTITION {DEFAULT_PARTITION} DEFAULT")
    return True


def _month_of(at: datetime) -> date:
    at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _partition(month: date) -> str:
    return f"depot_readings_{month.year:04d}_{month.month:02d}"


def _month_named(name: str) -> date | None:
    found = _MONTH_NAME.fullmatch(name)
    return date(int(found[1]), int(found[2]), 1) if found else None


def _bound(month: date) -> str:
    """A month's first instant as stored times are written (`at` compares to it as text)."""
    return utc_text(datetime(month.year, month.month, 1, tzinfo=UTC))
