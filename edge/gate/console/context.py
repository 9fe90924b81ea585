"""What every console route needs from the app: the checkpoint, the page language, the stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from edge.gate.console.sessions import VolunteerSessions
from edge.gate.console.stream import UpdateStream
from edge.gate.views import Checkpoint

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")


@dataclass(frozen=True)
class ConsoleContext:
    """Held in `app.state.console`; routes reach it through the dependencies below."""

    checkpoint: Checkpoint
    language: Language
    stream: UpdateStream
    sessions: VolunteerSessions
    page: str = ""


# Async on purpose: trivial lookups need no hop through the thread pool.
async def console_context(request: Request) -> ConsoleContext:
    """The context create_app stored on the app."""
    context: ConsoleContext = request.app.state.console
    return context


async def checkpoint(request: Request) -> Checkpoint:
    """The checkpoint this console talks to."""
    context: ConsoleContext = request.app.state.console
    return context.checkpoint


ContextDep = Annotated[ConsoleContext, Depends(console_context)]
CheckpointDep = Annotated[Checkpoint, Depends(checkpoint)]
