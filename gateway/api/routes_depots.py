"""Depots: every depot at a glance, a depot's readings (JSON or CSV), each zone's day in figures."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from edge.contract.base import SLUG_PATTERN
from gateway.alarms import AlarmView
from gateway.api.auth import DEPOTS_ALL_ROLES, Caller, ContextDep, require
from gateway.api.context import GatewayContext
from gateway.api.errors import ApiError, responses
from gateway.api.routes_reports import Day
from gateway.config import SiteSection
from gateway.depot_summary import (
    HOLDS_AT_MOST,
    ZoneDaySummary,
    day_summaries,
    level_conditions,
)
from gateway.storage_classes import UNITS, Quantity, StorageClass
from gateway.store import Store
from gateway.store.depot_records import DepotReadingRecord
from gateway.store.records import AlarmRecord

router = APIRouter(prefix="/api/depots", tags=["depots"])

SLUG = SLUG_PATTERN
READINGS_MAX = 10_000
SiteParam = Annotated[str, Path(pattern=SLUG, description="the site")]
NodeParam = Annotated[str, Path(pattern=SLUG, description="the depot node")]
Reader = Annotated[Caller, Depends(require("command", "depot"))]
ZoneState = Literal["ok", "out-of-range", "alarm", "sensor-fault", "no-data"]
# A zone's newest reading is current this long (as a reading stands in the day's figures);
# older, the zone has no data now. Readings dated a little ahead (a node's clock) count.
CURRENT_FOR = HOLDS_AT_MOST
AHEAD = timedelta(minutes=10)
RECENT_MAX = 20_000  # readings of one depot in CURRENT_FOR + AHEAD; a minute's poll: 500 zones
ZONES_MAX = 64  # zones shown per depot; sensors no class names past this are left out
ALARMS_MAX = 1_000  # live alarms read for the overview


def _depot(caller: Caller, site: SiteSection | None, name: str, node: str) -> SiteSection:
    """The site of depot `name/node`, if the caller may see it and the config names it.

    A depot the caller may not see is answered as one that does not exist (404
    `unknown-depot`, whatever the site): a depot token learns nothing of the others.
    """
    if not caller.sees_depot(name, node):
        raise _unknown_depot(name, node)
    if site is None:
        raise ApiError(404, "unknown-site", f"no site is named {name!r} in the gateway's config")
    if node not in site.depots:
        raise _unknown_depot(name, node)
    return site


def _unknown_depot(name: str, node: str) -> ApiError:
    return ApiError(404, "unknown-depot", f"{node!r} is not a depot of site {name!r}")


def _day_bounds(site: SiteSection, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=site.zone)
    return start, datetime.combine(day + timedelta(days=1), time(), tzinfo=site.zone)


class Band(BaseModel):
    """What a zone's class conditions allow of one quantity, for drawing: inside is
    strictly between the thresholds (a reading at a threshold is an excursion)."""

    quantity: Quantity
    unit: str
    low: float | None = Field(description="the highest below-threshold; none: no lower alarm")
    high: float | None = Field(description="the lowest above-threshold; none: no upper alarm")


class ZoneReading(BaseModel):
    at: datetime = Field(description="when the node read it (node time)")
    status: Literal["ok", "timeout", "crc", "range"]
    temperature_c: float | None = None
    humidity_pct: float | None = None


class DepotZone(BaseModel):
    """One zone (one sensor's place) of a depot, now."""

    zone: str
    storage_class: str | None = Field(None, description="its class; none if unassigned")
    description: str = Field("", description="the class's, for people")
    bands: list[Band] = Field(description="per quantity its class has conditions on")
    latest: ZoneReading | None = Field(
        None, description="its newest reading (of the last 30 min, or the newest the rules "
        "evaluated); none if none"
    )  # fmt: skip
    state: ZoneState = Field(
        description="alarm: a live alarm of the zone; sensor-fault: its newest reading has "
        "no value; no-data: no reading for 30 min; out-of-range: its newest reading crosses "
        "a threshold of its class (no alarm yet); else ok"
    )
    alarms: list[AlarmView] = Field(
        description="its live alarms (raised or acknowledged): subject the zone or zone/…"
    )


class DepotOverview(BaseModel):
    site: str
    timezone: str
    node: str
    online: bool
    last_seen: datetime | None = Field(None, description="none: never heard from")
    alarms: list[AlarmView] = Field(description="its live alarms of no zone shown (offline, …)")
    zones: list[DepotZone]


class DepotsOverview(BaseModel):
    """Every depot the caller may see, now."""

    at: datetime
    may_acknowledge: bool = Field(
        description="whether the caller acknowledges these depots' alarms (command, admin, "
        "and a depot token its own)"
    )
    sees_all: bool = Field(
        description="true: every depot of the config (command, admin); false: those the "
        "caller's depot token names"
    )
    may_enter_stock: bool = Field(
        False, description="whether the caller writes these depots' stock movements (depot, "
        "admin); the command center reads them only"
    )  # fmt: skip
    depots: list[DepotOverview]


@router.get(
    "",
    response_model=DepotsOverview,
    summary="Every depot and zone at a glance: class band, newest reading, state",
    responses=responses(),
)
async def overview(ctx: ContextDep, caller: Reader) -> DepotsOverview:
    """Each depot node the caller may see (a depot token: those it names) with its zones:
    those assigned a class and those that sent readings in the last 30 min (at most 64 per
    depot), and the node's presence."""
    depots = await to_thread.run_sync(_overview, ctx, caller)
    return DepotsOverview(
        at=ctx.clock(), may_acknowledge=True, sees_all=caller.role in DEPOTS_ALL_ROLES,
        may_enter_stock=caller.role in ("depot", "admin"), depots=depots,
    )  # fmt: skip


def _overview(ctx: GatewayContext, caller: Caller) -> list[DepotOverview]:
    now = ctx.clock()
    # Any kind raised of a depot node: one whose subject is a zone shown, or "zone/…" (an
    # excursion's, "zone/condition"), is the zone's; any other the node's (node-offline).
    live: dict[tuple[str, str], list[AlarmRecord]] = defaultdict(list)
    for alarm in ctx.store.alarms(("raised", "acknowledged"), ALARMS_MAX):
        if alarm.node:
            live[alarm.site, alarm.node].append(alarm)
    return [
        _depot_now(ctx.store, site, node, now, live[site.name, node])
        for site in ctx.config.sites
        for node in site.depots
        if caller.sees_depot(site.name, node)
    ]


def _depot_now(
    store: Store, site: SiteSection, node: str, now: datetime, alarms: list[AlarmRecord]
) -> DepotOverview:
    recent = store.depot_readings(site.name, node, now - CURRENT_FOR, now + AHEAD,
                                  limit=RECENT_MAX)  # fmt: skip
    newest = {r.zone: r for r in recent}  # by time: the last one of each zone stays
    assigned = site.zones.get(node, {})
    extra = sorted(set(newest) - set(assigned))[: max(0, ZONES_MAX - len(assigned))]
    zones = sorted({*assigned, *extra})
    # A zone silent for a while: its newest reading the excursion rules evaluated.
    for (zone, _), state in store.excursions(site.name, node).items():
        if zone in zones and zone not in newest:
            older = store.depot_readings(site.name, node, state.last_at,
                                         state.last_at + timedelta(milliseconds=1), zone=zone,
                                         limit=1)  # fmt: skip
            newest.update({r.zone: r for r in older})
    of_zone: dict[str, list[AlarmRecord]] = defaultdict(list)
    for alarm in alarms:
        of_zone[alarm.subject.split("/", 1)[0]].append(alarm)
    record = store.node(site.name, node)
    return DepotOverview(
        site=site.name, timezone=site.timezone, node=node,
        online=record is not None and record.online,
        last_seen=record.last_seen if record else None,
        alarms=[AlarmView.of(a) for z, found in of_zone.items() if z not in zones for a in found],
        zones=[_zone(site, node, zone, newest.get(zone), of_zone[zone], now=now) for zone in zones],
    )  # fmt: skip


def _zone(
    site: SiteSection, node: str, zone: str, latest: DepotReadingRecord | None,
    alarms: list[AlarmRecord], *, now: datetime,
) -> DepotZone:  # fmt: skip
    kept_at = site.storage_class(node, zone)
    reading = None if latest is None else ZoneReading(**latest.model_dump())
    return DepotZone(
        zone=zone,
        storage_class=site.zones.get(node, {}).get(zone),
        description=kept_at.description if kept_at else "",
        bands=bands(kept_at) if kept_at else [],
        latest=reading,
        state=_state(kept_at, reading, alarms, now),
        alarms=[AlarmView.of(alarm) for alarm in alarms],
    )


def bands(kept_at: StorageClass) -> list[Band]:
    """The band of each quantity `kept_at` has level conditions on: its tightest thresholds
    (a rate condition's threshold is per minute, no level)."""
    made = []
    for quantity in ("temperature", "humidity"):
        of = [c for c in level_conditions(kept_at) if c.quantity == quantity]
        if of:
            lows = [c.threshold for c in of if c.direction == "below"]
            highs = [c.threshold for c in of if c.direction == "above"]
            made.append(Band(
                quantity=quantity, unit=UNITS[quantity],
                low=max(lows) if lows else None, high=min(highs) if highs else None,
            ))  # fmt: skip
    return made


def _state(
    kept_at: StorageClass | None, latest: ZoneReading | None, alarms: list[AlarmRecord],
    now: datetime,
) -> ZoneState:  # fmt: skip
    if alarms:
        return "alarm"
    if latest is None or latest.at < now - CURRENT_FOR:
        return "no-data"
    if latest.status != "ok":
        return "sensor-fault"
    values = {"temperature": latest.temperature_c, "humidity": latest.humidity_pct}
    for condition in level_conditions(kept_at) if kept_at else ():
        value = values[condition.quantity]
        if value is not None and condition.outside(value):
            return "out-of-range"
    return "ok"


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
)
async def readings(
    ctx: ContextDep, caller: Reader, site: SiteParam, node: NodeParam, *,
    day: Annotated[Day, Query(description="the site's local day, YYYY-MM-DD")],
    zone: Annotated[str | None, Query(pattern=SLUG, description="only this zone")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Response:  # fmt: skip
    """Every sample of the day (the site's time zone), at most 10,000; 404 for a site or
    depot the gateway's config does not name, or the caller's token does not."""
    section = _depot(caller, ctx.config.site(site), site, node)
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
)
async def summary(
    ctx: ContextDep, caller: Reader, site: SiteParam, node: NodeParam,
    day: Annotated[Day, Query(description="the site's local day, YYYY-MM-DD")],
) -> list[ZoneDaySummary]:  # fmt: skip
    """One row per zone that sent readings that day, or is assigned a storage class; its
    minutes out of range are what the cumulative conditions credit to the day, across
    either midnight. 404 as for the readings."""
    section = _depot(caller, ctx.config.site(site), site, node)
    return await to_thread.run_sync(day_summaries, ctx.store, section, node, day)


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
