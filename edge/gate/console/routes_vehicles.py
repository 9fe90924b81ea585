"""Vehicle checks: a plate and every occupant's temperature, answered with the decision."""

from __future__ import annotations

from fastapi import APIRouter

from edge.gate.console.context import CheckpointDep
from edge.gate.console.errors import ACTION_RESPONSES
from edge.gate.console.sessions import ActorDep
from edge.gate.views import DecisionView, VehicleCheck

router = APIRouter(prefix="/api/vehicle-checks", tags=["vehicles"])


@router.post("", response_model=DecisionView, responses=ACTION_RESPONSES)
def check_vehicle(
    check: VehicleCheck, checkpoint: CheckpointDep, volunteer: ActorDep
) -> DecisionView:
    """Decide on a vehicle; the same decision also reaches every console's decision panel."""
    return checkpoint.check_vehicle(check, volunteer.volunteer_id)
