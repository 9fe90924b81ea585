"""Disinfection rounds of the checkpoint (at least four a day in the hut)."""

from __future__ import annotations

from fastapi import APIRouter

from edge.gate.console.context import CheckpointDep
from edge.gate.console.errors import ACTION_RESPONSES
from edge.gate.console.sessions import ActorDep
from edge.gate.views import ConsoleUpdate, DisinfectionRound

router = APIRouter(prefix="/api/disinfections", tags=["disinfections"])


@router.post("", status_code=201, response_model=ConsoleUpdate, responses=ACTION_RESPONSES)
def log_disinfection(
    round_: DisinfectionRound, checkpoint: CheckpointDep, volunteer: ActorDep
) -> ConsoleUpdate:
    """Log one round; answers with the gate's state, like every action without a result."""
    checkpoint.log_disinfection(round_, volunteer.volunteer_id)
    return checkpoint.update()
