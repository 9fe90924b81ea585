"""The gateway's HTTP hardening, served as the gateway serves it: Host names, headers, streams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from itertools import islice

import httpx
import pytest

from edge.gate.console.server import ConsoleServer
from edge.web.security import DEFAULT_POLICY, StreamLimits
from gateway.access import hash_token
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.api.routes_dashboard import dashboard_stream
from gateway.config import HttpSection
from tests.console.sse import EventReader, Frame, frames
from tests.console.test_console_security import assert_hardened

TOKEN = "gpt_wall-screen"
OTHER = "gpt_duty-desk"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def context(gateway_context: GatewayContext) -> GatewayContext:
    """The conftest context with a command token, and two streams per client, three in all."""
    store = gateway_context.store
    store.add_token(hash_token(TOKEN), "wall-screen", "command", datetime.now(UTC))
    store.add_token(hash_token(OTHER), "duty-desk", "command", datetime.now(UTC))
    http = HttpSection(streams=StreamLimits(per_client=2, total=3))
    config = gateway_context.config.model_copy(update={"http": http})
    return GatewayContext(
        config=config, store=store, alarms=gateway_context.alarms, live=gateway_context.live
    )


@pytest.fixture
def server(context: GatewayContext) -> Iterator[ConsoleServer]:
    with ConsoleServer(create_app(context), port=0, allowed_hosts=("command.lan",)) as running:
        yield running


def test_the_gateway_allows_loopback_names_by_default() -> None:
    assert HttpSection().host == "127.0.0.1"
    assert HttpSection().allowed_hosts == ()


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "command.lan:{port}"])
def test_host__valid(server: ConsoleServer, host: str) -> None:
    response = httpx.get(
        f"{server.url}/metrics", headers={"Host": host.format(port=server.port)}, timeout=5
    )
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "command.lan:1", "gateway"])
def test_host__invalid(server: ConsoleServer, host: str) -> None:
    response = httpx.get(
        f"{server.url}/api/dashboard",
        headers={**AUTH, "Host": host.format(port=server.port)},
        timeout=5,
    )
    assert response.status_code == 421
    assert response.json()["reason"] == "host-not-allowed"
    assert "does not answer for host" in response.json()["detail"]
    assert_hardened(response)


def test_the_dashboard_page_allows_its_own_blocks_only(server: ConsoleServer) -> None:
    response = httpx.get(server.url, timeout=5)
    assert response.status_code == 200
    policy = assert_hardened(response)
    assert "script-src 'sha256-" in policy
    assert "connect-src 'self'" in policy


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/api/dashboard", AUTH, 200),
        ("/metrics", {}, 200),
        ("/api/dashboard", {}, 401),
        ("/api/no-such-thing", AUTH, 404),
    ],
)
def test_every_response_carries_the_security_headers(
    server: ConsoleServer, path: str, headers: dict[str, str], status: int
) -> None:
    response = httpx.get(f"{server.url}{path}", headers=headers, timeout=5)
    assert response.status_code == status
    assert assert_hardened(response) == DEFAULT_POLICY


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from `address` (any of 127.0.0.0/8 is this machine)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=5)


def open_stream(client: httpx.Client, url: str, streams: ExitStack) -> httpx.Response:
    """A dashboard stream opened and its first snapshot read on this thread."""
    response = streams.enter_context(client.stream("GET", f"{url}/api/stream", headers=AUTH))
    if response.status_code == 200:
        reader = frames(response.iter_lines())
        streams.callback(lambda: reader)  # kept: a reader dropped early closes its connection
        assert any(frame.data for frame in islice(reader, 2))
    else:
        response.read()
    return response


def test_dashboard_streams__limited_per_client_and_in_all_and_freed_on_close(
    context: GatewayContext,
) -> None:
    app = create_app(context)
    with (
        ConsoleServer(app, port=0) as server,
        from_address("127.0.0.2") as one,
        from_address("127.0.0.3") as two,
        ExitStack() as streams,
    ):
        assert open_stream(one, server.url, streams).status_code == 200
        with ExitStack() as second:
            assert open_stream(one, server.url, second).status_code == 200
            too_many = open_stream(one, server.url, second)
            assert too_many.status_code == 429
            assert too_many.json()["reason"] == "too-many-streams"
            assert "127.0.0.2 has 2 event streams open" in too_many.json()["detail"]
            assert_hardened(too_many)
            assert open_stream(two, server.url, second).status_code == 200
            full = open_stream(two, server.url, second)
            assert full.status_code == 429
            assert "3 event streams are open" in full.json()["detail"]
        stream = dashboard_stream(app)
        deadline = time.monotonic() + 5
        while stream.open_streams > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stream.open_streams == 1
        assert open_stream(two, server.url, streams).status_code == 200


def test_dashboard_stream__ends_when_its_token_is_revoked(
    context: GatewayContext, server: ConsoleServer
) -> None:
    url = f"{server.url}/api/stream"
    with (
        httpx.stream("GET", url, params={"access_token": TOKEN}, timeout=10) as response,
        httpx.stream("GET", url, params={"access_token": OTHER}, timeout=10) as other,
    ):
        assert (response.status_code, other.status_code) == (200, 200)
        reader, stays = EventReader(response.iter_lines()), EventReader(other.iter_lines())
        time.sleep(0.5)  # both past their first snapshot
        assert not reader.ended.is_set()
        assert context.store.revoke_token("wall-screen", datetime.now(UTC))  # as the CLI does
        assert reader.ended.wait(5), "the stream ran on after its token was revoked"
        assert not stays.ended.is_set()  # another token's stream runs on
    sent = drained(reader)
    assert any(frame.data for frame in sent)  # it had been sending snapshots
    assert sent[-1].comments == ["access ended"]  # and ended by the server, saying why


def drained(reader: EventReader) -> list[Frame]:
    """Every frame an ended stream sent."""
    sent = []
    while True:
        try:
            sent.append(reader.next(0.1))
        except AssertionError:
            return sent
