"""The daily stock report: a depot's day from its ledger, its deadlines, submissions, the alarm.

A report day is the site's local calendar day. Per depot, item and category it gives on
hand at the day's start, receipts, issues, transfers in and out, stocktake adjustments
(a reversal counted under the kind of the entry it cancels), on hand at its end and days
of cover then (gateway/stock/cover.py). A depot keeper submits the day's report by the
site's local `stock.report.report` time; a depot that has not raises
`stock-report-missing` until it does (docs/stock.md#daily-stock-report).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.configfile import Section
from edge.contract.topics import AlertKind
from gateway.stock.catalogue import StockItem, site_catalogue
from gateway.stock.ledger import EntryKind, OnHand, StockStore

if TYPE_CHECKING:
    from gateway.alarms import AlarmBook
    from gateway.config import GatewayConfig, SiteSection
    from gateway.stock.cover import Cover

log = logging.getLogger(__name__)

LOCAL_TIME = r"^([01]\d|2[0-3]):[0-5]\d$"
NOTE_MAX = 200
VERSIONS_MAX = 50  # submissions of one depot's day: a correction or two, not a loop
ZERO = Decimal(0)
DAYS = Decimal("0.1")
PER_DAY = Decimal("0.001")
# The figures of an item or category, in the order the report shows them.
FIGURES = (
    "opening", "receipts", "issues", "transfers_in", "transfers_out", "adjustments", "closing",
)  # fmt: skip
# Where each kind of entry is counted, and with which sign (issues and transfers out are
# shown as positive amounts taken out).
_COUNTED: dict[str, tuple[str, int]] = {
    "receipt": ("receipts", 1), "issue": ("issues", -1), "transfer-in": ("transfers_in", 1),
    "transfer-out": ("transfers_out", -1), "adjustment": ("adjustments", 1),
}  # fmt: skip


class StockReportSection(Section):
    """The plans' daily deadlines, as local times of each site's zone."""

    demand: str = Field("11:00", pattern=LOCAL_TIME, description="applications due (HH:MM)")
    allocation: str = Field("17:00", pattern=LOCAL_TIME, description="allocation due (HH:MM)")
    report: str = Field(
        "17:30", pattern=LOCAL_TIME, description="each depot's daily stock report due (HH:MM)"
    )
    enabled: bool = Field(
        True, description="raise stock-report-missing for a depot not reported by `report`"
    )

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if not self.demand < self.allocation < self.report:
            raise ValueError(
                f"the deadlines run demand < allocation < report within the day, not "
                f"{self.demand}, {self.allocation}, {self.report}"
            )
        return self


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local calendar day `day` as [start, end) in UTC (23 or 25 hours where the
    clocks change)."""
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def deadline_of(day: date, zone: ZoneInfo, local: str) -> datetime:
    """`local` ("17:30") on `day` in `zone`, in UTC."""
    hour, minute = (int(part) for part in local.split(":"))
    return datetime.combine(day, time(hour, minute), zone).astimezone(UTC)


# --- the figures ------------------------------------------------------------------------


class Figures(BaseModel):
    """What moved in one day; issues and transfers out are positive amounts taken out, an
    adjustment is signed. opening + receipts - issues + transfers_in - transfers_out +
    adjustments = closing."""

    model_config = ConfigDict(frozen=True)

    unit: str
    opening: Decimal
    receipts: Decimal
    issues: Decimal
    transfers_in: Decimal
    transfers_out: Decimal
    adjustments: Decimal
    closing: Decimal
    days: Decimal | None = Field(
        description="days of cover at the day's end, to 0.1; null: no issue in the window"
    )


class ItemDay(Figures):
    item: str
    category: str
    name_zh: str
    name_en: str
    daily_issue: Decimal = Field(description="average over the window ending with the day")


class CategoryDay(Figures):
    """One category's items of one unit summed (kg and pieces do not add up); its days are
    its weakest issued item's."""

    category: str


class DepotFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    depot: str
    categories: list[CategoryDay]
    items: list[ItemDay]


