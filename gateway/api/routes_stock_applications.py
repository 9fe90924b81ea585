"""Applications for supplies and their allocation: filed, planned and approved by the command
center, issued by the keepers against the application's id.

The command center files applications (with an `Idempotency-Key`, as the ledger's writes),
asks for the plan of one item, approves exactly the plan it was shown (by its fingerprint)
or rejects an application. Approval is not an issue: each keeper then issues against the
application's id what its depot was allocated, and no more. A depot token reads the
approved applications with an allocation at its depots, and only those lines
(docs/stock.md#applications-and-allocation).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from edge.contract.base import SLUG_PATTERN, Slug
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.context import GatewayContext
from gateway.api.errors import ApiError, field_error, responses
from gateway.api.routes_stock import IdempotencyKey, Quantity, SiteParam, UnitName, _refusal
from gateway.config import SiteSection
from gateway.stock.allocation import Plan, propose
from gateway.stock.applications import (
    APPLICATION_ID_PATTERN,
    APPLICATIONS_PAGE_MAX,
    AllocationInputs,
    Application,
    ApplicationDraft,
    ApplicationState,
    ApplicationStore,
    Location,
    PlaceKind,
    Urgency,
    application_number,
)
from gateway.stock.catalogue import StockItem, Unit, site_catalogue
from gateway.stock.ledger import StockRefused
from gateway.store.records import AuditEntry

router = APIRouter(prefix="/api/stock", tags=["stock"])

Commander = Annotated[Caller, Depends(require("command"))]
Reader = Annotated[Caller, Depends(require("command", "depot"))]
ApplicationId = Annotated[
    str, Path(pattern=APPLICATION_ID_PATTERN, description="APL-<n>, as the gateway assigned it")
]
Fingerprint = Annotated[
    str, Field(pattern=r"^[0-9a-f]{64}$", description="the plan's, as GET …/allocation gave it")
]


class ApplicationIn(BaseModel):
    """A unit's request for one item."""

    applicant_unit: UnitName = Field(description="the unit asking, e.g. a hospital's name")
    place_kind: PlaceKind = Field(
        description="hospital, isolation-site and testing-point are the key places, served first"
    )
    urgency: Urgency
    medical: bool = Field(description="for medical use (served before other use)")
    item: Slug = Field(description="a catalogue key, e.g. n95-mask")
    quantity: Quantity
    unit: Unit = Field(description="must be the item's unit")
    location: Location | None = Field(None, description="the place, for nearest depot first")
    note: str = Field("", max_length=200)


class ApproveIn(BaseModel):
    item: Slug = Field(description="the item the plan is of")
    fingerprint: Fingerprint


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200, description="why, for the applicant")


class PlanApplication(BaseModel):
    """An application as the plan serves it, in the plan's order."""

    application_id: str
    applicant_unit: str
    place_kind: PlaceKind
    urgency: Urgency
    medical: bool
    asked: Decimal
    allocated: Decimal
    short: Decimal = Field(description="asked - allocated; 0: filled in full")


class PlanLineView(BaseModel):
    application_id: str
    depot: str
    lot: str
    designated_to: str
    expires_on: date | None
    quantity: Decimal


class PlanView(BaseModel):
    """A proposed allocation of one item; approve it by its fingerprint."""

    site: str
    item: str
    unit: str
    today: date = Field(description="the site's local date the plan was made for")
    fingerprint: str = Field(description="of the plan's inputs: approve with it")
    applications: list[PlanApplication] = Field(description="pending ones, first served first")
    lines: list[PlanLineView]
    available: dict[str, Decimal] = Field(
        description="per depot, on hand not yet allocated (expired lots included: never drawn)"
    )
    truncated: bool = Field(description="the plan reached its bound of lines; the rest wait")

    @classmethod
    def of(cls, plan: Plan, inputs: AllocationInputs) -> PlanView:
        by_id = {a.id: a for a in inputs.applications}
        rows = []
        for name in plan.order:
            a, got = by_id[name], plan.allocated(name)
            rows.append(PlanApplication(
                application_id=name, applicant_unit=a.applicant_unit, place_kind=a.place_kind,
                urgency=a.urgency, medical=a.medical, asked=a.quantity, allocated=got,
                short=a.quantity - got,
            ))  # fmt: skip
        return cls(
            site=plan.site, item=plan.item, unit=plan.unit, today=plan.today,
            fingerprint=plan.fingerprint, applications=rows, truncated=plan.truncated,
            lines=[PlanLineView(**vars(line)) for line in plan.lines],
            available={depot: sum((p.quantity for p in positions if p.item == plan.item),
                                  Decimal(0))
                       for depot, positions in inputs.available.items()},
        )  # fmt: skip


