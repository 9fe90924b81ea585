"""Disinfection rounds the volunteers logged at each gate."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gateway.api.auth import ContextDep, require
from gateway.api.errors import responses
from gateway.api.routes_passages import WindowDep
from gateway.store.records import DisinfectionRecord

router = APIRouter(prefix="/api/disinfections", tags=["disinfections"])


@router.get(
    "",
    response_model=list[DisinfectionRecord],
    summary="Disinfection rounds",
    responses=responses(),
    dependencies=[Depends(require("command"))],
)
def list_disinfections(ctx: ContextDep, span: WindowDep) -> list[DisinfectionRecord]:
    """Rounds by node time: who disinfected which area with what."""
    return ctx.store.disinfections(span.query())
