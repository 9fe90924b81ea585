"""Stock: the catalogue, a depot's ledger entries and on hand, and the movements keepers write.

Every write names its depot in the path and carries an `Idempotency-Key` header: the same
key again with the same movement answers the first entry and writes nothing, with another
movement 409 `idempotency-conflict`. A depot token writes and reads the depots it names;
the command center reads every depot and writes none; admin does both (docs/stock.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from edge.contract.base import SLUG_PATTERN, Slug
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.context import GatewayContext
from gateway.api.errors import ApiError, field_error, responses
from gateway.config import SiteSection
from gateway.stock.catalogue import Category, StockItem, Unit, site_catalogue
from gateway.stock.ledger import (
    ENTRIES_PAGE_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    InTransit,
    Movement,
    OnHand,
    ReceiptSource,
    StockEntry,
    StockRefused,
    StockStore,
)
from gateway.store.records import AuditEntry

router = APIRouter(prefix="/api/stock", tags=["stock"])

SiteParam = Annotated[str, Path(pattern=SLUG_PATTERN, description="the site")]
DepotParam = Annotated[str, Path(pattern=SLUG_PATTERN, description="the depot node")]
EntryId = Annotated[int, Path(ge=1, le=2**62, description="a ledger entry's number")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN,
        description="8 to 64 characters the client chooses per movement (e.g. a UUID); "
        "sent again, the same movement is not written twice",
    ),
]  # fmt: skip
Reader = Annotated[Caller, Depends(require("command", "depot"))]
Writer = Annotated[Caller, Depends(require("depot"))]
# At most 12 digits, 3 of them decimals: more than any depot holds, to the gram.
Quantity = Annotated[
    Decimal, Field(gt=0, max_digits=12, decimal_places=3, description="in the item's unit")
]
Lot = Annotated[
    str, Field(pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$",
               description="the lot (batch) number; empty for an item not tracked by lot"),
]  # fmt: skip
UnitName = Annotated[str, Field(min_length=1, max_length=80, description="an organisation")]
PersonName = Annotated[str, Field(min_length=1, max_length=40, description="who approved")]
Designee = Annotated[str, Field(max_length=80, description="empty: not designated")]


class StockItemView(BaseModel):
    key: str
    category: Category
    unit: Unit
    name_zh: str
    name_en: str
    storage_class: str
    lot_tracked: bool
    shelf_life_days: int | None


class Line(BaseModel):
    """What every movement of stock names: the item, how much and which lot."""

    item: Slug = Field(description="a catalogue key, e.g. n95-mask")
    quantity: Quantity
    unit: Unit = Field(description="must be the item's unit")
    lot: Lot = ""


class ReceiptIn(Line):
    source: ReceiptSource = Field(description="purchase, allocation (from above) or donation")
    expires_on: date | None = Field(None, description="the lot's expiry (lot-tracked items)")
    designated_to: Designee = Field(
        "", description="a donation for one unit only: that unit; empty: not designated"
    )

    @field_validator("designated_to")
    @classmethod
    def _designated_donations_only(cls, value: str, info: ValidationInfo) -> str:
        if value and info.data.get("source") != "donation":
            raise ValueError("only a donation is designated to a unit")
        return value


class IssueIn(Line):
    applicant_unit: UnitName = Field(description="the unit the approved application is of")
    approver: PersonName
    application_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$",
        description="APL-<n>: an approved application, issued no more than its allocation at "
        "this depot (checked); any other id: a paper application, taken as given",
    )
    designated_to: Designee = Field("", description="draw from stock designated to this unit")


class TransferIn(Line):
    to_depot: Slug = Field(description="another depot of the same site")
    designated_to: Designee = ""


class AdjustmentIn(BaseModel):
    """A stocktake's correction: counted minus booked, signed."""

    item: Slug
    quantity: Decimal = Field(
        max_digits=12, decimal_places=3, description="+ found more, - found less (not 0)"
    )
    unit: Unit
    lot: Lot = ""
    designated_to: Designee = ""
    reason: str = Field(min_length=1, max_length=200, description="why the count differs")

    @field_validator("quantity")
    @classmethod
    def _not_zero(cls, value: Decimal) -> Decimal:
        if value == 0:
            raise ValueError("an adjustment of 0 changes nothing")
        return value


class ReversalIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200, description="why the entry was wrong")


class StockOnHand(BaseModel):
    site: str
    depot: str
    on_hand: list[OnHand] = Field(description="per item, lot and designee; none at 0")
    in_transit: list[InTransit] = Field(description="transfers from or to this depot on the way")


def _ledger(ctx: GatewayContext) -> StockStore:
    if not isinstance(ctx.store, StockStore):
        raise ApiError(503, "no-stock-ledger", "this gateway's store keeps no stock ledger")
    return ctx.store


def _depot(ctx: GatewayContext, caller: Caller, site: str, depot: str) -> SiteSection:
    """The site of `site/depot` if the config names it and the caller may see it; else 404,
    the same for a depot that does not exist and one the caller's token does not name."""
    found = ctx.config.site(site)
    if not caller.sees_depot(site, depot) or found is None or depot not in found.depots:
        raise ApiError(404, "unknown-depot", f"{depot!r} is not a depot of site {site!r}")
    return found


def _refusal(refused: StockRefused) -> Exception:
    if refused.status == 422:
        where = {"idempotency_key": ("header", "Idempotency-Key"),
                 "entry_id": ("path", "entry_id"), "transfer_id": ("path", "entry_id")}  # fmt: skip
        return field_error(where.get(refused.field, ("body", refused.field)), refused.message)
    return ApiError(refused.status, refused.reason, f"{refused.field}: {refused.message}")


def _item(site: SiteSection, line: Line | AdjustmentIn, *, receipt: bool = False) -> StockItem:
    """The catalogue item of `line`, once its unit, quantity and lot suit it (422 if not)."""
    item = site_catalogue(site.stock_items).get(line.item)
    if item is None:
        raise field_error(("body", "item"), f"no item {line.item!r} is in the catalogue")
    if line.unit != item.unit:
        raise field_error(("body", "unit"), f"{item.key} is counted in {item.unit}")
    try:
        item.to_steps(line.quantity)
    except ValueError as exc:
        raise field_error(("body", "quantity"), str(exc)) from None
    if item.lot_tracked and not line.lot:
        raise field_error(("body", "lot"), f"{item.key} is tracked by lot: name the lot")
    if not item.lot_tracked and line.lot:
        raise field_error(("body", "lot"), f"{item.key} is not tracked by lot: leave it empty")
    if receipt and isinstance(line, ReceiptIn) and item.lot_tracked != bool(line.expires_on):
        message = "a lot-tracked item's receipt names the lot's expiry" if item.lot_tracked \
            else f"{item.key} is not tracked by lot: no expiry"  # fmt: skip
        raise field_error(("body", "expires_on"), message)
    return item


def _write(
    ctx: GatewayContext, caller: Caller, site: SiteSection, movement: Movement, response: Response
) -> StockEntry:
    """Write `movement`, audit a new entry, mark a repeat; refusals as 404/409/422."""
    today = ctx.clock().astimezone(site.zone).date()
    try:
        entry, repeat = _ledger(ctx).stock_write(movement, caller.name, ctx.clock(), today)
    except StockRefused as refused:
        raise _refusal(refused) from None
    if repeat:
        response.headers["Idempotent-Replayed"] = "true"
        return entry
    detail: Mapping[str, object] = {
        "entry_id": entry.id, "kind": entry.kind, "site": entry.site, "depot": entry.depot,
        "item": entry.item, "lot": entry.lot, "quantity": str(entry.quantity),
        "unit": entry.unit,
    }  # fmt: skip
    ctx.store.audit(
        AuditEntry(
            at=ctx.clock(), who=caller.name, role=caller.role, action=f"stock-{entry.kind}",
            resource="stock", detail=json.dumps(detail, sort_keys=True, ensure_ascii=False),
        )
    )  # fmt: skip
    return entry


