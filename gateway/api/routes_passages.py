"""Passages and vehicle checks, and the time window every event list is filtered by."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, AwareDatetime

from edge.contract.base import SLUG_PATTERN, Colour, personal_fields
from edge.contract.events import Outcome, Passage
from gateway.api.audit import audit_read, personal_view
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.context import GatewayContext
from gateway.api.errors import field_error, responses
from gateway.store.records import EventQuery, PassageFilter, PassageRecord

router = APIRouter(prefix="/api", tags=["passages"])

SLUG = SLUG_PATTERN
# The contract marks personal fields; the API hides exactly those from `command`.
PASSAGE_PERSONAL = tuple(personal_fields(Passage))
Order = Literal["newest", "oldest"]
Subject = Literal["person", "vehicle"]


def _in_utc(at: datetime) -> datetime:
    # Times near year 1 or 9999 with an offset do not exist in UTC; a 422, not a crash later.
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range once converted to UTC") from None


UtcTime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
SiteParam = Annotated[str | None, Query(pattern=SLUG, description="only this site")]
NodeParam = Annotated[str | None, Query(pattern=SLUG, description="only this node (gate)")]


@dataclass(frozen=True)
class Window:
    """The filters every event list shares: where, when (by node time) and which page."""

    site: str | None
    node: str | None
    since: datetime | None
    until: datetime | None
    limit: int
    offset: int
    order: Order

    def query(self) -> EventQuery:
        return EventQuery(
            site=self.site, node=self.node, since=self.since, until=self.until,
            limit=self.limit, offset=self.offset, newest_first=self.order == "newest",
        )  # fmt: skip

    def asked(self) -> dict[str, object]:
        """The filters as the audit log records them."""
        return asdict(self)


def window(
    *,
    site: SiteParam = None,
    node: NodeParam = None,
    since: Annotated[
        UtcTime | None, Query(description="from this node time on (ISO 8601 with offset)")
    ] = None,
    until: Annotated[
        UtcTime | None, Query(description="before this node time (ISO 8601 with offset)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="rows per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")] = 0,
    order: Annotated[Order, Query(description="by node time, then node and seq")] = "newest",
) -> Window:
    """FastAPI dependency: the Window from the query string; a window ending early is a 422."""
    if since is not None and until is not None and until <= since:
        raise field_error(("query", "until"), "until must be after since")
    return Window(site, node, since, until, limit, offset, order)


WindowDep = Annotated[Window, Depends(window)]
Reader = Annotated[Caller, Depends(require("command", "registrar"))]


@router.get(
    "/passages",
    response_model=list[PassageRecord],
    summary="Passages through the gates",
    responses=responses(),
)
def list_passages(
    *,
    ctx: ContextDep,
    caller: Reader,
    span: WindowDep,
    outcome: Annotated[Outcome | None, Query(description="allow, hold or deny")] = None,
    colour: Annotated[Colour | None, Query(description="health-code colour")] = None,
    subject: Annotated[Subject | None, Query(description="person or vehicle")] = None,
) -> list[PassageRecord]:
    """Passages, newest first unless `order=oldest`.

    The command role gets `subject_ref` and `vehicle_plate` as null; registrar and admin
    see them, and each such read is written to the audit log.
    """
    only = PassageFilter(outcome=outcome, colour=colour, subject=subject)
    return _passages(ctx, caller, span, only, "passages")


@router.get(
    "/vehicle-checks",
    response_model=list[PassageRecord],
    summary="Vehicles checked at the gates",
    responses=responses(),
)
def list_vehicle_checks(
    *,
    ctx: ContextDep,
    caller: Reader,
    span: WindowDep,
    outcome: Annotated[Outcome | None, Query(description="allow, hold or deny")] = None,
    colour: Annotated[Colour | None, Query(description="health-code colour")] = None,
) -> list[PassageRecord]:
    """The passages whose subject is a vehicle (occupants counted on each).

    The plate is personal: null for the command role, audited for registrar and admin.
    """
    only = PassageFilter(outcome=outcome, colour=colour, subject="vehicle")
    return _passages(ctx, caller, span, only, "vehicle-checks")


def _passages(
    ctx: GatewayContext, caller: Caller, span: Window, only: PassageFilter, resource: str
) -> list[PassageRecord]:
    found = ctx.store.passages(span.query(), only)
    audit_read(ctx, caller, resource, {**span.asked(), **asdict(only)}, len(found))
    return personal_view(found, PASSAGE_PERSONAL, caller)
