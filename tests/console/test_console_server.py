"""ConsoleServer: uvicorn in a thread that comes up on a free port and stops quickly."""

from __future__ import annotations

import time
from contextlib import ExitStack
from itertools import islice

import httpx
import pytest

from edge.gate.console.app import create_app
from edge.gate.console.server import ConsoleServer
from tests.console.double import RecordingCheckpoint
from tests.console.pages import session_cookie
from tests.console.sse import EventReader, frames


def test_port_0_picks_a_free_port_and_serves() -> None:
    with ConsoleServer(create_app(RecordingCheckpoint()), port=0) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        signed_in = {"Cookie": session_cookie(server.url)}
        response = httpx.get(f"{server.url}/api/state", headers=signed_in, timeout=5)
        assert response.status_code == 200
        assert response.json()["node"]["node"] == "gate-01"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/reasons", timeout=2)


def test_stop_ends_open_event_streams_quickly() -> None:
    checkpoint = RecordingCheckpoint()
    server = ConsoleServer(create_app(checkpoint), port=0)
    server.start()
    with (
        httpx.Client(timeout=5, headers={"Cookie": session_cookie(server.url)}) as client,
        ExitStack() as open_streams,
    ):
        readers = [
            EventReader(
                open_streams.enter_context(
                    client.stream("GET", f"{server.url}/api/events")
                ).iter_lines()
            )
            for _ in range(2)
        ]
        for reader in readers:
            reader.next_update()
        started = time.monotonic()
        server.stop()
        took = time.monotonic() - started
        for reader in readers:
            assert reader.ended.wait(2), "stream still open after stop()"
            assert reader.error is None, "the stream broke instead of ending"
    # Well under uvicorn's grace period (3 s): the streams ended themselves.
    assert took < 2.0, f"stop() took {took:.1f} s"
    assert not server.running


def test_a_console_that_goes_away_ends_its_stream() -> None:
    app = create_app(RecordingCheckpoint())
    stream = app.state.console.stream
    with ConsoleServer(app, port=0) as server:
        with (
            httpx.Client(timeout=5, headers={"Cookie": session_cookie(server.url)}) as client,
            client.stream("GET", f"{server.url}/api/events") as response,
        ):
            # Read on this thread: a socket closed while another thread waits in recv()
            # stays open, and the server would rightly keep streaming.
            assert any(frame.data for frame in islice(frames(response.iter_lines()), 2))
            assert stream.open_streams == 1
        deadline = time.monotonic() + 3
        while stream.open_streams and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.open_streams == 0, "the server still streams to a closed connection"
        assert server.running


def test_a_busy_port_is_an_error_in_the_caller() -> None:
    with ConsoleServer(create_app(RecordingCheckpoint()), port=0) as first:
        second = ConsoleServer(create_app(RecordingCheckpoint()), port=first.port)
        with pytest.raises(OSError, match="in use"):
            second.start()
        assert not second.running


def test_restart_after_stop() -> None:
    server = ConsoleServer(create_app(RecordingCheckpoint()), port=0)
    server.start()
    server.stop()
    server.start()
    try:
        with (
            httpx.Client(timeout=5, headers={"Cookie": session_cookie(server.url)}) as client,
            client.stream("GET", f"{server.url}/api/events") as r,
        ):
            assert len(EventReader(r.iter_lines()).next_update().holds) == 1
    finally:
        server.stop()
