"""Registrations: the people a gate wrote down (names, ids, phones), for registrars only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from gateway.api.audit import audit_read
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.errors import responses
from gateway.api.routes_passages import WindowDep
from gateway.store.records import RegistrationRecord

router = APIRouter(prefix="/api/registrations", tags=["registrations"])


@router.get(
    "",
    response_model=list[RegistrationRecord],
    summary="Registrations taken at the gates",
    responses=responses(),
)
def list_registrations(
    ctx: ContextDep,
    caller: Annotated[Caller, Depends(require("registrar"))],
    span: WindowDep,
) -> list[RegistrationRecord]:
    """Registrations by node time. Every row is personal: each read is audited."""
    found = ctx.store.registrations(span.query())
    audit_read(ctx, caller, "registrations", span.asked(), len(found))
    return found
