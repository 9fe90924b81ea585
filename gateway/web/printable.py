"""The printable daily report, the one sent up the chain: Chinese only, in the site's time."""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from gateway.reports import COUNT_FIELDS, GateDailyReport, SiteDailyReport
from gateway.web.words import date_parts, say, zone_name


def report_html(report: SiteDailyReport) -> str:
    """A page to print (A4 landscape) in Chinese, with every value escaped.

    Its words are the catalogue's (static/words.json); times are the site's, with the zone
    named as people there say it ("北京时间"). Before the cut-off the page says so, and its
    numbers are the gateway's count so far.
    """
    e = html.escape
    zone = ZoneInfo(report.timezone)
    heads = "".join(f"<th>{e(say(f'count.{name}', 'zh'))}</th>" for name in COUNT_FIELDS)
    rows = "".join(_row(gate, zone) for gate in report.gates)
    # Each gate's chain head as its report pinned it: the paper an auditor compares with.
    chain = "".join(
        f"<li>{e(say('report.chainHead', 'zh', node=g.node, seq=g.chain_seq, hash=h))}</li>"
        for g in report.gates
        if (h := g.chain_head)
    )
    # Before the cut-off no gate has reported: the totals are the gateway's so far.
    reported_totals = report.reported_totals.model_dump() if report.closed else {}
    totals = "".join(
        _cell(reported_totals.get(name), counted, still_open=not report.closed)
        for name, counted in report.computed_totals.model_dump().items()
    )
    generated = report.generated_at.astimezone(zone)
    still_open = ""
    if not report.closed:
        so_far = say("report.soFar", "zh", time=say("format.time", "zh", **date_parts(generated)))
        still_open = f'<p class="still-open">{e(so_far)}</p>'
    summary = say(
        "report.summary", "zh", expected=report.expected_gates, missing=report.missing,
        zero=report.zero_reports, mismatches=report.mismatches,
    )  # fmt: skip
    title = report.wording.title[0]
    return _PAGE.format(
        style=STYLE,
        title=e(title), site=e(say("report.unit", "zh", site=report.site)),
        period=e(report.wording.period[0]), summary=e(summary), still_open=still_open,
        gate=e(say("report.gate", "zh")), status=e(say("report.status", "zh")),
        received=e(say("report.received", "zh")), total=e(say("report.total", "zh")),
        heads=heads, rows=rows, totals=totals,
        chain=f'<ul class="chain">{chain}</ul>' if chain else "",
        generated=e(say(
            "report.generated", "zh",
            time=say("format.dateTime", "zh", **date_parts(generated)),
            zone=zone_name(report.timezone, generated, "zh"),
        )),
    )  # fmt: skip


def _row(gate: GateDailyReport, zone: ZoneInfo) -> str:
    e = html.escape
    status = e(say(f"report.{gate.status}", "zh"))
    if gate.mismatch:
        status += f"<br><b>{e(say('report.differs', 'zh'))}</b>"
    if not gate.expected:
        status += f"<br><b>{e(say('gate.notListed', 'zh'))}</b>"
    received = "—"
    if gate.received_at:
        received = say("format.monthDayTime", "zh", **date_parts(gate.received_at.astimezone(zone)))
    reported = gate.reported.model_dump() if gate.reported else dict.fromkeys(COUNT_FIELDS)
    cells = "".join(
        _cell(reported[name], counted, still_open=gate.status == "open")
        for name, counted in gate.computed.model_dump().items()
    )
    return (
        f'<tr class="{e(gate.status)}" data-gate="{e(gate.node)}">'
        f"<th>{e(gate.node)}</th><td>{status}</td><td>{e(received)}</td>{cells}</tr>"
    )


def _cell(reported: int | None, counted: int, *, still_open: bool) -> str:
    """The gate's number, and the gateway's beneath it when they differ or the gate sent
    nothing; before the cut-off, the gateway's count so far."""
    if still_open and reported is None:
        return f"<td>{counted}</td>"
    note = f"<br><small>{html.escape(say('report.counted', 'zh', n=counted))}</small>"
    if reported is None:
        return f"<td>—{note}</td>" if counted else "<td>—</td>"
    if reported == counted:
        return f"<td>{reported}</td>"
    return f'<td class="differs">{reported}{note}</td>'


# The page's one inline block: the report route allows it, and nothing else, by its hash.
STYLE = """<style>
@page { size: A4 landscape; margin: 12mm; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
  "Microsoft YaHei", sans-serif; color: #000; margin: 16px; }
h1 { font-size: 20pt; margin: 0 0 4px; }
p { margin: 4px 0; }
table { border-collapse: collapse; width: 100%; margin-top: 12px; font-size: 11pt; }
th, td { border: 1px solid #000; padding: 4px 6px; text-align: right; vertical-align: top; }
thead th, tbody th, tfoot th, td:nth-child(2) { text-align: left; }
small { font-size: 8pt; font-weight: normal; }
tr.missing { background: #fdd; font-weight: bold; outline: 3px solid #b00; }
tr.missing td:nth-child(2) { color: #b00; }
tr.zero-report td:nth-child(2) { font-style: italic; }
td.differs { background: #ffe9a8; }
tfoot th, tfoot td { font-weight: bold; border-top: 3px double #000; }
.still-open { font-weight: bold; border: 2px solid #000; padding: 4px 8px;
  display: inline-block; }
.generated { font-size: 9pt; color: #444; }
.chain { font-size: 8pt; font-family: monospace; padding-left: 1em; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print { body { margin: 0; } thead { display: table-header-group; } }
</style>"""

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
{still_open}
<p>{summary}</p>
<table>
<thead><tr><th>{gate}</th><th>{status}</th><th>{received}</th>{heads}</tr></thead>
<tbody>{rows}</tbody>
<tfoot><tr><th>{total}</th><td></td><td></td>{totals}</tr></tfoot>
</table>
{chain}
<p class="generated">{generated} · Gatepost</p>
</body>
</html>
"""
