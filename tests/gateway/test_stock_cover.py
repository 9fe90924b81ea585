"""Days of cover, reserve targets, the shortage alarm, expiring lots and first-expiry-first-out:
the pure rules as properties, the ledger's issue sums and the alarm over a real store (a SQLite
file and a PostgreSQL database)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.contract import catalogue, topics
from edge.contract.command import Alert
from gateway.alarms import AlarmBook
from gateway.config import AlarmSection, GatewayConfig, HttpSection, SiteSection
from gateway.live import LiveFeed
from gateway.stock.catalogue import built_in_items
from gateway.stock.cover import (
    StockRules,
    StockSection,
    StockTarget,
    days_of_cover,
    depot_cover,
    depot_stock,
    expiring,
    fefo,
    item_covers,
    severity_of,
    site_stock,
    site_totals,
)
from gateway.stock.ledger import Movement, OnHand
from gateway.store import SqlStore, open_store
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from tests.conftest import Subscriber, gateway_broker, identity, running_gateway

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TODAY = date(2026, 12, 6)
CATALOGUE = built_in_items()
_keys = itertools.count()

quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3)


def lot(item: str, lot: str, quantity: str, expires: date | None, designee: str = "") -> OnHand:
    unit = CATALOGUE[item].unit
    return OnHand(item=item, lot=lot, designated_to=designee, expires_on=expires,
                  quantity=Decimal(quantity), unit=unit)  # fmt: skip


# --- days of cover ------------------------------------------------------------------------


def test_cover__no_stock_is_zero_days_and_no_issue_is_unbounded() -> None:
    assert days_of_cover(Decimal(0), Decimal(5)) == 0
    assert days_of_cover(Decimal(0), Decimal(0)) == 0
    assert days_of_cover(Decimal(10), Decimal(0)) is None
    assert days_of_cover(Decimal(30), Decimal(2)) == 15


@settings(max_examples=200)
@given(held=quantities, daily=quantities, factor=st.integers(min_value=2, max_value=50))
def test_cover__scales_inversely_with_the_issue_rate(
    held: Decimal, daily: Decimal, factor: int
) -> None:
    once, faster = days_of_cover(held, daily), days_of_cover(held, daily * factor)
    assert once is not None and faster is not None
    assert abs(once - faster * factor) <= once * Decimal("1e-20")


@settings(max_examples=100)
@given(held=quantities, issued=quantities, window=st.integers(min_value=1, max_value=365))
def test_cover__an_item_cover_is_on_hand_over_the_daily_average(
    held: Decimal, issued: Decimal, window: int
) -> None:
    (cover,) = item_covers(CATALOGUE, {"grain": held}, {"grain": issued}, window)
    assert cover.daily_issue * window == pytest.approx(issued)
    assert cover.days is not None and cover.days * cover.daily_issue == pytest.approx(held)


def test_cover__an_expired_lot_is_not_cover(store: SqlStore) -> None:
    site = SiteSection(name="north", depots=("d01",))
    write(store, receipt("edible-oil", 100_000, "OLD", TODAY + timedelta(days=1)))
    write(store, receipt("edible-oil", 50_000, "NEW", TODAY + timedelta(days=90)))
    write(store, issue("edible-oil", 14_000, "OLD"))
    later = NOW + timedelta(days=2)  # OLD has expired
    (cover,) = depot_cover(site, depot_stock(store, site, "d01", later, 14), 14)
    assert cover.on_hand == Decimal(50)
    assert cover.days == Decimal(50)  # 50 L at 1 L a day


# --- the ledger's issue sums (a real store: the `store` fixture, on both engines) ----------


def receipt(item: str, steps: int, lot_: str = "", expires: date | None = None,
            depot: str = "d01") -> Movement:  # fmt: skip
    return Movement("receipt", "north", depot, f"key-{next(_keys):08d}", item=item,
                    unit=CATALOGUE[item].unit, steps=steps, lot=lot_, expires_on=expires,
                    source="purchase")  # fmt: skip


def issue(item: str, steps: int, lot_: str = "", depot: str = "d01") -> Movement:
    return Movement("issue", "north", depot, f"key-{next(_keys):08d}", item=item,
                    unit=CATALOGUE[item].unit, steps=-steps, lot=lot_, applicant_unit="Clinic 3",
                    approver="Li Wei", application_id="APP-1")  # fmt: skip


def write(store: SqlStore, movement: Movement, at: datetime = NOW) -> int:
    entry, _ = store.stock_write(movement, "keeper", at, TODAY)
    return entry.id


_depots = itertools.count(1)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(issues=st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=8),
       reversed_=st.data())  # fmt: skip
def test_issued__reversals_cancel_and_transfers_are_not_consumption(
    store: SqlStore, issues: list[int], reversed_: st.DataObject
) -> None:
    # One store for every example, a depot of its own for each: a depot's sums see no other.
    depot = f"x{next(_depots):04d}"
    write(store, receipt("grain", 10**7, depot=depot))
    ids = [write(store, issue("grain", steps, depot=depot)) for steps in issues]
    cancel = reversed_.draw(st.sets(st.sampled_from(range(len(ids)))))
    for i in cancel:
        write(store, Movement("reversal", "north", depot, f"key-{next(_keys):08d}",
                              reverses=ids[i], reason="wrong"))  # fmt: skip
    write(store, Movement("transfer-out", "north", depot, f"key-{next(_keys):08d}",
                          item="grain", unit="kg", steps=-5000, to_depot="d02"))  # fmt: skip
    expected = sum(s for i, s in enumerate(issues) if i not in cancel)
    issued = store.stock_issued("north", depot, NOW - timedelta(days=14))
    assert issued.get("grain", Decimal(0)) == Decimal(expected).scaleb(-3)


def test_issued__only_within_the_window(store: SqlStore) -> None:
    write(store, receipt("grain", 100_000))
    write(store, issue("grain", 10_000), at=NOW - timedelta(days=20))
    write(store, issue("grain", 3_000), at=NOW - timedelta(days=1))
    assert store.stock_issued("north", "d01", NOW - timedelta(days=14)) == {"grain": Decimal(3)}
    assert store.stock_issued("north", "d02", NOW - timedelta(days=14)) == {}


def test_site__stock_in_transit_counts_once(store: SqlStore) -> None:
    site = SiteSection(name="north", depots=("d01", "d02"))
    write(store, receipt("grain", 100_000))
    write(store, Movement("transfer-out", "north", "d01", "key-transfer-1", item="grain",
                          unit="kg", steps=-40_000, to_depot="d02"))  # fmt: skip
    _, held = site_totals(store, site, site_stock(store, site, NOW, 14), 14)
    assert held == {"grain": Decimal(100)}


# --- targets and the shortage alarm ---------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "target", "severity"),
    [
        (None, 15, None),  # no issue: unbounded, never short
        (Decimal(15), 15, None),
        (Decimal("14.9"), 15, "warning"),
        (Decimal("7.5"), 15, "warning"),
        (Decimal("7.4"), 15, "critical"),
        (Decimal(0), 3, "critical"),  # a stock-out
    ],
)
def test_target__severity(days: Decimal | None, target: float, severity: str | None) -> None:
    assert severity_of(days, target) == severity


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"days": 7}, "neither"),
        ({"item": "grain", "category": "necessities", "days": 7}, "both"),
        ({"category": "necessities", "days": 7, "per_person_daily": "0.4"}, "per_person_daily"),
        ({"item": "grain", "days": 0}, "days"),
        ({"item": "grain", "days": 400}, "days"),
        ({"item": "grain", "days": 7, "per_person_daily": "0.0001"}, "per_person_daily"),
    ],
)
def test_target__bad_config_is_refused(target: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        StockTarget.model_validate(target)


def test_target__an_unknown_item_or_a_second_target_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"stock_targets.0.item: unknown item flour"):
        SiteSection(name="north", stock_targets=(StockTarget(item="flour", days=7),))
    with pytest.raises(ValidationError, match=r"stock_targets.1: a second target for item:pork"):
        SiteSection(name="north", stock_targets=(StockTarget(item="pork", days=3),
                                                 StockTarget(item="pork", days=4)))  # fmt: skip
    with pytest.raises(ValidationError, match="population"):
        SiteSection(name="north", population=-1)
    with pytest.raises(ValidationError, match="issue_window_days"):
        StockSection(issue_window_days=0)


class Rig:
    """A gateway's stock rules over a real store, its clock moved by the test."""

    def __init__(
        self, section: StoreSection, targets: tuple[StockTarget, ...], population: int
    ) -> None:
        site = SiteSection(name="north", depots=("d01", "d02"), population=population,
                           stock_targets=targets)  # fmt: skip
        self.config = GatewayConfig(sites=(site,), store=section,
                                    stock=StockSection(check_every_s=60))  # fmt: skip
        self.now = NOW
        self.alerts: list[tuple[str, str, str]] = []
        self.open()

    def open(self) -> None:
        self.store = open_store(self.config.store)
        book = AlarmBook(self.store, lambda a: self.alerts.append((a.state, a.severity, a.message)),
                         LiveFeed(), lambda: self.now)  # fmt: skip
        self.rules = StockRules(self.config, self.store, book, lambda: self.now,
                                self.store.live_conditions)  # fmt: skip

    def tick(self, minutes: float = 1) -> None:
        self.now += timedelta(minutes=minutes)
        self.rules.check()

    def write(self, movement: Movement) -> None:
        self.store.stock_write(movement, "keeper", self.now, self.now.date())


