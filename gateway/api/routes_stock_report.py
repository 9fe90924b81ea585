"""The daily stock report: a keeper submits a depot's day; the site's report as JSON, CSV, HTML.

A depot token submits and reads the depots it names, the command center reads every depot
and submits none, admin does both (as the other stock routes, docs/stock.md).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator, BaseModel, Field

from edge.web.security import CSP, page_policy
from gateway.api.auth import ContextDep
from gateway.api.context import GatewayContext
from gateway.api.errors import ApiError, field_error, responses
from gateway.api.routes_stock import (
    DepotParam,
    IdempotencyKey,
    Reader,
    SiteParam,
    Writer,
    _depot,
    _ledger,
    _refusal,
)
from gateway.config import SiteSection
from gateway.stock.daily_report import (
    NOTE_MAX,
    DailyReportStore,
    Submission,
    SubmissionDraft,
    deadline_of,
    depot_figures,
)
from gateway.stock.ledger import StockRefused
from gateway.stock.site_report import DailyStockReport, report_csv, site_report
from gateway.store.records import AuditEntry
from gateway.web.printable import STYLE
from gateway.web.stock_report import report_html

router = APIRouter(prefix="/api/stock", tags=["stock"])

REPORT_POLICY = page_policy(STYLE)


def _plausible(day: date) -> date:
    if not date(2000, 1, 1) <= day <= date(9998, 12, 31):
        raise ValueError("day must be between 2000-01-01 and 9998-12-31")
    return day


Day = Annotated[date, AfterValidator(_plausible)]
DayParam = Annotated[Day, Path(description="the site's local day, YYYY-MM-DD")]


class SubmitIn(BaseModel):
    note: str = Field("", max_length=NOTE_MAX, description="for the command center; no names")


def _reports(ctx: GatewayContext) -> DailyReportStore:
    if not isinstance(ctx.store, DailyReportStore):
        raise ApiError(503, "no-stock-reports", "this gateway's store keeps no stock reports")
    return ctx.store


def _not_ahead(site: SiteSection, day: date, now: datetime, where: str) -> None:
    if day > now.astimezone(site.zone).date():
        raise field_error((where, "day"), f"{day} has not begun in {site.timezone}")


@router.post(
    "/{site}/{depot}/daily-reports/{day}",
    summary="Submit a depot's daily stock report (每日库存报告)",
    response_model=Submission,
    responses=responses(404, 409),
)
def submit(
    *, ctx: ContextDep, caller: Writer, site: SiteParam, depot: DepotParam, day: DayParam,
    body: SubmitIn, key: IdempotencyKey, response: Response,
) -> Submission:  # fmt: skip
    """Keep the depot's figures of `day` as they stand now, with who and when. Another
    submission of the day is its next version (the newest counts; all are kept). After
    the deadline it is accepted and flagged late. The same key again answers the first."""
    found = _depot(ctx, caller, site, depot)
    now = ctx.clock()
    _not_ahead(found, day, now, "path")
    figures = depot_figures(_ledger(ctx), found, depot, day, ctx.config.stock.issue_window_days)
    draft = SubmissionDraft(
        site=site, depot=depot, day=day, key=key, who=caller.name, at=now,
        deadline=deadline_of(day, found.zone, ctx.config.stock.report.report), note=body.note,
        figures=figures,
    )  # fmt: skip
    try:
        submitted, repeat = _reports(ctx).stock_report_submit(draft)
    except StockRefused as refused:
        raise _refusal(refused) from None
    if repeat:
        response.headers["Idempotent-Replayed"] = "true"
        return submitted
    detail = {"site": site, "depot": depot, "day": day.isoformat(),
              "version": submitted.version, "late": submitted.late}  # fmt: skip
    ctx.store.audit(
        AuditEntry(
            at=now, who=caller.name, role=caller.role, action="stock-report-submit",
            resource="stock", detail=json.dumps(detail, sort_keys=True),
        )
    )  # fmt: skip
    return submitted


@router.get(
    "/{site}/{depot}/daily-reports/{day}",
    summary="Every submission of a depot's day, the first first",
    response_model=list[Submission],
    responses=responses(404),
)
def versions(
    ctx: ContextDep, caller: Reader, site: SiteParam, depot: DepotParam, day: DayParam
) -> list[Submission]:
    """Each version as it was submitted (none changed); empty: not submitted."""
    _depot(ctx, caller, site, depot)
    return _reports(ctx).stock_report_versions(site, depot, day)


@router.get(
    "/{site}/daily-report",
    summary="A site's daily stock report (每日库存报告): JSON, CSV or a page to print",
    response_model=DailyStockReport,
    responses={
        **responses(404),
        200: {
            "description": "The report: JSON, CSV (UTF-8 with BOM) or a printable HTML page",
            "content": {"application/json": {}, "text/csv": {}, "text/html": {}},
        },
    },
)
async def daily_report(
    ctx: ContextDep, caller: Reader, site: SiteParam,
    day: Annotated[Day | None, Query(description="the local day; default: today")] = None,
    format: Annotated[Literal["json", "csv", "html"], Query(description="json, csv or html")]
    = "json",
) -> Response:  # fmt: skip
    """Per depot the caller may see: its submission state and its figures per category
    and item. 404 `unknown-site`, also for a depot token that names no depot of it."""
    found = ctx.config.site(site)
    seen = [d for d in found.depots if caller.sees_depot(site, d)] if found else []
    if found is None or not seen:
        raise ApiError(404, "unknown-site", f"no site {site!r} with a depot this token sees")
    now = ctx.clock()
    if day is not None:
        _not_ahead(found, day, now, "query")
    report = await to_thread.run_sync(
        lambda: site_report(
            _ledger(ctx), _reports(ctx), site=found, depots=seen,
            day=day or now.astimezone(found.zone).date(), now=now, settings=ctx.config.stock,
        )
    )  # fmt: skip
    if format == "csv":
        name = f"gatepost-stock-{report.site}-{report.day}.csv"
        return Response(
            report_csv(report).encode(), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )  # fmt: skip
    if format == "html":
        return HTMLResponse(report_html(report), headers={CSP: REPORT_POLICY})
    return Response(report.model_dump_json(), media_type="application/json")
