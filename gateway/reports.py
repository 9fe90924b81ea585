"""A site's daily report (日报告、零报告): each gate's own report beside the gateway's count."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from edge.contract.events import CheckpointCounts
from edge.gate.daily import ReportPeriod, report_period
from gateway.config import SiteSection
from gateway.store.base import ReadStore
from gateway.store.records import DailyReportRecord
from gateway.web.words import Language, date_parts, say, zone_name

GateReportStatus = Literal["reported", "zero-report", "missing", "open"]
COUNT_FIELDS: tuple[str, ...] = tuple(CheckpointCounts.model_fields)


class GateDailyReport(BaseModel):
    """One gate's line of the site's daily report."""

    node: str
    expected: bool = Field(description="in the site's inventory; false: reported but not listed")
    status: GateReportStatus = Field(
        description="missing: the period closed and the gate sent no report for it; open: "
        "the period has not reached its cut-off (gates report at the cut-off)"
    )
    reported: CheckpointCounts | None = Field(None, description="the gate's own counts, as sent")
    computed: CheckpointCounts = Field(
        description="what the gateway counted from the events it stored, same period"
    )
    mismatch: bool = Field(
        description="the gate's counts differ from the gateway's (e.g. events still in flight)"
    )
    received_at: datetime | None = Field(None, description="when the gateway got the report")
    event_id: str | None = Field(None, description="the daily-report event")
    chain_seq: int | None = Field(
        None, description="seq of the gate's last event before its report (the chain head)"
    )
    chain_head: str | None = Field(
        None,
        description="the report's prev_hash: SHA-256 of that event, pinning every event before "
        "it (`gatepost gateway audit-chain` prints the heads to compare)",
    )


class ReportWording(BaseModel):
    """The report's name and period in the words people read, each [简体中文, English]."""

    title: tuple[str, str] = Field(description="e.g. 卡口日报（12月5日）")
    period: tuple[str, str] = Field(description="e.g. 统计时段：2026年12月5日0时至24时（北京时间）")


class SiteDailyReport(BaseModel):
    """Every gate of a site for one day, up to the hour-precise cut-off."""

    site: str
    report_date: date = Field(
        description="the date the report is named by: the last day its period covers (with a "
        "midnight cut-off, the day before `day`)"
    )
    day: date = Field(description="the local date the period closes, as in DailyReport.day")
    timezone: str
    cutoff_hour: int
    period_start: datetime
    period_end: datetime = Field(description="the cut-off, to the hour, local time")
    closed: bool = Field(description="the cut-off has passed when the report was made")
    generated_at: datetime
    gates: list[GateDailyReport]
    reported_totals: CheckpointCounts = Field(description="sum of what the gates sent")
    computed_totals: CheckpointCounts = Field(description="sum of what the gateway counted")
    expected_gates: int
    missing: int = Field(description="expected gates that sent nothing for a closed period")
    zero_reports: int
    mismatches: int
    wording: ReportWording


def sum_counts(counts: Iterable[CheckpointCounts]) -> CheckpointCounts:
    """Field by field sum (an empty iterable gives all zeros)."""
    total = dict.fromkeys(COUNT_FIELDS, 0)
    for each in counts:
        for name, value in each.model_dump().items():
            total[name] += value
    return CheckpointCounts(**total)


# --- which period ------------------------------------------------------------------------------


def period_of_day(day: date, cutoff_hour: int, tz: ZoneInfo) -> ReportPeriod:
    """The period whose report carries `day`: it ends at the cut-off hour of `day`.

    Any instant well inside the period finds it; twelve wall-clock hours before the
    cut-off is, whatever a DST change does to that day.
    """
    inside = datetime.combine(day, time(cutoff_hour), tzinfo=tz) - timedelta(hours=12)
    return report_period(inside, cutoff_hour, tz)


def last_closed_day(site: SiteSection, now: datetime) -> date:
    """The day of the newest period whose cut-off has passed at `now`."""
    return report_period(now, site.cutoff_hour, site.zone).start.date()


def open_day(site: SiteSection, now: datetime) -> date:
    """The day of the period `now` is in: it has not reached its cut-off yet."""
    return report_period(now, site.cutoff_hour, site.zone).end.date()


def report_date_of(day: date, cutoff_hour: int) -> date:
    """The date people name a period by, from the date it closes (`DailyReport.day`).

    A period closing at midnight covers the day before, 0时至24时; one closing at 17:00
    covers up to 17时 of its closing day.
    """
    return day - timedelta(days=1) if cutoff_hour == 0 else day


def day_of_report_date(report_date: date, cutoff_hour: int) -> date:
    """The closing date (`DailyReport.day`) of the period named `report_date`."""
    return report_date + timedelta(days=1) if cutoff_hour == 0 else report_date


# --- the report --------------------------------------------------------------------------------


