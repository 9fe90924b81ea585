"""Console test fixtures: a recording checkpoint, a TestClient on a console over it, a server."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from edge.gate.console.app import create_app
from edge.gate.console.context import Language
from edge.gate.console.server import ConsoleServer
from tests.console.double import RecordingCheckpoint
from tests.console.pages import Serve

# Imported here first, before the test modules: Starlette suggests httpx2, which the lock
# does not carry, and warns once on import; httpx works as before.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from fastapi.testclient import TestClient


@pytest.fixture
def checkpoint() -> RecordingCheckpoint:
    return RecordingCheckpoint()


def sign_in(
    client: TestClient, badge_text: str = "HC1:BADGE-V001", *, start_shift: bool = False
) -> TestClient:
    """Sign the badge's holder in on `client`: on duty already, or starting the shift now."""
    if start_shift:
        body = {"badge_text": badge_text, "action": "start"}
        response = client.post("/api/shifts", json=body)
    else:
        response = client.post("/api/session", json={"badge_text": badge_text})
    assert response.status_code == 200, response.text
    assert client.get("/api/session").status_code == 200
    return client


@pytest.fixture
def anonymous(checkpoint: RecordingCheckpoint) -> Iterator[TestClient]:
    """A device on which nobody has signed in."""
    app = create_app(checkpoint, keepalive_s=0.3)
    with TestClient(app) as test_client:
        yield test_client
    app.state.console.stream.close()


@pytest.fixture
def client(anonymous: TestClient) -> TestClient:
    """A device on which volunteer V001 (on duty) has signed in with the badge."""
    return sign_in(anonymous)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a console for a checkpoint on a free port (for a browser to open)."""
    servers: list[ConsoleServer] = []

    def start(checkpoint: RecordingCheckpoint, language: Language = "zh") -> ConsoleServer:
        server = ConsoleServer(create_app(checkpoint, language=language), port=0)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
