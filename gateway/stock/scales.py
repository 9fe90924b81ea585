"""Depot scales against the stock ledger: weight to units, and the discrepancy alarm.

A platform scale lies under a pallet of one item (the site's `scales` config). Each settled
weight its depot node reports (`WeightBatch`) is converted to units of the item (`net_kg /
unit_kg`, rounded half away from zero to the unit's step: a whole piece, a gram) and
compared with the ledger's on hand of that item at that depot (of the scale's lot, if it
names one) **now**, as the weights arrive: the comparison runs when a batch is stored,
so a backlog drained after an outage is compared with today's ledger, not the ledger of
its time.

A difference beyond the scale's tolerance (the larger of `tolerance_units` and
`tolerance_pct` of on hand) that lasts `lasting_min`, by the weights' own `at` as the
depot excursions are timed (gateway/depot_rules.py), raises `stock-discrepancy`
(critical); the first weight back within tolerance clears it. Where each scale stands is
kept in the store (`scale_discrepancies`), so a restart in the middle loses no time, and a
weight not newer than the scale's last one evaluated (a replay, a late batch) counts
nothing.

The pallet's tare is taken off at the depot node (its scale's `tare_kg`); the gateway
reads `net_kg` and keeps no tare of its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from edge.contract.events import WeightBatch
from edge.contract.topics import AlertKind
from gateway.stock.catalogue import UNIT_DECIMALS, site_catalogue
from gateway.stock.ledger import OnHand, StockStore
from gateway.store.base import DepotStore
from gateway.store.depot_records import ScaleReadingRecord
from gateway.store.records import AlarmDraft, InboundEvent, utc_text
from gateway.store.sql import Connection

if TYPE_CHECKING:  # the store imports this module (ScaleStates) and both of these import
    # the store: imported at run time they would make a cycle.
    from gateway.alarms import AlarmBook
    from gateway.config import GatewayConfig, ScaleSection, SiteSection

log = logging.getLogger(__name__)

# A weight further ahead of its batch's arrival is not evaluated (as a depot reading):
# believed, it would hold its scale's clock in the future and every true weight after it
# would be "older".
FUTURE_SLACK = timedelta(minutes=10)
NEVER = datetime.min.replace(tzinfo=UTC)

# ok: weight and ledger agree; differs: they do not, not yet for lasting_min; raised:
# alarmed, not yet back within tolerance.
ScalePhase = Literal["ok", "differs", "raised"]
Change = Literal["raise", "clear", ""]


@dataclass(frozen=True)
class ScaleState:
    """Where one scale's comparison stands, by the weights' own times.

    `since` is the first weight of the difference under way (None when ok); `last_at` the
    newest weight evaluated: one not newer is not evaluated again.
    """

    site: str
    node: str
    scale: str
    phase: ScalePhase
    since: datetime | None
    last_at: datetime


@dataclass(frozen=True)
class Weighed:
    """One settled weight of one scale, as the rules read it (from an event or the store)."""

    scale: str
    item: str
    at: datetime
    net_kg: float


@dataclass(frozen=True)
class Comparison:
    """A weight in units beside the ledger's on hand, in the item's unit."""

    weighed: Decimal
    ledger: Decimal
    unit: str
    tolerance: Decimal

    @property
    def difference(self) -> Decimal:
        """Weighed minus ledger: negative when less lies on the pallet than the ledger says."""
        return self.weighed - self.ledger

    @property
    def within(self) -> bool:
        return abs(self.difference) <= self.tolerance


def to_units(net_kg: float, unit_kg: float, unit: str) -> Decimal:
    """A net weight in units of the item, rounded half away from zero to the unit's step.

    Args:
        net_kg: the goods on the pallet (may be negative: an empty platform under tare).
        unit_kg: one unit's weight, > 0.
        unit: the item's unit (catalogue.UNIT_DECIMALS).

    Raises:
        ValueError: `unit_kg` not positive.
    """
    if unit_kg <= 0:
        raise ValueError("unit_kg must be positive")
    units = Decimal(repr(net_kg)) / Decimal(repr(unit_kg))
    step = Decimal(1).scaleb(-UNIT_DECIMALS[unit])
    return units.quantize(step, rounding=ROUND_HALF_UP)


def ledger_units(on_hand: Sequence[OnHand], item: str, lot: str, unit: str) -> Decimal:
    """The ledger's on hand of `item` (of `lot`, if given; else every lot and designee)."""
    found = [p for p in on_hand if p.item == item and p.unit == unit and (not lot or p.lot == lot)]
    return sum((p.quantity for p in found), Decimal(0))