def site_daily_report(
    store: ReadStore, site: SiteSection, day: date, now: datetime
) -> SiteDailyReport:
    """The site's daily report for `day`: every gate of the inventory, reported or not.

    Args:
        store: where the gates' reports and events are.
        site: the site's section of the config (inventory, time zone, cut-off hour).
        day: the local date the period closes.
        now: the report's time (whether the period has closed yet).

    Returns:
        One line per inventory gate, in inventory order, then gates that reported
        without being listed, marked unexpected. Before the cut-off a gate without a
        report is `open`, not missing: gates report at the cut-off.
    """
    period = period_of_day(day, site.cutoff_hour, site.zone)
    closed = period.end <= now
    sent = {report.node: report for report in store.daily_reports(site.name, day)}
    nodes = [*site.gates, *sorted(set(sent) - set(site.gates))]
    gates = [
        _gate_line(
            store, site, node, period, sent.get(node), expected=node in site.gates, closed=closed
        )
        for node in nodes
    ]
    expected = [gate for gate in gates if gate.expected]
    report_date = report_date_of(day, site.cutoff_hour)
    title = date_parts(datetime.combine(report_date, time()))
    return SiteDailyReport(
        site=site.name,
        report_date=report_date,
        day=day,
        timezone=site.timezone,
        cutoff_hour=site.cutoff_hour,
        period_start=period.start,
        period_end=period.end,
        closed=closed,
        generated_at=now,
        gates=gates,
        reported_totals=sum_counts(g.reported for g in gates if g.reported is not None),
        computed_totals=sum_counts(g.computed for g in gates),
        expected_gates=len(expected),
        missing=sum(g.status == "missing" for g in expected),
        zero_reports=sum(g.status == "zero-report" for g in gates),
        mismatches=sum(g.mismatch for g in gates),
        wording=ReportWording(
            title=(say("report.title", "zh", **title), say("report.title", "en", **title)),
            period=(
                period_words(period, site.timezone, "zh"),
                period_words(period, site.timezone, "en"),
            ),
        ),
    )


def _gate_line(
    store: ReadStore,
    site: SiteSection,
    node: str,
    period: ReportPeriod,
    report: DailyReportRecord | None,
    *,
    expected: bool,
    closed: bool,
) -> GateDailyReport:
    computed = store.counts(site.name, node, period.start, period.end)
    if report is None:
        return GateDailyReport(
            node=node, expected=expected, status="missing" if closed else "open",
            computed=computed, mismatch=False,
        )  # fmt: skip
    return GateDailyReport(
        node=node,
        expected=expected,
        status="zero-report" if report.zero_report else "reported",
        reported=report.counts,
        computed=computed,
        mismatch=report.counts != computed,
        received_at=report.received_at,
        event_id=report.event_id,
        chain_seq=report.seq - 1 if report.prev_hash else None,
        chain_head=report.prev_hash,
    )


def period_words(period: ReportPeriod, zone: str, lang: Language) -> str:
    """The period as people say it: "统计时段：2026年12月5日0时至24时（北京时间）".

    The end is said as briefly as it reads unambiguously: the hour alone on the start's
    day, 24时 for the midnight ending the start's day, else with its date (…4日17时至12月
    5日17时).
    """
    tz = ZoneInfo(zone)
    start, end = period.start.astimezone(tz), period.end.astimezone(tz)
    if end.date() == start.date():
        end_key = "format.hour"
    elif end.date() == start.date() + timedelta(days=1) and (end.hour, end.minute) == (0, 0):
        end_key = "format.midnight"
    elif end.year == start.year:
        end_key = "format.monthDayHour"
    else:
        end_key = "format.dateHour"
    return say(
        "report.period", lang,
        start=say("format.dateHour", lang, **date_parts(start)),
        end=say(end_key, lang, **date_parts(end)),
        zone=zone_name(zone, end, lang),
    )  # fmt: skip


# --- CSV ---------------------------------------------------------------------------------------

BOM = "\ufeff"  # Excel reads a CSV without it in the local code page and garbles Chinese
TOTAL = "TOTAL"


def report_csv(report: SiteDailyReport) -> str:
    """One row per gate and a total row; starts with a BOM so Excel opens Chinese right.

    Columns `<count>` are what the gate reported (empty when it sent nothing),
    `gateway_<count>` what the gateway counted from the events it stored.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "site", "report_date", "day", "period_start", "period_end", "gate", "expected",
            "status", "mismatch", "received_at", *COUNT_FIELDS,
            *(f"gateway_{name}" for name in COUNT_FIELDS),
        ]
    )  # fmt: skip
    head = [
        report.site, report.report_date, report.day,
        report.period_start.isoformat(), report.period_end.isoformat(),
    ]  # fmt: skip
    for gate in report.gates:
        reported = gate.reported.model_dump() if gate.reported else {}
        writer.writerow(
            [
                *head, gate.node, gate.expected, gate.status, gate.mismatch,
                gate.received_at.isoformat() if gate.received_at else "",
                *(reported.get(name, "") for name in COUNT_FIELDS),
                *gate.computed.model_dump().values(),
            ]
        )  # fmt: skip
    writer.writerow(
        [
            *head, TOTAL, "", "", report.mismatches > 0, "",
            *report.reported_totals.model_dump().values(),
            *report.computed_totals.model_dump().values(),
        ]
    )  # fmt: skip
    return BOM + out.getvalue()
