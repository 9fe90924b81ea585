"""The supply level of each site, figured from the ledger, the targets and the prices; and
SupplyLevels, which records tight days and publishes the level and the stock in the tick.

What counts (docs/stock.md, "Supply alert levels and prices"):
- a category is *tight* while one of its reserve targets is below (without the shortage
  alarm's margin); each local day it was at any check is recorded;
- an item is *out of stock* with no usable stock over the site's depots when a target
  names it, or when it is a daily necessity or of a category with a target, and was issued
  in the issue window (needed, and gone);
- a price group's *rise* is prices.group_rise over the observations of the last 14 days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from edge.contract import topics
from edge.contract.base import Payload
from edge.contract.supply import (
    CategoryStock,
    CategorySupply,
    PriceRise,
    StockSummary,
    SupplyLevel,
    TargetCover,
    UnitQuantity,
)
from gateway.stock.catalogue import Category, site_catalogue
from gateway.stock.cover import (
    Cover,
    category_cover,
    severity_of,
    site_stock,
    site_totals,
    target_cover,
)
from gateway.stock.ledger import StockStore
from gateway.stock.prices import WEEK_DAYS, group_rise, item_rises
from gateway.stock.supply_level import (
    Finding,
    SupplyInputs,
    SupplyState,
    SupplyStore,
    consecutive_days,
    supply_level,
)

if TYPE_CHECKING:
    from gateway.config import GatewayConfig, SiteSection

log = logging.getLogger(__name__)

Publish = Callable[[str, Payload], None]
CATEGORIES: tuple[Category, ...] = ("protective", "disinfection", "necessities")
# How far back tight days are read: a run longer than a year is shown as a year.
HISTORY_DAYS = 366
DAYS = Decimal("0.1")
ZERO = Decimal(0)


@runtime_checkable
class SupplyLevelStore(StockStore, SupplyStore, Protocol):
    """What the level reads (the ledger) and keeps (prices, tight days, the level)."""


@dataclass(frozen=True)
class Assessment:
    """One site's level now, what it was figured from, and its stock per category."""

    site: str
    today: date
    at: datetime
    tight_now: frozenset[str]
    inputs: SupplyInputs
    finding: Finding | None
    stock: tuple[CategoryStock, ...]


def _days(days: Decimal | None) -> float | None:
    return None if days is None else float(days.quantize(DAYS))


def _stock(
    site: SiteSection, covers: list[Cover], held: Mapping[str, Decimal]
) -> tuple[tuple[CategoryStock, ...], frozenset[str], dict[str, tuple[str, ...]]]:
    """Per category: its stock and targets; the tight categories; the items out of stock."""
    catalogue = site_catalogue(site.stock_items)
    targets: dict[str, list[TargetCover]] = {}
    for target in site.stock_targets:
        category = catalogue[target.item].category if target.item else str(target.category)
        days = target_cover(target, covers, held, site.population)
        below = severity_of(days, target.days) is not None
        shown = TargetCover(subject=target.subject, days=_days(days), target_days=target.days,
                            below=below)  # fmt: skip
        targets.setdefault(category, []).append(shown)
    named = {t.item for t in site.stock_targets if t.item}
    watched = {"necessities", *(str(t.category) for t in site.stock_targets if t.category)}
    issued = {c.key for c in covers if c.daily_issue > 0}
    out: dict[str, list[str]] = {}
    units: dict[str, dict[str, Decimal]] = {}
    for key, item in catalogue.items():
        quantity = held.get(key, ZERO)
        if quantity > 0:
            per_unit = units.setdefault(item.category, {})
            per_unit[item.unit] = per_unit.get(item.unit, ZERO) + quantity
        elif key in named or (item.category in watched and key in issued):
            out.setdefault(item.category, []).append(key)
    stock = tuple(
        CategoryStock(
            category=category,
            on_hand=tuple(UnitQuantity(unit=u, quantity=format(q, "f"))
                          for u, q in sorted(units.get(category, {}).items())),
            days=_days(category_cover(covers, category)), targets=tuple(targets.get(category, ())),
            tight=any(t.below for t in targets.get(category, ())),
        )
        for category in CATEGORIES
    )  # fmt: skip
    tight = frozenset(c.category for c in stock if c.tight)
    return stock, tight, {category: tuple(items) for category, items in out.items()}


