"""Allocation of competing applications: the plans' priority rule, nearest depot first, no
equal shares, never an expired lot, designated stock only to its designee, never more than
the stock that is free, and a fingerprint that changes with what the plan is made of."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import SiteSection
from gateway.stock.allocation import Plan, depot_order, haversine_km, priority, propose
from gateway.stock.applications import (
    KEY_PLACES,
    AllocationInputs,
    Application,
    Location,
    application_number,
)
from gateway.stock.ledger import OnHand

TODAY = date(2026, 12, 6)
FILED = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
ITEM, UNIT = "n95-mask", "piece"
UNITS = ("Clinic 3", "Fever Hospital", "Testing Point 7")
# Along one parallel: d1 in the centre, d2 15 km east, d3 40 km west; d4 has no location.
LOCATIONS = {
    "d1": Location(lat=31.23, lon=121.47),
    "d2": Location(lat=31.23, lon=121.63),
    "d3": Location(lat=31.23, lon=121.05),
}
DEPOTS = ("d1", "d2", "d3", "d4")


def application(
    number: int, quantity: int | Decimal, *, unit_name: str = "Clinic 3",
    urgency: str = "routine", medical: bool = False, place_kind: str = "other",
    location: Location | None = None, minutes: int | None = None, item: str = ITEM,
) -> Application:  # fmt: skip
    return Application(
        id=f"APL-{number}", site="north", applicant_unit=unit_name, place_kind=place_kind,
        urgency=urgency, medical=medical, item=item, quantity=Decimal(quantity), unit=UNIT,
        location=location, note="", state="pending", who="command-desk",
        at=FILED + timedelta(minutes=number if minutes is None else minutes),
    )  # fmt: skip


def held(
    lot: str, quantity: int, *, expires: date | None = date(2027, 6, 30), designee: str = ""
) -> OnHand:
    return OnHand(item=ITEM, lot=lot, designated_to=designee, expires_on=expires,
                  quantity=Decimal(quantity), unit=UNIT)  # fmt: skip


def plan_of(
    applications: list[Application], available: Mapping[str, Sequence[OnHand]],
    locations: dict[str, Location] | None = None, today: date = TODAY,
) -> Plan:  # fmt: skip
    stock = {depot: tuple(positions) for depot, positions in available.items()}
    inputs = AllocationInputs(applications=tuple(applications), available=stock)
    return propose("north", ITEM, UNIT, inputs, today, locations=locations or LOCATIONS)


def given_to(plan: Plan) -> dict[str, Decimal]:
    return {name: plan.allocated(name) for name in plan.order}


# --- examples ------------------------------------------------------------------------------


def test_allocation__urgent_medical_key_place_first_and_no_equal_shares() -> None:
    apps = [
        application(1, 60, unit_name="Clinic 3"),  # earliest, but routine and not medical
        application(2, 50, unit_name="Fever Hospital", urgency="urgent", medical=True,
                    place_kind="hospital"),
        application(3, 30, unit_name="Testing Point 7", urgency="urgent", medical=True,
                    place_kind="testing-point"),
        application(4, 30, unit_name="Clinic 3", urgency="urgent", medical=True),
    ]  # fmt: skip
    plan = plan_of(apps, {"d1": (held("L1", 100),)})
    assert plan.order == ("APL-2", "APL-3", "APL-4", "APL-1")
    # 100 boxes: the two key places in full, the clinic what is left, the routine one nothing.
    assert given_to(plan) == {"APL-2": 50, "APL-3": 30, "APL-4": 20, "APL-1": 0}
    assert [(s.application_id, int(s.short)) for s in plan.shortfalls] == [
        ("APL-4", 10),
        ("APL-1", 60),
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"urgency": "urgent"}, {"medical": True, "place_kind": "hospital"}),
        ({"medical": True}, {"place_kind": "hospital"}),
        ({"place_kind": "isolation-site"}, {}),
        ({}, {}),  # same rank: the earlier application
    ],
    ids=["urgent-over-medical", "medical-over-key-place", "key-place-over-other", "earlier"],
)
def test_allocation__each_rule_ranks_before_the_next(
    first: dict[str, object], second: dict[str, object]
) -> None:
    # The later-filed application wins only by the rule that ranks above the other's.
    apps = [application(1, 10, **second), application(2, 10, **first)]  # type: ignore[arg-type]
    if not first and not second:
        apps = [application(2, 10, minutes=5), application(1, 10, minutes=1)]
    plan = plan_of(apps, {"d1": (held("L1", 10),)})
    winner = "APL-1" if not first and not second else "APL-2"
    assert plan.order[0] == winner
    assert plan.allocated(winner) == 10
    assert plan.allocated(plan.order[1]) == 0


def test_allocation__nearest_depot_first_then_the_next() -> None:
    # A place 26 km west of the centre: d3 (14 km), d1 (26 km), d2 (41 km), d4 (no location).
    place = Location(lat=31.23, lon=121.20)
    assert depot_order(DEPOTS, place, LOCATIONS) == ["d3", "d1", "d2", "d4"]
    stock = {"d1": (held("L1", 5),), "d2": (held("L2", 50),), "d3": (held("L3", 5),),
             "d4": (held("L4", 50),)}  # fmt: skip
    plan = plan_of([application(1, 12, location=place)], stock)
    assert [(ln.depot, int(ln.quantity)) for ln in plan.lines] == [("d3", 5), ("d1", 5), ("d2", 2)]


def test_allocation__without_a_place_depots_by_name() -> None:
    stock = {"d2": (held("L2", 5),), "d1": (held("L1", 5),)}
    plan = plan_of([application(1, 8)], stock)
    assert [(ln.depot, int(ln.quantity)) for ln in plan.lines] == [("d1", 5), ("d2", 3)]


def test_allocation__haversine_is_the_great_circle_distance() -> None:
    # One degree of longitude on the equator is 111.2 km; Beijing to Shanghai about 1,068 km.
    assert haversine_km(Location(lat=0, lon=0), Location(lat=0, lon=1)) == pytest.approx(
        111.2, 0.01
    )
    beijing, shanghai = Location(lat=39.9042, lon=116.4074), Location(lat=31.2304, lon=121.4737)
    assert haversine_km(beijing, shanghai) == pytest.approx(1068, rel=0.01)


def test_allocation__never_an_expired_lot_and_earliest_expiry_first() -> None:
    stock = {"d1": (held("OLD", 50, expires=TODAY - timedelta(days=1)),
                    held("LATE", 50, expires=date(2027, 9, 1)),
                    held("SOON", 5, expires=TODAY))}  # fmt: skip
    plan = plan_of([application(1, 20)], stock)
    assert [(ln.lot, int(ln.quantity)) for ln in plan.lines] == [("SOON", 5), ("LATE", 15)]


def test_allocation__designated_stock_only_to_its_designee() -> None:
    stock = {"d1": (held("L1", 10, designee="Fever Hospital"), held("L2", 4))}
    apps = [application(1, 10, urgency="urgent", unit_name="Clinic 3"),
            application(2, 10, unit_name="Fever Hospital")]  # fmt: skip
    plan = plan_of(apps, stock)
    # The urgent clinic may not touch the hospital's donation: it gets the 4 free boxes.
    assert given_to(plan) == {"APL-1": 4, "APL-2": 10}
    assert {ln.designated_to for ln in plan.lines if ln.application_id == "APL-1"} == {""}


def test_allocation__other_items_are_left_out() -> None:
    apps = [application(1, 5, item="grain"), application(2, 5)]
    plan = plan_of(apps, {"d1": (held("L1", 10),)})
    assert plan.order == ("APL-2",)


def test_allocation__the_fingerprint_follows_the_inputs() -> None:
    apps = [application(1, 5)]
    stock = {"d1": (held("L1", 10),)}
    same = plan_of(apps, stock).fingerprint
    assert plan_of(list(apps), dict(stock)).fingerprint == same
    assert plan_of(apps, {"d1": (held("L1", 9),)}).fingerprint != same
    assert plan_of([*apps, application(2, 1)], stock).fingerprint != same
    assert plan_of(apps, stock, today=TODAY + timedelta(days=1)).fingerprint != same
    assert plan_of(apps, stock, locations={"d1": LOCATIONS["d2"]}).fingerprint != same


def test_allocation__lines_beyond_the_bound_wait_for_the_next_plan() -> None:
    stock = {"d1": tuple(held(f"L{i}", 1) for i in range(6))}
    inputs = AllocationInputs(applications=(application(1, 3), application(2, 3)),
                              available=stock)  # fmt: skip
    plan = propose("north", ITEM, UNIT, inputs, TODAY, locations={}, lines_max=4)
    assert plan.truncated
    assert given_to(plan) == {"APL-1": 3, "APL-2": 0}


def test_allocation__depot_locations_must_be_depots_of_the_site() -> None:
    with pytest.raises(ValueError, match=r"depot_locations\.d9: not a depot of site north"):
        SiteSection(name="north", depots=("d1",), depot_locations={"d9": LOCATIONS["d1"]})
    with pytest.raises(ValueError, match=r"depot_locations\.d1\.lat"):
        SiteSection(name="north", depots=("d1",), depot_locations={"d1": {"lat": 91, "lon": 0}})


# --- properties ----------------------------------------------------------------------------


def numbered(rows: list[dict[str, Any]]) -> list[Application]:
    return [application(i + 1, **row) for i, row in enumerate(rows)]


places = st.one_of(
    st.none(), st.builds(Location, lat=st.floats(30.5, 32), lon=st.floats(120.5, 122.5))
)
applications = st.lists(
    st.fixed_dictionaries(
        {
            "quantity": st.integers(1, 60),
            "unit_name": st.sampled_from(UNITS),
            "urgency": st.sampled_from(["urgent", "routine"]),
            "medical": st.booleans(),
            "place_kind": st.sampled_from(["hospital", "isolation-site", "testing-point", "other"]),
            "location": places,
            "minutes": st.integers(0, 5),
        }
    ),
    min_size=1,
    max_size=8,
).map(numbered)
positions = st.lists(
    st.builds(
        held,
        lot=st.sampled_from(["A", "B", "C"]),
        quantity=st.integers(1, 40),
        expires=st.one_of(st.none(), st.integers(-3, 30).map(lambda d: TODAY + timedelta(days=d))),
        designee=st.sampled_from(["", "", *UNITS]),
    ),
    max_size=4,
    unique_by=lambda p: (p.lot, p.designated_to),
)
stocks = st.fixed_dictionaries({depot: positions.map(tuple) for depot in DEPOTS})


def usable_for(position: OnHand, who: Application) -> bool:
    """Whether `who` may be given of this position at all."""
    return (position.expires_on is None or position.expires_on >= TODAY) and (
        position.designated_to in ("", who.applicant_unit)
    )


def left_after(
    plan: Plan, stock: dict[str, tuple[OnHand, ...]]
) -> dict[tuple[str, str, str], Decimal]:
    """Per (depot, lot, designee), what the plan leaves of the stock."""
    left = {(d, p.lot, p.designated_to): p.quantity for d, ps in stock.items() for p in ps}
    for line in plan.lines:
        left[line.depot, line.lot, line.designated_to] -= line.quantity
    return left


@settings(max_examples=300, deadline=None)
@given(apps=applications, stock=stocks)
def test_allocation__properties_of_every_plan(
    apps: list[Application], stock: dict[str, tuple[OnHand, ...]]
) -> None:
    plan = plan_of(apps, stock)
    by_id = {a.id: a for a in apps}
    left = left_after(plan, stock)
    expiry = {(d, p.lot, p.designated_to): p.expires_on for d, ps in stock.items() for p in ps}

    # The order is the plans' rule: urgent, medical, key place, earlier.
    ranks = [priority(by_id[name]) for name in plan.order]
    assert ranks == sorted(ranks)
    assert all(
        r[2] == (by_id[n].place_kind not in KEY_PLACES)
        for r, n in zip(ranks, plan.order, strict=True)
    )

    # Nothing beyond the stock, nothing beyond what was asked, no line of 0.
    assert all(quantity >= 0 for quantity in left.values())
    assert all(line.quantity > 0 for line in plan.lines)
    for app in apps:
        assert plan.allocated(app.id) <= app.quantity

    for line in plan.lines:
        app = by_id[line.application_id]
        # Never an expired lot; designated stock only to its designee.
        assert line.expires_on is None or line.expires_on >= TODAY
        assert line.expires_on == expiry[line.depot, line.lot, line.designated_to]
        assert line.designated_to in ("", app.applicant_unit)
        # Nearest first: a depot ranked before this one has nothing left this app could use.
        ranked = depot_order(DEPOTS, app.location, LOCATIONS)
        for nearer in ranked[: ranked.index(line.depot)]:
            assert not any(
                left[nearer, p.lot, p.designated_to] > 0 and usable_for(p, app)
                for p in stock[nearer]
            ), (line, nearer)

    # A short application leaves nothing it could have used; nobody served after it got
    # stock it could have used (no equal shares, no skipping ahead).
    short = {s.application_id for s in plan.shortfalls}
    assert short == {a.id for a in apps if plan.allocated(a.id) < a.quantity}
    for name in short:
        app = by_id[name]
        assert not any(left[d, p.lot, p.designated_to] > 0 and usable_for(p, app)
                       for d, ps in stock.items() for p in ps)  # fmt: skip
        later = plan.order[plan.order.index(name) + 1 :]
        for line in plan.lines:
            if line.application_id in later:
                assert line.designated_to not in ("", app.applicant_unit), (name, line)


@settings(max_examples=200, deadline=None)
@given(apps=applications, stock=stocks)
def test_allocation__a_higher_application_is_never_short_while_a_lower_one_got_its_stock(
    apps: list[Application], stock: dict[str, tuple[OnHand, ...]]
) -> None:
    plan = plan_of(apps, stock)
    by_id = {a.id: a for a in apps}
    for high in apps:
        for low in apps:
            if priority(high) >= priority(low) or plan.allocated(high.id) == high.quantity:
                continue
            # `high` is short: `low` got none of what `high` could have been given.
            assert all(
                line.designated_to not in ("", high.applicant_unit)
                for line in plan.lines if line.application_id == low.id
            ), (high, low, plan)  # fmt: skip
    assert all(application_number(name) in range(1, len(apps) + 1) for name in by_id)
