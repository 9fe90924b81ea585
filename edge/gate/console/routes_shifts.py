"""Shifts: a volunteer starts or ends duty by scanning their badge."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StringConstraints

from edge.gate.console.context import CheckpointDep
from edge.gate.console.errors import ACTION_RESPONSES
from edge.gate.views import ShiftChange

router = APIRouter(prefix="/api/shifts", tags=["shifts"])

# A scanner types the QR text and often a CR or LF after it; a QR code holds < 4.3k chars.
BadgeText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=8192, pattern=r"^HC1:.+")
]


class ShiftRequest(BaseModel):
    """The badge's scanned text and whether its holder starts or ends duty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    badge_text: BadgeText
    action: Literal["start", "end"]


@router.post("", response_model=ShiftChange, responses=ACTION_RESPONSES)
def change_shift(request: ShiftRequest, checkpoint: CheckpointDep) -> ShiftChange:
    """Start or end a shift; the checkpoint verifies the badge and refuses a bad one."""
    return checkpoint.change_shift(request.badge_text, request.action)
