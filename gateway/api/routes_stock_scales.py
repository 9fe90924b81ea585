"""A depot's scales against its stock ledger: the newest weight of each, in units, beside on hand.

A read, with the roles of the other stock reads: a depot token sees the depots it names,
the command center every depot (docs/stock.md#scales).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.api.auth import ContextDep
from gateway.api.errors import ApiError, responses
from gateway.api.routes_stock import DepotParam, Reader, SiteParam, _depot
from gateway.stock.catalogue import site_catalogue
from gateway.stock.scales import ScalesStore, compare, ledger_units

router = APIRouter(prefix="/api/stock", tags=["stock"])

ScaleView = Literal["ok", "differs", "alarm", "no-weight"]
_VIEWS: dict[str, ScaleView] = {"ok": "ok", "differs": "differs", "raised": "alarm"}


class ScaleNow(BaseModel):
    """One configured scale: its newest weight in units beside the ledger's on hand now."""

    scale: str = Field(description="its name on the depot node")
    item: str
    lot: str = Field(description="the pallet's lot; empty: every lot of the item")
    unit: str = Field(description="the item's unit, as the ledger counts it")
    unit_kg: float = Field(description="one unit's weight")
    at: datetime | None = Field(description="when the newest weight was taken (node time)")
    net_kg: float | None = Field(description="the newest weight, the pallet's tare taken off")
    units: Decimal | None = Field(description="net_kg in units of the item")
    ledger: Decimal = Field(description="the ledger's on hand now (of the lot, if named)")
    difference: Decimal | None = Field(description="units - ledger: negative, fewer weighed")
    tolerance: Decimal = Field(description="a difference this large or less is none")
    state: ScaleView = Field(
        description="as the alarm rule judged the newest weight: ok, differs (since, not yet "
        "lasting_min), alarm (stock-discrepancy raised), no-weight (none received)"
    )
    since: datetime | None = Field(description="the first weight of the difference under way")
    lasting_min: float


class DepotScales(BaseModel):
    site: str
    depot: str
    scales: list[ScaleNow]


@router.get(
    "/{site}/{depot}/scales",
    response_model=DepotScales,
    summary="A depot's scales: the newest weight of each in units, beside the ledger",
    responses=responses(404),
)
def scales(ctx: ContextDep, caller: Reader, site: SiteParam, depot: DepotParam) -> DepotScales:
    """Each scale of the site's config for this depot, in its name's order."""
    found = _depot(ctx, caller, site, depot)
    store = ctx.store
    if not isinstance(store, ScalesStore):
        raise ApiError(503, "no-stock-ledger", "this gateway's store keeps no stock ledger")
    configured = found.scales.get(depot, {})
    newest = store.scale_newest(site, depot) if configured else {}
    states = store.scale_states(site, depot) if configured else {}
    on_hand = store.stock_on_hand(site, depot) if configured else []
    catalogue = site_catalogue(found.stock_items)
    views = []
    for name, scale in sorted(configured.items()):
        unit = catalogue[scale.item].unit
        ledger = ledger_units(on_hand, scale.item, scale.lot, unit)
        weight = newest.get(name)
        state = states.get(name)
        compared = compare(scale, unit, weight.net_kg if weight else 0.0, ledger)
        view: ScaleView = "no-weight" if weight is None or state is None else _VIEWS[state.phase]
        views.append(
            ScaleNow(
                scale=name, item=scale.item, lot=scale.lot, unit=unit, unit_kg=scale.unit_kg,
                at=weight.at if weight else None, net_kg=weight.net_kg if weight else None,
                units=compared.weighed if weight else None, ledger=ledger,
                difference=compared.difference if weight else None,
                tolerance=compared.tolerance, state=view,
                since=state.since if state and weight else None, lasting_min=scale.lasting_min,
            )
        )  # fmt: skip
    return DepotScales(site=site, depot=depot, scales=views)
