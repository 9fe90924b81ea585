"""The printable daily stock report: Chinese first with English, in the site's time."""

from __future__ import annotations

import html
from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.stock.daily_report import FIGURES, Figures
from gateway.stock.site_report import DailyStockReport, DepotDay
from gateway.web.printable import STYLE
from gateway.web.words import date_parts, say, zone_name


def both(key: str, **values: object) -> str:
    """The catalogue's words for `key`, Chinese then English, escaped."""
    zh, en = say(key, "zh", **values), say(key, "en", **values)
    return html.escape(zh if zh == en else f"{zh} {en}")


def _head(key: str) -> str:
    """A column head: Chinese, and English beneath it in small type."""
    zh, en = (html.escape(say(key, lang)) for lang in ("zh", "en"))
    return f"<th>{zh}<br><small>{en}</small></th>"


def report_html(report: DailyStockReport) -> str:
    """A page to print (A4 landscape), every value escaped: a table of the depots'
    submissions, then per depot its categories and its items. The page's one style is
    printable.STYLE (its fonts name the CJK families first), allowed by its hash."""
    zone = ZoneInfo(report.timezone)
    generated = report.generated_at.astimezone(zone)
    day = {"y": report.day.year, "m": report.day.month, "d": report.day.day,
           "mm": f"{report.day.month:02d}", "dd": f"{report.day.day:02d}"}  # fmt: skip
    counts = {s: sum(d.state == s for d in report.depots) for s in ("submitted", "late",
                                                                    "missing", "due")}  # fmt: skip
    so_far = ""
    if not report.closed:
        at = say("format.time", "zh", **date_parts(generated))
        so_far = f'<p class="still-open">{both("stockReport.open", time=at)}</p>'
    rows = "".join(_submission(d, zone) for d in report.depots)
    depots = "".join(_depot(d) for d in report.depots)
    return _PAGE.format(
        style=STYLE, title=both("stockReport.title", **day),
        site=both("stockReport.siteLine", site=report.site),
        period=both("stockReport.period", day=report.day.isoformat(),
                    zone=zone_name(report.timezone, generated, "zh")),
        deadlines=both("stockReport.deadlines", **report.deadlines), still_open=so_far,
        summary=both("stockReport.summary", depots=len(report.depots), **counts),
        heads="".join(_head(f"stockReport.{k}") for k in ("depot", "state", "version",
                                                           "submittedAt", "by")),
        rows=rows, depots=depots,
        generated=both("report.generated",
                       time=say("format.dateTime", "zh", **date_parts(generated)),
                       zone=zone_name(report.timezone, generated, "zh")),
    )  # fmt: skip


def _submission(depot: DepotDay, zone: ZoneInfo) -> str:
    e = html.escape
    state = both(f"stockReport.{depot.state}")
    if depot.differs:
        state += f"<br><b>{both('stockReport.differs')}</b>"
    at = "—"
    if depot.submitted_at is not None:
        at = say("format.monthDayTime", "zh", **date_parts(depot.submitted_at.astimezone(zone)))
    css = "missing" if depot.state == "missing" else depot.state
    return (
        f'<tr class="{e(css)}" data-depot="{e(depot.depot)}"><th>{e(depot.depot)}</th>'
        f"<td>{state}</td><td>{depot.version or '—'}</td><td>{e(at)}</td>"
        f"<td>{e(depot.submitted_by or '—')}</td></tr>"
    )


def _depot(depot: DepotDay) -> str:
    e = html.escape
    figures = "".join(_head(f"stockReport.{k}") for k in (*FIGURES, "days"))
    if not depot.figures.items:
        body = f"<p>{both('stockReport.noStock')}</p>"
    else:
        categories = "".join(
            f"<tr><th>{_category(c.category)}</th><td>{e(c.unit)}</td>{_cells(c)}</tr>"
            for c in depot.figures.categories
        )
        items = "".join(
            f'<tr data-item="{e(i.item)}"><th>{e(i.name_zh)}<br><small>{e(i.name_en)}</small>'
            f"</th><td>{e(i.unit)}</td>{_cells(i)}</tr>"
            for i in depot.figures.items
        )
        body = (
            f"<table><thead><tr>{_head('stockReport.category')}{_head('stockReport.unit')}"
            f"{figures}</tr></thead><tbody>{categories}</tbody></table>"
            f"<table><thead><tr>{_head('stockReport.item')}{_head('stockReport.unit')}"
            f"{figures}</tr></thead><tbody>{items}</tbody></table>"
        )
    title = both("stockReport.depotTitle", depot=depot.depot)
    return f'<section data-depot="{e(depot.depot)}"><h2>{title}</h2>{body}</section>'


def _category(name: str) -> str:
    """A category's words; an item no longer in the catalogue has none (shown as —)."""
    return both(f"category.{name}") if name else "—"


def _cells(figures: Figures) -> str:
    values: list[Decimal | None] = [getattr(figures, name) for name in FIGURES]
    cells = "".join(f"<td>{value}</td>" for value in values)
    days = both("stockReport.unbounded") if figures.days is None else str(figures.days)
    return f"{cells}<td>{days}</td>"


_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{title}</title>
{style}
</head>
<body>
<h1>{title}</h1>
<p>{site}</p>
<p>{period}</p>
<p>{deadlines}</p>
{still_open}
<p>{summary}</p>
<table>
<thead><tr>{heads}</tr></thead>
<tbody>{rows}</tbody>
</table>
{depots}
<p class="generated">{generated} · Gatepost</p>
</body>
</html>
"""