def test_shortage__raised_once_cleared_once_with_hysteresis(store_section: StoreSection) -> None:
    # 1,000 people at 0.4 kg a day need 400 kg a day: 15 days is 6,000 kg.
    rig = Rig(store_section, (StockTarget(item="grain", days=15,
                                              per_person_daily=Decimal("0.4")),), 1000)  # fmt: skip
    rig.write(receipt("grain", 5_000_000))  # 12.5 days
    rig.tick()
    rig.tick()
    assert rig.alerts == [
        ("raised", "warning", "north item:grain at 12.5 days of cover, below its target of 15 days")
    ]
    rig.write(receipt("grain", 1_200_000))  # 15.5 days: above, not by the 10 % margin
    rig.tick()
    assert len(rig.alerts) == 1
    rig.write(receipt("grain", 500_000))  # 16.75 days
    rig.tick()
    rig.tick()
    assert [a[0] for a in rig.alerts] == ["raised", "cleared"]


def test_shortage__a_stock_out_is_critical_and_a_restart_does_not_raise_it_again(
    store_section: StoreSection,
) -> None:
    rig = Rig(store_section, (StockTarget(category="protective", days=7),), 0)
    rig.write(receipt("n95-mask", 140, "L1", TODAY + timedelta(days=300)))
    rig.write(issue("n95-mask", 140, "L1"))  # 10 a day over 14 days, none left
    rig.tick()
    assert rig.alerts == [
        ("raised", "critical", "north category:protective out of stock (target 7 days)")
    ]
    rig.store.close()
    rig.open()  # a restarted gateway: the alarm is in the store
    rig.tick()
    assert len(rig.alerts) == 1
    rig.write(receipt("n95-mask", 100, "L1"))  # 10 days of 10 a day
    rig.tick()
    assert [a[0] for a in rig.alerts] == ["raised", "cleared"]


