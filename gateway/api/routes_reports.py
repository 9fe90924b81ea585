"""GET /api/reports/daily: a site's daily report as JSON, CSV for Excel, or a page to print."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import AfterValidator

from edge.contract.base import SLUG_PATTERN
from edge.web.security import CSP, page_policy
from gateway.api.auth import ContextDep, require
from gateway.api.errors import ApiError, field_error, responses
from gateway.reports import (
    SiteDailyReport,
    day_of_report_date,
    open_day,
    report_csv,
    site_daily_report,
)
from gateway.web.printable import STYLE, report_html

# From the template, not the rendered report: a value that escaped escaping would be hashed
# into a policy taken from the page, and allowed to run.
REPORT_POLICY = page_policy(STYLE)

router = APIRouter(prefix="/api/reports", tags=["reports"])

SLUG = SLUG_PATTERN
Format = Literal["json", "csv", "html"]


def _plausible(day: date) -> date:
    # Period arithmetic near year 1 or 9999 overflows; a 422 rather than a 500.
    if not date(2000, 1, 1) <= day <= date(9998, 12, 31):
        raise ValueError("day must be between 2000-01-01 and 9998-12-31")
    return day


Day = Annotated[date, AfterValidator(_plausible)]


@router.get(
    "/daily",
    response_model=SiteDailyReport,
    summary="A site's daily report (日报告、零报告)",
    responses={
        **responses(404),
        200: {
            "description": "The report: JSON, CSV (UTF-8 with BOM) or a printable HTML page",
            "content": {"text/csv": {}, "text/html": {}},
        },
    },
    dependencies=[Depends(require("command"))],
)
async def daily_report(
    ctx: ContextDep,
    site: Annotated[str, Query(pattern=SLUG, description="the site")],
    report_date: Annotated[
        Day | None,
        Query(
            description="the date the report is named by (YYYY-MM-DD), 卡口日报（12月5日）: "
            "the last day its period covers; with a midnight cut-off, 0时至24时 of that date. "
            "Default: the period not closed yet (today so far)"
        ),
    ] = None,
    day: Annotated[
        Day | None,
        Query(
            description="instead of report_date: the local date the period closes, as in the "
            "gates' DailyReport.day (with a midnight cut-off, the day after report_date)"
        ),
    ] = None,
    format: Annotated[Format, Query(description="json, csv or html")] = "json",
) -> Response:
    """Every gate of the site's inventory for one day up to the cut-off hour.

    A gate that sent nothing for a closed period is `missing`; before the cut-off it is
    `open` (gates report at the cut-off). One whose counts differ from what the gateway
    counted from its stored events is flagged `mismatch`. 404 `unknown-site`.
    """
    if report_date is not None and day is not None:
        raise field_error(("query", "day"), "give report_date or day, not both")
    section = ctx.config.site(site)
    if section is None:
        raise ApiError(404, "unknown-site", f"no site is named {site!r} in the gateway's config")
    now = ctx.clock()
    if report_date is not None:
        day = day_of_report_date(report_date, section.cutoff_hour)
    report = await to_thread.run_sync(
        site_daily_report, ctx.store, section, day or open_day(section, now), now
    )
    if format == "csv":
        return Response(
            report_csv(report).encode(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="gatepost-{report.site}-{report.report_date}.csv"'
                )
            },
        )
    if format == "html":
        return HTMLResponse(report_html(report), headers={CSP: REPORT_POLICY})
    return Response(report.model_dump_json(), media_type="application/json")