def _per_item(positions: Iterable[OnHand]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for position in positions:
        totals[position.item] = totals.get(position.item, ZERO) + position.quantity
    return totals


def _days(days: Decimal | None) -> Decimal | None:
    return None if days is None else days.quantize(DAYS)


def depot_day(
    depot: str,
    catalogue: Mapping[str, StockItem],
    *,
    opening: Iterable[OnHand],
    closing: Iterable[OnHand],
    moved: Mapping[tuple[str, EntryKind], Decimal],
    issued: Mapping[str, Decimal],
    window_days: int,
    day: date,
) -> DepotFigures:
    """A depot's day from what the ledger held at its start and end and what moved in it.

    Args:
        depot: the depot node.
        catalogue: the site's catalogue (built-in and its own items), for order and names.
        opening: the positions on hand at the day's start.
        closing: the positions on hand at the day's end (or now, for today).
        moved: per (item, kind), the signed sum of the day's entries, reversals netted.
        issued: per item, what was issued over the window ending with the day (positive).
        window_days: the window's length, for the average daily issue.
        day: the local day (lots expired by then do not count as cover).
    """
    from gateway.stock.cover import item_covers, usable  # cover.py imports this module

    opening, closing = list(opening), list(closing)
    held, start, end = usable(closing, day), _per_item(opening), _per_item(closing)
    covers = {c.key: c for c in item_covers(catalogue, held, issued, window_days)}
    keys = set(start) | set(end) | {item for item, _ in moved}
    ordered = [k for k in catalogue if k in keys] + sorted(keys - set(catalogue))
    units = {p.item: p.unit for p in (*opening, *closing)}  # an item gone from the catalogue
    items = []
    for key in ordered:
        known = catalogue.get(key)
        figures = dict.fromkeys(FIGURES, ZERO) | {"opening": start.get(key, ZERO),
                                                  "closing": end.get(key, ZERO)}  # fmt: skip
        for (item, kind), quantity in moved.items():
            if item == key and kind in _COUNTED:
                name, sign = _COUNTED[kind]
                figures[name] += sign * quantity
        cover = covers.get(key)
        items.append(ItemDay(
            item=key, category=known.category if known else "", unit=known.unit if known
            else units.get(key, ""), name_zh=known.name_zh if known else key,
            name_en=known.name_en if known else key, **figures,
            daily_issue=(cover.daily_issue if cover else ZERO).quantize(PER_DAY),
            days=_days(cover.days) if cover else None,
        ))  # fmt: skip
    return DepotFigures(depot=depot, categories=_categories(items, covers), items=items)


def _categories(items: list[ItemDay], covers: Mapping[str, Cover]) -> list[CategoryDay]:
    """Per category and unit, the items summed; days: the lowest bounded days of them."""
    from gateway.stock.cover import category_cover  # cover.py imports this module

    found: dict[tuple[str, str], list[ItemDay]] = {}
    for item in items:
        found.setdefault((item.category, item.unit), []).append(item)
    rows = []
    for (category, unit), group in found.items():
        sums = {name: sum((getattr(i, name) for i in group), ZERO) for name in FIGURES}
        of_group = [covers[i.item] for i in group if i.item in covers]
        rows.append(CategoryDay(category=category, unit=unit, **sums,
                                days=_days(category_cover(of_group, category))))  # fmt: skip
    return rows


def depot_figures(
    store: StockStore, site: SiteSection, depot: str, day: date, window_days: int
) -> DepotFigures:
    """A depot's report day read from the ledger: four indexed range reads."""
    start, end = day_bounds(day, site.zone)
    window = store.stock_movements(site.name, depot, end - timedelta(days=window_days), end)
    issued = {item: -q for (item, kind), q in window.items() if kind == "issue" and q < 0}
    return depot_day(
        depot, site_catalogue(site.stock_items),
        opening=store.stock_on_hand_at(site.name, depot, start),
        closing=store.stock_on_hand_at(site.name, depot, end),
        moved=store.stock_movements(site.name, depot, start, end), issued=issued,
        window_days=window_days, day=day,
    )  # fmt: skip


# --- submissions ------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionDraft:
    """A keeper's submission of a depot's day, with its figures as they stand now."""

    site: str
    depot: str
    day: date
    key: str
    who: str
    at: datetime
    deadline: datetime
    note: str
    figures: DepotFigures

    def fingerprint(self) -> str:
        """SHA-256 of what the keeper sent (the path and the note): the same key again
        must match it. Not the figures: they may have moved since."""
        sent = {"site": self.site, "depot": self.depot, "day": self.day.isoformat(),
                "note": self.note}  # fmt: skip
        return hashlib.sha256(json.dumps(sent, sort_keys=True).encode()).hexdigest()


class Submission(BaseModel):
    """One version of a depot's report of a day, as submitted; never changed."""

    model_config = ConfigDict(frozen=True)

    site: str
    depot: str
    day: date
    version: int = Field(description="1 for the first submission of the day; the newest counts")
    who: str = Field(description="the token that submitted it")
    at: datetime = Field(description="gateway time of submission")
    deadline: datetime
    late: bool = Field(description="submitted after the deadline")
    note: str
    figures: DepotFigures
    idempotency_key: str


@runtime_checkable
class DailyReportStore(Protocol):
    """What the daily stock report needs of a store, besides the ledger."""

    def stock_report_submit(self, draft: SubmissionDraft) -> tuple[Submission, bool]:
        """Keep `draft` as the depot day's next version; (it, True if it was a repeat).

        Raises:
            StockRefused: the key was used for another submission (409).
        """
        ...

    def stock_report_latest(self, site: str, day: date) -> dict[str, Submission]:
        """Per depot of `site`, the newest version submitted for `day`."""
        ...

    def stock_report_versions(self, site: str, depot: str, day: date) -> list[Submission]:
        """Every version of a depot's day, the first first."""
        ...

    def stock_reports_submitted(self, site: str, day: date) -> set[str]:
        """The depots of `site` with a submission for `day`."""
        ...


# --- the deadline alarm -----------------------------------------------------------------


class StockReportRules:
    """Raises `stock-report-missing` for each depot whose report of the site's local today
    is not in by `stock.report.report`, once per depot and day (subject: the day), and
    clears it when that day's report is submitted, however late. Everything it decides
    from is in the store (submissions, live alarms): a restart raises nothing twice.

    Args:
        config: the sites, their depots and zones, `stock.report`.
        store: the submissions.
        book: raises and clears.
        clock: now, in UTC.
        live: the live alarm conditions (kind, site, node, subject).
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: object,
        book: AlarmBook,
        clock: Callable[[], datetime],
        live: Callable[[Sequence[str]], set[tuple[str, str, str, str]]],
    ) -> None:
        self._config = config
        self._store = store
        self._book = book
        self._clock = clock
        self._live = live

    def check(self) -> None:
        """Raise what is due and clear what was submitted, for every site with depots."""
        if not self._config.stock.report.enabled or not isinstance(self._store, DailyReportStore):
            return
        now = self._clock()
        live = self._live((AlertKind.STOCK_REPORT_MISSING,))
        for site in self._config.sites:
            raised = {
                (node, subject) for kind, name, node, subject in live
                if kind == AlertKind.STOCK_REPORT_MISSING and name == site.name
            }  # fmt: skip
            self._clear_submitted(self._store, site.name, raised)
            if site.depots:
                self._raise_due(self._store, site, now, raised)

    def _clear_submitted(
        self, store: DailyReportStore, site: str, raised: set[tuple[str, str]]
    ) -> None:
        for subject in {subject for _, subject in raised}:
            try:
                day = date.fromisoformat(subject)
            except ValueError:
                continue  # not one of ours (a subject is always a day here)
            done = store.stock_reports_submitted(site, day)
            for node, _ in sorted(r for r in raised if r[1] == subject and r[0] in done):
                self._book.clear_condition(AlertKind.STOCK_REPORT_MISSING, site, node, subject)

    def _raise_due(
        self, store: DailyReportStore, site: SiteSection, now: datetime,
        raised: set[tuple[str, str]],
    ) -> None:  # fmt: skip
        from gateway.alarms import draft  # not at the top: the config imports this module

        due = self._config.stock.report.report
        today = now.astimezone(site.zone).date()
        if now < deadline_of(today, site.zone, due):
            return
        done = store.stock_reports_submitted(site.name, today)
        for depot in site.depots:
            if depot not in done and (depot, today.isoformat()) not in raised:
                self._book.raise_alarm(draft(
                    AlertKind.STOCK_REPORT_MISSING, "stock-report-missing", site.name, depot,
                    "warning", subject=today.isoformat(), day=today.isoformat(), deadline=due,
                ))  # fmt: skip
