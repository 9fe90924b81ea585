"""Depot time series: a depot's minute or hour rollups over a time range (JSON or CSV)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Query, Response

from edge.contract.base import SLUG_PATTERN
from gateway.api.auth import ContextDep
from gateway.api.errors import field_error, responses
from gateway.api.routes_depots import NodeParam, Reader, SiteParam, _depot
from gateway.store.depot_records import DepotResolution, DepotRollupRecord
from gateway.store.records import utc_text

router = APIRouter(prefix="/api/depots", tags=["depots"])

ROLLUPS_MAX = 10_000
# The longest range asked for at once: two days of minutes, about thirteen months of hours
# (a little under ROLLUPS_MAX buckets of one zone either way).
SPAN_MAX: dict[DepotResolution, timedelta] = {
    "minute": timedelta(days=2),
    "hour": timedelta(days=400),
}
_EARLIEST = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
_LATEST = datetime.fromisoformat("9998-12-31T00:00:00+00:00")


@router.get(
    "/{site}/{node}/rollups",
    response_model=list[DepotRollupRecord],
    summary="A depot's minute or hour rollups (count, min, max, mean, faults) over a range",
    responses={
        **responses(404),
        200: {
            "description": "JSON, or CSV (UTF-8 with BOM) for Excel",
            "content": {"text/csv": {}},
        },
    },
)
async def rollups(
    ctx: ContextDep, caller: Reader, site: SiteParam, node: NodeParam, *,
    since: Annotated[datetime, Query(alias="from", description="start (included), ISO 8601 "
                                     "with its UTC offset, e.g. 2026-12-01T00:00:00+08:00")],
    until: Annotated[datetime, Query(alias="to", description="end (excluded), ISO 8601 with "
                                     "its UTC offset")],
    resolution: Annotated[DepotResolution, Query(description="minute or hour")] = "hour",
    zone: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="only this zone")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Response:  # fmt: skip
    """Each zone's buckets in the range (minutes: 2 days at most; hours: 400 days), by
    bucket start, at most 10,000 rows; figures are those of the ok readings, `faults`
    counts the others. A minute is rolled up within a few seconds of its readings being
    stored. 404 for a site or depot the gateway's config does not name, or the caller's
    token does not."""
    for name, value in (("from", since), ("to", until)):
        if value.tzinfo is None:
            raise field_error(("query", name), f"{name} must carry its UTC offset")
        if not _EARLIEST <= value <= _LATEST:
            raise field_error(("query", name), f"{name} must be between 2000 and 9998")
    if until <= since:
        raise field_error(("query", "to"), "to must be after from")
    if until - since > SPAN_MAX[resolution]:
        days = SPAN_MAX[resolution].days
        raise field_error(("query", "to"), f"{resolution} rollups: {days} days at most at once")
    _depot(caller, ctx.config.site(site), site, node)
    found = await to_thread.run_sync(
        lambda: ctx.store.depot_rollups(
            site, node, resolution, since, until, zone=zone, limit=ROLLUPS_MAX
        )
    )
    if format == "csv":
        stamp = utc_text(since)[:16].replace(":", "")
        name = f"gatepost-{site}-{node}-{resolution}-{stamp}.csv"
        return Response(
            _csv(found).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return Response(
        f"[{','.join(r.model_dump_json() for r in found)}]", media_type="application/json"
    )


_FIELDS = tuple(DepotRollupRecord.model_fields)


def _csv(found: list[DepotRollupRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_FIELDS)
    for r in found:
        values = r.model_dump()
        values["bucket"] = r.bucket.isoformat()
        writer.writerow(["" if values[f] is None else values[f] for f in _FIELDS])
    return out.getvalue()
