"""A site's daily report (日报告、零报告): each gate's own report beside the gateway's count."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from edge.contract.events import CheckpointCounts
from edge.gate.daily import ReportPeriod, report_period
from gateway.config import SiteSection
from gateway.store import Store
from gateway.store.records import DailyReportRecord

GateReportStatus = Literal["reported", "zero-report", "missing"]
COUNT_FIELDS: tuple[str, ...] = tuple(CheckpointCounts.model_fields)


class GateDailyReport(BaseModel):
    """One gate's line of the site's daily report."""

    node: str
    expected: bool = Field(description="in the site's inventory; false: reported but not listed")
    status: GateReportStatus = Field(description="missing: the gate sent no report for the day")
    reported: CheckpointCounts | None = Field(None, description="the gate's own counts, as sent")
    computed: CheckpointCounts = Field(
        description="what the gateway counted from the events it stored, same period"
    )
    mismatch: bool = Field(
        description="the gate's counts differ from the gateway's (e.g. events still in flight)"
    )
    received_at: datetime | None = Field(None, description="when the gateway got the report")
    event_id: str | None = Field(None, description="the daily-report event")


class SiteDailyReport(BaseModel):
    """Every gate of a site for one day, up to the hour-precise cut-off."""

    site: str
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
    missing: int = Field(description="expected gates that sent nothing")
    zero_reports: int
    mismatches: int


def sum_counts(counts: Iterable[CheckpointCounts]) -> CheckpointCounts:
    """Field by field sum (an empty iterable gives all zeros)."""
    total = dict.fromkeys(COUNT_FIELDS, 0)
    for each in counts:
        for name, value in each.model_dump().items():
            total[name] += value
    return CheckpointCounts(**total)


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


def site_daily_report(store: Store, site: SiteSection, day: date, now: datetime) -> SiteDailyReport:
    """The site's daily report for `day`: every gate of the inventory, reported or not.

    Args:
        store: where the gates' reports and events are.
        site: the site's section of the config (inventory, time zone, cut-off hour).
        day: the local date the period closes.
        now: the report's time (whether the period has closed yet).

    Returns:
        One line per inventory gate, in inventory order, then gates that reported
        without being listed, marked unexpected.
    """
    period = period_of_day(day, site.cutoff_hour, site.zone)
    sent = {report.node: report for report in store.daily_reports(site.name, day)}
    nodes = [*site.gates, *sorted(set(sent) - set(site.gates))]
    gates = [
        _gate_line(store, site, node, period, sent.get(node), expected=node in site.gates)
        for node in nodes
    ]
    expected = [gate for gate in gates if gate.expected]
    return SiteDailyReport(
        site=site.name,
        day=day,
        timezone=site.timezone,
        cutoff_hour=site.cutoff_hour,
        period_start=period.start,
        period_end=period.end,
        closed=period.end <= now,
        generated_at=now,
        gates=gates,
        reported_totals=sum_counts(g.reported for g in gates if g.reported is not None),
        computed_totals=sum_counts(g.computed for g in gates),
        expected_gates=len(expected),
        missing=sum(g.status == "missing" for g in expected),
        zero_reports=sum(g.status == "zero-report" for g in gates),
        mismatches=sum(g.mismatch for g in gates),
    )


def _gate_line(
    store: Store,
    site: SiteSection,
    node: str,
    period: ReportPeriod,
    report: DailyReportRecord | None,
    *,
    expected: bool,
) -> GateDailyReport:
    computed = store.counts(site.name, node, period.start, period.end)
    if report is None:
        return GateDailyReport(
            node=node, expected=expected, status="missing", computed=computed, mismatch=False
        )
    return GateDailyReport(
        node=node,
        expected=expected,
        status="zero-report" if report.zero_report else "reported",
        reported=report.counts,
        computed=computed,
        mismatch=report.counts != computed,
        received_at=report.received_at,
        event_id=report.event_id,
    )


# --- renderers ------------------------------------------------------------------------------

BOM = "\ufeff"  # Excel reads a CSV without it in the local code page and garbles Chinese
TOTAL = "TOTAL"
COUNT_WORDS: dict[str, tuple[str, str]] = {
    "person_checks": ("人次", "Person checks"),
    "vehicle_checks": ("车次", "Vehicle checks"),
    "temperature_readings": ("测温人数", "Temperatures taken"),
    "allowed": ("通行", "Allowed"),
    "held": ("暂留", "Held"),
    "turned_back": ("劝返", "Turned back"),
    "fever": ("体温异常", "Fever"),
    "green": ("绿码", "Green"),
    "yellow": ("黄码", "Yellow"),
    "red": ("红码", "Red"),
    "disinfections": ("消毒", "Disinfections"),
}
STATUS_WORDS: dict[GateReportStatus, tuple[str, str]] = {
    "reported": ("已报告", "Reported"),
    "zero-report": ("零报告", "Zero report"),
    "missing": ("✕ 未报告", "✕ MISSING"),
}


def report_csv(report: SiteDailyReport) -> str:
    """One row per gate and a total row; starts with a BOM so Excel opens Chinese right.

    Columns `<count>` are what the gate reported (empty when it sent nothing),
    `gateway_<count>` what the gateway counted from the events it stored.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "site", "day", "period_start", "period_end", "gate", "expected", "status",
            "mismatch", "received_at", *COUNT_FIELDS,
            *(f"gateway_{name}" for name in COUNT_FIELDS),
        ]
    )  # fmt: skip
    head = [report.site, report.day, report.period_start.isoformat(), report.period_end.isoformat()]
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


