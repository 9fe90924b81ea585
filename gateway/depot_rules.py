"""Depot excursion alarms: each zone's readings against its storage class, as they arrive.

An excursion is timed by the readings' own `at`, never by the gateway's clock: a backlog
drained after an outage alarms where the readings say, and tests compress hours into
seconds by writing the times they want. Where each condition stands is kept in the store
(`depot_excursions`), so a restart in the middle of an excursion loses none of its time.

Four types of condition: `instant` and `consecutive` (`step`), `cumulative` (time in the
alarm range summed over the site's local day, `step_cumulative`; each reading stands until
the next, at most `HOLDS_AT_MOST`, as in the day's summary) and `rate` (change per minute,
`step_rate`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.topics import AlertKind
from gateway.alarms import AlarmBook, draft
from gateway.config import GatewayConfig, SiteSection
from gateway.depot_summary import held_by_day
from gateway.storage_classes import AlarmCondition
from gateway.store.base import DepotStore
from gateway.store.excursions import Excursion
from gateway.store.records import AlarmDraft, InboundEvent

log = logging.getLogger(__name__)

# A reading further ahead of its batch's arrival is not evaluated: believed, it would
# hold its zone's clock in the future and every true reading after it would be "older".
FUTURE_SLACK = timedelta(minutes=10)
NEVER = datetime.min.replace(tzinfo=UTC)

Change = Literal["raise", "clear", ""]
# What a step found for the alarm's message beyond the reading (a day's sum, a rate).
Facts = dict[str, str]
Stepped = tuple[Excursion, Change, Facts]


def step(
    condition: AlarmCondition, state: Excursion, reading: DepotReading, value: float
) -> tuple[Excursion, Change] | None:
    """The condition's next state after one ok reading, and what it does to the alarm.

    None for a reading not newer than the last one evaluated (a replay, or a batch that
    arrived late): time only moves forward, so it neither adds time nor takes any away.
    A raised alarm clears only once a reading is `hysteresis` back inside; until then
    readings wobbling around the threshold keep it raised. Before it is raised, a
    reading back inside the threshold ends the excursion (consecutive: one event).
    """
    at = reading.at
    if at <= state.last_at:
        return None
    if state.phase == "raised":
        if condition.back_inside(value):
            return replace(state, phase="inside", since=None, last_at=at), "clear"
        return replace(state, last_at=at), ""
    if not condition.outside(value):
        return replace(state, phase="inside", since=None, last_at=at), ""
    since = state.since if state.phase == "out" and state.since else at
    if (at - since).total_seconds() >= condition.delay_s:
        return replace(state, phase="raised", since=since, last_at=at), "raise"
    return replace(state, phase="out", since=since, last_at=at), ""


def step_cumulative(
    condition: AlarmCondition, state: Excursion, reading: DepotReading, value: float,
    zone: ZoneInfo,
) -> Stepped | None:  # fmt: skip
    """A cumulative condition's next state: the day's time in the alarm range so far.

    The time from the previous ok reading to this one counts when the previous one was in
    the alarm range, at most `HOLDS_AT_MOST` (the day's summary counts it so): the sum
    grows as each reading arrives, for the time the one before it stood. Time before the
    site's local midnight goes to its day, time after to the next, whose sum starts at 0.
    Raised once a day's sum reaches the delay; never cleared by the readings (the loggers'
    alarm stays until a person clears it); the next day may raise it again.
    """
    at = reading.at
    if at <= state.last_at:
        return None
    credit = out_by_day(condition, state.ref_at, state.ref_value, at, zone)
    day, out_s, phase = state.day, state.day_out_s, state.phase
    change: Change = ""
    facts: Facts = {}
    for today in sorted({*credit, local_day(at, zone)}):
        if today != day:
            day, out_s, phase = today, 0.0, "inside"  # a new day: its sum starts at 0
        out_s += credit.get(today, 0.0)
        if phase != "raised" and out_s >= condition.delay_s:
            phase, change = "raised", "raise"
            facts = {"day": today, "lasted_min": f"{out_s / 60:.0f}"}
    if phase != "raised":
        phase = "out" if condition.outside(value) else "inside"
    new = replace(
        state, phase=phase, since=None, last_at=at, day=day, day_out_s=out_s, ref_at=at,
        ref_value=value,
    )  # fmt: skip
    return new, change, facts


def out_by_day(
    condition: AlarmCondition, before_at: datetime | None, before: float | None,
    at: datetime, zone: ZoneInfo,
) -> dict[str, float]:  # fmt: skip
    """Seconds in the alarm range per local day (YYYY-MM-DD) between the reading before
    (`before_at`, `before`) and one at `at`: none unless the one before was in the range,
    and at most `HOLDS_AT_MOST` (a silent sensor invents no time), credited as the day's
    summary credits it (`held_by_day`)."""
    if before_at is None or before is None or not condition.outside(before):
        return {}
    return held_by_day(before_at, at, zone)


def local_day(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).date().isoformat()


def step_rate(
    condition: AlarmCondition, state: Excursion, reading: DepotReading, value: float
) -> Stepped | None:
    """A rate condition's next state: the change per minute since the reference reading.

    A reading is compared with the newest one at least `min_gap_min` older (readings
    closer than that wait: a sensor's noise over seconds is no rate) and at most
    `max_gap_min` older; after a longer gap it is not judged and becomes the reference
    (the change is not known to be sudden). Raised at once when the rate reaches the
    threshold in the condition's direction (above: rising, below: falling); cleared by a
    judged rate `hysteresis` back inside.
    """
    at = reading.at
    if at <= state.last_at:
        return None
    since = state.ref_at
    if since is None or state.ref_value is None or at - since > condition.max_gap:
        return replace(state, last_at=at, ref_at=at, ref_value=value), "", {}
    gap_s = (at - since).total_seconds()
    if gap_s < condition.min_gap_s:
        return replace(state, last_at=at), "", {}
    per_min = (value - state.ref_value) / (gap_s / 60)
    new = replace(state, last_at=at, ref_at=at, ref_value=value)
    facts = {"rate": f"{abs(per_min):.2f}", "gap_min": f"{gap_s / 60:.1f}"}
    if state.phase == "raised":
        if condition.rate_back_inside(per_min):
            return replace(new, phase="inside", since=None), "clear", facts
        return new, "", facts
    if condition.rate_beyond(per_min):
        return replace(new, phase="raised", since=since), "raise", facts
    return replace(new, phase="inside", since=None), "", facts


def step_any(
    condition: AlarmCondition, state: Excursion, reading: DepotReading, zone: ZoneInfo
) -> Stepped | None:
    """The next state of a condition of any type after one ok reading (None: not newer)."""
    value = _value(condition, reading)
    if condition.type == "cumulative":
        return step_cumulative(condition, state, reading, value, zone)
    if condition.type == "rate":
        return step_rate(condition, state, reading, value)
    stepped = step(condition, state, reading, value)
    return None if stepped is None else (*stepped, {})


def never_evaluated(site: str, node: str, zone: str, condition: str) -> Excursion:
    """The state of a condition no reading has reached yet."""
    return Excursion(site, node, zone, condition, "inside", None, NEVER)


class ExcursionRules:
    """Raises and clears depot-climate alarms from the reading batches the store took.

    Args:
        config: which zone is kept at which storage class.
        store: where each condition stands, between batches and across restarts.
        book: raises and clears, once each.
    """

    def __init__(self, config: GatewayConfig, store: DepotStore, book: AlarmBook) -> None:
        self._config = config
        self._store = store
        self._book = book
        # What the store holds for each node evaluated since this gateway started (whose
        # stored readings are all known): reading it back for every batch cost a third of
        # ingest (bench/depot_ingest.py). Replicas share the store and split one node's
        # batches between them, so each batch first asks the store for the node's newest
        # evaluated time: another replica's step since makes it read the state again.
        self._kept: dict[tuple[str, str], dict[tuple[str, str], Excursion]] = {}

    def on_stored(self, events: Sequence[InboundEvent]) -> None:
        """Evaluate the readings of newly stored batches (a redelivered batch is not new).

        The alarms are raised and cleared before the state is kept: if the gateway stops
        in between, the next reading finds the old state and raises or clears again, which
        the alarm book does once only.
        """
        by_node: dict[tuple[str, str], list[DepotReading]] = defaultdict(list)
        for item in events:
            if isinstance(item.event, DepotReadingBatch):
                by_node[(item.site, item.node)] += believable(
                    item.site, item.node, [(r, item.received_at) for r in item.event.readings]
                )
        try:
            self._apply(by_node)
        except BaseException:
            # Their state was not kept: their next batch reads what the store holds.
            for key in by_node:
                self._kept.pop(key, None)
            raise

    def _apply(self, by_node: dict[tuple[str, str], list[DepotReading]]) -> None:
        raising: list[AlarmDraft] = []
        clearing: list[tuple[str, str, str]] = []
        changed: list[Excursion] = []
        kept: dict[tuple[str, str], dict[tuple[str, str], Excursion]] = {}
        for (site, node), readings in by_node.items():
            section = self._config.site(site)
            if section is not None and node in section.zones:
                kept[(site, node)], stepped = self._evaluate(
                    section, node, readings, raising, clearing
                )
                changed += stepped
        # One transaction for every node's alarms and one for every node's state, not one
        # per node: a busy gateway's batch holds readings of many depots.
        self._book.raise_alarms(raising)
        for site, node, subject in clearing:
            self._book.clear_condition(AlertKind.DEPOT_CLIMATE, site, node, subject)
        self._store.save_excursions(changed)
        self._kept.update(kept)

    def _evaluate(
        self, site: SiteSection, node: str, readings: list[DepotReading],
        raising: list[AlarmDraft], clearing: list[tuple[str, str, str]],
    ) -> tuple[dict[tuple[str, str], Excursion], list[Excursion]]:  # fmt: skip
        """Step each condition of each zone through the node's readings, oldest first.

        Returns:
            Every condition's state after them, and those they changed (to be kept).
        """
        kept = self._kept.get((site.name, node))
        if kept is None:
            states = self._store.excursions(site.name, node)
            if states:
                readings = [*self._missed(site, node, states), *readings]
        elif self._store.excursions_last_at(site.name, node) != _newest(kept):
            states = self._store.excursions(site.name, node)  # another replica stepped it
        else:
            states = dict(kept)
        stepped_keys: set[tuple[str, str]] = set()
        for reading in sorted(readings, key=lambda r: r.at):
            if reading.status != "ok":
                continue  # no values: it neither counts time nor clears
            for condition in _conditions(site, node, reading.sensor):
                key = (reading.sensor, condition.name)
                state = states.get(key) or never_evaluated(site.name, node, *key)
                stepped = step_any(condition, state, reading, site.zone)
                if stepped is None:
                    continue
                states[key], change, facts = stepped
                stepped_keys.add(key)
                if change == "raise":
                    raising.append(_alarm(site, condition, states[key], reading, facts))
                elif change == "clear":
                    clearing.append((site.name, node, _subject(reading.sensor, condition)))
        return states, [states[key] for key in stepped_keys]

    def _missed(
        self, site: SiteSection, node: str, states: dict[tuple[str, str], Excursion]
    ) -> list[DepotReading]:
        """Readings stored after the node's newest evaluated one, before this batch's: a
        gateway stopped between a batch's commit and its state's kept them from the rules.
        Read once per node after a start; those already evaluated are skipped by `step`."""
        after = max(s.last_at for s in states.values())
        zones = sorted(site.zones[node])
        return believable(
            site.name, node, self._store.depot_readings_after(site.name, node, zones, after)
        )


def believable(
    site: str, node: str, readings: Sequence[tuple[DepotReading, datetime]]
) -> list[DepotReading]:
    """The readings (each with when its batch arrived) not dated too far ahead of arriving."""
    kept = [r for r, arrived in readings if r.at <= arrived + FUTURE_SLACK]
    if len(kept) < len(readings):
        log.warning("%s/%s: %d readings dated more than %s after they arrived not evaluated",
                    site, node, len(readings) - len(kept), FUTURE_SLACK)  # fmt: skip
    return kept


def _newest(states: dict[tuple[str, str], Excursion]) -> datetime | None:
    return max((state.last_at for state in states.values()), default=None)


def _conditions(site: SiteSection, node: str, zone: str) -> tuple[AlarmCondition, ...]:
    kept_at = site.storage_class(node, zone)
    return kept_at.conditions if kept_at else ()


def _value(condition: AlarmCondition, reading: DepotReading) -> float:
    value = reading.temperature_c if condition.quantity == "temperature" else reading.humidity_pct
    assert value is not None  # an ok reading carries both (the contract checks)
    return value


def _subject(zone: str, condition: AlarmCondition) -> str:
    return f"{zone}/{condition.name}"


def _alarm(
    site: SiteSection, condition: AlarmCondition, state: Excursion, reading: DepotReading,
    facts: Facts,
) -> AlarmDraft:  # fmt: skip
    quantity, direction = condition.quantity, condition.direction
    if condition.type == "rate":
        key = f"depot-climate.{quantity}-{'rise' if direction == 'above' else 'fall'}"
        threshold = f"{condition.threshold:.2f}"
    elif condition.type == "cumulative":
        key = f"depot-climate.{quantity}-{direction}-day"
        threshold = f"{condition.threshold:.1f}"
    else:
        since = state.since or state.last_at
        key = f"depot-climate.{quantity}-{direction}"
        threshold = f"{condition.threshold:.1f}"
        facts = {"lasted_min": f"{(state.last_at - since).total_seconds() / 60:.0f}"}
    return draft(
        AlertKind.DEPOT_CLIMATE, key, site.name, state.node, condition.severity,
        subject=_subject(state.zone, condition), zone=state.zone,
        value=f"{_value(condition, reading):.1f}", threshold=threshold,
        condition=condition.name, storage_class=site.zones[state.node][state.zone], **facts,
    )  # fmt: skip
