"""The command center's dashboard: the page, one snapshot of the sites, and its live stream."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from edge.contract.base import Colour
from edge.contract.events import CheckpointCounts, Direction, Outcome
from edge.contract.topics import Role
from edge.gate.console.stream import EventStreamResponse, UpdateStream, attach_stream
from edge.gate.daily import report_period
from edge.gate.reasons import REASON_TEXT
from edge.web.page import inline_page
from edge.web.security import CSP, page_policy
from gateway.alarms import AlarmView
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.context import GatewayContext
from gateway.api.errors import responses
from gateway.api.routes_nodes import NEVER_SEEN
from gateway.config import SiteSection
from gateway.reports import sum_counts
from gateway.store.records import EventQuery, NodeFaultRecord, NodeRecord, PassageRecord
from gateway.web.words import catalogue

router = APIRouter(tags=["dashboard"])

STATIC = Path(__file__).parent.parent / "web" / "static"
# In load order: each script takes what the earlier ones put on window.gatepost.
SCRIPTS = (
    "words.js", "dashboard.js", "reports.js", "depot-chart.js", "depots.js", "stock.js",
    "stock-forms.js", "fleet.js",
)  # fmt: skip
# The charts' library (static/vendor/README.md), inlined before the page's own blocks.
VENDOR_SCRIPT = "vendor/uPlot.iife.min.js"
VENDOR_STYLE = "vendor/uPlot.min.css"
TICKER_LENGTH = 20
FRAMES_PER_S = 4  # at most, per open dashboard, however fast ingest changes things
SHARED_FOR_S = 1.0  # one snapshot serves every stream for the same change, this long at most
GateStatus = Literal["online", "offline", "unattended"]


# --- the snapshot ------------------------------------------------------------------------------


class DashboardGate(BaseModel):
    node: str
    expected: bool = Field(description="in the site's inventory; false: seen but not listed")
    status: GateStatus = Field(description="unattended: online with nobody on shift")
    online: bool
    last_seen: datetime | None = Field(None, description="none: never heard from")
    offline_reason: str | None = Field(
        None, description="lost, shutdown, heartbeat, never-seen; none while online"
    )
    volunteers_on_duty: list[str] = Field(default_factory=list)
    counts: CheckpointCounts = Field(description="since the last cut-off")
    open_holds: int
    faults: list[NodeFaultRecord] = Field(
        default_factory=list, description="device faults raised and not cleared"
    )


class DashboardSite(BaseModel):
    site: str
    timezone: str
    cutoff_hour: int
    period_start: datetime = Field(description="the last cut-off: counts run from here")
    period_end: datetime = Field(description="the next cut-off")
    gates: list[DashboardGate]
    totals: CheckpointCounts
    open_holds: int


class PassageTick(BaseModel):
    """A passage for the ticker: what happened where, never who (no personal fields)."""

    event_id: str
    site: str
    node: str
    node_time: datetime
    direction: Direction
    subject: Literal["person", "vehicle"]
    outcome: Outcome
    colour: Colour | None
    reasons: list[str]
    temperature_c: float | None
    fever: bool

    @classmethod
    def of(cls, passage: PassageRecord) -> PassageTick:
        # Field by field on purpose: a personal field added to PassageRecord stays out.
        return cls(
            event_id=passage.event_id, site=passage.site, node=passage.node,
            node_time=passage.node_time, direction=passage.direction,
            subject=passage.subject, outcome=passage.outcome, colour=passage.colour,
            reasons=passage.reasons, temperature_c=passage.temperature_c, fever=passage.fever,
        )  # fmt: skip


class DashboardSnapshot(BaseModel):
    """Everything the dashboard shows, at one moment."""

    at: datetime
    sites: list[DashboardSite]
    alarms: list[AlarmView] = Field(description="raised and acknowledged, newest first")
    passages: list[PassageTick] = Field(description=f"the newest {TICKER_LENGTH}")


def dashboard_snapshot(ctx: GatewayContext) -> DashboardSnapshot:
    """Read the store once for every site (blocking: call from a worker thread)."""
    now = ctx.clock()
    recent = ctx.store.passages(EventQuery(limit=TICKER_LENGTH))
    return DashboardSnapshot(
        at=now,
        sites=[_site(ctx, site, now) for site in ctx.config.sites],
        alarms=[AlarmView.of(alarm) for alarm in ctx.store.alarms()],
        passages=[PassageTick.of(passage) for passage in recent],
    )


def _site(ctx: GatewayContext, site: SiteSection, now: datetime) -> DashboardSite:
    period = report_period(now, site.cutoff_hour, site.zone)
    seen = {n.node: n for n in ctx.store.nodes(site.name) if n.role == Role.GATE}
    open_holds = ctx.store.open_holds(site.name)
    faults: dict[str, list[NodeFaultRecord]] = {}
    for fault in ctx.store.node_faults(site.name):
        faults.setdefault(fault.node, []).append(fault)
    gates = [
        _gate(
            node, seen.get(node), node in site.gates, open_holds.get(node, 0),
            ctx.store.counts(site.name, node, period.start), faults=faults.get(node, []),
        )
        for node in [*site.gates, *sorted(set(seen) - set(site.gates))]
    ]  # fmt: skip
    return DashboardSite(
        site=site.name,
        timezone=site.timezone,
        cutoff_hour=site.cutoff_hour,
        period_start=period.start,
        period_end=period.end,
        gates=gates,
        totals=sum_counts(gate.counts for gate in gates),
        open_holds=sum(gate.open_holds for gate in gates),
    )


def _gate(
    node: str, record: NodeRecord | None, expected: bool, open_holds: int,
    counts: CheckpointCounts, *, faults: list[NodeFaultRecord],
) -> DashboardGate:  # fmt: skip
    online = record is not None and record.online
    status: GateStatus = "offline"
    if record is not None and record.online:
        status = "online" if record.volunteers_on_duty else "unattended"
    return DashboardGate(
        node=node, expected=expected, status=status, online=online,
        last_seen=record.last_seen if record else None,
        offline_reason=record.offline_reason if record else NEVER_SEEN,
        volunteers_on_duty=record.volunteers_on_duty if record else [],
        counts=counts, open_holds=open_holds, faults=faults,
    )  # fmt: skip


# --- the live stream ---------------------------------------------------------------------------


class DashboardView:
    """The snapshot as a LiveView: what UpdateStream sends after every LiveFeed change.

    Every open dashboard asks for the snapshot after the same change: it is read from
    the store once per LiveFeed version (and at least every SHARED_FOR_S) and shared.
    """

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._shared: tuple[int, float, DashboardSnapshot] | None = None

    def update(self) -> DashboardSnapshot:
        # The version is read first: a change while the store is read makes a new one.
        version = self._ctx.live.version
        with self._lock:
            shared = self._shared
        if shared and shared[0] == version and time.monotonic() - shared[1] < SHARED_FOR_S:
            return shared[2]
        snapshot = dashboard_snapshot(self._ctx)
        with self._lock:
            self._shared = (version, time.monotonic(), snapshot)
        return snapshot

    def wait_for_change(self, after: int, timeout_s: float) -> int:
        return self._ctx.live.wait_for_change(after, timeout_s)


def dashboard_stream(app: FastAPI, *, keepalive_s: float = 15.0) -> UpdateStream:
    """The app's dashboard stream, made on first use and attached for the server to end.

    Args:
        app: a gateway app (create_app), with the GatewayContext on app.state.gateway.
        keepalive_s: used when this call makes the stream (tests shorten it).
    """
    stream: UpdateStream | None = getattr(app.state, "dashboard_stream", None)
    if stream is None:
        context: GatewayContext = app.state.gateway
        stream = UpdateStream(
            DashboardView(context), keepalive_s=keepalive_s,
            min_interval_s=1 / FRAMES_PER_S, limits=context.config.http.streams,
        )  # fmt: skip
        app.state.dashboard_stream = attach_stream(app, stream)
    return stream


@router.get(
    "/api/dashboard",
    response_model=DashboardSnapshot,
    summary="Everything the dashboard shows, now",
    responses=responses(),
    dependencies=[Depends(require("command"))],
)
async def snapshot(ctx: ContextDep) -> DashboardSnapshot:
    """Per site: gates with status, counts since the cut-off, open holds and open device
    faults, totals; the live alarms; the newest passages (no personal fields)."""
    return await to_thread.run_sync(dashboard_snapshot, ctx)


@router.get(
    "/api/stream",
    response_class=EventStreamResponse,
    summary="The dashboard snapshot, live",
    responses={
        **responses(),
        200: {
            "description": "Server-sent events: `data:` is a DashboardSnapshot, sent on connect "
            f"and after every change (at most {FRAMES_PER_S} a second); `: keep-alive` "
            "comments about every 15 s. EventSource passes the token as `access_token`. "
            "The stream ends (after a `: access ended` comment) within a few seconds of its "
            "token being revoked.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        429: {
            "description": "This client, or all together, have as many streams open as "
            "allowed (too-many-streams); or this address sent too many wrong tokens lately "
            "(too-many-failed-logins)"
        },
    },
)
async def stream(
    request: Request, ctx: ContextDep, caller: Annotated[Caller, Depends(require("command"))]
) -> EventStreamResponse:
    """Live snapshots for the page's EventSource, which reconnects by itself."""
    client = request.client.host if request.client else ""

    def token_live() -> bool:
        return ctx.store.token(caller.token_hash) is not None

    return dashboard_stream(request.app).response(client, still_allowed=token_live)


# --- the page ----------------------------------------------------------------------------------


@cache
def render_page() -> str:
    """The page with its CSS, scripts and words (the catalogue, the gates' reasons)
    inlined: one response, offline."""
    reasons = {code: {"zh": zh, "en": en} for code, (zh, en) in REASON_TEXT.items()}
    words = (
        f"window.gatepostWords = {_script_json(dict(catalogue()))};\n"
        f"window.gatepostReasons = {_script_json(reasons)};"
    )
    # As it came, but its banner names its home without a scheme: the page links nowhere.
    script = (STATIC / VENDOR_SCRIPT).read_text(encoding="utf-8").replace("/*! https://", "/*! ", 1)
    style = (STATIC / VENDOR_STYLE).read_text(encoding="utf-8")
    return inline_page(STATIC, "dashboard.css", SCRIPTS, words=words, vendorScript=script,
                       vendorStyle=style)  # fmt: skip


def _script_json(value: object) -> str:
    # "<" escaped: the JSON sits inside a <script> element.
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The dashboard page; it asks the API with the token it was opened with."""
    html = render_page()
    return HTMLResponse(html, headers={"Cache-Control": "no-cache", CSP: page_policy(html)})