def _store(ctx: GatewayContext) -> ApplicationStore:
    if not isinstance(ctx.store, ApplicationStore):
        raise ApiError(503, "no-applications", "this gateway's store keeps no applications")
    return ctx.store


def _site(ctx: GatewayContext, site: str) -> SiteSection:
    found = ctx.config.site(site)
    if found is None:
        raise ApiError(404, "unknown-site", f"no site is named {site!r} in the config")
    return found


def _item(site: SiteSection, key: str, loc: tuple[str, str]) -> StockItem:
    item = site_catalogue(site.stock_items).get(key)
    if item is None:
        raise field_error(loc, f"no item {key!r} is in the catalogue")
    return item


def _audit(ctx: GatewayContext, caller: Caller, action: str, detail: Mapping[str, object]) -> None:
    ctx.store.audit(
        AuditEntry(
            at=ctx.clock(), who=caller.name, role=caller.role, action=action, resource="stock",
            detail=json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str),
        )
    )  # fmt: skip


def _planner(
    site: SiteSection, item: StockItem, today: date, seen: list[AllocationInputs]
) -> Callable[[AllocationInputs], Plan]:
    """The pure plan of `item` at `site` for the store to run on its inputs (kept in `seen`)."""

    def plan_of(inputs: AllocationInputs) -> Plan:
        seen.append(inputs)
        return propose(site.name, item.key, item.unit, inputs, today,
                       locations=site.depot_locations)  # fmt: skip

    return plan_of


@router.post(
    "/{site}/applications",
    summary="File an application for supplies",
    response_model=Application,
    responses=responses(404, 409),
)
def file_application(
    *, ctx: ContextDep, caller: Commander, site: SiteParam, body: ApplicationIn,
    key: IdempotencyKey, response: Response,
) -> Application:  # fmt: skip
    """A unit's request for one item; pending until a plan is approved or it is rejected.
    The same key again with the same application answers the first one."""
    found = _site(ctx, site)
    item = _item(found, body.item, ("body", "item"))
    if body.unit != item.unit:
        raise field_error(("body", "unit"), f"{item.key} is counted in {item.unit}")
    try:
        item.to_steps(body.quantity)
    except ValueError as exc:
        raise field_error(("body", "quantity"), str(exc)) from None
    draft = ApplicationDraft(
        site=site, key=key, applicant_unit=body.applicant_unit, place_kind=body.place_kind,
        urgency=body.urgency, medical=body.medical, item=item.key, quantity=body.quantity,
        unit=item.unit, location=body.location, note=body.note,
    )  # fmt: skip
    try:
        application, repeat = _store(ctx).application_file(draft, caller.name, ctx.clock())
    except StockRefused as refused:
        raise _refusal(refused) from None
    if repeat:
        response.headers["Idempotent-Replayed"] = "true"
        return application
    _audit(ctx, caller, "stock-application-file", {
        "application_id": application.id, "site": site, "item": item.key,
        "quantity": str(application.quantity), "unit": item.unit, "urgency": body.urgency,
        "medical": body.medical, "place_kind": body.place_kind,
    })  # fmt: skip
    return application


