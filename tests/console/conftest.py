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


@pytest.fixture
def client(checkpoint: RecordingCheckpoint) -> Iterator[TestClient]:
    app = create_app(checkpoint, keepalive_s=0.3)
    with TestClient(app) as test_client:
        yield test_client
    app.state.console.stream.close()


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
