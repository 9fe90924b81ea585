"""Manual registrations of people without a smartphone (or with a yellow code)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from edge.contract.base import VolunteerId
from edge.gate.console.context import CheckpointDep
from edge.gate.console.errors import ACTION_RESPONSES
from edge.gate.views import Registration

router = APIRouter(prefix="/api/registrations", tags=["registrations"])


class RegistrationRequest(BaseModel):
    """A registration and the volunteer who took it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    volunteer_id: VolunteerId
    registration: Registration


class RegistrationReceipt(BaseModel):
    """The registration's event id: it is in the node's outbox."""

    event_id: str


@router.post("", status_code=201, response_model=RegistrationReceipt, responses=ACTION_RESPONSES)
def register(request: RegistrationRequest, checkpoint: CheckpointDep) -> RegistrationReceipt:
    """Register a person by hand; the node keeps only a keyed hash of the ID number."""
    event_id = checkpoint.register(request.registration, request.volunteer_id)
    return RegistrationReceipt(event_id=event_id)
