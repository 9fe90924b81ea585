"""Wrong tokens are throttled per client address; the table of addresses stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from edge.web.failed_logins import FailedLogins
from gateway.access import hash_token
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import HttpSection

TOKEN = "gpt_duty-desk"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer gpt_guess"}
LIMIT = 3
WINDOW = timedelta(seconds=60)
START = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(gateway_context: GatewayContext, clock: Clock) -> FastAPI:
    """The app with a command token, blocking an address after LIMIT wrong tokens a minute."""
    store = gateway_context.store
    store.add_token(hash_token(TOKEN), "duty-desk", "command", START)
    http = HttpSection(auth_failures_max=LIMIT, auth_failure_window_s=WINDOW.total_seconds())
    context = GatewayContext(
        config=gateway_context.config.model_copy(update={"http": http}), store=store,
        alarms=gateway_context.alarms, live=gateway_context.live, clock=clock,
    )  # fmt: skip
    return create_app(context)


def client_at(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 50000))


def test_defaults() -> None:
    assert (HttpSection().auth_failures_max, HttpSection().auth_failure_window_s) == (10, 60)


def test_wrong_tokens__block_their_address_until_the_window_passes(
    app: FastAPI, clock: Clock
) -> None:
    guesser, desk = client_at(app, "10.0.0.7"), client_at(app, "10.0.0.8")
    for _ in range(LIMIT):
        assert guesser.get("/api/nodes", headers=WRONG).status_code == 401
    for headers, params in ((WRONG, {}), (GOOD, {}), ({}, {"access_token": TOKEN})):
        refused = guesser.get("/api/nodes", headers=headers, params=params)
        assert refused.status_code == 429
        assert refused.json()["reason"] == "too-many-failed-logins"
        assert "10.0.0.7" in refused.json()["detail"]
        assert refused.headers["Retry-After"] == "60"
    # The stream's query token is refused too, and a live token from elsewhere is not.
    streamed = guesser.get("/api/stream", params={"access_token": TOKEN})
    assert streamed.json()["reason"] == "too-many-failed-logins"
    assert desk.get("/api/nodes", headers=GOOD).status_code == 200
    assert guesser.get("/metrics").status_code == 200  # needs no token, so no block

    clock.now += WINDOW - timedelta(seconds=1)
    assert guesser.get("/api/nodes", headers=GOOD).headers["Retry-After"] == "1"
    clock.now += timedelta(seconds=1)
    assert guesser.get("/api/nodes", headers=GOOD).status_code == 200


def test_wrong_tokens__spread_over_more_than_the_window_do_not_block(
    app: FastAPI, clock: Clock
) -> None:
    guesser = client_at(app, "10.0.0.7")
    for _ in range(3 * LIMIT):
        assert guesser.get("/api/nodes", headers=WRONG).status_code == 401
        clock.now += WINDOW / (LIMIT - 1)
    for _ in range(LIMIT):
        guesser.get("/api/nodes", headers=WRONG)
    assert guesser.get("/api/nodes", headers=WRONG).status_code == 429


def test_wrong_tokens__a_success_resets_nothing(app: FastAPI) -> None:
    # A holder of one token must not interleave it with guesses at another.
    guesser = client_at(app, "10.0.0.7")
    for _ in range(LIMIT - 1):
        assert guesser.get("/api/nodes", headers=WRONG).status_code == 401
        assert guesser.get("/api/nodes", headers=GOOD).status_code == 200
    assert guesser.get("/api/nodes", headers=WRONG).status_code == 401
    assert guesser.get("/api/nodes", headers=GOOD).status_code == 429


def test_missing_tokens__are_not_counted(app: FastAPI) -> None:
    page = client_at(app, "10.0.0.7")
    for _ in range(2 * LIMIT):
        assert page.get("/api/nodes").json()["reason"] == "token-missing"
    assert page.get("/api/nodes", headers=GOOD).status_code == 200
    for _ in range(LIMIT):
        page.get("/api/nodes", headers=WRONG)
    assert page.get("/api/nodes").status_code == 429


def test_failed_logins__keeps_at_most_its_bound_dropping_the_stalest() -> None:
    now = START
    table = FailedLogins(2, WINDOW, lambda: now, kept=3)
    for address in ("a", "a", "b", "c"):
        table.failed(address)
    assert table.blocked_for("a") is not None
    table.failed("d")  # "a" failed last longest ago: it goes
    assert len(table) == 3
    assert table.blocked_for("a") is None
    now += WINDOW
    assert table.blocked_for("b") is None
    assert len(table) == 2  # an address whose failures all expired is forgotten
