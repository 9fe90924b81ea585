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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
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
NEVER = datetime.min.replace(tzinfo=UTC)

Change = Literal["raise", "clear", ""]


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

    def __init__(self, config: GatewayConfig, store: Store, book: AlarmBook) -> None:
        self._config = config
        self._store = store
        self._book = book
        # Nodes evaluated since this gateway started: their stored readings are all known.
        self._resumed: set[tuple[str, str]] = set()

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
            self._resumed.difference_update(by_node)
            raise

    def _apply(self, by_node: dict[tuple[str, str], list[DepotReading]]) -> None:
        raising: list[AlarmDraft] = []
        clearing: list[tuple[str, str, str]] = []
        changed: list[Excursion] = []
        for (site, node), readings in by_node.items():
            section = self._config.site(site)
            if section is not None and node in section.zones:
                changed += self._evaluate(section, node, readings, raising, clearing)
        # One transaction for every node's alarms and one for every node's state, not one
        # per node: a busy gateway's batch holds readings of many depots.
        self._book.raise_alarms(raising)
        for site, node, subject in clearing:
            self._book.clear_condition(AlertKind.DEPOT_CLIMATE, site, node, subject)
        self._store.save_excursions(changed)
        self._resumed.update(by_node)

    def _evaluate(
        self, site: SiteSection, node: str, readings: list[DepotReading],
        raising: list[AlarmDraft], clearing: list[tuple[str, str, str]],
    ) -> list[Excursion]:  # fmt: skip
        """Step each condition of each zone through the node's readings, oldest first."""
        states = self._store.excursions(site.name, node)
        if states and (site.name, node) not in self._resumed:
            readings = [*self._missed(site, node, states), *readings]
        stepped_keys: set[tuple[str, str]] = set()
        for reading in sorted(readings, key=lambda r: r.at):
            if reading.status != "ok":
                continue  # no values: it neither counts time nor clears
            for condition in _conditions(site, node, reading.sensor):
                key = (reading.sensor, condition.name)
                state = states.get(key) or never_evaluated(site.name, node, *key)
                stepped = step(condition, state, reading, _value(condition, reading))
                if stepped is None:
                    continue
                states[key], change = stepped
                stepped_keys.add(key)
                if change == "raise":
                    raising.append(_alarm(site, condition, states[key], reading))
                elif change == "clear":
                    clearing.append((site.name, node, _subject(reading.sensor, condition)))
        return [states[key] for key in stepped_keys]

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
    site: SiteSection, condition: AlarmCondition, state: Excursion, reading: DepotReading
) -> AlarmDraft:
    since = state.since or state.last_at
    return draft(
        AlertKind.DEPOT_CLIMATE, f"depot-climate.{condition.quantity}-{condition.direction}",
        site.name, state.node, condition.severity, subject=_subject(state.zone, condition),
        zone=state.zone, value=f"{_value(condition, reading):.1f}",
        threshold=f"{condition.threshold:.1f}",
        lasted_min=f"{(state.last_at - since).total_seconds() / 60:.0f}",
        condition=condition.name, storage_class=site.zones[state.node][state.zone],
    )  # fmt: skip
