"""Holds: passages a gate stopped for a volunteer, with how each one ended."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from edge.contract.base import personal_fields
from edge.contract.events import Hold, HoldResolved
from gateway.api.audit import audit_read, personal_view
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.errors import responses
from gateway.api.routes_passages import WindowDep
from gateway.store.records import HoldRecord

router = APIRouter(prefix="/api/holds", tags=["holds"])

# The hold's own personal fields, and the note of its resolution.
HOLD_PERSONAL = (*personal_fields(Hold), *personal_fields(HoldResolved))


@router.get(
    "",
    response_model=list[HoldRecord],
    summary="Holds and their resolutions",
    responses=responses(),
)
def list_holds(
    ctx: ContextDep,
    caller: Annotated[Caller, Depends(require("command", "registrar"))],
    span: WindowDep,
    open_only: Annotated[bool, Query(description="only holds nobody has resolved yet")] = False,
) -> list[HoldRecord]:
    """Holds by node time; `resolution` and the fields after it are null while open.

    `subject_ref` and the volunteer's `note` are personal: null for the command role,
    shown and audited for registrar and admin.
    """
    found = ctx.store.holds(span.query(), open_only=open_only)
    audit_read(ctx, caller, "holds", {**span.asked(), "open_only": open_only}, len(found))
    return personal_view(found, HOLD_PERSONAL, caller)
