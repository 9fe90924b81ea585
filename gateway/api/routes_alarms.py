"""Alarms: what the gateway found wrong, the command center acknowledging and clearing it,
a depot keeper acknowledging their depots'."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from gateway.alarms import AlarmView
from gateway.api.auth import Caller, ContextDep, require
from gateway.api.context import GatewayContext
from gateway.api.errors import ApiError, responses
from gateway.store import UnknownAlarm
from gateway.store.records import AlarmRecord, AlarmState, AuditEntry

router = APIRouter(prefix="/api/alarms", tags=["alarms"])

StateFilter = Literal["live", "all", "raised", "acknowledged", "cleared"]
_STATES: dict[StateFilter, tuple[AlarmState, ...]] = {
    "live": ("raised", "acknowledged"),
    "all": ("raised", "acknowledged", "cleared"),
    "raised": ("raised",),
    "acknowledged": ("acknowledged",),
    "cleared": ("cleared",),
}

AlarmId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the alarm's id")]
Operator = Annotated[Caller, Depends(require("command"))]
# A depot token acknowledges the alarms of the depots it names (it clears none).
Acknowledger = Annotated[Caller, Depends(require("command", "depot"))]


def _unknown(alarm_id: str) -> ApiError:
    return ApiError(404, "unknown-alarm", f"no alarm has the id {alarm_id!r}")


@router.get(
    "",
    response_model=list[AlarmView],
    summary="Alarms, live ones by default",
    responses=responses(),
    dependencies=[Depends(require("command"))],
)
def list_alarms(
    ctx: ContextDep,
    state: Annotated[
        StateFilter, Query(description="live = raised or acknowledged; all includes cleared")
    ] = "live",
    limit: Annotated[int, Query(ge=1, le=1000, description="newest first, at most")] = 200,
) -> list[AlarmView]:
    """Alarms, newest raised first, each with its words (`words.key` names the catalogue
    entry `alarm.<key>`, `words.values` fill it)."""
    return [AlarmView.of(alarm) for alarm in ctx.store.alarms(_STATES[state], limit)]


@router.get(
    "/{alarm_id}",
    response_model=AlarmView,
    summary="One alarm",
    responses=responses(404),
    dependencies=[Depends(require("command"))],
)
def get_alarm(ctx: ContextDep, alarm_id: AlarmId) -> AlarmView:
    """One alarm in its current state; 404 `unknown-alarm`."""
    try:
        return AlarmView.of(ctx.store.alarm(alarm_id))
    except UnknownAlarm:
        raise _unknown(alarm_id) from None


@router.post(
    "/{alarm_id}/acknowledge",
    response_model=AlarmView,
    summary="Acknowledge an alarm",
    responses=responses(404, 409),
)
def acknowledge_alarm(ctx: ContextDep, caller: Acknowledger, alarm_id: AlarmId) -> AlarmView:
    """Say someone has seen it; the token's name is recorded as who, and in the audit log.

    A depot token acknowledges only the alarms of the depots it names (their node is one of
    them); any other is 404 `unknown-alarm`, as an id that does not exist. Acknowledging an
    acknowledged alarm changes nothing (the first one counts). A cleared alarm is 409
    `alarm-cleared`: its condition is over, there is nothing left to see to.
    """
    try:
        if caller.role == "depot":
            alarm = ctx.store.alarm(alarm_id)
            if not caller.sees_depot(alarm.site, alarm.node):
                raise UnknownAlarm(alarm_id)
        done = ctx.alarms.acknowledge(alarm_id, caller.name)
    except UnknownAlarm:
        raise _unknown(alarm_id) from None
    except ValueError as exc:
        raise ApiError(409, "alarm-cleared", str(exc)) from None
    _audit(ctx, caller, "acknowledge", done)
    return AlarmView.of(done)


@router.post(
    "/{alarm_id}/clear",
    response_model=AlarmView,
    summary="Clear an alarm",
    responses=responses(404),
)
def clear_alarm(ctx: ContextDep, caller: Operator, alarm_id: AlarmId) -> AlarmView:
    """End the alarm by hand; clearing a cleared alarm returns it unchanged.

    The gateway also clears alarms whose condition ended by itself (as "gateway").
    """
    try:
        done = ctx.alarms.clear(alarm_id, caller.name)
    except UnknownAlarm:
        raise _unknown(alarm_id) from None
    _audit(ctx, caller, "clear", done)
    return AlarmView.of(done)


def _audit(ctx: GatewayContext, caller: Caller, action: str, alarm: AlarmRecord) -> None:
    """Log who acknowledged or cleared which alarm (no message: it may name a zone only)."""
    detail = {"alarm_id": alarm.alarm_id, "kind": alarm.kind, "site": alarm.site,
              "node": alarm.node, "state": alarm.state}  # fmt: skip
    ctx.store.audit(
        AuditEntry(
            at=ctx.clock(),
            who=caller.name,
            role=caller.role,
            action=action,
            resource="alarms",
            detail=json.dumps(detail, sort_keys=True),
        )
    )
