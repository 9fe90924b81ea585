"""Days of cover, reserve targets, the shortage alarm, expiring lots and first-expiry-first-out.

Days of cover is on hand divided by the average daily issue over a window (issues net of
their reversals; transfers move stock, they are not consumption). No stock is 0 days; no
issue in the window is cover without bound (None). A necessity with a per-person daily
consumption and a site population is also held to that: on hand / (population x daily
consumption). The functions here are pure, over what the ledger store returns; StockRules
runs them in the gateway's tick and raises or clears `stock-shortage` (docs/stock.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Self

from pydantic import Field, model_validator

from edge.configfile import Section
from edge.contract.base import Slug
from edge.contract.topics import AlertKind
from gateway.stock.catalogue import Category, StockItem, site_catalogue
from gateway.stock.daily_report import StockReportSection
from gateway.stock.ledger import OnHand, StockStore
from gateway.stock.supply_level import SupplyLevelSection

if TYPE_CHECKING:
    from gateway.alarms import AlarmBook
    from gateway.config import GatewayConfig, SiteSection
    from gateway.store.records import Severity

log = logging.getLogger(__name__)

TARGETS_MAX = 64
ZERO = Decimal(0)


class StockTarget(Section):
    """A reserve target: an item or a whole category held to so many days of cover."""

    item: Slug | None = Field(None, description="a catalogue item (or give category)")
    category: Category | None = Field(None, description="every item of a category")
    days: float = Field(gt=0, le=365, description="the reserve to hold, in days of cover")
    per_person_daily: Decimal | None = Field(
        None, gt=0, max_digits=9, decimal_places=3,
        description="an item's daily consumption per person, in its unit: the target is then "
        "days of the site's population's consumption, not of the average issue",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.item is None) == (self.category is None):
            raise ValueError("a target names an item or a category, not both or neither")
        if self.per_person_daily is not None and self.item is None:
            raise ValueError("per_person_daily is for an item (a category mixes units)")
        return self

    @property
    def subject(self) -> str:
        """The alarm's subject: `item:grain` or `category:protective`."""
        return f"item:{self.item}" if self.item else f"category:{self.category}"


class StockSection(Section):
    """How cover is figured and checked, for every site."""

    issue_window_days: int = Field(
        14, ge=1, le=365, description="the average daily issue is taken over this many days"
    )
    expiring_within_days: int = Field(
        30, ge=0, le=365, description="a lot expiring within this many days is listed as expiring"
    )
    check_every_s: float = Field(
        60.0, ge=1, le=3600, description="how often the tick checks the reserve targets"
    )
    clear_margin_pct: float = Field(
        10.0, ge=0, le=100,
        description="a shortage clears once cover is this many percent above its target",
    )  # fmt: skip
    supply_levels: SupplyLevelSection = Field(
        default_factory=SupplyLevelSection,
        description="the supply alert level's rules, IV to I (docs/stock.md)",
    )
    report: StockReportSection = Field(
        default_factory=StockReportSection,
        description="the daily deadlines and the daily stock report's alarm",
    )


@dataclass(frozen=True)
class Cover:
    """One item's (or a category's) cover at a depot or a site."""

    key: str
    category: str
    unit: str
    on_hand: Decimal
    daily_issue: Decimal
    days: Decimal | None  # None: no issue in the window, cover without bound


def average_daily_issue(issued: Decimal, window_days: int) -> Decimal:
    """What was issued over the window, per day."""
    return issued / window_days if issued > 0 else ZERO


def days_of_cover(on_hand: Decimal, daily: Decimal) -> Decimal | None:
    """On hand / daily use: 0 with nothing on hand, None (unbounded) with no use."""
    if on_hand <= 0:
        return ZERO
    if daily <= 0:
        return None
    return on_hand / daily


def usable(on_hand: Iterable[OnHand], today: date) -> dict[str, Decimal]:
    """Per item, what can still be issued: expired lots do not count."""
    totals: dict[str, Decimal] = {}
    for position in on_hand:
        if position.expires_on is None or position.expires_on >= today:
            totals[position.item] = totals.get(position.item, ZERO) + position.quantity
    return totals


def item_covers(
    catalogue: Mapping[str, StockItem],
    on_hand: Mapping[str, Decimal],
    issued: Mapping[str, Decimal],
    window_days: int,
) -> list[Cover]:
    """Cover of every item with stock or an issue in the window, in catalogue order."""
    covers = []
    for key, item in catalogue.items():
        held, out = on_hand.get(key, ZERO), issued.get(key, ZERO)
        if held <= 0 and out <= 0:
            continue
        daily = average_daily_issue(out, window_days)
        covers.append(Cover(key, item.category, item.unit, held, daily, days_of_cover(held, daily)))
    return covers


