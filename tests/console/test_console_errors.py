"""Every console action: a refusal is a 409 with its reason code, garbage is a 422, never 500;
an actor the checkpoint finds off duty is a 403."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.gate.views import Refusal
from tests.console.double import REGISTRATION, RecordingCheckpoint

ACTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("resolve_hold", "/api/holds/H1/resolve", {"resolution": "referred"}),
    ("register", "/api/registrations", {"registration": REGISTRATION}),
    (
        "check_vehicle",
        "/api/vehicle-checks",
        {"vehicle_plate": "京A12345", "occupant_temperatures_c": [36.5]},
    ),
    ("change_shift", "/api/shifts", {"badge_text": "HC1:BADGE-V001", "action": "end"}),
    ("log_disinfection", "/api/disinfections", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_refusal_is_409_with_the_reason_code(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    checkpoint.refuse_next(method, Refusal("unknown-hold", "no open hold H1"))
    response = client.post(path, json=body)
    assert response.status_code == 409
    assert response.json() == {"reason": "unknown-hold", "detail": "no open hold H1"}
    assert [call.method for call in checkpoint.calls] == [method]


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS[:-2] + ACTIONS[-1:])
def test_an_actor_the_checkpoint_finds_off_duty_is_403(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    checkpoint.refuse_next(method, Refusal("not-on-duty", "V001 is not on duty at this gate"))
    response = client.post(path, json=body)
    assert response.status_code == 403
    assert response.json()["reason"] == "not-on-duty"


GARBAGE: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"{not json", "application/json"),
    (b"[]", "application/json"),
    (b"null", "application/json"),
    (b'"text"', "application/json"),
    (b"\xff\xfe", "application/json"),
    (b"name=x", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("path"), [a[1] for a in ACTIONS], ids=[a[0] for a in ACTIONS])
@pytest.mark.parametrize(("content", "content_type"), GARBAGE)
def test_garbage_body_is_422_never_500(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    path: str,
    content: bytes,
    content_type: str,
) -> None:
    response = client.post(path, content=content, headers={"content-type": content_type})
    assert response.status_code == 422, response.text
    assert all(item["en"] and item["zh"] for item in response.json()["detail"])
    assert checkpoint.calls == []


# A disinfection round has defaults for everything: {} is the hut, logged.
@pytest.mark.parametrize(("path"), [a[1] for a in ACTIONS[:-1]], ids=[a[0] for a in ACTIONS[:-1]])
def test_an_empty_form_is_422_naming_what_is_missing(
    client: TestClient, checkpoint: RecordingCheckpoint, path: str
) -> None:
    response = client.post(path, json={})
    assert response.status_code == 422, response.text
    assert all(item["en"] and item["zh"] for item in response.json()["detail"])
    assert checkpoint.calls == []
