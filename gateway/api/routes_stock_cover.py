"""Stock cover: days of cover against the reserve targets, expiring lots, what to issue first.

Reads only, with the roles of the other stock reads: a depot token sees the depots it
names, the command center every depot (docs/stock.md).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from edge.contract.base import SLUG_PATTERN
from gateway.api.auth import ContextDep
from gateway.api.errors import ApiError, field_error, responses
from gateway.api.routes_stock import DepotParam, Reader, SiteParam, _depot, _ledger
from gateway.stock.catalogue import UNIT_DECIMALS, site_catalogue
from gateway.stock.cover import (
    Cover,
    category_cover,
    depot_cover,
    depot_stock,
    expiring,
    fefo,
    site_totals,
    target_cover,
)

router = APIRouter(prefix="/api/stock", tags=["stock"])

ItemParam = Annotated[str, Path(pattern=SLUG_PATTERN, description="a catalogue item")]
DAYS = Decimal("0.1")


def _days(days: Decimal | None) -> Decimal | None:
    return None if days is None else days.quantize(DAYS)


class CoverView(BaseModel):
    """An item's cover at a depot or the site."""

    item: str
    category: str
    unit: str
    on_hand: Decimal = Field(description="usable: expired lots do not count")
    daily_issue: Decimal = Field(description="average over the window, net of reversals")
    days: Decimal | None = Field(description="days of cover; null: no issue in the window")

    @classmethod
    def of(cls, cover: Cover) -> CoverView:
        return cls(item=cover.key, category=cover.category, unit=cover.unit,
                   on_hand=cover.on_hand, daily_issue=cover.daily_issue.quantize(Decimal("0.001")),
                   days=_days(cover.days))  # fmt: skip


class CategoryView(BaseModel):
    category: str
    days: Decimal | None = Field(description="its weakest item's; null: none issued")


class DepotCover(BaseModel):
    depot: str
    items: list[CoverView]
    categories: list[CategoryView]


class TargetView(BaseModel):
    subject: str = Field(description="item:<key> or category:<name>")
    target_days: float
    basis: str = Field(description="population (its consumption) or issue (the average issue)")
    days: Decimal | None = Field(description="null: no issue in the window (no bound)")
    below: bool


class SiteCover(BaseModel):
    site: str
    window_days: int
    depots: list[DepotCover]
    site_items: list[CoverView] | None = Field(
        description="the site's cover over every depot (transfers in transit counted once); "
        "null for a depot token that does not see every depot of the site"
    )
    targets: list[TargetView] | None = Field(description="null as site_items")


def _categories(covers: list[Cover]) -> list[CategoryView]:
    names = sorted({c.category for c in covers})
    return [CategoryView(category=n, days=_days(category_cover(covers, n))) for n in names]


@router.get(
    "/{site}/cover",
    response_model=SiteCover,
    summary="Days of cover per depot, item and category, and the site's reserve targets",
    responses=responses(404),
)
def cover(ctx: ContextDep, caller: Reader, site: SiteParam) -> SiteCover:
    """Cover = usable on hand / average daily issue over `stock.issue_window_days`."""
    found = ctx.config.site(site)
    seen = [d for d in (found.depots if found else ()) if caller.sees_depot(site, d)]
    if found is None or not seen:
        raise ApiError(404, "unknown-site", f"{site!r} is not a site with depots you see")
    ledger, now = _ledger(ctx), ctx.clock()
    window = ctx.config.stock.issue_window_days
    stocks = [depot_stock(ledger, found, depot, now, window) for depot in seen]
    depots = []
    for stock in stocks:
        covers = depot_cover(found, stock, window)
        depots.append(DepotCover(depot=stock.depot, items=[CoverView.of(c) for c in covers],
                                 categories=_categories(covers)))  # fmt: skip
    if len(seen) < len(found.depots):
        return SiteCover(site=site, window_days=window, depots=depots, site_items=None,
                         targets=None)  # fmt: skip
    covers, held = site_totals(ledger, found, stocks, window)
    targets = []
    for target in found.stock_targets:
        days = target_cover(target, covers, held, found.population)
        by_people = target.per_person_daily is not None and found.population > 0
        targets.append(TargetView(
            subject=target.subject, target_days=target.days,
            basis="population" if by_people else "issue", days=_days(days),
            below=days is not None and days < Decimal(str(target.days)),
        ))  # fmt: skip
    return SiteCover(site=site, window_days=window, depots=depots,
                     site_items=[CoverView.of(c) for c in covers], targets=targets)  # fmt: skip