def compare(scale: ScaleSection, unit: str, net_kg: float, ledger: Decimal) -> Comparison:
    """One weight against the ledger, with the scale's tolerance at that on hand.

    The tolerance is rounded down to the unit's step: weight and ledger are whole steps,
    so their difference is within 40.5 pieces exactly when it is within 40.
    """
    tolerance = max(
        Decimal(repr(scale.tolerance_units)),
        abs(ledger) * Decimal(repr(scale.tolerance_pct)) / 100,
    )
    tolerance = tolerance.quantize(Decimal(1).scaleb(-UNIT_DECIMALS[unit]), rounding=ROUND_DOWN)
    return Comparison(to_units(net_kg, scale.unit_kg, unit), ledger, unit, tolerance)


def step(
    state: ScaleState, at: datetime, within: bool, lasting: timedelta
) -> tuple[ScaleState, Change] | None:
    """The scale's next state after one weight compared, and what it does to the alarm.

    None for a weight not newer than the last one evaluated (a replay, or a batch that
    arrived late): it neither adds time nor takes any away.
    """
    if at <= state.last_at:
        return None
    if within:
        change: Change = "clear" if state.phase == "raised" else ""
        return replace(state, phase="ok", since=None, last_at=at), change
    if state.phase == "raised":
        return replace(state, last_at=at), ""
    since = state.since if state.phase == "differs" and state.since else at
    if at - since >= lasting:
        return replace(state, phase="raised", since=since, last_at=at), "raise"
    return replace(state, phase="differs", since=since, last_at=at), ""


def never_evaluated(site: str, node: str, scale: str) -> ScaleState:
    return ScaleState(site, node, scale, "ok", None, NEVER)


class ScaleStateStore(Protocol):
    """Where each scale's comparison stands (the SQLite store: `ScaleStates`)."""

    def scale_states(self, site: str, node: str) -> dict[str, ScaleState]: ...

    def scale_newest(self, site: str, node: str) -> dict[str, ScaleReadingRecord]:
        """Each scale's newest stored weight at a depot node."""
        ...

    def save_scale_states(self, states: Sequence[ScaleState]) -> None: ...


@runtime_checkable
class ScalesStore(StockStore, ScaleStateStore, DepotStore, Protocol):
    """What the scale rules read (the ledger, the stored weights) and keep."""