def test_shortage__a_warning_that_becomes_a_stock_out_is_raised_again_as_critical(
    store_section: StoreSection,
) -> None:
    rig = Rig(store_section, (StockTarget(item="pork", days=3,
                                              per_person_daily=Decimal("0.1")),), 1000)  # fmt: skip
    rig.write(receipt("pork", 250_000, "P1", TODAY + timedelta(days=5)))  # 2.5 days
    rig.tick()
    rig.write(issue("pork", 250_000, "P1"))  # all of it: out of stock
    rig.tick()
    rig.tick()
    assert [a[:2] for a in rig.alerts] == [
        ("raised", "warning"),
        ("cleared", "warning"),
        ("raised", "critical"),
    ]
    assert rig.alerts[-1][2] == "north item:pork out of stock (target 3 days)"
    live = rig.store.live_alarm("stock-shortage", "north", None, "item:pork")
    assert live is not None and live.severity == "critical"


def test_shortage__checked_at_most_every_check_every_s(store_section: StoreSection) -> None:
    rig = Rig(store_section, (StockTarget(item="pork", days=3,
                                              per_person_daily=Decimal("0.1")),), 1000)  # fmt: skip
    rig.tick()  # nothing yet: 0 kg is a stock-out
    assert [a[1] for a in rig.alerts] == ["critical"]
    rig.write(receipt("pork", 400_000, "P1", TODAY + timedelta(days=5)))  # 4 days
    rig.tick(minutes=0.5)
    assert len(rig.alerts) == 1  # not checked: 30 s since the last
    rig.tick(minutes=0.5)
    assert [a[0] for a in rig.alerts] == ["raised", "cleared"]


