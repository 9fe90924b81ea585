"""The supply alert level IV to I: each rule sets its level, the highest wins, the level only
rises with its inputs; week-on-week prices; tight days kept over a restart in a real SQLite
file; and the retained level and stock summary reaching a command-center identity through
a locked Mosquitto."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.contract import catalogue, topics
from edge.contract.base import Payload
from edge.contract.supply import StockSummary, SupplyLevel
from edge.mqtt import publish
from firmware_tools.site_pki import IdentityRole
from gateway.config import GatewayConfig, SiteSection
from gateway.stock.catalogue import built_in_items
from gateway.stock.cover import StockSection, StockTarget
from gateway.stock.ledger import Movement
from gateway.stock.prices import PriceDraft, PriceObservation, group_rise, item_rises
from gateway.stock.supply_check import SupplyLevels
from gateway.stock.supply_level import (
    LevelRule,
    SupplyInputs,
    SupplyLevelSection,
    consecutive_days,
    rank,
    supply_level,
)
from gateway.store import SqlStore, open_store
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from tests.conftest import Subscriber, connect, locked_site

RULES = SupplyLevelSection()
NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TODAY = date(2026, 12, 6)
CATEGORIES = ("protective", "disinfection", "necessities")
_keys = itertools.count()


def inputs(
    tight: dict[str, int] | None = None,
    out: dict[str, tuple[str, ...]] | None = None,
    rises: dict[str, str | None] | None = None,
) -> SupplyInputs:
    return SupplyInputs(
        tight_days=tight or {}, stock_outs=out or {},
        rises={g: None if r is None else Decimal(r) for g, r in (rises or {}).items()},
    )  # fmt: skip


# --- config --------------------------------------------------------------------------------


def test_config__valid() -> None:
    stock = StockSection.model_validate({"supply_levels": {
        "price_groups": [{"name": "grain-oil", "items": ["grain", "edible-oil"]},
                         {"name": "eggs", "items": ["eggs"], "name_zh": "鸡蛋"}],
        "levels": [{"level": "IV", "tight_days": 2, "price_rise_pct": {"eggs": 25}},
                   {"level": "II", "stock_out_categories": 1}],
    }})  # fmt: skip
    assert [r.level for r in stock.supply_levels.levels] == ["IV", "II"]
    # The defaults, as docs/stock.md gives them.
    defaults = {r.level: r for r in RULES.levels}
    assert {lv: r.price_rise_pct for lv, r in defaults.items()} == {
        "IV": {"grain-oil": 20, "pork": 20}, "III": {"grain-oil": 30, "pork": 30},
        "II": {"grain-oil": 50, "pork": 40}, "I": {"grain-oil": 80},
    }  # fmt: skip
    assert [defaults[lv].tight_days for lv in ("IV", "III", "II", "I")] == [1, 3, 7, 15]
    assert [defaults[lv].stock_out_categories for lv in ("IV", "III", "II", "I")] == [
        None, 1, 2, 3,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ({"price_groups": [{"name": "oil", "items": ["olive-oil"]}]}, "price_groups.0.items"),
        ({"price_groups": [{"name": "a", "items": ["pork"]}, {"name": "b", "items": ["pork"]}]},
         "price_groups.1.items"),
        ({"price_groups": [{"name": "a", "items": ["pork"]}, {"name": "a", "items": ["eggs"]}]},
         "price_groups.0.name"),
        ({"levels": [{"level": "IV", "price_rise_pct": {"beef": 20}}]},
         "levels.0.price_rise_pct.beef"),
        ({"levels": [{"level": "IV", "tight_days": 1}, {"level": "IV", "tight_days": 2}]},
         "levels.0.level"),
        ({"levels": [{"level": "IV", "tight_days": 5}, {"level": "III", "tight_days": 3}]},
         "levels.III.tight_days"),
        ({"levels": [{"level": "III", "price_rise_pct": {"pork": 30}},
                     {"level": "I", "price_rise_pct": {"pork": 25}}]},
         "levels.I.price_rise_pct.pork"),
        ({"levels": [{"level": "IV", "price_rise_pct": {"pork": -5}}]}, "price_rise_pct.pork"),
        ({"levels": [{"level": "V"}]}, "levels.0.level"),
        ({"levels": [{"level": "IV", "tight_days": 0}]}, "levels.0.tight_days"),
        ({"publish_every_s": 1}, "publish_every_s"),
        ({"price_groups": [{"name": "pork", "items": ["pork"], "colour": "red"}]}, "colour"),
    ],
)  # fmt: skip
def test_config__invalid(section: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        StockSection.model_validate({"supply_levels": section})
    assert where in str(caught.value)


# --- each rule sets its level ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "level", "rule"),
    [
        (inputs(tight={"necessities": 1}), "IV", "tight:necessities:1d"),
        (inputs(tight={"necessities": 2}), "IV", "tight:necessities:2d"),
        (inputs(tight={"protective": 3}), "III", "tight:protective:3d"),
        (inputs(tight={"necessities": 7, "protective": 3}), "II", "tight:necessities:7d"),
        (inputs(tight={"disinfection": 15}), "I", "tight:disinfection:15d"),
        (inputs(out={"necessities": ("pork",)}), "III", "stock-out:necessities"),
        (inputs(out={"necessities": ("pork",), "protective": ("n95-mask",)}), "II",
         "stock-out:necessities+protective"),
        (inputs(out={c: ("x",) for c in CATEGORIES}), "I",
         "stock-out:disinfection+necessities+protective"),
        (inputs(rises={"grain-oil": "20"}), "IV", "price-rise:grain-oil:+20%"),
        (inputs(rises={"grain-oil": "31.4"}), "III", "price-rise:grain-oil:+31%"),
        (inputs(rises={"grain-oil": "50"}), "II", "price-rise:grain-oil:+50%"),
        (inputs(rises={"grain-oil": "80"}), "I", "price-rise:grain-oil:+80%"),
        (inputs(rises={"pork": "20"}), "IV", "price-rise:pork:+20%"),
        (inputs(rises={"pork": "30"}), "III", "price-rise:pork:+30%"),
        (inputs(rises={"pork": "40"}), "II", "price-rise:pork:+40%"),
        (inputs(rises={"pork": "200"}), "II", "price-rise:pork:+200%"),  # pork has no level I
    ],
)  # fmt: skip
def test_level__each_rule_sets_its_level(given_: SupplyInputs, level: str, rule: str) -> None:
    found = supply_level(RULES, given_)
    assert found is not None
    assert (found.level, found.rule) == (level, rule)


def test_level__below_every_threshold_is_none() -> None:
    assert supply_level(RULES, inputs()) is None
    quiet = inputs(tight={c: 0 for c in CATEGORIES}, out={"necessities": ()},
                   rises={"grain-oil": "19.9", "pork": None})  # fmt: skip
    assert supply_level(RULES, quiet) is None


def test_level__the_highest_any_rule_reaches_wins_and_says_why() -> None:
    found = supply_level(RULES, inputs(tight={"necessities": 2}, out={"protective": ("goggles",)},
                                       rises={"grain-oil": "55", "pork": "21"}))  # fmt: skip
    assert found is not None
    assert (found.level, found.rule) == ("II", "price-rise:grain-oil:+55%")
    assert found.zh == "粮油价格周环比上涨55%"
    assert found.en == "grain and oil prices +55% week on week"


def test_level__a_district_sets_its_own_rules() -> None:
    own = SupplyLevelSection(levels=(LevelRule(level="I", tight_days=2),))
    assert supply_level(own, inputs(tight={"necessities": 1})) is None
    found = supply_level(own, inputs(tight={"necessities": 2}, rises={"grain-oil": "99"}))
    assert found is not None and (found.level, found.rule) == ("I", "tight:necessities:2d")


days = st.integers(min_value=0, max_value=40)
rises = st.none() | st.decimals(min_value=-50, max_value=150, places=1)
outs = st.lists(st.sampled_from(CATEGORIES), unique=True)


@settings(max_examples=300)
@given(
    tight=st.fixed_dictionaries({c: days for c in CATEGORIES}),
    out=outs, grain=rises, pork=rises,
    more_days=days, more_rise=st.decimals(min_value=0, max_value=100, places=1),
    which=st.sampled_from(CATEGORIES), more_out=st.sampled_from(CATEGORIES),
)  # fmt: skip
def test_level__never_falls_as_tight_days_stock_outs_or_prices_rise(
    *, tight: dict[str, int], out: list[str], grain: Decimal | None, pork: Decimal | None,
    more_days: int, more_rise: Decimal, which: str, more_out: str,
) -> None:  # fmt: skip
    def level(t: dict[str, int], o: list[str], g: Decimal | None, p: Decimal | None) -> int:
        found = supply_level(RULES, SupplyInputs(t, {c: ("x",) for c in o},
                                                 {"grain-oil": g, "pork": p}))  # fmt: skip
        return rank(found.level if found else None)

    base = level(tight, out, grain, pork)
    assert level({**tight, which: tight[which] + more_days}, out, grain, pork) >= base
    assert level(tight, sorted({*out, more_out}), grain, pork) >= base
    assert level(tight, out, None if grain is None else grain + more_rise, pork) >= base
    assert level(tight, out, grain, None if pork is None else pork + more_rise) >= base


def test_consecutive_days__counts_back_from_today_until_a_day_missing() -> None:
    history = {TODAY - timedelta(days=n) for n in (1, 2, 4)}
    assert consecutive_days(history, TODAY, tight_now=True) == 3
    assert consecutive_days(history, TODAY, tight_now=False) == 0
    assert consecutive_days(set(), TODAY, tight_now=True) == 1


# --- week-on-week prices -------------------------------------------------------------------


def price(item: str, yuan: str, days_ago: int) -> PriceObservation:
    return PriceObservation(id=1, site="north", item=item, unit="kg", price=Decimal(yuan),
                            observed_on=TODAY - timedelta(days=days_ago), market="东门市场",
                            who="command", at=NOW)  # fmt: skip


def test_prices__this_weeks_mean_against_the_week_before() -> None:
    seen = [
        price("pork", "30", 13),
        price("pork", "34", 7),  # the week before: 32
        price("pork", "40", 6),
        price("pork", "44", 0),  # this week: 42
        price("pork", "99", 14),  # before both weeks: not counted
        price("grain", "5", 3),  # no week before: no rise
    ]
    rises = item_rises(seen, TODAY)
    assert rises == {"pork": (Decimal(42) / Decimal(32) - 1) * 100}
    assert group_rise(("grain", "edible-oil"), rises) is None


def test_prices__a_groups_rise_is_its_items_largest() -> None:
    seen = [price("grain", "5", 8), price("grain", "5.5", 1),
            price("edible-oil", "15", 9), price("edible-oil", "19.5", 2)]  # fmt: skip
    assert group_rise(("grain", "edible-oil"), item_rises(seen, TODAY)) == Decimal(30)


# --- tight days over a restart (a real store: SQLite and PostgreSQL) -------------------------


def site_config(section: StoreSection) -> GatewayConfig:
    target = StockTarget(item="grain", days=15, per_person_daily=Decimal("0.4"))
    site = SiteSection(name="north", depots=("d01",), population=1000, stock_targets=(target,))
    return GatewayConfig(sites=(site,), store=section)


def movement(kind: str, item: str, steps: int, **fields: Any) -> Movement:
    extra: dict[str, Any] = (
        {"source": "purchase"} if kind == "receipt"
        else {"applicant_unit": "Clinic 3", "approver": "Li Wei", "application_id": "APP-1"}
    )  # fmt: skip
    return Movement(kind, "north", "d01", f"key-{next(_keys):08d}", item=item,  # type: ignore[arg-type]
                    unit=built_in_items()[item].unit, steps=steps, **{**extra, **fields})  # fmt: skip


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, Payload]] = []

    def __call__(self, topic: str, payload: Payload) -> None:
        self.messages.append((topic, payload))

    def levels(self) -> list[SupplyLevel]:
        return [p for _, p in self.messages if isinstance(p, SupplyLevel)]


@pytest.fixture
def opened() -> Iterator[list[SqlStore]]:
    stores: list[SqlStore] = []
    yield stores
    for store in stores:
        store.close()


def day_check(config: GatewayConfig, stores: list[SqlStore], at: datetime) -> SupplyLevel:
    """A gateway started at `at`: a new store and SupplyLevels on the same database, one check."""
    stores.append(open_store(config.store))
    sent = Sent()
    assert SupplyLevels(config, stores[-1], sent, lambda: at).check() == 2
    (level,) = sent.levels()
    return level


def test_supply_levels__consecutive_days_survive_a_restart(
    store_section: StoreSection, opened: list[SqlStore]
) -> None:
    config = site_config(store_section)
    first = open_store(config.store)
    opened.append(first)
    # 2000 kg for 1000 people at 0.4 kg a day: 5 days of a 15-day target. Tight, not out.
    first.stock_write(movement("receipt", "grain", 2_000_000), "keeper", NOW, TODAY)

    one = day_check(config, opened, NOW)
    assert (one.level, one.rule, one.since) == ("IV", "tight:necessities:1d", NOW)
    two = day_check(config, opened, NOW + timedelta(days=1))
    assert (two.level, two.rule, two.since) == ("IV", "tight:necessities:2d", NOW)
    three = day_check(config, opened, NOW + timedelta(days=2))
    assert (three.level, three.rule) == ("III", "tight:necessities:3d")
    assert three.since == NOW + timedelta(days=2)
    assert {c.category: c.tight_days for c in three.categories}["necessities"] == 3

    # A day with no check at all: the run starts again (nothing says it was tight then).
    again = day_check(config, opened, NOW + timedelta(days=4))
    assert (again.level, again.rule) == ("IV", "tight:necessities:1d")


def test_supply_levels__a_stock_out_of_a_needed_necessity_is_level_three(
    store_section: StoreSection, opened: list[SqlStore]
) -> None:
    config = site_config(store_section)
    store = open_store(config.store)
    opened.append(store)
    store.stock_write(movement("receipt", "grain", 9_000_000), "keeper", NOW, TODAY)
    store.stock_write(movement("receipt", "salt", 500), "keeper", NOW, TODAY)
    store.stock_write(movement("issue", "salt", -500), "keeper", NOW, TODAY)
    level = day_check(config, opened, NOW + timedelta(hours=1))
    assert (level.level, level.rule) == ("III", "stock-out:necessities")
    assert level.rule_en == "out of stock: daily necessities"
    # Milk was never stocked nor issued: it is not "out", the district just keeps none.
    assert {c.category: c.stock_out for c in level.categories} == {
        "protective": False, "disinfection": False, "necessities": True,
    }  # fmt: skip


def test_supply_levels__sent_when_changed_and_again_after_publish_every_s(
    store_section: StoreSection, opened: list[SqlStore]
) -> None:
    config = site_config(store_section)
    store = open_store(config.store)
    opened.append(store)
    now = [NOW]
    sent = Sent()
    levels = SupplyLevels(config, store, sent, lambda: now[0])
    assert levels.check() == 2
    now[0] += timedelta(seconds=30)
    assert levels.check() == 0, "within stock.check_every_s: not even figured"
    now[0] += timedelta(seconds=60)
    assert levels.check() == 0, "nothing changed"
    store.price_write(PriceDraft("north", "pork", "kg", 3000, TODAY - timedelta(days=8), "东门",
                                 "price-0001"), "command", NOW)  # fmt: skip
    store.price_write(PriceDraft("north", "pork", "kg", 4500, TODAY, "东门", "price-0002"),
                      "command", NOW)  # fmt: skip
    now[0] += timedelta(seconds=60)
    assert levels.check() == 1, "the level changed, the stock did not"
    assert sent.levels()[-1].rule == "price-rise:pork:+50%"
    now[0] += timedelta(seconds=300)
    assert levels.check() == 2, "unchanged, sent again after publish_every_s"


# --- MQTT: a command-center identity gets the retained level and stock ----------------------


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[PrivateBroker]:
    with locked_site(
        tmp_path, "north", [(IdentityRole.GATEWAY, "gw-supply"), (IdentityRole.COMMAND, "center")]
    ) as broker:
        yield broker


@pytest.mark.broker
def test_mqtt__a_command_center_gets_the_retained_level_and_stock_without_names(
    store_section: StoreSection, locked: PrivateBroker, opened: list[SqlStore]
) -> None:
    config = site_config(store_section)
    store = open_store(config.store)
    opened.append(store)
    store.stock_write(movement("receipt", "grain", 2_000_000), "keeper Wang Fang", NOW, TODAY)
    store.stock_write(movement("receipt", "n95-mask", 800, lot="N95-1", source="donation",
                               expires_on=date(2028, 1, 1), designated_to="Clinic 3"),
                      "keeper Wang Fang", NOW, TODAY)  # fmt: skip
    store.stock_write(movement("issue", "grain", -100_000), "keeper Wang Fang", NOW, TODAY)
    gateway = connect(locked.endpoint("gateway-gw-supply"), "gateway-gw-supply")
    try:
        sender = SupplyLevels(config, store, lambda t, p: publish(gateway, t, p).wait_for_publish(5),
                              lambda: NOW)  # fmt: skip
        assert sender.check() == 2
    finally:
        gateway.disconnect()
        gateway.loop_stop()

    site = topics.Site("north")
    center = Subscriber.connect(locked.endpoint("command-center"), "command-center")
    try:
        center.subscribe(topics.supply_level(site))
        center.subscribe(topics.stock_summary(site))
        got = {}
        for _ in range(2):
            message = center.next()
            assert message.retain
            got[message.topic] = bytes(message.payload)
        # The command center reads; it cannot put a level of its own in the gateway's place.
        center.client.publish(
            topics.supply_level(site), b'{"level": "I"}', qos=1, retain=True
        ).wait_for_publish(5)
    finally:
        center.close()
    later = Subscriber.connect(locked.endpoint("command-center"), "command-center-2")
    try:
        later.subscribe(topics.supply_level(site))
        assert bytes(later.next().payload) == got[topics.supply_level(site)]
    finally:
        later.close()
    level = catalogue.decode(topics.supply_level(site), got[topics.supply_level(site)]).payload
    stock = catalogue.decode(topics.stock_summary(site), got[topics.stock_summary(site)]).payload
    assert isinstance(level, SupplyLevel) and isinstance(stock, StockSummary)
    assert (level.level, level.rule) == ("IV", "tight:necessities:1d")
    necessities = {c.category: c for c in stock.categories}["necessities"]
    assert [(q.unit, q.quantity) for q in necessities.on_hand] == [("kg", "1900.000")]
    assert necessities.tight and necessities.targets[0].days == 4.8  # 1900 kg / 400 kg a day
    protective = {c.category: c for c in stock.categories}["protective"]
    assert [(q.unit, q.quantity) for q in protective.on_hand] == [("piece", "800")]
    for raw in got.values():
        for name in ("Wang Fang", "Clinic 3", "Li Wei", "APP-1", "N95-1"):
            assert name.encode() not in raw