class ScaleStates:
    """Scale comparison state of SqlStore (mixed in)."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def scale_states(self, site: str, node: str) -> dict[str, ScaleState]:
        rows = self._conn().execute(
            "SELECT scale, phase, since, last_at FROM scale_discrepancies WHERE site=? AND node=?",
            (site, node),
        )
        return {
            scale: ScaleState(
                site, node, scale, phase, datetime.fromisoformat(since) if since else None,
                datetime.fromisoformat(last_at),
            )
            for scale, phase, since, last_at in rows
        }  # fmt: skip

    def scale_newest(self, site: str, node: str) -> dict[str, ScaleReadingRecord]:
        cursor = self._conn().execute(
            "SELECT r.site, r.node, r.scale, r.item, r.at, r.basis, r.shown_kg, r.tare_kg, "
            "r.net_kg FROM scale_readings r JOIN (SELECT scale, MAX(at) AS at FROM "
            "scale_readings WHERE site=? AND node=? GROUP BY scale) n "
            "ON r.scale = n.scale AND r.at = n.at WHERE r.site=? AND r.node=?",
            (site, node, site, node),
        )
        names = [c[0] for c in cursor.description]
        found = [ScaleReadingRecord(**dict(zip(names, row, strict=True))) for row in cursor]
        return {r.scale: r for r in found}

    def save_scale_states(self, states: Sequence[ScaleState]) -> None:
        if not states:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO scale_discrepancies (site, node, scale, phase, since, last_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (site, node, scale) DO UPDATE SET "
                "phase=excluded.phase, since=excluded.since, last_at=excluded.last_at",
                [
                    (s.site, s.node, s.scale, s.phase, s.since and utc_text(s.since),
                     utc_text(s.last_at))
                    for s in states
                ],
            )  # fmt: skip


class ScaleRules:
    """Raises and clears `stock-discrepancy` from the weight batches the store took.

    Args:
        config: which scale weighs which item, with its unit weight and tolerance.
        store: the ledger, the stored weights and where each scale stands.
        book: raises and clears, once each.
    """

    def __init__(self, config: GatewayConfig, store: ScalesStore, book: AlarmBook) -> None:
        self._config = config
        self._store = store
        self._book = book
        # Nodes whose weights stored before this gateway started were caught up with.
        self._caught_up: set[tuple[str, str]] = set()

    def on_stored(self, events: Sequence[InboundEvent]) -> None:
        """Compare the weights of newly stored batches (a redelivered batch is not new).

        The alarms are raised and cleared before the state is kept: if the gateway stops
        in between, the next weight finds the old state and raises or clears again, which
        the alarm book does once only.
        """
        by_node: dict[tuple[str, str], list[Weighed]] = defaultdict(list)
        for item in events:
            if not isinstance(item.event, WeightBatch):
                continue
            for w in item.event.weights:
                if w.at - item.received_at > FUTURE_SLACK:
                    log.warning(
                        "weight of %s/%s scale %s at %s is ahead of its arrival; not compared",
                        item.site, item.node, w.scale, w.at,
                    )  # fmt: skip
                    continue
                by_node[(item.site, item.node)].append(Weighed(w.scale, w.item, w.at, w.net_kg))
        raising: list[AlarmDraft] = []
        clearing: list[tuple[str, str, str]] = []
        changed: list[ScaleState] = []
        for (site, node), weights in by_node.items():
            section = self._config.site(site)
            if section is not None and section.scales.get(node):
                changed += self._evaluate(section, node, weights, raising, clearing)
        self._book.raise_alarms(raising)
        for site, node, scale in clearing:
            self._book.clear_condition(AlertKind.STOCK_DISCREPANCY, site, node, scale)
        self._store.save_scale_states(changed)

    def _evaluate(
        self, site: SiteSection, node: str, weights: list[Weighed],
        raising: list[AlarmDraft], clearing: list[tuple[str, str, str]],
    ) -> list[ScaleState]:  # fmt: skip
        """Step each scale of the node through its weights, oldest first; the changed."""
        scales = site.scales[node]
        states = self._store.scale_states(site.name, node)
        if (site.name, node) not in self._caught_up and states:
            weights = [*self._missed(site.name, node, states), *weights]
        self._caught_up.add((site.name, node))
        catalogue = site_catalogue(site.stock_items)
        on_hand = self._store.stock_on_hand(site.name, node)
        changed: dict[str, ScaleState] = {}
        for weight in sorted(weights, key=lambda w: w.at):
            scale = scales.get(weight.scale)
            if scale is None:
                continue  # a scale nobody configured: stored, not compared
            if weight.item != scale.item:
                log.warning(
                    "%s/%s scale %s reports %s, configured %s: not compared",
                    site.name, node, weight.scale, weight.item, scale.item,
                )  # fmt: skip
                continue
            unit = catalogue[scale.item].unit
            ledger = ledger_units(on_hand, scale.item, scale.lot, unit)
            found = compare(scale, unit, weight.net_kg, ledger)
            state = changed.get(weight.scale) or states.get(weight.scale)
            state = state or never_evaluated(site.name, node, weight.scale)
            stepped = step(state, weight.at, found.within, timedelta(minutes=scale.lasting_min))
            if stepped is None:
                continue
            changed[weight.scale], change = stepped
            if change == "raise":
                raising.append(alarm(stepped[0], scale.item, found))
            elif change == "clear":
                clearing.append((site.name, node, weight.scale))
        return list(changed.values())

    def _missed(self, site: str, node: str, states: dict[str, ScaleState]) -> list[Weighed]:
        """Weights stored after the node's newest evaluated one: a gateway stopped between
        a batch's commit and its state's kept them from the rules. Read once per node after
        a start; those already evaluated are skipped by `step`."""
        after = min(s.last_at for s in states.values())
        far = datetime.now(UTC) + FUTURE_SLACK
        return [
            Weighed(r.scale, r.item, r.at, r.net_kg)
            for r in self._store.scale_readings(site, node, after, far, limit=10_000)
        ]


def alarm(state: ScaleState, item: str, found: Comparison) -> AlarmDraft:
    """The `stock-discrepancy` alarm of one scale (no person: the depot, scale and item)."""
    from gateway.alarms import draft  # here: gateway.alarms imports the store, this module

    lasted = (state.last_at - (state.since or state.last_at)).total_seconds() / 60
    return draft(
        AlertKind.STOCK_DISCREPANCY, "stock-discrepancy", state.site, state.node, "critical",
        subject=state.scale, scale=state.scale, item=item, weighed=found.weighed,
        ledger=found.ledger, unit=found.unit, lasted_min=f"{lasted:.0f}",
    )  # fmt: skip
