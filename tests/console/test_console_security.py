"""The console's HTTP hardening, through the real server: Host names, headers, stream limits."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import islice

import httpx
import pytest

from edge.gate.config import ConsoleSection
from edge.gate.console.app import create_app
from edge.gate.console.server import ConsoleServer
from edge.gate.console.stream import UpdateStream
from edge.web.security import DEFAULT_POLICY, HostAllowList, split_host
from edge.web.security import StreamLimits as Limits
from tests.console.double import RecordingCheckpoint
from tests.console.pages import session_cookie
from tests.console.sse import frames

HARDENING = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def assert_hardened(response: httpx.Response) -> str:
    """The response carries every security header; its policy, returned, forbids framing."""
    for name, value in HARDENING.items():
        assert response.headers.get(name) == value, f"{name} on {response.request.url}"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    return policy


@pytest.fixture
def server() -> Iterator[ConsoleServer]:
    with ConsoleServer(create_app(RecordingCheckpoint()), port=0) as running:
        yield running


# --- where it listens ---------------------------------------------------------------------------


def test_the_console_listens_on_this_machine_only_by_default() -> None:
    assert ConsoleSection().host == "127.0.0.1"
    with ConsoleServer(create_app(RecordingCheckpoint()), port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")


def test_a_console_on_every_address_warns_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, "edge.gate.console.server"),
        ConsoleServer(create_app(RecordingCheckpoint()), host="0.0.0.0", port=0),
    ):
        pass
    assert any("not only on this machine" in r.getMessage() for r in caplog.records)


def test_a_console_on_loopback_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, "edge.gate.console.server"),
        ConsoleServer(create_app(RecordingCheckpoint()), port=0),
    ):
        pass
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- the Host header ----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_host__valid(server: ConsoleServer, host: str) -> None:
    response = httpx.get(
        f"{server.url}/api/reasons", headers={"Host": host.format(port=server.port)}, timeout=5
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",  # a rebinding page: its own name, the console's address
        "evil.example",
        "127.0.0.1:1",  # the right name, another port
        "127.0.0.1.evil.example:{port}",
        "localhost:",
        "",
    ],
)
def test_host__invalid(server: ConsoleServer, host: str) -> None:
    response = httpx.get(
        f"{server.url}/api/reasons", headers={"Host": host.format(port=server.port)}, timeout=5
    )
    assert response.status_code == 421
    assert "does not answer for host" in response.json()["detail"]
    assert "node" not in response.json()
    assert_hardened(response)


def test_an_allowed_name_is_answered_and_others_still_refused() -> None:
    app = create_app(RecordingCheckpoint())
    with ConsoleServer(app, port=0, allowed_hosts=("gate-01.lan",)) as server:
        allowed = httpx.get(
            f"{server.url}/api/reasons", headers={"Host": f"gate-01.lan:{server.port}"}, timeout=5
        )
        other = httpx.get(
            f"{server.url}/api/reasons", headers={"Host": f"gate-02.lan:{server.port}"}, timeout=5
        )
    assert allowed.status_code == 200
    assert other.status_code == 421


@pytest.mark.parametrize(
    ("value", "name", "port"),
    [
        ("localhost:8080", "localhost", 8080),
        ("Gate-01.LAN", "gate-01.lan", None),
        ("[::1]:8080", "::1", 8080),
        ("[::1]", "::1", None),
    ],
)
def test_split_host__valid(value: str, name: str, port: int | None) -> None:
    assert split_host(value) == (name, port)


@pytest.mark.parametrize(
    "value", ["", ":8080", "localhost:", "localhost:80a", "::1", "[::1", "[::1]x"]
)
def test_split_host__invalid(value: str) -> None:
    with pytest.raises(ValueError, match="not a host"):
        split_host(value)


def test_a_wildcard_listening_address_is_no_allowed_name() -> None:
    allow = HostAllowList(create_app(RecordingCheckpoint()), ("0.0.0.0",), 8080)
    assert not allow.allows("0.0.0.0:8080")
    assert allow.allows("[::1]:8080")


# --- security headers ---------------------------------------------------------------------------


def test_the_page_allows_its_own_inline_blocks_by_hash_and_nothing_else(
    server: ConsoleServer,
) -> None:
    response = httpx.get(server.url, timeout=5)
    assert response.status_code == 200
    policy = assert_hardened(response)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"  # fetch and EventSource to the console only
    # One inline script (the catalogue is JSON data, not a script) and one style block.
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]+=*'", directives["script-src"])
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]+=*'", directives["style-src"])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/reasons", 200),
        ("GET", "/api/state", 401),
        ("GET", "/openapi.json", 200),
        ("GET", "/no-such-page", 404),
        ("POST", "/api/registrations", 401),
        ("DELETE", "/api/state", 405),
    ],
)
def test_every_response_carries_the_security_headers(
    server: ConsoleServer, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, f"{server.url}{path}", json={}, timeout=5)
    assert response.status_code == status
    assert assert_hardened(response) == DEFAULT_POLICY


def test_a_failing_route_answers_500_with_the_security_headers() -> None:
    app = create_app(RecordingCheckpoint())

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    with ConsoleServer(app, port=0) as server:
        response = httpx.get(f"{server.url}/boom", timeout=5)
    assert response.status_code == 500
    assert assert_hardened(response) == DEFAULT_POLICY


def test_an_event_stream_carries_the_security_headers(server: ConsoleServer) -> None:
    signed_in = {"Cookie": session_cookie(server.url)}
    with httpx.stream("GET", f"{server.url}/api/events", headers=signed_in, timeout=5) as response:
        assert response.status_code == 200
        assert assert_hardened(response) == DEFAULT_POLICY


# --- event stream limits ------------------------------------------------------------------------


def from_address(address: str, url: str) -> httpx.Client:
    """A client whose connections come from `address` (any of 127.0.0.0/8 is this machine),
    signed in to the console at `url`."""
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=address), timeout=5,
        headers={"Cookie": session_cookie(url)},
    )  # fmt: skip


def open_stream(client: httpx.Client, url: str, streams: ExitStack) -> httpx.Response:
    """A stream opened, its first update read (on this thread: a socket closed while
    another thread waits in recv() stays open, and the server would keep streaming)."""
    response = streams.enter_context(client.stream("GET", f"{url}/api/events"))
    if response.status_code == 200:
        # Kept until `streams` closes: a reader dropped early closes its connection.
        reader = frames(response.iter_lines())
        streams.callback(lambda: reader)
        assert any(frame.data for frame in islice(reader, 2))
    return response


def wait_for_open_streams(stream: UpdateStream, count: int) -> None:
    deadline = time.monotonic() + 5
    while stream.open_streams != count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stream.open_streams == count


def test_streams_per_client__one_more_is_refused_and_a_closed_one_frees_its_slot() -> None:
    app = create_app(RecordingCheckpoint(), stream_limits=Limits(per_client=2, total=10))
    stream = app.state.console.stream
    with ConsoleServer(app, port=0) as server, from_address("127.0.0.1", server.url) as client:
        with ExitStack() as first:
            assert open_stream(client, server.url, first).status_code == 200
            with ExitStack() as second:
                assert open_stream(client, server.url, second).status_code == 200
                refused = open_stream(client, server.url, second)
                assert refused.status_code == 429
                refused.read()
                assert "2 event streams open" in refused.json()["detail"]
                assert_hardened(refused)
            wait_for_open_streams(stream, 1)  # the second one closed: its slot is free
            assert open_stream(client, server.url, first).status_code == 200
        wait_for_open_streams(stream, 0)


def test_streams_in_total__another_client_is_refused_once_all_are_taken() -> None:
    app = create_app(RecordingCheckpoint(), stream_limits=Limits(per_client=2, total=3))
    stream = app.state.console.stream
    with (
        ConsoleServer(app, port=0) as server,
        from_address("127.0.0.2", server.url) as one,
        from_address("127.0.0.3", server.url) as two,
        from_address("127.0.0.4", server.url) as three,
        ExitStack() as streams,
    ):
        for client in (one, one, two):
            assert open_stream(client, server.url, streams).status_code == 200
        with ExitStack() as last:
            refused = open_stream(three, server.url, last)
            assert refused.status_code == 429
            refused.read()
            assert "3 event streams are open" in refused.json()["detail"]
        # The page's snapshot is no stream: it is answered while every slot is taken.
        assert three.get(f"{server.url}/api/state").status_code == 200
        streams.close()
        wait_for_open_streams(stream, 0)
        with ExitStack() as again:
            assert open_stream(three, server.url, again).status_code == 200
