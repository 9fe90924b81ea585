"""Shifts and sessions: a volunteer's badge starts or ends duty and signs them in or out."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from edge.gate.console.context import ContextDep
from edge.gate.console.errors import ACTION_RESPONSES, SESSION_RESPONSES
from edge.gate.console.sessions import (
    COOKIE,
    ActorDep,
    SessionRefused,
    clear_cookie,
    set_cookie,
)
from edge.gate.views import ShiftChange, Volunteer

router = APIRouter(prefix="/api", tags=["shifts"])

# A scanner types the QR text and often a CR or LF after it; a QR code holds < 4.3k chars.
BadgeText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=8192, pattern=r"^HC1:.+")
]


class ShiftRequest(BaseModel):
    """The badge's scanned text and whether its holder starts or ends duty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    badge_text: BadgeText
    action: Literal["start", "end"]


class SignIn(BaseModel):
    """The badge of a volunteer already on duty (signing in again on this device)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    badge_text: BadgeText


@router.post("/shifts", response_model=ShiftChange, responses=ACTION_RESPONSES)
def change_shift(
    body: ShiftRequest, context: ContextDep, request: Request, response: Response
) -> ShiftChange:
    """Start a shift and sign in, or end it and sign out every device of that volunteer.

    Starting while already on duty records nothing new: it only signs in. The badge is
    verified by the checkpoint, which refuses a forged, revoked or expired one.
    """
    change = context.checkpoint.change_shift(body.badge_text, body.action)
    if change.action == "start":
        set_cookie(response, request, context.sessions.open(change))
    else:
        context.sessions.end_for(change.volunteer_id)
        clear_cookie(response, request)
    return change


@router.post("/session", response_model=Volunteer, responses=ACTION_RESPONSES)
def sign_in(body: SignIn, context: ContextDep, request: Request, response: Response) -> Volunteer:
    """Sign in with the badge of a volunteer on duty here; 403 for one who is not."""
    volunteer = context.checkpoint.identify(body.badge_text)
    if volunteer.volunteer_id not in context.checkpoint.on_duty:
        raise SessionRefused(403, "not-on-duty", "start your shift first")
    set_cookie(response, request, context.sessions.open(volunteer))
    return volunteer


@router.get("/session", response_model=Volunteer, responses=SESSION_RESPONSES)
def who(volunteer: ActorDep) -> Volunteer:
    """The volunteer signed in on this device (401 when nobody is)."""
    return volunteer


@router.delete("/session", status_code=204)
def sign_out(context: ContextDep, request: Request, response: Response) -> None:
    """Sign out of this device; the shift goes on (end it with the badge)."""
    context.sessions.close(request.cookies.get(COOKIE))
    clear_cookie(response, request)