class ExpiringView(BaseModel):
    item: str
    lot: str
    designated_to: str
    expires_on: date
    days_left: int = Field(description="negative: expired that many days ago (never issued)")
    expired: bool
    quantity: Decimal
    unit: str


@router.get(
    "/{site}/{depot}/expiring",
    response_model=list[ExpiringView],
    summary="Lots on hand expiring within `stock.expiring_within_days`, and expired ones",
    responses=responses(404),
)
def expiring_lots(
    ctx: ContextDep, caller: Reader, site: SiteParam, depot: DepotParam
) -> list[ExpiringView]:
    """Earliest expiry first; an expired lot stays listed while it is on hand."""
    found = _depot(ctx, caller, site, depot)
    today = ctx.clock().astimezone(found.zone).date()
    lots = expiring(_ledger(ctx).stock_on_hand(site, depot), today,
                    ctx.config.stock.expiring_within_days)  # fmt: skip
    return [
        ExpiringView(item=e.item, lot=e.lot, designated_to=e.designated_to,
                     expires_on=e.expires_on, days_left=e.days_left, expired=e.days_left < 0,
                     quantity=e.quantity, unit=e.unit)
        for e in lots
    ]  # fmt: skip


class DrawView(BaseModel):
    lot: str
    designated_to: str
    expires_on: date | None
    quantity: Decimal


class FefoView(BaseModel):
    item: str
    unit: str
    quantity: Decimal = Field(description="asked for")
    draws: list[DrawView] = Field(description="the lots to issue from, earliest expiry first")
    missing: Decimal = Field(description="what the usable lots do not cover; 0: all of it")


@router.get(
    "/{site}/{depot}/items/{item}/fefo",
    response_model=FefoView,
    summary="Which lots to issue from, first expiry first out (expired lots never)",
    responses=responses(404),
)
def first_expiry_first_out(
    *, ctx: ContextDep, caller: Reader, site: SiteParam, depot: DepotParam, item: ItemParam,
    quantity: Annotated[
        Decimal, Query(gt=0, max_digits=12, decimal_places=3, description="in the item's unit")
    ],
    designated_to: Annotated[
        str, Query(max_length=80, description="the applicant unit, to draw stock designated to it")
    ] = "",
) -> FefoView:  # fmt: skip
    """A suggestion only: the keeper issues each lot as usual."""
    found = _depot(ctx, caller, site, depot)
    stocked = site_catalogue(found.stock_items).get(item)
    if stocked is None:
        raise field_error(("path", "item"), f"unknown item {item}")
    if quantity != quantity.quantize(Decimal(1).scaleb(-UNIT_DECIMALS[stocked.unit])):
        raise field_error(("query", "quantity"), f"finer than the unit {stocked.unit}")
    today = ctx.clock().astimezone(found.zone).date()
    draws, missing = fefo(_ledger(ctx).stock_on_hand(site, depot), item, quantity, today,
                          designated_to)  # fmt: skip
    return FefoView(
        item=item, unit=stocked.unit, quantity=quantity, missing=missing,
        draws=[DrawView(lot=d.lot, designated_to=d.designated_to, expires_on=d.expires_on,
                        quantity=d.quantity) for d in draws],
    )  # fmt: skip
