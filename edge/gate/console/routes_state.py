"""The gate's state for the page: a snapshot, and a live stream of every change."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from edge.gate.console.context import CheckpointDep, ContextDep
from edge.gate.views import ConsoleUpdate

router = APIRouter(prefix="/api", tags=["state"])


class EventStreamResponse(StreamingResponse):
    """A text/event-stream response (also what OpenAPI lists for the route)."""

    media_type = "text/event-stream"


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
        }
    },
)
async def events(context: ContextDep) -> EventStreamResponse:
    """Live updates for the page's EventSource, which reconnects by itself."""
    return EventStreamResponse(
        context.stream.frames(),
        # Proxies and browsers must neither cache nor buffer a live stream.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
