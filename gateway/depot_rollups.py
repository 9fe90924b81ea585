"""Depot time series: stored readings rolled up into each zone's minutes and hours, and
raw readings and minute rollups deleted past their retention, in the gateway's tick.

Both run off ingest's path: ingest only stores readings (each with its arrival number);
the tick rolls what arrived since the watermark the store keeps, so a restart loses
nothing and rolls nothing twice, and a late reading lands in its old bucket. Every step
is one bounded transaction, so ingest never waits long for the write lock: a backlog (a
first start on an old store, a node's outbox drained after days) is rolled over several
ticks, and retention deletes in chunks. On PostgreSQL each retention pass first makes the
month partitions ahead and drops whole months past retention (gateway/store/depot_months.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.store.base import DepotRollupStore, StoreUnavailable
from gateway.store.rollups import Series
from gateway.store.settings import StoreSection

log = logging.getLogger(__name__)

ROLL_LIMIT = 1000  # readings rolled per transaction: ingest waits for one at most
ROLL_PASSES = 100  # transactions per tick at most
# Between two passes the tick lets go of the store: the write lock is no queue, and a
# thread that takes it again at once keeps ingest (and the alarms it raises) waiting.
PASS_GAP_S = 0.005
PURGE_EVERY = timedelta(hours=1)  # a retention pass over every zone, at most this often
PURGE_ROWS = 5000  # rows deleted per transaction at most
PURGE_ZONES = 200  # zones visited per transaction at most
PURGE_STEPS = 4  # retention transactions per tick at most


class DepotRollups:
    """The tick step that keeps depot rollups current and the raw readings bounded.

    Args:
        store: where readings and rollups are kept.
        settings: the store section (depot_raw_days, depot_minute_days).
        clock: now, in UTC: the age retention counts from.
    """

    def __init__(
        self, store: DepotRollupStore, settings: StoreSection, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._zones: list[Series] = []  # the retention pass under way: zones left
        self._cuts: tuple[datetime, datetime] | None = None
        self._next_pass: datetime | None = None  # None: the first tick starts one

    def step(self) -> None:
        """One tick: roll what arrived, then a few retention steps."""
        self.roll()
        self.purge()

    def roll(self, passes: int = ROLL_PASSES) -> int:
        """Roll readings stored since the last pass, `passes` transactions at most.

        Returns:
            How many readings were rolled.
        """
        total = 0
        for _ in range(passes):
            rolled = self.store.roll_depot_readings(ROLL_LIMIT)
            total += rolled.readings
            if rolled.readings < ROLL_LIMIT:
                break
            time.sleep(PASS_GAP_S)
        return total

    def purge(self, steps: int = PURGE_STEPS) -> tuple[int, int]:
        """Go on with the retention pass under way (or start one when due), `steps`
        transactions at most.

        Returns:
            Raw readings and minute rollups deleted.
        """
        now = self.clock()
        readings = minutes = 0
        if not self._zones:
            if self._next_pass is not None and now < self._next_pass:
                return 0, 0
            self._cuts = (
                now - timedelta(days=self.settings.depot_raw_days),
                now - timedelta(days=self.settings.depot_minute_days),
            )
            readings = self._months(now, self._cuts[0])
            self._zones = self.store.depot_series()
            self._next_pass = now + PURGE_EVERY
        assert self._cuts is not None
        for _ in range(steps):
            if not self._zones:
                break
            purged = self.store.purge_depot_series(
                self._zones[:PURGE_ZONES], *self._cuts, limit=PURGE_ROWS
            )
            readings, minutes = readings + purged.readings, minutes + purged.minutes
            del self._zones[: purged.zones_done]
        if readings or minutes:
            log.info(
                "depot retention deleted %d raw readings, %d minute rollups", readings, minutes
            )
        return readings, minutes

    def _months(self, now: datetime, raw_before: datetime) -> int:
        """Month partitions (PostgreSQL): the months ahead made, then whole months past
        retention dropped (a month's readings go only whole: row deletes take DEFAULT's).
        A lock not had in time (a long read) leaves the month for the next pass: a missing
        month's readings wait in DEFAULT, an old month's in its partition.

        Returns:
            Raw readings dropped.
        """
        try:
            if made := self.store.ensure_depot_partitions(now):
                log.info("depot readings: partitions %s made", ", ".join(made))
        except StoreUnavailable as error:
            log.warning("depot partitions not made, the next pass tries again: %s", error)
        readings = 0
        try:
            while (dropped := self.store.drop_depot_month(raw_before)) is not None:
                readings += dropped.readings
                log.info("depot retention dropped %s (%d raw readings)", dropped.partition,
                         dropped.readings)  # fmt: skip
        except StoreUnavailable as error:
            log.warning("depot month not dropped, the next pass tries again: %s", error)
        return readings

    def purge_all(self) -> tuple[int, int]:
        """A whole retention pass now, whether due or not (tests, the bench).

        Returns:
            Raw readings and minute rollups deleted.
        """
        self._zones, self._next_pass = [], None
        readings = minutes = 0
        while True:
            step = self.purge(steps=1)
            readings, minutes = readings + step[0], minutes + step[1]
            if not self._zones:
                return readings, minutes