def test_shortage__no_issue_and_no_population_is_never_short(store_section: StoreSection) -> None:
    rig = Rig(store_section, (StockTarget(item="grain", days=15,
                                              per_person_daily=Decimal("0.4")),), 0)  # fmt: skip
    rig.write(receipt("grain", 1000))
    rig.tick()
    assert rig.alerts == []


# --- expiring lots and FEFO ------------------------------------------------------------------


def test_expiring__within_the_window_and_expired_earliest_first() -> None:
    held = [
        lot("edible-oil", "A", "5", TODAY + timedelta(days=31)),
        lot("edible-oil", "B", "5", TODAY + timedelta(days=30)),
        lot("pork", "C", "2", TODAY - timedelta(days=1)),
        lot("grain", "", "100", None),
    ]
    found = expiring(held, TODAY, 30)
    assert [(e.lot, e.days_left) for e in found] == [("C", -1), ("B", 30)]


expiries = st.one_of(st.none(), st.integers(min_value=-30, max_value=400))


@settings(max_examples=300)
@given(
    lots=st.lists(st.tuples(expiries, st.integers(min_value=1, max_value=10_000),
                            st.sampled_from(["", "Clinic 3", "School 1"])),
                  max_size=12),
    want=st.integers(min_value=1, max_value=50_000),
    designee=st.sampled_from(["", "Clinic 3"]),
)  # fmt: skip
def test_fefo__never_expired_earliest_first_and_sums_to_the_quantity(
    lots: list[tuple[int | None, int, str]], want: int, designee: str
) -> None:
    held = [
        lot("edible-oil", f"L{i}", str(q),
            None if days is None else TODAY + timedelta(days=days), to)
        for i, (days, q, to) in enumerate(lots)
    ]  # fmt: skip
    draws, missing = fefo(held, "edible-oil", Decimal(want), TODAY, designee)
    assert all(d.expires_on is None or d.expires_on >= TODAY for d in draws)
    assert all(d.designated_to in ("", designee) for d in draws)
    order = [d.expires_on or date.max for d in draws]
    assert order == sorted(order)
    usable = sum((p.quantity for p in held
                  if (p.expires_on is None or p.expires_on >= TODAY)
                  and p.designated_to in ("", designee)), Decimal(0))  # fmt: skip
    assert sum((d.quantity for d in draws), Decimal(0)) + missing == want
    assert missing == max(Decimal(want) - usable, Decimal(0))
    assert all(d.quantity > 0 for d in draws)


# --- through the real gateway and broker ---------------------------------------------------


def test_shortage__the_running_gateways_tick_sends_it_on_mqtt(
    broker: PrivateBroker, store_section: StoreSection
) -> None:
    site = topics.Site("north")
    config = GatewayConfig(
        sites=(SiteSection(name="north", depots=("d01",), population=1000,
                           stock_targets=(StockTarget(item="pork", days=3,
                                                      per_person_daily=Decimal("0.1")),)),),
        broker=gateway_broker(broker, "gw-stock"), store=store_section,
        http=HttpSection(port=0), alarms=AlarmSection(check_every_s=0.2),
        stock=StockSection(check_every_s=1),
    )  # fmt: skip
    watcher = Subscriber.connect(identity(broker, "command-stock"), "command-stock")
    # This kind only: past 17:30 in Shanghai the depot's missing daily report is alarmed too.
    watcher.subscribe(f"{site.root}/alert/stock-shortage")
    try:
        with running_gateway(config) as gateway:
            raised = watcher.next(15)  # no pork at all: out of stock
            moment = datetime.now(UTC)
            gateway.store.stock_write(receipt("pork", 400_000, "P1", moment.date()
                                              + timedelta(days=5)), "keeper", moment,
                                      moment.date())  # fmt: skip
            cleared = watcher.next(15)  # 4 days of 1,000 people's 100 kg a day
    finally:
        watcher.close()
    alerts = [catalogue.decode(m.topic, m.payload).payload for m in (raised, cleared)]
    assert raised.topic == f"{site.root}/alert/stock-shortage"
    assert [(a.state, a.severity, a.node) for a in alerts if isinstance(a, Alert)] == [
        ("raised", "critical", None), ("cleared", "critical", None)]  # fmt: skip
    assert isinstance(alerts[0], Alert)
    assert alerts[0].message == "north item:pork out of stock (target 3 days)"
