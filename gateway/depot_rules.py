"""Depot excursion alarms: each zone's readings against its storage class, as they arrive.

An excursion is timed by the readings' own `at`, never by the gateway's clock: a backlog
drained after an outage alarms where the readings say, and tests compress hours into
seconds by writing the times they want. Where each condition stands is kept in the store
(`depot_excursions`), so a restart in the middle of an excursion loses none of its time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.topics import AlertKind
from gateway.alarms import AlarmBook, draft
from gateway.config import GatewayConfig, SiteSection
from gateway.storage_classes import AlarmCondition
from gateway.store import Store
from gateway.store.records import AlarmDraft, InboundEvent
from gateway.store.sqlite_excursions import Excursion

log = logging.getLogger(__name__)

# A reading further ahead of its batch's arrival is not evaluated: believed, it would
# hold its zone's clock in the future and every true reading after it would be "older".
FUTURE_SLACK = timedelta(minutes=10)

Change = Literal["raise", "clear", ""]


def step(
    condition: AlarmCondition, state: Excursion | None, reading: DepotReading, value: float
) -> tuple[Excursion, Change] | None:
    """The condition's next state after one ok reading, and what it does to the alarm.

    None for a reading not newer than the last one evaluated (a replay, or a batch that
    arrived late): time only moves forward, so it neither adds time nor takes any away.
    A raised alarm clears only once a reading is `hysteresis` back inside; until then
    readings wobbling around the threshold keep it raised. Before it is raised, a
    reading back inside the threshold ends the excursion (consecutive: one event).
    """
    at, name, zone = reading.at, condition.name, reading.sensor
    if state is not None and at <= state.last_at:
        return None
    phase = state.phase if state else "inside"
    if phase == "raised":
        if condition.back_inside(value):
            return Excursion(zone, name, "inside", None, at), "clear"
        return Excursion(zone, name, "raised", state.since if state else at, at), ""
    if not condition.outside(value):
        return Excursion(zone, name, "inside", None, at), ""
    since = state.since if state and phase == "out" and state.since else at
    if (at - since).total_seconds() >= condition.delay_s:
        return Excursion(zone, name, "raised", since, at), "raise"
    return Excursion(zone, name, "out", since, at), ""


class ExcursionRules:
    """Raises and clears depot-climate alarms from the reading batches the store took.

    Args:
        config: which zone is kept at which storage class.
        store: where each condition stands, between batches and across restarts.
        book: raises and clears, once each.
    """

    def __init__(self, config: GatewayConfig, store: Store, book: AlarmBook) -> None:
        self._config = config
        self._store = store
        self._book = book

    def on_stored(self, events: Sequence[InboundEvent]) -> None:
        """Evaluate the readings of newly stored batches (a redelivered batch is not new).

        The alarms are raised and cleared before the state is kept: if the gateway stops
        in between, the next reading finds the old state and raises or clears again, which
        the alarm book does once only.
        """
        by_node: dict[tuple[str, str], list[DepotReading]] = defaultdict(list)
        for item in events:
            if isinstance(item.event, DepotReadingBatch):
                latest = item.received_at + FUTURE_SLACK
                ahead = [r for r in item.event.readings if r.at > latest]
                if ahead:
                    log.warning("%s/%s: %d readings dated after %s not evaluated",
                                item.site, item.node, len(ahead), latest)  # fmt: skip
                by_node[(item.site, item.node)] += [
                    r for r in item.event.readings if r.at <= latest
                ]
        for (site, node), readings in by_node.items():
            section = self._config.site(site)
            if section is not None and node in section.zones:
                self._evaluate(section, node, readings)

    def _evaluate(self, site: SiteSection, node: str, readings: list[DepotReading]) -> None:
        states = self._store.excursions(site.name, node)
        changed: dict[tuple[str, str], Excursion] = {}
        raising: list[AlarmDraft] = []
        clearing: list[str] = []
        for reading in sorted(readings, key=lambda r: r.at):
            if reading.status != "ok":
                continue  # no values: it neither counts time nor clears
            for condition in _conditions(site, node, reading.sensor):
                key = (reading.sensor, condition.name)
                value = _value(condition, reading)
                stepped = step(condition, changed.get(key, states.get(key)), reading, value)
                if stepped is None:
                    continue
                changed[key], change = stepped
                if change == "raise":
                    raising.append(_alarm(site, node, condition, changed[key], value))
                elif change == "clear":
                    clearing.append(_subject(reading.sensor, condition))
        self._book.raise_alarms(raising)
        for subject in clearing:
            self._book.clear_condition(AlertKind.DEPOT_CLIMATE, site.name, node, subject)
        self._store.save_excursions(site.name, node, list(changed.values()))


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
    site: SiteSection, node: str, condition: AlarmCondition, state: Excursion, value: float
) -> AlarmDraft:
    since = state.since or state.last_at
    return draft(
        AlertKind.DEPOT_CLIMATE, f"depot-climate.{condition.quantity}-{condition.direction}",
        site.name, node, condition.severity, subject=_subject(state.zone, condition),
        zone=state.zone, value=f"{value:.1f}", threshold=f"{condition.threshold:.1f}",
        lasted_min=f"{(state.last_at - since).total_seconds() / 60:.0f}",
        condition=condition.name, storage_class=site.zones[node][state.zone],
    )  # fmt: skip