def report_html(report: SiteDailyReport) -> str:
    """A printable page (A4 landscape), labels in Chinese and English, every value escaped."""
    e = html.escape
    zone = ZoneInfo(report.timezone)
    heads = "".join(
        f"<th>{e(zh)}<br><small>{e(en)}</small></th>" for zh, en in COUNT_WORDS.values()
    )
    rows = "".join(_html_row(gate, zone) for gate in report.gates)
    totals = "".join(
        _html_cell(reported, computed)
        for reported, computed in zip(
            report.reported_totals.model_dump().values(),
            report.computed_totals.model_dump().values(),
            strict=True,
        )
    )
    title = f"{report.site} · {report.day.isoformat()}"
    period = (
        f"{report.period_start:%Y-%m-%d %H:%M} → {report.period_end:%Y-%m-%d %H:%M} "
        f"({report.timezone})"
    )
    summary = (
        f"应报 Expected <b>{report.expected_gates}</b> · "
        f"未报告 Missing <b>{report.missing}</b> · "
        f"零报告 Zero reports <b>{report.zero_reports}</b> · "
        f"与网关不符 Differ from gateway <b>{report.mismatches}</b>"
    )
    still_open = "" if report.closed else '<p class="open">尚未截止 Period not closed yet</p>'
    return _PAGE.format(
        title=e(title), period=e(period), summary=summary, still_open=still_open,
        heads=heads, rows=rows, totals=totals,
        generated=e(f"{report.generated_at.astimezone(zone):%Y-%m-%d %H:%M:%S}"),
    )  # fmt: skip


def _html_row(gate: GateDailyReport, zone: ZoneInfo) -> str:
    e = html.escape
    zh, en = STATUS_WORDS[gate.status]
    status = f"{e(zh)}<br><small>{e(en)}</small>"
    if gate.mismatch:
        status += "<br><b>≠ 与网关不符 differs</b>"
    if not gate.expected:
        status += "<br><b>清单外 not in inventory</b>"
    received = f"{gate.received_at.astimezone(zone):%m-%d %H:%M}" if gate.received_at else "—"
    reported = gate.reported.model_dump() if gate.reported else dict.fromkeys(COUNT_FIELDS)
    cells = "".join(
        _html_cell(reported[name], value) for name, value in gate.computed.model_dump().items()
    )
    return (
        f'<tr class="{e(gate.status)}" data-gate="{e(gate.node)}">'
        f"<th>{e(gate.node)}</th><td>{status}</td><td>{received}</td>{cells}</tr>"
    )


def _html_cell(reported: int | None, computed: int) -> str:
    """The gate's number; the gateway's beneath it when they differ, or when the gate sent
    nothing and the gateway counted something."""
    if reported is None:
        return f"<td>—<br><small>网关 {computed}</small></td>" if computed else "<td>—</td>"
    if reported == computed:
        return f"<td>{reported}</td>"
    return f'<td class="differs">{reported}<br><small>网关 {computed}</small></td>'


_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>日报告 Daily report · {title}</title>
<style>
@page {{ size: A4 landscape; margin: 12mm; }}
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
  "Microsoft YaHei", sans-serif; color: #000; margin: 16px; }}
h1 {{ font-size: 20pt; margin: 0 0 4px; }}
p {{ margin: 4px 0; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 12px; font-size: 11pt; }}
th, td {{ border: 1px solid #000; padding: 4px 6px; text-align: right; vertical-align: top; }}
thead th, tbody th, tfoot th, td:nth-child(2) {{ text-align: left; }}
small {{ font-size: 8pt; font-weight: normal; }}
tr.missing {{ background: #fdd; font-weight: bold; outline: 3px solid #b00; }}
tr.missing td:nth-child(2) {{ color: #b00; }}
tr.zero-report td:nth-child(2) {{ font-style: italic; }}
td.differs {{ background: #ffe9a8; }}
tfoot th, tfoot td {{ font-weight: bold; border-top: 3px double #000; }}
.open {{ font-weight: bold; color: #b00; }}
.generated {{ font-size: 9pt; color: #444; }}
* {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
@media print {{ body {{ margin: 0; }} thead {{ display: table-header-group; }} }}
</style>
</head>
<body>
<h1>日报告 Daily report · {title}</h1>
<p>截止时段 Period: {period}</p>
<p>{summary}</p>
{still_open}
<table>
<thead><tr><th>卡口<br><small>Gate</small></th><th>状态<br><small>Status</small></th>
<th>收到<br><small>Received</small></th>{heads}</tr></thead>
<tbody>{rows}</tbody>
<tfoot><tr><th>合计<br><small>Total</small></th><td></td><td></td>{totals}</tr></tfoot>
</table>
<p class="generated">生成 Generated {generated} · Gatepost</p>
</body>
</html>
"""