def category_cover(covers: Iterable[Cover], category: str) -> Decimal | None:
    """A category's cover is its weakest item's (its items' units do not add up); None
    when no item of it is issued, 0 when one issued is out of stock."""
    days = [c.days for c in covers if c.category == category]
    bounded = [d for d in days if d is not None]
    return min(bounded) if bounded else None


def population_cover(on_hand: Decimal, population: int, per_person_daily: Decimal) -> Decimal:
    """On hand / (population x daily consumption per person)."""
    if on_hand <= 0:
        return ZERO
    return on_hand / (population * per_person_daily)


def target_cover(
    target: StockTarget, covers: list[Cover], on_hand: Mapping[str, Decimal], population: int
) -> Decimal | None:
    """The cover a target is held to: of the population when it has a per-person figure
    and the site a population, else of the average issue."""
    if target.item is not None:
        if target.per_person_daily is not None and population > 0:
            return population_cover(on_hand.get(target.item, ZERO), population,
                                    target.per_person_daily)  # fmt: skip
        found = [c.days for c in covers if c.key == target.item]
        return found[0] if found else None
    return category_cover(covers, str(target.category))


def severity_of(days: Decimal | None, target_days: float) -> Severity | None:
    """None: not short; `warning` below the target; `critical` below half of it (a
    stock-out is 0 days, so critical)."""
    if days is None or days >= Decimal(str(target_days)):
        return None
    return "critical" if days < Decimal(str(target_days)) / 2 else "warning"


def recovered(days: Decimal | None, target_days: float, margin_pct: float) -> bool:
    """Whether a shortage clears: cover back above the target by the margin (hysteresis)."""
    bound = Decimal(str(target_days)) * (1 + Decimal(str(margin_pct)) / 100)
    return days is None or days >= bound


# --- expiring lots, first expiry first out -------------------------------------------


@dataclass(frozen=True)
class Expiring:
    """A lot on hand that expires within the window, or has expired."""

    item: str
    lot: str
    designated_to: str
    expires_on: date
    days_left: int  # negative: expired that many days ago
    quantity: Decimal
    unit: str


def expiring(on_hand: Iterable[OnHand], today: date, within_days: int) -> list[Expiring]:
    """Lots on hand expiring within `within_days` of `today` (or expired), earliest first."""
    found = [
        Expiring(p.item, p.lot, p.designated_to, p.expires_on, (p.expires_on - today).days,
                 p.quantity, p.unit)
        for p in on_hand
        if p.expires_on is not None and p.quantity > 0
        and p.expires_on <= today + timedelta(days=within_days)
    ]  # fmt: skip
    return sorted(found, key=lambda e: (e.expires_on, e.item, e.lot, e.designated_to))


@dataclass(frozen=True)
class Draw:
    """Take `quantity` from this lot (and designee)."""

    lot: str
    designated_to: str
    expires_on: date | None
    quantity: Decimal


def fefo(
    on_hand: Iterable[OnHand], item: str, quantity: Decimal, today: date, designee: str = ""
) -> tuple[list[Draw], Decimal]:
    """The lots to issue `quantity` of `item` from, earliest expiry first, and what is
    missing (0 when they cover it). An expired lot is never drawn; stock designated to a
    unit only when `designee` is that unit (it goes first among lots of one expiry)."""
    eligible = sorted(
        (p for p in on_hand
         if p.item == item and p.quantity > 0
         and (p.expires_on is None or p.expires_on >= today)
         and p.designated_to in ("", designee)),
        key=lambda p: (p.expires_on or date.max, p.designated_to == "", p.lot),
    )  # fmt: skip
    draws, left = [], quantity
    for position in eligible:
        if left <= 0:
            break
        take = min(left, position.quantity)
        draws.append(Draw(position.lot, position.designated_to, position.expires_on, take))
        left -= take
    return draws, max(left, ZERO)


# --- a depot's and a site's cover from the store -----------------------------------


@dataclass(frozen=True)
class DepotStock:
    """One depot's usable on hand and its issue over the window, per item: read once for
    its own cover and the site's."""

    depot: str
    held: dict[str, Decimal]
    issued: dict[str, Decimal]


def depot_stock(
    store: StockStore, site: SiteSection, depot: str, now: datetime, window_days: int
) -> DepotStock:
    today = now.astimezone(site.zone).date()
    held = usable(store.stock_on_hand(site.name, depot), today)
    issued = store.stock_issued(site.name, depot, now - timedelta(days=window_days))
    return DepotStock(depot, held, issued)


