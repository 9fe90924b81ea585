"""Depots: a depot's readings (JSON or CSV) and each zone's day in figures."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Response

from edge.contract.base import SLUG_PATTERN
from gateway.api.auth import ContextDep, require
from gateway.api.errors import ApiError, responses
from gateway.api.routes_reports import Day
from gateway.config import SiteSection
from gateway.depot_summary import ZoneDaySummary, summarise
from gateway.store import Store
from gateway.store.records import DepotReadingRecord

router = APIRouter(prefix="/api/depots", tags=["depots"])

SLUG = SLUG_PATTERN
READINGS_MAX = 10_000
SiteParam = Annotated[str, Path(pattern=SLUG, description="the site")]
NodeParam = Annotated[str, Path(pattern=SLUG, description="the depot node")]
_readers = [Depends(require("command", "depot"))]


def _depot(site: SiteSection | None, name: str, node: str) -> SiteSection:
    if site is None:
        raise ApiError(404, "unknown-site", f"no site is named {name!r} in the gateway's config")
    if node not in site.depots:
        raise ApiError(404, "unknown-depot", f"{node!r} is not a depot of site {name!r}")
    return site


def _day_bounds(site: SiteSection, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=site.zone)
    return start, datetime.combine(day + timedelta(days=1), time(), tzinfo=site.zone)


@router.get(
    "/{site}/{node}/readings",
    response_model=list[DepotReadingRecord],
    summary="A depot's readings of one local day, by time",
    responses={
        **responses(404),
        200: {
            "description": "JSON, or CSV (UTF-8 with BOM) for Excel",
            "content": {"text/csv": {}},
        },
    },
    dependencies=_readers,
)
async def readings(
    ctx: ContextDep, site: SiteParam, node: NodeParam, *,
    day: Annotated[Day, Query(description="the site's local day, YYYY-MM-DD")],
    zone: Annotated[str | None, Query(pattern=SLUG, description="only this zone")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Response:  # fmt: skip
    """Every sample of the day (the site's time zone), at most 10,000; 404 for a site or
    depot the gateway's config does not name."""
    section = _depot(ctx.config.site(site), site, node)
    since, until = _day_bounds(section, day)
    found = await to_thread.run_sync(
        lambda: ctx.store.depot_readings(site, node, since, until, zone=zone, limit=READINGS_MAX)
    )
    if format == "csv":
        return Response(
            _csv(found).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="gatepost-{site}-{node}-{day}.csv"'
            },
        )
    return Response(
        f"[{','.join(r.model_dump_json() for r in found)}]", media_type="application/json"
    )


@router.get(
    "/{site}/{node}/summary",
    response_model=list[ZoneDaySummary],
    summary="Each zone's day: min, max, mean, mean kinetic temperature, time out of range",
    responses=responses(404),
    dependencies=_readers,
)
async def summary(
    ctx: ContextDep, site: SiteParam, node: NodeParam,
    day: Annotated[Day, Query(description="the site's local day, YYYY-MM-DD")],
) -> list[ZoneDaySummary]:  # fmt: skip
    """One row per zone that sent readings that day, or is assigned a storage class."""
    section = _depot(ctx.config.site(site), site, node)
    return await to_thread.run_sync(_summaries, ctx.store, section, node, day)


def _summaries(store: Store, site: SiteSection, node: str, day: date) -> list[ZoneDaySummary]:
    since, until = _day_bounds(site, day)
    by_zone: dict[str, list[DepotReadingRecord]] = defaultdict(list)
    for zone in site.zones.get(node, {}):
        by_zone[zone] = []
    # A day of a minute's readings of a few dozen zones; more is cut at the limit.
    for reading in store.depot_readings(site.name, node, since, until, limit=200_000):
        by_zone[reading.zone].append(reading)
    return [
        summarise(
            ZoneDaySummary(
                site=site.name,
                node=node,
                zone=zone,
                day=day.isoformat(),
                storage_class=site.zones.get(node, {}).get(zone),
            ),
            [(r.at, r.temperature_c, r.humidity_pct) for r in found],
            site.storage_class(node, zone),
        )
        for zone, found in sorted(by_zone.items())
    ]


def _csv(found: list[DepotReadingRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["site", "node", "zone", "bus_address", "at", "status", "temperature_c",
                     "humidity_pct"])  # fmt: skip
    for r in found:
        writer.writerow([r.site, r.node, r.zone, r.bus_address, r.at.isoformat(), r.status,
                         "" if r.temperature_c is None else r.temperature_c,
                         "" if r.humidity_pct is None else r.humidity_pct])  # fmt: skip
    return out.getvalue()