@router.get(
    "/{site}/applications",
    summary="Applications, newest first (a depot token: what its depots are to issue)",
    response_model=list[Application],
    responses=responses(404),
)
def list_applications(
    *, ctx: ContextDep, caller: Reader, site: SiteParam,
    state: Annotated[ApplicationState | None, Query(description="only in this state")] = None,
    item: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="only of this")] = None,
    before_id: Annotated[
        str | None, Query(pattern=APPLICATION_ID_PATTERN, description="older than this one")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=APPLICATIONS_PAGE_MAX, description="at most")] = 100,
) -> list[Application]:  # fmt: skip
    """The command center sees every application; a depot token only the approved ones
    with an allocation at the depots it names, with those lines only."""
    found = _site(ctx, site)
    depots: frozenset[str] | None = None
    if caller.role == "depot":
        depots = frozenset(d for d in found.depots if caller.sees_depot(site, d))
        if not depots:
            raise ApiError(404, "unknown-site", f"the token names no depot of site {site!r}")
    before = application_number(before_id) if before_id else None
    return _store(ctx).applications(
        site, state=state, item=item, depots=depots, before=before, limit=limit
    )


@router.get(
    "/{site}/allocation",
    summary="The proposed allocation of one item among the pending applications",
    response_model=PlanView,
    responses=responses(404),
)
def allocation(
    ctx: ContextDep, caller: Commander, site: SiteParam,
    item: Annotated[str, Query(pattern=SLUG_PATTERN, description="a catalogue item")],
) -> PlanView:  # fmt: skip
    """Urgent, medical and key places first, then the earlier; each filled in full from its
    nearest depot first, earliest expiry first; no equal shares. Nothing is written."""
    found = _site(ctx, site)
    stock = _item(found, item, ("query", "item"))
    seen: list[AllocationInputs] = []
    today = ctx.clock().astimezone(found.zone).date()
    plan = _planner(found, stock, today, seen)(
        _store(ctx).allocation_inputs(site, stock.key, found.depots)
    )
    return PlanView.of(plan, seen[0])


@router.post(
    "/{site}/allocation/approve",
    summary="Approve the plan that was shown, by its fingerprint",
    response_model=PlanView,
    responses=responses(404, 409),
)
def approve(ctx: ContextDep, caller: Commander, site: SiteParam, body: ApproveIn) -> PlanView:
    """Approve exactly the plan with `fingerprint`: its lines are written and its
    applications approved (approver: the caller). Not an issue: the keepers issue against
    each application. 409 `plan-changed` if the applications or the stock changed since."""
    found = _site(ctx, site)
    stock = _item(found, body.item, ("body", "item"))
    seen: list[AllocationInputs] = []
    today = ctx.clock().astimezone(found.zone).date()
    try:
        plan = _store(ctx).allocation_approve(
            site, stock.key, depots=found.depots, plan_of=_planner(found, stock, today, seen),
            fingerprint=body.fingerprint, who=caller.name, at=ctx.clock(),
        )  # fmt: skip
    except StockRefused as refused:
        raise _refusal(refused) from None
    approved = list(dict.fromkeys(line.application_id for line in plan.lines))  # served order
    _audit(ctx, caller, "stock-allocation-approve", {
        "site": site, "item": stock.key, "fingerprint": plan.fingerprint,
        "applications": approved, "lines": len(plan.lines),
    })  # fmt: skip
    return PlanView.of(plan, seen[-1])


@router.post(
    "/{site}/applications/{application_id}/reject",
    summary="Reject a pending application",
    response_model=Application,
    responses=responses(404, 409),
)
def reject(
    ctx: ContextDep, caller: Commander, site: SiteParam, application_id: ApplicationId,
    body: RejectIn,
) -> Application:  # fmt: skip
    """A pending application only; 409 `application-decided` once approved or rejected."""
    _site(ctx, site)
    try:
        rejected = _store(ctx).application_reject(
            site, application_id, body.reason, caller.name, ctx.clock()
        )
    except StockRefused as refused:
        raise _refusal(refused) from None
    _audit(ctx, caller, "stock-application-reject", {
        "application_id": application_id, "site": site, "item": rejected.item,
    })  # fmt: skip
    return rejected