_WRITTEN = responses(404, 409)


@router.get(
    "/items",
    response_model=list[StockItemView],
    summary="The stock catalogue (Simplified Chinese and English names)",
    responses=responses(404),
    dependencies=[Depends(require("command", "depot"))],
)
def list_items(
    ctx: ContextDep,
    site: Annotated[
        str | None, Query(pattern=SLUG_PATTERN, description="with this site's own items")
    ] = None,
) -> list[StockItemView]:
    """Every item: the built-in catalogue, and with `site` that site's own items too."""
    own: tuple[StockItem, ...] = ()
    if site is not None:
        found = ctx.config.site(site)
        if found is None:
            raise ApiError(404, "unknown-site", f"no site is named {site!r} in the config")
        own = found.stock_items
    return [StockItemView(**item.model_dump()) for item in site_catalogue(own).values()]


@router.post(
    "/{site}/{depot}/receipts",
    summary="Receive stock",
    response_model=StockEntry,
    responses=_WRITTEN,
)
def receive(
    *, ctx: ContextDep, caller: Writer, site: SiteParam, depot: DepotParam, body: ReceiptIn,
    key: IdempotencyKey, response: Response,
) -> StockEntry:  # fmt: skip
    """A receipt by source (purchase, allocation, donation); a designated donation is
    issued only to its designee. A lot-tracked item names its lot and expiry."""
    found = _depot(ctx, caller, site, depot)
    item = _item(found, body, receipt=True)
    if body.expires_on is not None and body.expires_on < ctx.clock().astimezone(found.zone).date():
        raise field_error(("body", "expires_on"), "the lot has expired: it is not received")
    movement = Movement(
        "receipt", site, depot, key, item=item.key, unit=item.unit,
        steps=item.to_steps(body.quantity), lot=body.lot, expires_on=body.expires_on,
        designated_to=body.designated_to, source=body.source,
    )  # fmt: skip
    return _write(ctx, caller, found, movement, response)


@router.post(
    "/{site}/{depot}/issues",
    summary="Issue stock to an approved application",
    response_model=StockEntry,
    responses=_WRITTEN,
)
def issue(
    *, ctx: ContextDep, caller: Writer, site: SiteParam, depot: DepotParam, body: IssueIn,
    key: IdempotencyKey, response: Response,
) -> StockEntry:  # fmt: skip
    """An issue against an approved application; never more than on hand, never of an
    expired lot, designated stock only to its designee. Against `APL-<n>`, also never
    more than that application's allocation here (docs/stock.md#applications-and-allocation)."""
    found = _depot(ctx, caller, site, depot)
    item = _item(found, body)
    movement = Movement(
        "issue", site, depot, key, item=item.key, unit=item.unit,
        steps=-item.to_steps(body.quantity), lot=body.lot, designated_to=body.designated_to,
        applicant_unit=body.applicant_unit, approver=body.approver,
        application_id=body.application_id,
    )  # fmt: skip
    return _write(ctx, caller, found, movement, response)


@router.post(
    "/{site}/{depot}/transfers",
    summary="Send stock to another depot",
    response_model=StockEntry,
    responses=_WRITTEN,
)
def transfer_out(
    *, ctx: ContextDep, caller: Writer, site: SiteParam, depot: DepotParam, body: TransferIn,
    key: IdempotencyKey, response: Response,
) -> StockEntry:  # fmt: skip
    """The stock leaves this depot at once and is in transit until the receiving depot
    confirms it (POST …/transfers/{entry_id}/receipt there)."""
    found = _depot(ctx, caller, site, depot)
    if body.to_depot == depot:
        raise field_error(("body", "to_depot"), "a transfer goes to another depot")
    if body.to_depot not in found.depots:
        raise field_error(("body", "to_depot"), f"not a depot of site {site}")
    item = _item(found, body)
    movement = Movement(
        "transfer-out", site, depot, key, item=item.key, unit=item.unit,
        steps=-item.to_steps(body.quantity), lot=body.lot, designated_to=body.designated_to,
        to_depot=body.to_depot,
    )  # fmt: skip
    return _write(ctx, caller, found, movement, response)


