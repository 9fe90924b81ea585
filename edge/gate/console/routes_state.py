"""The gate's state for the page: a snapshot, and a live stream of every change."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request

from edge.gate.console.context import CheckpointDep, ContextDep
from edge.gate.console.stream import EventStreamResponse
from edge.gate.views import ConsoleUpdate

router = APIRouter(prefix="/api", tags=["state"])


@router.get("/state", response_model=ConsoleUpdate)
async def state(checkpoint: CheckpointDep) -> ConsoleUpdate:
    """The latest decision, the open holds and the node's health, now."""
    return await to_thread.run_sync(checkpoint.update)


@router.get(
    "/events",
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": "Server-sent events: `data:` is a ConsoleUpdate as JSON, sent on "
            "connect and after every change; `: keep-alive` comments about every 15 s.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        429: {"description": "This client, or all together, have as many streams open as allowed"},
    },
)
async def events(context: ContextDep, request: Request) -> EventStreamResponse:
    """Live updates for the page's EventSource, which reconnects by itself."""
    return context.stream.response(request.client.host if request.client else "")