def assess(
    config: GatewayConfig, store: StockStore, supply: SupplyStore, site: SiteSection, now: datetime
) -> Assessment:
    """Figure `site`'s level now (reads only: the tick records today's tight categories)."""
    rules = config.stock.supply_levels
    today = now.astimezone(site.zone).date()
    window = config.stock.issue_window_days
    covers, held = site_totals(store, site, site_stock(store, site, now, window), window)
    stock, tight_now, stock_outs = _stock(site, covers, held)
    history = supply.tight_history(site.name, today - timedelta(days=HISTORY_DAYS))
    tight_days: dict[str, int] = {
        category: consecutive_days(history.get(category, set()), today, category in tight_now)
        for category in CATEGORIES
    }
    observed = supply.prices(site.name, today - timedelta(days=2 * WEEK_DAYS - 1), today)
    per_item = item_rises(observed, today)
    rises = {group.name: group_rise(group.items, per_item) for group in rules.price_groups}
    inputs = SupplyInputs(tight_days=tight_days, stock_outs=stock_outs, rises=rises)
    return Assessment(site.name, today, now, tight_now, inputs, supply_level(rules, inputs), stock)


def since_of(assessment: Assessment, state: SupplyState | None) -> datetime | None:
    """When the site entered its level: the recorded time if the record holds the same
    level, else now (the tick records it); None without a level."""
    level = assessment.finding.level if assessment.finding else None
    if level is None:
        return None
    if state is not None and state.level == level:
        return state.since
    return assessment.at


def level_payload(assessment: Assessment, since: datetime | None) -> SupplyLevel:
    """The retained supply-level message (and the API's answer) of an assessment."""
    found = assessment.finding
    rises = assessment.inputs.rises
    return SupplyLevel(
        site=assessment.site, level=found.level if found else None,
        rule=found.rule if found else None, rule_zh=found.zh if found else None,
        rule_en=found.en if found else None, since=since, at=assessment.at,
        categories=tuple(
            CategorySupply(category=c, tight_days=min(assessment.inputs.tight_days.get(c, 0),
                                                      3660),
                           stock_out=bool(assessment.inputs.stock_outs.get(c)))
            for c in CATEGORIES
        ),
        prices=tuple(
            PriceRise(group=group, rise_pct=None if rise is None else float(rise.quantize(DAYS)))
            for group, rise in rises.items()
        ),
    )  # fmt: skip


class SupplyLevels:
    """Each site's supply level and stock summary, in the gateway's tick every
    `stock.check_every_s`: records the categories tight today, keeps the level and since
    when in the store, and publishes both retained when they change and every
    `stock.supply_levels.publish_every_s` unchanged.

    Args:
        config: sites, targets, the level's rules.
        store: the ledger and the supply records.
        publish: sends one payload to one topic (with the contract's QoS and retain).
        clock: now, in UTC.
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: SupplyLevelStore,
        publish: Publish,
        clock: Callable[[], datetime],
    ) -> None:
        self._config = config
        self._store = store
        self._publish = publish
        self._clock = clock
        self._next: datetime | None = None
        # topic -> (what was sent but its time, when it was sent)
        self._sent: dict[str, tuple[object, datetime]] = {}

    def check(self) -> int:
        """Figure and publish every site with depots, at most every `stock.check_every_s`;
        returns how many messages were sent."""
        now = self._clock()
        if self._next is not None and now < self._next:
            return 0
        self._next = now + timedelta(seconds=self._config.stock.check_every_s)
        if not isinstance(self._store, SupplyLevelStore):  # another backend without them yet
            return 0
        sent = 0
        for site in self._config.sites:
            if site.depots:
                sent += self._site(self._store, site, now)
        return sent

    def _site(self, store: SupplyLevelStore, site: SiteSection, now: datetime) -> int:
        assessment = assess(self._config, store, store, site, now)
        store.record_tight_days(site.name, assessment.today, set(assessment.tight_now))
        state = store.supply_state(site.name)
        since = since_of(assessment, state)
        found = assessment.finding
        level, rule = (found.level, found.rule) if found else (None, None)
        if state is None or (state.level, state.rule) != (level, rule):
            store.save_supply_state(SupplyState(site.name, level, rule, since, now))
            if state is None or state.level != level:
                log.info("site %s supply level %s (%s)", site.name, level or "none", rule or "-")
        branch = self._config.topic_site(site.name)
        level_message = level_payload(assessment, since)
        stock = StockSummary(site=site.name, at=now, categories=assessment.stock)
        return self._send(topics.supply_level(branch), level_message, now) + self._send(
            topics.stock_summary(branch), stock, now
        )

    def _send(self, topic: str, payload: SupplyLevel | StockSummary, now: datetime) -> int:
        content = payload.model_dump(exclude={"at"})
        last = self._sent.get(topic)
        every = timedelta(seconds=self._config.stock.supply_levels.publish_every_s)
        if last is not None and last[0] == content and now - last[1] < every:
            return 0
        try:
            self._publish(topic, payload)
        except Exception:
            log.exception("could not publish %s", topic)
            return 0
        self._sent[topic] = (content, now)
        return 1
