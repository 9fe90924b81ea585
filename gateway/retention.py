"""The tick step that keeps checkpoint events within their retention (issue #16, part 4).

Personal fields go first (after `store.personal_days`), whole events later (after
`store.passage_days`), as the privacy rules in docs/gateway.md say. A depot reading
batch's raw copy goes with its raw readings (after `store.depot_raw_days`, once they are
rolled up and deleted): kept a year, it would weigh as much as a district's passages.
Each tick does a few bounded batches, each its own short write transaction
(gateway/store/retention.py), so ingest waits at most one batch; a backlog (a gateway that
was off, or a first run on a year of data) is worked off over the following ticks. Once
nothing is left, the step rests a while before looking again: the cut moves by a tick's
length, nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.store.base import RetentionStore
from gateway.store.settings import StoreSection

log = logging.getLogger(__name__)

# Events per transaction: a few milliseconds of write lock on either engine.
BATCH = 500
# Transactions per tick and kind of work.
BATCHES_PER_TICK = 4
# How long the step rests once it found nothing left to do.
IDLE = timedelta(minutes=10)


@dataclass
class RetentionDone:
    """What one step did."""

    scrubbed: int = 0  # events looked at by the scrub (their personal fields now gone)
    purged: int = 0  # events deleted with their rows
    depot_batches: int = 0  # depot reading batches deleted after their readings


class RetentionRule:
    """Scrubs then purges old checkpoint events, a few batches per tick.

    Args:
        store: where the events are kept.
        settings: the store section (personal_days, passage_days, depot_raw_days).
        clock: now, in UTC: the age retention counts from.
        batch, batches: events per transaction, transactions per tick and kind of work.
    """

    def __init__(
        self, store: RetentionStore, settings: StoreSection, clock: Callable[[], datetime],
        *, batch: int = BATCH, batches: int = BATCHES_PER_TICK,
    ) -> None:  # fmt: skip
        if batch < 1 or batches < 1:
            raise ValueError(f"batch and batches must be at least 1, not {batch}, {batches}")
        self.store = store
        self.settings = settings
        self.clock = clock
        self.batch = batch
        self.batches = batches
        self._rest_until: datetime | None = None

    def step(self) -> RetentionDone:
        """One tick: up to `batches` transactions of each work: scrub, purge, depot batches."""
        now = self.clock()
        done = RetentionDone()
        if self._rest_until is not None and now < self._rest_until:
            return done
        personal_cut = now - timedelta(days=self.settings.personal_days)
        passage_cut = now - timedelta(days=self.settings.passage_days)
        depot_cut = now - timedelta(days=self.settings.depot_raw_days)
        scrub_left = purge_left = depot_left = True
        for _ in range(self.batches):
            seen = self.store.scrub_personal(personal_cut, self.batch)
            done.scrubbed += seen
            if seen < self.batch:
                scrub_left = False
                break
        for _ in range(self.batches):
            gone = self.store.purge_checkpoint_rows(passage_cut, self.batch)
            done.purged += gone
            if gone < self.batch:
                purge_left = False
                break
        for _ in range(self.batches):
            gone = self.store.purge_depot_batches(depot_cut, self.batch)
            done.depot_batches += gone
            if gone < self.batch:
                depot_left = False
                break
        if done.scrubbed or done.purged or done.depot_batches:
            log.info(
                "retention: personal fields removed from %d event(s) received before %s, "
                "%d event(s) received before %s deleted, %d depot batch(es) received "
                "before %s deleted after their readings",
                done.scrubbed, personal_cut.date(), done.purged, passage_cut.date(),
                done.depot_batches, depot_cut.date(),
            )  # fmt: skip
        left = scrub_left or purge_left or depot_left
        self._rest_until = None if left else now + IDLE
        return done
