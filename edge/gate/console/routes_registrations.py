"""Manual registrations of people without a smartphone (or with a yellow code)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from edge.gate.console.context import CheckpointDep
from edge.gate.console.errors import ACTION_RESPONSES
from edge.gate.console.sessions import ActorDep
from edge.gate.views import Registration

router = APIRouter(prefix="/api/registrations", tags=["registrations"])


class RegistrationRequest(BaseModel):
    """A registration; the volunteer who took it is the session's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registration: Registration


class RegistrationReceipt(BaseModel):
    """The registration's event id: it is in the node's outbox."""

    event_id: str


@router.post("", status_code=201, response_model=RegistrationReceipt, responses=ACTION_RESPONSES)
def register(
    request: RegistrationRequest, checkpoint: CheckpointDep, volunteer: ActorDep
) -> RegistrationReceipt:
    """Register a person by hand; the node keeps only a keyed hash of the ID number."""
    event_id = checkpoint.register(request.registration, volunteer.volunteer_id)
    return RegistrationReceipt(event_id=event_id)
