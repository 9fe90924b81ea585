"""The gate's state for the page: a snapshot, and a live stream of every change.

Both show holds with masked names: only inside an on-duty volunteer's session.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from edge.gate.console.context import CheckpointDep, ContextDep
from edge.gate.console.errors import SESSION_RESPONSES
from edge.gate.console.sessions import COOKIE, ActorDep, SessionRefused, session_volunteer
from edge.gate.console.stream import EventStreamResponse
from edge.gate.views import ConsoleUpdate

router = APIRouter(prefix="/api", tags=["state"])


@router.get("/state", response_model=ConsoleUpdate, responses=SESSION_RESPONSES)
def state(checkpoint: CheckpointDep, volunteer: ActorDep) -> ConsoleUpdate:
    """The latest decision, the open holds and the node's health, now."""
    return checkpoint.update()


@router.get(
    "/events",
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": "Server-sent events: `data:` is a ConsoleUpdate as JSON, sent on "
            "connect and after every change; `: keep-alive` comments about every 15 s. The "
            "stream ends when the volunteer's session does.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **SESSION_RESPONSES,
        429: {"description": "This client, or all together, have as many streams open as allowed"},
    },
)
def events(context: ContextDep, request: Request, volunteer: ActorDep) -> EventStreamResponse:
    """Live updates for the page's EventSource, which reconnects by itself."""
    token = request.cookies.get(COOKIE)

    def still_allowed() -> bool:
        try:
            session_volunteer(context.sessions, context.checkpoint, token, use=False)
        except SessionRefused:
            return False
        return True

    return context.stream.response(request.client.host if request.client else "", still_allowed)
