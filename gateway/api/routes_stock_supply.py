"""A district's supply alert level (IV to I) and the market price observations that feed it.

The command center records prices (admin too) and reads everything; a depot token reads
the level and the prices of a site whose depots it names (docs/stock.md).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.contract.base import SLUG_PATTERN, Slug
from edge.contract.supply import Level
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.context import GatewayContext
from gateway.api.errors import ApiError, field_error, responses
from gateway.api.routes_stock import IdempotencyKey, Reader, SiteParam, _ledger, _refusal
from gateway.config import SiteSection
from gateway.stock.catalogue import Unit, site_catalogue
from gateway.stock.ledger import StockRefused
from gateway.stock.prices import PRICES_PAGE_MAX, PriceDraft, PriceObservation, fen_of
from gateway.stock.supply_check import assess, level_payload, since_of
from gateway.stock.supply_level import SupplyStore
from gateway.store.records import AuditEntry

router = APIRouter(prefix="/api/stock", tags=["stock"])

PriceRecorder = Annotated[Caller, Depends(require("command"))]
# How far back a price may be entered: the level reads two weeks; a year allows catching up.
PAST_DAYS_MAX = 366


class PriceIn(BaseModel):
    """One market price, as someone saw it (who: the token's holder, never the body)."""

    model_config = ConfigDict(extra="forbid")

    item: Slug = Field(description="a catalogue item, e.g. pork")
    unit: Unit = Field(description="the item's unit: the price is per one of it")
    price: Decimal = Field(
        gt=0, le=100_000, max_digits=8, decimal_places=2, description="CNY per unit, to the fen"
    )
    observed_on: date = Field(description="the day it was seen (the site's local day)")
    market: str = Field(min_length=1, max_length=80, description="the market or the source")


class CategoryView(BaseModel):
    category: str
    tight_days: int = Field(description="consecutive local days below a target; 0: not now")
    stock_out: bool


class PriceRiseView(BaseModel):
    group: str
    rise_pct: float | None = Field(description="week on week, percent; null: not enough prices")


class SupplyLevelView(BaseModel):
    """The level, the rule that set it and its inputs, figured now."""

    site: str
    level: Level | None
    rule: str | None = Field(description="a stable code, e.g. price-rise:grain-oil:+31%")
    rule_zh: str | None
    rule_en: str | None
    since: datetime | None = Field(description="when the site entered this level")
    computed_at: datetime
    categories: list[CategoryView]
    prices: list[PriceRiseView]


def _supply(ctx: GatewayContext) -> SupplyStore:
    if not isinstance(ctx.store, SupplyStore):
        raise ApiError(503, "no-supply-records", "this gateway's store keeps no price records")
    return ctx.store


def _site(ctx: GatewayContext, caller: Caller, site: str) -> SiteSection:
    """The site, if the caller sees one of its depots (the command center: every site with
    depots); else 404, the same as for a site that does not exist."""
    found = ctx.config.site(site)
    if found is None or not any(caller.sees_depot(site, d) for d in found.depots):
        raise ApiError(404, "unknown-site", f"{site!r} is not a site with depots you see")
    return found


@router.post(
    "/{site}/prices",
    response_model=PriceObservation,
    summary="Record a market price (feeds the supply alert level)",
    responses=responses(404, 409),
)
def record_price(
    *, ctx: ContextDep, caller: PriceRecorder, site: SiteParam, body: PriceIn,
    key: IdempotencyKey, response: Response,
) -> PriceObservation:  # fmt: skip
    """Stored once per `Idempotency-Key` and never changed; the same key with another
    observation is 409 `idempotency-conflict`."""
    found = _site(ctx, caller, site)
    item = site_catalogue(found.stock_items).get(body.item)
    if item is None:
        raise field_error(("body", "item"), f"no item {body.item!r} is in the catalogue")
    if body.unit != item.unit:
        raise field_error(("body", "unit"), f"{item.key} is priced per {item.unit}")
    today = ctx.clock().astimezone(found.zone).date()
    if body.observed_on > today:
        raise field_error(("body", "observed_on"), f"after the site's today ({today})")
    if body.observed_on < today - timedelta(days=PAST_DAYS_MAX):
        raise field_error(("body", "observed_on"), f"more than {PAST_DAYS_MAX} days ago")
    draft = PriceDraft(site, item.key, item.unit, fen_of(body.price), body.observed_on,
                       body.market, key)  # fmt: skip
    try:
        seen, repeat = _supply(ctx).price_write(draft, caller.name, ctx.clock())
    except StockRefused as refused:
        raise _refusal(refused) from None
    if repeat:
        response.headers["Idempotent-Replayed"] = "true"
        return seen
    detail = {"price_id": seen.id, "site": site, "item": seen.item, "price": str(seen.price),
              "unit": seen.unit, "observed_on": seen.observed_on.isoformat(),
              "market": seen.market}  # fmt: skip
    ctx.store.audit(
        AuditEntry(
            at=ctx.clock(), who=caller.name, role=caller.role, action="stock-price",
            resource="stock", detail=json.dumps(detail, sort_keys=True, ensure_ascii=False),
        )
    )  # fmt: skip
    return seen


@router.get(
    "/{site}/prices",
    response_model=list[PriceObservation],
    summary="Market prices recorded for a site, newest first",
    responses=responses(404),
)
def list_prices(
    *, ctx: ContextDep, caller: Reader, site: SiteParam,
    item: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="of this item")] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**62, description="older than this one (the next page)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PRICES_PAGE_MAX, description="at most")] = 100,
) -> list[PriceObservation]:  # fmt: skip
    """Newest first; the next page starts before the last one's id."""
    _site(ctx, caller, site)
    return _supply(ctx).price_page(site, item, before_id, limit)


@router.get(
    "/{site}/supply-level",
    response_model=SupplyLevelView,
    summary="The site's supply alert level (IV to I), the rule that set it and its inputs",
    responses=responses(404),
)
def supply_level(ctx: ContextDep, caller: Reader, site: SiteParam) -> SupplyLevelView:
    """Figured now, as the gateway's tick does; `since` is from the tick's record."""
    found = _site(ctx, caller, site)
    supply = _supply(ctx)
    assessment = assess(ctx.config, _ledger(ctx), supply, found, ctx.clock())
    level = level_payload(assessment, since_of(assessment, supply.supply_state(site)))
    return SupplyLevelView(
        site=site, level=level.level, rule=level.rule, rule_zh=level.rule_zh,
        rule_en=level.rule_en, since=level.since, computed_at=level.at,
        categories=[CategoryView(**c.model_dump())
                    for c in level.categories],
        prices=[PriceRiseView(**p.model_dump()) for p in level.prices],
    )  # fmt: skip
