"""Allocation of competing applications: a plan a person approves, never an issue by itself.

The plans' rules, in this order: urgent before routine, medical use before other use, key
places (hospitals, isolation sites, testing points) before others, then the earlier
application. Each application in turn is filled in full if the stock allows, from its
nearest depot first (great-circle distance when the depot and the place both have a
location; depots without one after those with, by name), earliest expiry first within a
depot (cover.fefo: never an expired lot; designated stock only to its designee). There are
no equal shares: a later application gets what is left, possibly nothing, and its
shortfall is shown. Sharing a shortage in proportion to the amounts asked is not built.

A plan carries the fingerprint of its inputs (the pending applications, the stock not yet
allocated, the day, the depots' locations): approving a fingerprint approves exactly the
plan that was shown, and nothing if anything changed since.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from gateway.stock.applications import AllocationInputs, Application, Location, application_number
from gateway.stock.cover import Draw, fefo
from gateway.stock.ledger import OnHand

# At most this many lines in one plan; the applications after it are left out of it
# (the plan says `truncated`) and wait for the next plan.
PLAN_LINES_MAX = 2000
EARTH_RADIUS_KM = 6371.0088
ZERO = Decimal(0)


@dataclass(frozen=True)
class PlanLine:
    """Take `quantity` of this lot (and designee) at `depot` for `application_id`."""

    application_id: str
    depot: str
    lot: str
    designated_to: str
    expires_on: date | None
    quantity: Decimal


@dataclass(frozen=True)
class Shortfall:
    """An application the plan does not fill in full."""

    application_id: str
    asked: Decimal
    allocated: Decimal

    @property
    def short(self) -> Decimal:
        return self.asked - self.allocated


@dataclass(frozen=True)
class Plan:
    """A proposed allocation of one item at one site, for a person to approve."""

    site: str
    item: str
    unit: str
    today: date
    order: tuple[str, ...]  # the applications, first served first
    lines: tuple[PlanLine, ...]
    shortfalls: tuple[Shortfall, ...]
    fingerprint: str
    truncated: bool  # PLAN_LINES_MAX reached: the applications after it wait

    def allocated(self, application_id: str) -> Decimal:
        """What the plan gives one application."""
        return sum((ln.quantity for ln in self.lines if ln.application_id == application_id), ZERO)


def priority(application: Application) -> tuple[bool, bool, bool, object, int]:
    """The sort key of the plans' order: urgent, medical, key place, earlier, lower id."""
    return (
        application.urgency != "urgent",
        not application.medical,
        not application.is_key_place,
        application.at,
        application_number(application.id) or 0,
    )


def haversine_km(a: Location, b: Location) -> float:
    """Great-circle distance between two points, in km."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def depot_order(
    depots: Iterable[str], place: Location | None, locations: Mapping[str, Location]
) -> list[str]:
    """Depots nearest `place` first; those without a distance (no location on either
    side) after them, by name."""

    def key(depot: str) -> tuple[bool, float, str]:
        where = locations.get(depot)
        if place is None or where is None:
            return (True, 0.0, depot)
        return (False, haversine_km(place, where), depot)

    return sorted(depots, key=key)


def inputs_fingerprint(
    site: str, item: str, today: date, inputs: AllocationInputs,
    locations: Mapping[str, Location],
) -> str:  # fmt: skip
    """SHA-256 of everything a plan is made of (not of the plan: it follows from them)."""
    body = {
        "site": site, "item": item, "today": today.isoformat(),
        "applications": [
            [a.id, a.applicant_unit, a.place_kind, a.urgency, a.medical, a.item, str(a.quantity),
             a.unit, a.location and [a.location.lat, a.location.lon], a.at.isoformat()]
            for a in sorted(inputs.applications, key=lambda a: a.id)
        ],
        "available": {
            depot: sorted([p.item, p.lot, p.designated_to, str(p.expires_on), str(p.quantity)]
                          for p in positions)
            for depot, positions in sorted(inputs.available.items())
        },
        "locations": {d: [loc.lat, loc.lon] for d, loc in sorted(locations.items())},
    }  # fmt: skip
    text = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def propose(
    site: str, item: str, unit: str, inputs: AllocationInputs, today: date, *,
    locations: Mapping[str, Location], lines_max: int = PLAN_LINES_MAX,
) -> Plan:  # fmt: skip
    """The plan for `item` at `site` by the plans' rules (see the module).

    Args:
        site: the site.
        item: the catalogue item; applications of other items are left out.
        unit: the item's unit.
        inputs: the pending applications and the stock not yet allocated, per depot.
        today: the site's local date (a lot expiring today can still be issued).
        locations: the depots' locations (config `depot_locations`).
        lines_max: the bound on the plan's lines.

    Returns:
        The plan, with its fingerprint.
    """
    left: dict[str, list[OnHand]] = {
        depot: [p for p in positions if p.item == item and p.quantity > 0]
        for depot, positions in inputs.available.items()
    }
    wanted = sorted((a for a in inputs.applications if a.item == item), key=priority)
    lines: list[PlanLine] = []
    shortfalls: list[Shortfall] = []
    truncated = False
    for application in wanted:
        need = ZERO if truncated else application.quantity
        drawn: list[PlanLine] = []
        for depot in depot_order(left, application.location, locations):
            if need <= 0:
                break
            draws, need = fefo(left[depot], item, need, today, application.applicant_unit)
            drawn += [PlanLine(application.id, depot, d.lot, d.designated_to, d.expires_on,
                               d.quantity) for d in draws]  # fmt: skip
            left[depot] = _taken(left[depot], draws)
        if len(lines) + len(drawn) > lines_max:
            truncated, drawn = True, []
        lines += drawn
        got = sum((ln.quantity for ln in drawn), ZERO)
        if got < application.quantity:
            shortfalls.append(Shortfall(application.id, application.quantity, got))
    return Plan(
        site=site, item=item, unit=unit, today=today, order=tuple(a.id for a in wanted),
        lines=tuple(lines), shortfalls=tuple(shortfalls), truncated=truncated,
        fingerprint=inputs_fingerprint(site, item, today, inputs, locations),
    )  # fmt: skip


def _taken(positions: list[OnHand], draws: Iterable[Draw]) -> list[OnHand]:
    """`positions` less what `draws` took of each lot and designee."""
    taken: dict[tuple[str, str], Decimal] = {}
    for d in draws:
        taken[d.lot, d.designated_to] = taken.get((d.lot, d.designated_to), ZERO) + d.quantity
    return [
        p.model_copy(update={"quantity": p.quantity - taken.get((p.lot, p.designated_to), ZERO)})
        for p in positions
    ]
