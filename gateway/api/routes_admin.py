"""Administration: API tokens, the audit log and messages the gateway refused."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gateway.api.audit import audit_read
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.errors import responses
from gateway.store.records import AuditEntry, DeadLetterRecord, TokenRecord

router = APIRouter(prefix="/api", tags=["admin"])

Admin = Annotated[Caller, Depends(require())]
Limit = Annotated[int, Query(ge=1, le=1000, description="newest first, at most")]


@router.get(
    "/tokens",
    response_model=list[TokenRecord],
    summary="API tokens",
    responses=responses(),
    dependencies=[Depends(require())],
)
def list_tokens(ctx: ContextDep) -> list[TokenRecord]:
    """Every token by name, revoked ones included; hashes never leave the store."""
    return ctx.store.tokens()


@router.get(
    "/audit",
    response_model=list[AuditEntry],
    summary="Who read personal data, and who acknowledged or cleared which alarm",
    responses=responses(),
    dependencies=[Depends(require())],
)
def list_audit(ctx: ContextDep, limit: Limit = 200) -> list[AuditEntry]:
    """The audit log, newest first: who read which personal data, when, with which filters,
    and who acknowledged or cleared which alarm."""
    return ctx.store.audit_log(limit)


@router.get(
    "/dead-letters",
    response_model=list[DeadLetterRecord],
    summary="Messages the gateway refused",
    responses=responses(),
)
def list_dead_letters(ctx: ContextDep, caller: Admin, limit: Limit = 100) -> list[DeadLetterRecord]:
    """Refused messages with the reason, newest first.

    Audited: a refused payload is whatever a node sent, and may hold a registration.
    """
    found = ctx.store.dead_letters(limit)
    audit_read(ctx, caller, "dead-letters", {"limit": limit}, len(found))
    return found
