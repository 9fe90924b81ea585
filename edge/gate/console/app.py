"""The console's app factory: one router per resource over a Checkpoint."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from edge.gate.console import (
    errors,
    routes_disinfections,
    routes_holds,
    routes_page,
    routes_reasons,
    routes_registrations,
    routes_shifts,
    routes_state,
    routes_vehicles,
)
from edge.gate.console.context import LANGUAGES, ConsoleContext, Language
from edge.gate.console.sessions import VolunteerSessions
from edge.gate.console.stream import UpdateStream, attach_stream
from edge.gate.views import Checkpoint
from edge.web.security import SecurityHeaders, StreamLimits


def create_app(
    checkpoint: Checkpoint,
    *,
    language: Language = "zh",
    keepalive_s: float = 15.0,
    words_file: Path | None = None,
    stream_limits: StreamLimits | None = None,
    sessions: VolunteerSessions | None = None,
) -> FastAPI:
    """The volunteer console for `checkpoint`.

    Args:
        checkpoint: the gate, as the console sees it.
        language: the page's language until a volunteer picks one on that device.
        words_file: the site's own wording for some of the page's words or reasons
            (words.json's format); a key the console does not have is an error.
        keepalive_s: seconds of silence after which an event stream sends a comment, so
            proxies and phones in power-saving mode keep the connection.
        stream_limits: how many pages may follow the gate live, per address and in all
            (console.streams; the defaults when None).
        sessions: the volunteers signed in, with their idle and longest times
            (console.sessions; the defaults when None).

    Returns:
        The app; serve it with ConsoleServer, which also ends its event streams on stop.
    """
    if language not in LANGUAGES:
        raise ValueError(f"console language must be one of {LANGUAGES}, not {language!r}")
    # Swagger UI and ReDoc load from a CDN, which an offline gate cannot reach; the
    # schema itself stays at /openapi.json.
    app = FastAPI(
        title="Gatepost volunteer console",
        summary="What the gate decided, the holds to resolve, and the volunteer's forms.",
        docs_url=None,
        redoc_url=None,
    )
    stream = UpdateStream(checkpoint, keepalive_s=keepalive_s, limits=stream_limits)
    app.state.console = ConsoleContext(
        checkpoint=checkpoint,
        language=language,
        stream=attach_stream(app, stream),
        sessions=sessions or VolunteerSessions(),
        page=routes_page.render_page(language, words_file),
    )
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    for module in (
        routes_page,
        routes_state,
        routes_holds,
        routes_registrations,
        routes_vehicles,
        routes_shifts,
        routes_disinfections,
        routes_reasons,
    ):
        app.include_router(module.router)
    return app
