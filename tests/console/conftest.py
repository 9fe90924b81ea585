"""Console test fixtures: a recording checkpoint and a TestClient on a console over it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from edge.gate.console.app import create_app
from tests.console.double import RecordingCheckpoint

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
