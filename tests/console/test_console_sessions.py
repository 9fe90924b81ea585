"""Volunteer sessions: who may act at the console, and when that ends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.gate.config import SessionLimits
from edge.gate.console.app import create_app
from edge.gate.console.sessions import COOKIE, VolunteerSessions
from edge.gate.views import Volunteer
from tests.console.conftest import sign_in
from tests.console.double import REGISTRATION, RecordingCheckpoint, node_view

# Every route that acts, or shows people, with a body that would otherwise be accepted.
PROTECTED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/state", None),
    ("GET", "/api/events", None),
    ("GET", "/api/session", None),
    ("POST", "/api/holds/H1/resolve", {"resolution": "referred"}),
    ("POST", "/api/registrations", {"registration": REGISTRATION}),
    (
        "POST",
        "/api/vehicle-checks",
        {"vehicle_plate": "京A12345", "occupant_temperatures_c": [36.5]},
    ),
    ("POST", "/api/disinfections", {"area": "hut"}),
]
IDS = [f"{method} {path}" for method, path, _ in PROTECTED]


def call(client: TestClient, method: str, path: str, body: dict[str, Any] | None) -> Any:
    return client.request(method, path, json=body)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=IDS)
def test_without_a_session__401_and_the_gate_is_untouched(
    anonymous: TestClient,
    checkpoint: RecordingCheckpoint,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    response = call(anonymous, method, path, body)
    assert response.status_code == 401
    assert response.json()["reason"] == "session-required"
    assert "张*丰" not in response.text  # the held person's masked name
    assert checkpoint.calls == []


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=IDS)
def test_a_forged_cookie_is_no_session(
    anonymous: TestClient,
    checkpoint: RecordingCheckpoint,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    anonymous.cookies.set(COOKIE, "V001")
    assert call(anonymous, method, path, body).status_code == 401
    assert checkpoint.calls == []


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED[1:], ids=IDS[1:])
def test_a_volunteer_whose_shift_ended_elsewhere__403_and_the_session_is_over(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    checkpoint.change(node=node_view(volunteers=("V002",)))  # V001 badged out at the gate
    response = call(client, method, path, body)
    assert response.status_code == 403
    assert response.json()["reason"] == "not-on-duty"
    checkpoint.change(node=node_view(volunteers=("V001", "V002")))  # and back on duty
    assert client.get("/api/state").status_code == 401  # that session ended: badge again
    assert checkpoint.calls == []


def test_sign_in__only_for_a_volunteer_on_duty_with_a_badge_that_verifies(
    anonymous: TestClient,
) -> None:
    forged = anonymous.post("/api/session", json={"badge_text": "HC1:FORGED"})
    assert (forged.status_code, forged.json()["reason"]) == (409, "bad-signature")
    off_duty = anonymous.post("/api/session", json={"badge_text": "HC1:BADGE-V002"})
    assert (off_duty.status_code, off_duty.json()["reason"]) == (403, "not-on-duty")
    assert COOKIE not in anonymous.cookies
    signed = anonymous.post("/api/session", json={"badge_text": "HC1:BADGE-V001"})
    assert signed.status_code == 200
    assert signed.json() == {"volunteer_id": "V001", "masked_name": "王*", "role": "volunteer"}
    assert anonymous.get("/api/session").json()["volunteer_id"] == "V001"


def test_the_cookie_is_http_only_same_site_strict_and_not_the_volunteer(
    anonymous: TestClient,
) -> None:
    response = anonymous.post("/api/session", json={"badge_text": "HC1:BADGE-V001"})
    header = response.headers["set-cookie"]
    assert header.startswith(f"{COOKIE}=")
    assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/" in header
    assert "Secure" not in header  # plain HTTP on this machine; over HTTPS it is Secure
    token = anonymous.cookies[COOKIE]
    assert len(token) >= 43 and "V001" not in token


def test_a_shift_start_signs_in_and_its_end_signs_out_every_device() -> None:
    app = create_app(RecordingCheckpoint(node=node_view(volunteers=())))
    with TestClient(app) as kiosk, TestClient(app) as tablet:
        sign_in(kiosk, "HC1:BADGE-V002", start_shift=True)
        sign_in(tablet, "HC1:BADGE-V002")  # on duty now: the tablet signs in too
        body = {"badge_text": "HC1:BADGE-V002", "action": "end"}
        assert kiosk.post("/api/shifts", json=body).status_code == 200
        assert kiosk.get("/api/state").status_code == 401
        assert tablet.get("/api/state").status_code == 401
    app.state.console.stream.close()


def test_signing_out_ends_this_device_only_and_the_shift_goes_on(
    checkpoint: RecordingCheckpoint,
) -> None:
    app = create_app(checkpoint)
    with TestClient(app) as kiosk, TestClient(app) as tablet:
        sign_in(kiosk)
        sign_in(tablet)
        assert kiosk.delete("/api/session").status_code == 204
        assert kiosk.get("/api/state").status_code == 401
        assert tablet.get("/api/state").status_code == 200
        assert "V001" in checkpoint.update().node.volunteers_on_duty
    app.state.console.stream.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


VOLUNTEER = Volunteer(volunteer_id="V001", masked_name="王*")


def test_sessions__end_after_idle_time_but_each_use_keeps_one_open() -> None:
    clock = Clock()
    sessions = VolunteerSessions(SessionLimits(idle_min=30), clock)
    token = sessions.open(VOLUNTEER)
    for _ in range(4):
        clock.now += 29 * 60
        assert sessions.find(token) == VOLUNTEER
    clock.now += 29 * 60
    assert sessions.find(token, use=False) == VOLUNTEER  # a stream's check is no use
    clock.now += 2 * 60
    assert sessions.find(token) is None
    clock.now -= 10 * 60
    assert sessions.find(token) is None  # gone, not just late


def test_sessions__end_after_the_longest_time_however_busy() -> None:
    clock = Clock()
    sessions = VolunteerSessions(SessionLimits(idle_min=30, longest_h=1), clock)
    token = sessions.open(VOLUNTEER)
    for _ in range(2):
        clock.now += 25 * 60
        assert sessions.find(token) == VOLUNTEER
    clock.now += 25 * 60  # used 25 minutes ago, but opened 75 minutes ago
    assert sessions.find(token) is None


def test_sessions__the_most_kept_then_the_least_recently_used_goes() -> None:
    clock = Clock()
    sessions = VolunteerSessions(SessionLimits(most=2), clock)
    first, second = sessions.open(VOLUNTEER), sessions.open(VOLUNTEER)
    clock.now += 1
    assert sessions.find(first) == VOLUNTEER
    sessions.open(VOLUNTEER)
    assert sessions.find(first) == VOLUNTEER
    assert sessions.find(second) is None


def test_sessions__unknown_and_empty_tokens_name_nobody() -> None:
    sessions = VolunteerSessions()
    sessions.open(VOLUNTEER)
    assert sessions.find(None) is None
    assert sessions.find("") is None
    assert sessions.find("not-a-token") is None
