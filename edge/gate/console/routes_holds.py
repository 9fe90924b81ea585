"""Holds: a volunteer ends one (re-measured and released, registered, referred, turned back)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.exceptions import RequestValidationError

from edge.gate.console.context import CheckpointDep
from edge.gate.console.errors import ACTION_RESPONSES, problem
from edge.gate.console.sessions import ActorDep
from edge.gate.views import ConsoleUpdate, HoldResolution

router = APIRouter(prefix="/api/holds", tags=["holds"])

HoldId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


@router.post("/{hold_id}/resolve", response_model=ConsoleUpdate, responses=ACTION_RESPONSES)
def resolve_hold(
    hold_id: HoldId, resolution: HoldResolution, checkpoint: CheckpointDep, volunteer: ActorDep
) -> ConsoleUpdate:
    """End a hold; answers with the state after it, so the page need not wait for the stream.

    An unknown hold is a 409 like every other refusal, not a 404: the usual cause is
    that another console resolved it a moment ago, which is a conflict with the gate's
    current state (the checkpoint raises Refusal for it), not a wrong address.
    """
    if resolution.resolution == "registered" and resolution.registration is None:
        # The model only says so in words; refuse it here so the page marks the form.
        raise RequestValidationError(
            [problem(("body", "registration"), "missing", "registration is required")]
        )
    # The page offers only the ways that fit the hold's reasons; the checkpoint refuses
    # any other (an old page, a script), so a forged code is never "released" but by a
    # supervisor's override where the site allows one (the role is the badge's).
    checkpoint.resolve_hold(hold_id, resolution, volunteer.volunteer_id, volunteer.role)
    return checkpoint.update()
