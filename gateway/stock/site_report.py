"""A site's daily stock report: each depot's submission state and figures, and its CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from gateway.stock.daily_report import (
    FIGURES,
    DailyReportStore,
    DepotFigures,
    Figures,
    Submission,
    day_bounds,
    deadline_of,
    depot_figures,
)
from gateway.stock.ledger import StockStore
from gateway.web.words import say

if TYPE_CHECKING:
    from gateway.config import SiteSection
    from gateway.stock.cover import StockSection

BOM = "\ufeff"  # Excel reads a CSV without it in the local code page and garbles Chinese
State = Literal["submitted", "late", "missing", "due"]


class DepotDay(BaseModel):
    """One depot's part of the site's report: its submission and its figures."""

    depot: str
    state: State = Field(
        description="submitted (by the deadline), late (after it), missing (none, the "
        "deadline passed), due (none yet, the deadline still ahead)"
    )
    version: int | None = Field(description="the newest submission's version; null: none")
    submitted_at: datetime | None
    submitted_by: str | None = Field(description="the token that submitted it")
    late: bool
    source: Literal["submitted", "ledger"] = Field(
        description="the figures: as the newest submission gave them, or the ledger's now"
    )
    differs: bool = Field(description="the ledger's figures of the day no longer match")
    figures: DepotFigures


class DailyStockReport(BaseModel):
    site: str
    day: date = Field(description="the site's local calendar day")
    timezone: str
    period_start: datetime
    period_end: datetime
    deadline: datetime = Field(description="the day's report deadline, UTC")
    deadlines: dict[str, str] = Field(description="demand, allocation, report: local HH:MM")
    window_days: int = Field(description="days of cover: the average issue over this many days")
    closed: bool = Field(description="the day is over; before that, the figures are so far")
    generated_at: datetime
    depots: list[DepotDay]


def site_report(
    store: StockStore,
    reports: DailyReportStore,
    *,
    site: SiteSection,
    depots: list[str],
    day: date,
    now: datetime,
    settings: StockSection,
) -> DailyStockReport:
    """The report of `day` over `depots`: the newest submission's figures where there is
    one (flagged when the ledger's differ now), else the ledger's."""
    start, end = day_bounds(day, site.zone)
    deadline = deadline_of(day, site.zone, settings.report.report)
    latest = reports.stock_report_latest(site.name, day)
    rows = [
        depot_day_of(depot, depot_figures(store, site, depot, day, settings.issue_window_days),
                     latest.get(depot), overdue=now >= deadline)
        for depot in depots
    ]  # fmt: skip
    return DailyStockReport(
        site=site.name, day=day, timezone=site.timezone, period_start=start, period_end=end,
        deadline=deadline, window_days=settings.issue_window_days, closed=now >= end,
        deadlines={"demand": settings.report.demand, "allocation": settings.report.allocation,
                   "report": settings.report.report},
        generated_at=now, depots=rows,
    )  # fmt: skip


def depot_day_of(
    depot: str, ledger: DepotFigures, sent: Submission | None, *, overdue: bool
) -> DepotDay:
    """A depot's state: late or submitted by its newest submission, else missing once the
    deadline passed (due before)."""
    if sent is None:
        return DepotDay(
            depot=depot, state="missing" if overdue else "due", version=None, submitted_at=None,
            submitted_by=None, late=False, source="ledger", differs=False, figures=ledger,
        )  # fmt: skip
    return DepotDay(
        depot=depot, state="late" if sent.late else "submitted", version=sent.version,
        submitted_at=sent.at, submitted_by=sent.who, late=sent.late, source="submitted",
        differs=sent.figures != ledger, figures=sent.figures,
    )  # fmt: skip


# CSV columns: (words.json key of the header, what fills it).
_HEAD = ("site", "day", "depot", "state", "version", "submittedAt", "by", "isLate", "differs",
         "level", "category", "item", "name", "unit", *FIGURES, "dailyIssue", "days")  # fmt: skip


def report_csv(report: DailyStockReport) -> str:
    """Per depot, a row per category (level `category`) then per item (`item`); a depot
    with no stock and no movement has one row of its state alone. Headers say each column
    in Chinese, then English; starts with a BOM so Excel opens Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"{say(f'stockReport.{k}', 'zh')} {say(f'stockReport.{k}', 'en')}"
                     for k in _HEAD])  # fmt: skip
    for depot in report.depots:
        head = [
            report.site, report.day.isoformat(), depot.depot, depot.state, depot.version or "",
            depot.submitted_at.isoformat() if depot.submitted_at else "",
            depot.submitted_by or "", depot.late, depot.differs,
        ]  # fmt: skip
        lines: list[tuple[str, str, str, str, Figures, str]] = [
            ("category", c.category, "", "", c, "") for c in depot.figures.categories
        ]
        lines += [("item", i.category, i.item, i.name_zh, i, str(i.daily_issue))
                  for i in depot.figures.items]  # fmt: skip
        if not lines:
            writer.writerow([*head, *[""] * (len(_HEAD) - len(head))])
        for level, category, item, name, figures, daily in lines:
            writer.writerow([
                *head, level, category, item, name, figures.unit,
                *(getattr(figures, f) for f in FIGURES), daily,
                "" if figures.days is None else figures.days,
            ])  # fmt: skip
    return BOM + out.getvalue()