def site_stock(
    store: StockStore, site: SiteSection, now: datetime, window_days: int
) -> list[DepotStock]:
    """Every depot of the site's stock."""
    return [depot_stock(store, site, depot, now, window_days) for depot in site.depots]


def depot_cover(site: SiteSection, stock: DepotStock, window_days: int) -> list[Cover]:
    """One depot's cover per item."""
    catalogue = site_catalogue(site.stock_items)
    return item_covers(catalogue, stock.held, stock.issued, window_days)


def site_totals(
    store: StockStore, site: SiteSection, stocks: Iterable[DepotStock], window_days: int
) -> tuple[list[Cover], dict[str, Decimal]]:
    """The site's cover per item over every depot (stock in transit between them counts
    once, as the site's), and its usable on hand per item."""
    held: dict[str, Decimal] = {}
    issued: dict[str, Decimal] = {}
    for stock in stocks:
        for key, quantity in stock.held.items():
            held[key] = held.get(key, ZERO) + quantity
        for key, quantity in stock.issued.items():
            issued[key] = issued.get(key, ZERO) + quantity
    for moving in store.stock_in_transit(site.name, None):
        held[moving.item] = held.get(moving.item, ZERO) + moving.quantity
    return item_covers(site_catalogue(site.stock_items), held, issued, window_days), held


class StockRules:
    """The reserve targets, checked in the gateway's tick every `stock.check_every_s`.

    A target below is raised once as `stock-shortage`; a warning that becomes critical
    (below half the target, or out of stock) is cleared and raised again as critical, so
    the command center is told. It is cleared once its cover is back above the target by
    `clear_margin_pct`. The alarms live in the store, so a restarted gateway neither
    raises them twice nor forgets them.

    Args:
        config: the gateway's config (its sites' targets and population, `stock`).
        store: the ledger and the alarms.
        book: raises and clears.
        clock: now, in UTC.
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: StockStore,
        book: AlarmBook,
        clock: Callable[[], datetime],
        live: Callable[[Sequence[str]], set[tuple[str, str, str, str]]],
    ) -> None:
        self._config = config
        self._store = store
        self._book = book
        self._clock = clock
        self._live = live
        self._next: datetime | None = None

    def check(self) -> None:
        """Raise or clear each site's shortages, at most every `stock.check_every_s`."""
        now = self._clock()
        if self._next is not None and now < self._next:
            return
        self._next = now + timedelta(seconds=self._config.stock.check_every_s)
        if not isinstance(self._store, StockStore):
            return
        live = self._live((AlertKind.STOCK_SHORTAGE,))
        for site in self._config.sites:
            if site.stock_targets:
                self._site(site, now, live)

    def _worsened(self, site: str, subject: str) -> bool:
        """Clear a live warning for `subject` now critical; True if there was one. A
        person acknowledges the warning, not the stock-out it became."""
        alarm = self._book.live(AlertKind.STOCK_SHORTAGE, site, None, subject)
        if alarm is None or alarm.severity == "critical":
            return False
        self._book.clear_condition(AlertKind.STOCK_SHORTAGE, site, None, subject)
        return True

    def _site(self, site: SiteSection, now: datetime, live: set[tuple[str, str, str, str]]) -> None:
        from gateway.alarms import draft  # not at the top: the config imports this module

        stock = self._config.stock
        window = stock.issue_window_days
        stocks = site_stock(self._store, site, now, window)
        covers, held = site_totals(self._store, site, stocks, window)
        for target in site.stock_targets:
            days = target_cover(target, covers, held, site.population)
            raised = (AlertKind.STOCK_SHORTAGE, site.name, "", target.subject) in live
            severity = severity_of(days, target.days)
            if raised and severity == "critical" and self._worsened(site.name, target.subject):
                raised = False  # the warning is cleared; the critical alarm is raised anew
            if not raised and severity is not None:
                shown = "0" if days is None else f"{days:.1f}"
                key = "stock-shortage.out" if days == 0 else "stock-shortage"
                self._book.raise_alarm(draft(
                    AlertKind.STOCK_SHORTAGE, key, site.name, None, severity,
                    subject=target.subject, target=target.subject, days=shown,
                    target_days=f"{target.days:g}",
                ))  # fmt: skip
            elif raised and recovered(days, target.days, stock.clear_margin_pct):
                self._book.clear_condition(AlertKind.STOCK_SHORTAGE, site.name, None,
                                           target.subject)  # fmt: skip