@router.post(
    "/{site}/{depot}/transfers/{entry_id}/receipt",
    summary="Receive a transfer from another depot",
    response_model=StockEntry,
    responses=_WRITTEN,
)
def transfer_in(
    *, ctx: ContextDep, caller: Writer, site: SiteParam, depot: DepotParam, entry_id: EntryId,
    key: IdempotencyKey, response: Response,
) -> StockEntry:  # fmt: skip
    """Confirm the whole of transfer-out `entry_id` arrived here; a shortfall is a
    stocktake adjustment after it. 404 `unknown-transfer` for one not on its way here."""
    found = _depot(ctx, caller, site, depot)
    movement = Movement("transfer-in", site, depot, key, transfer_of=entry_id)
    return _write(ctx, caller, found, movement, response)


@router.post(
    "/{site}/{depot}/adjustments",
    summary="Correct stock after a stocktake",
    response_model=StockEntry,
    responses=_WRITTEN,
)
def adjust(
    *, ctx: ContextDep, caller: Writer, site: SiteParam, depot: DepotParam, body: AdjustmentIn,
    key: IdempotencyKey, response: Response,
) -> StockEntry:  # fmt: skip
    """A signed correction with its reason; it never takes on hand below 0."""
    found = _depot(ctx, caller, site, depot)
    item = _item(found, body)
    steps = item.to_steps(abs(body.quantity))
    movement = Movement(
        "adjustment", site, depot, key, item=item.key, unit=item.unit,
        steps=steps if body.quantity > 0 else -steps, lot=body.lot,
        designated_to=body.designated_to, reason=body.reason,
    )  # fmt: skip
    return _write(ctx, caller, found, movement, response)


@router.post(
    "/{site}/{depot}/entries/{entry_id}/reversal",
    summary="Reverse an entry",
    response_model=StockEntry,
    responses=_WRITTEN,
)
def reverse(
    *, ctx: ContextDep, caller: Writer, site: SiteParam, depot: DepotParam, entry_id: EntryId,
    body: ReversalIn, key: IdempotencyKey, response: Response,
) -> StockEntry:  # fmt: skip
    """Cancel entry `entry_id` of this depot exactly (a correction is a reversal and a new
    entry). 409: a reversal (`reversal-of-reversal`), one reversed already, a transfer
    received already, or stock since issued (`insufficient-stock`)."""
    found = _depot(ctx, caller, site, depot)
    movement = Movement("reversal", site, depot, key, reverses=entry_id, reason=body.reason)
    return _write(ctx, caller, found, movement, response)


@router.get(
    "/{site}/{depot}/on-hand",
    response_model=StockOnHand,
    summary="What a depot holds, per item and lot, and its transfers on the way",
    responses=responses(404),
)
def on_hand(ctx: ContextDep, caller: Reader, site: SiteParam, depot: DepotParam) -> StockOnHand:
    """On hand per item, lot (with its expiry) and designee, derived from the entries."""
    _depot(ctx, caller, site, depot)
    ledger = _ledger(ctx)
    return StockOnHand(
        site=site, depot=depot, on_hand=ledger.stock_on_hand(site, depot),
        in_transit=ledger.stock_in_transit(site, depot),
    )  # fmt: skip


@router.get(
    "/{site}/{depot}/entries",
    response_model=list[StockEntry],
    summary="A depot's ledger, newest first",
    responses=responses(404),
)
def entries(
    *, ctx: ContextDep, caller: Reader, site: SiteParam, depot: DepotParam,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**62, description="older than this entry (the next page)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=ENTRIES_PAGE_MAX, description="at most")] = 100,
) -> list[StockEntry]:  # fmt: skip
    """Entries newest first; the next page starts before the last one's id."""
    _depot(ctx, caller, site, depot)
    return _ledger(ctx).stock_entries(site, depot, before_id, limit)
