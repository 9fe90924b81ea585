"""Personal data in answers: blanked for roles that may not see it, logged for those who may."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from gateway.api.auth import Caller
from gateway.api.context import GatewayContext
from gateway.store.records import AuditEntry, Record

R = TypeVar("R", bound=Record)


def personal_view(records: Sequence[R], personal: Sequence[str], caller: Caller) -> list[R]:
    """The records as `caller` may see them: the `personal` fields null unless allowed.

    Args:
        records: rows from the store.
        personal: the names of their personal fields.
        caller: who asks.

    Returns:
        The same rows, or copies with those fields set to None.
    """
    if caller.sees_personal:
        return list(records)
    blank = dict.fromkeys(personal)
    return [record.model_copy(update=blank) for record in records]


def audit_read(
    ctx: GatewayContext,
    caller: Caller,
    resource: str,
    filters: Mapping[str, object],
    count: int,
) -> None:
    """Log that `caller` read personal data of `resource`, when its role shows it.

    Reads that returned nothing are logged too: what someone searched for is part of the
    trail, even when nobody matched.

    Args:
        ctx: the gateway (its store and clock).
        caller: who read.
        resource: e.g. "passages", "registrations".
        filters: the query as asked; None values are left out.
        count: how many rows the answer held.
    """
    if not caller.sees_personal:
        return  # nothing personal was shown
    asked = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in filters.items()
        if value is not None
    }
    detail = json.dumps({**asked, "count": count}, ensure_ascii=False, sort_keys=True)
    ctx.store.audit(
        AuditEntry(
            at=ctx.clock(),
            who=caller.name,
            role=caller.role,
            action="read",
            resource=resource,
            detail=detail,
        )
    )
