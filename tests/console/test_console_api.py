"""The console's JSON API against a recording Checkpoint: what reaches the gate, what comes back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.contract.events import HoldResolved
from edge.gate.console.app import create_app
from edge.gate.reasons import REASON_TEXT
from edge.gate.views import (
    DisinfectionRound,
    HoldResolution,
    Registration,
    VehicleCheck,
)
from simulators.site import SiteKit
from tests.console.conftest import sign_in
from tests.console.double import ID_NUMBER, REGISTRATION, Call, RecordingCheckpoint, open_hold
from tests.console.sse import EventReader
from tests.gate.test_checkpoint import Clock, Gate, start_gate


def problems(response: Any) -> dict[str, str]:
    """field path -> English sentence, from a 422."""
    assert response.status_code == 422, response.text
    return {item["field"]: item["en"] for item in response.json()["detail"]}


# --- state and reasons ------------------------------------------------------------------


def test_state__valid(client: TestClient, checkpoint: RecordingCheckpoint) -> None:
    response = client.get("/api/state")
    assert response.status_code == 200
    assert response.json() == checkpoint.update().model_dump(mode="json")
    assert response.json()["holds"][0]["masked_name"] == "张*丰"


def test_reasons__every_code_in_both_languages(client: TestClient) -> None:
    table = client.get("/api/reasons").json()
    assert table["fever"] == {
        "zh": "体温异常：留观或劝返",
        "en": "Fever: observation room or turn back",
    }
    assert table["bad-signature"]["en"] == "Bad signature: forged code"
    assert set(table) == {str(code) for code in REASON_TEXT}


# --- holds --------------------------------------------------------------------------------

RESOLUTIONS: list[dict[str, Any]] = [
    {"resolution": "released", "temperature_c": 36.8},
    {"resolution": "registered", "registration": REGISTRATION},
    {"resolution": "referred"},
    {"resolution": "turned-back", "note": "回家隔离"},
]
# A reason each resolution fits: registering stands in for a missing or yellow code.
FITTING = {"registered": ("yellow-code",)}


@pytest.mark.parametrize("body", RESOLUTIONS, ids=[b["resolution"] for b in RESOLUTIONS])
def test_resolve_hold__valid(
    client: TestClient, checkpoint: RecordingCheckpoint, body: dict[str, Any]
) -> None:
    reasons = FITTING.get(body["resolution"], ("fever",))
    checkpoint.change(holds=(open_hold("H1", reasons=reasons),))
    response = client.post("/api/holds/H1/resolve", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["holds"] == []  # the state after the action
    resolution = HoldResolution.model_validate(body)
    assert checkpoint.calls == [Call("resolve_hold", ("H1", resolution, "V001"))]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"resolution": "ignored"}, "resolution", "Action: must be one of"),
        # Who acts is the session's volunteer: a body naming one is refused, not believed.
        (
            {"resolution": "referred", "volunteer_id": "V002"},
            "volunteer_id",
            "not a field of this form",
        ),
        (
            {"resolution": "released", "temperature_c": 60},
            "temperature_c",
            "Re-measured temperature: must be at most 45.0 °C",
        ),
        (
            {"resolution": "released", "temperature_c": "warm"},
            "temperature_c",
            "must be a number",
        ),
        ({"resolution": "registered"}, "registration", "required"),
        (
            {
                "resolution": "registered",
                "registration": {**REGISTRATION, "id_number": "X1"},
            },
            "registration.id_number",
            "ID number: 6 to 18 letters or digits",
        ),
    ],
)
def test_resolve_hold__invalid(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    body: dict[str, Any],
    field: str,
    words: str,
) -> None:
    found = problems(client.post("/api/holds/H1/resolve", json=body))
    assert words in found[field]
    assert checkpoint.calls == []


@pytest.mark.parametrize(
    ("reasons", "body", "reason"),
    [
        (("bad-signature",), RESOLUTIONS[0], "code-refused"),  # a forged code never passes
        (("revoked",), RESOLUTIONS[1], "code-refused"),
        (("yellow-code",), RESOLUTIONS[0], "action-not-offered"),  # no re-measure for yellow
        (("expired",), RESOLUTIONS[0], "action-not-offered"),
        (("fever",), RESOLUTIONS[1], "action-not-offered"),  # a fever is not registered away
        (("yellow-code", "fever"), RESOLUTIONS[1], "action-not-offered"),
    ],
    ids=[
        "forged-released",
        "revoked-registered",
        "yellow-released",
        "expired-released",
        "fever-registered",
        "yellow-fever-registered",
    ],
)
def test_resolve_hold__not_offered_is_409(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    reasons: tuple[str, ...],
    body: dict[str, Any],
    reason: str,
) -> None:
    checkpoint.change(holds=(open_hold("H1", reasons=reasons),))
    response = client.post("/api/holds/H1/resolve", json=body)
    assert response.status_code == 409
    assert response.json()["reason"] == reason
    assert [hold.hold_id for hold in checkpoint.update().holds] == ["H1"]  # still open


def test_resolve_hold__unknown_hold_is_409(client: TestClient) -> None:
    # 409, not 404: usually another console resolved it a moment ago (see routes_holds).
    response = client.post("/api/holds/H9/resolve", json={"resolution": "referred"})
    assert response.status_code == 409
    assert response.json() == {"reason": "unknown-hold", "detail": "no open hold H9"}


def test_resolve_hold__bad_hold_id_is_422(client: TestClient) -> None:
    response = client.post("/api/holds/H%201/resolve", json={"resolution": "referred"})
    assert "hold_id" in problems(response)


# --- holds on the real checkpoint: what a volunteer's page gets, and the barrier ----------


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    clock = Clock(datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0))
    running = start_gate(tmp_path, SiteKit(tmp_path / "site"), clock)
    yield running
    running.io.close()


@pytest.fixture
def gate_client(gate: Gate) -> Iterator[TestClient]:
    app = create_app(gate.checkpoint, keepalive_s=0.3)
    badge = gate.kit.code("badge", volunteer="V001", now=gate.clock.wall)
    with TestClient(app) as test_client:
        yield sign_in(test_client, badge, start_shift=True)
    app.state.console.stream.close()


def held(gate: Gate, kind: str = "green", body_c: float | None = 38.9) -> str:
    """A person held at the gate (a fever, or a refused code); the hold's id."""
    if body_c is not None:
        gate.temperature(body_c)
    gate.scan(gate.kit.code(kind, now=gate.clock.wall))  # type: ignore[arg-type]
    gate.clock.advance(10)
    gate.checkpoint.tick()
    (hold,) = gate.checkpoint.update().holds
    return hold.hold_id


def vehicle_held(client: TestClient) -> str:
    check = {"vehicle_plate": "京A12345", "occupant_temperatures_c": [38.9]}
    response = client.post("/api/vehicle-checks", json=check)
    assert response.json()["reasons"] == ["vehicle-fever"]
    (hold,) = client.get("/api/state").json()["holds"]
    return str(hold["hold_id"])


def release(client: TestClient, hold_id: str, temperature_c: float | None = None) -> Any:
    body: dict[str, Any] = {"resolution": "released"}
    if temperature_c is not None:
        body["temperature_c"] = temperature_c
    return client.post(f"/api/holds/{hold_id}/resolve", json=body)


def assert_refused(gate: Gate, response: Any, reason: str, hold_id: str) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["reason"] == reason
    assert gate.relay_history() == [False]  # the barrier never opened
    assert hold_id in [hold.hold_id for hold in gate.checkpoint.update().holds]


@pytest.mark.parametrize("subject", ["person", "vehicle"])
def test_release__a_typed_temperature_is_refused_while_the_thermometer_works(
    gate: Gate, gate_client: TestClient, subject: str
) -> None:
    hold_id = held(gate) if subject == "person" else vehicle_held(gate_client)
    assert_refused(gate, release(gate_client, hold_id, 36.5), "sensor-reading-required", hold_id)
    words = gate_client.get("/api/reasons").json()["sensor-reading-required"]
    assert "测温仪" in words["zh"] and "Thermometer works" in words["en"]


@pytest.mark.parametrize("subject", ["person", "vehicle"])
def test_release__needs_a_new_reading_below_the_line(
    gate: Gate, gate_client: TestClient, subject: str
) -> None:
    hold_id = held(gate) if subject == "person" else vehicle_held(gate_client)
    assert_refused(gate, release(gate_client, hold_id), "measure-temperature", hold_id)
    gate.clock.advance(1)
    gate.temperature(38.2)
    assert_refused(gate, release(gate_client, hold_id), "fever", hold_id)
    gate.clock.advance(1)
    gate.temperature(36.6)
    response = release(gate_client, hold_id)
    assert response.status_code == 200, response.text
    assert response.json()["holds"] == []
    assert True in gate.relay_history()
    (resolved,) = [e for e in gate.events() if isinstance(e, HoldResolved)]
    assert (resolved.temperature_c, resolved.temperature_source) == (36.6, "sensor")


@pytest.mark.parametrize("subject", ["person", "vehicle"])
def test_release__a_typed_temperature_while_the_thermometer_is_faulty_is_marked_manual(
    gate: Gate, gate_client: TestClient, subject: str
) -> None:
    hold_id = held(gate) if subject == "person" else vehicle_held(gate_client)
    gate.devices["thermometer"] = "fault"
    assert_refused(gate, release(gate_client, hold_id, 37.6), "fever", hold_id)
    assert release(gate_client, hold_id, 36.5).status_code == 200
    (resolved,) = [e for e in gate.events() if isinstance(e, HoldResolved)]
    assert (resolved.temperature_c, resolved.temperature_source) == (36.5, "manual")


@pytest.mark.parametrize("body_c", [None, 36.5])
def test_release__a_forged_code_is_only_turned_back(
    gate: Gate, gate_client: TestClient, body_c: float | None
) -> None:
    hold_id = held(gate, "forged", body_c)
    assert_refused(gate, release(gate_client, hold_id), "code-refused", hold_id)
    registered = {"resolution": "registered", "registration": REGISTRATION}
    response = gate_client.post(f"/api/holds/{hold_id}/resolve", json=registered)
    assert_refused(gate, response, "code-refused", hold_id)
    words = gate_client.get("/api/reasons").json()["code-refused"]
    assert "劝返" in words["zh"] and "turn back" in words["en"]
    back = {"resolution": "turned-back"}
    assert gate_client.post(f"/api/holds/{hold_id}/resolve", json=back).status_code == 200
    assert gate.relay_history() == [False]


def test_release__a_supervisor_overrides_a_forged_code_where_the_site_allows_it(
    tmp_path: Path,
) -> None:
    clock = Clock(datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0))
    gate = start_gate(tmp_path, SiteKit(tmp_path / "site"), clock, supervisor_override=True)
    app = create_app(gate.checkpoint)
    badge = gate.kit.code("badge", volunteer="V001", now=clock.wall)
    boss = gate.kit.code("badge", volunteer="S001", role="supervisor", now=clock.wall)
    with TestClient(app) as volunteer, TestClient(app) as supervisor:
        sign_in(volunteer, badge, start_shift=True)
        sign_in(supervisor, boss, start_shift=True)
        hold_id = held(gate, "forged", 36.5)
        override = {"resolution": "released", "override": True}
        refused = volunteer.post(f"/api/holds/{hold_id}/resolve", json=override)
        assert (refused.status_code, refused.json()["reason"]) == (403, "supervisor-required")
        assert gate.relay_history() == [False]
        response = supervisor.post(f"/api/holds/{hold_id}/resolve", json=override)
        assert response.status_code == 200, response.text
    app.state.console.stream.close()
    (resolved,) = [e for e in gate.events() if isinstance(e, HoldResolved)]
    assert (resolved.override, resolved.volunteer_id) == (True, "S001")
    assert True in gate.relay_history()
    gate.io.close()


# --- registrations --------------------------------------------------------------------------


def test_registration__valid(client: TestClient, checkpoint: RecordingCheckpoint) -> None:
    response = client.post("/api/registrations", json={"registration": REGISTRATION})
    assert response.status_code == 201, response.text
    assert len(response.json()["event_id"]) == 26
    assert checkpoint.calls == [Call("register", (Registration(**REGISTRATION), "V001"))]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"id_number": "AB12C"}, "registration.id_number", "ID number: 6 to 18 letters or digits"),
        ({"phone": "call me"}, "registration.phone", "Phone: 5 to 15 digits"),
        ({"name": ""}, "registration.name", "Name: must not be empty"),
        ({"vehicle_plate": "jing a"}, "registration.vehicle_plate", "Vehicle plate: 2 to 12"),
        ({"nickname": "Zhang"}, "registration.nickname", "not a field of this form"),
    ],
)
def test_registration__invalid(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    changes: dict[str, str],
    field: str,
    words: str,
) -> None:
    body = {"registration": {**REGISTRATION, **changes}}
    response = client.post("/api/registrations", json=body)
    assert words in problems(response)[field]
    # What was typed is not echoed back: an ID number stays on the volunteer's screen only.
    assert ID_NUMBER not in response.text and "AB12C" not in response.text
    assert checkpoint.calls == []


def test_registration__by_the_signed_in_volunteer_not_the_one_in_the_body(
    client: TestClient, checkpoint: RecordingCheckpoint
) -> None:
    body = {"volunteer_id": "V002", "registration": REGISTRATION}
    assert "volunteer_id" in problems(client.post("/api/registrations", json=body))
    response = client.post("/api/registrations", json={"registration": REGISTRATION})
    assert response.status_code == 201
    (call,) = checkpoint.calls_to("register")
    assert call.args[1] == "V001"


# --- vehicles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("temperatures", "outcome", "reasons"),
    [([36.5, 36.9], "allow", []), ([36.5, 38.1], "hold", ["vehicle-fever"])],
)
def test_vehicle_check__valid(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    temperatures: list[float],
    outcome: str,
    reasons: list[str],
) -> None:
    body = {
        "vehicle_plate": "京A12345",
        "occupant_temperatures_c": temperatures,
    }
    response = client.post("/api/vehicle-checks", json=body)
    assert response.status_code == 200, response.text
    assert (response.json()["outcome"], response.json()["reasons"]) == (outcome, reasons)
    assert checkpoint.calls == [Call("check_vehicle", (VehicleCheck.model_validate(body), "V001"))]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"occupant_temperatures_c": []}, "occupant_temperatures_c", "add at least one occupant"),
        (
            {"occupant_temperatures_c": [36.5, 50]},
            "occupant_temperatures_c.1",
            "Occupant 2 temperature: must be at most 45.0 °C",
        ),
        ({"occupant_temperatures_c": [None]}, "occupant_temperatures_c.0", "must be a number"),
        ({"vehicle_plate": "jing a"}, "vehicle_plate", "capital letters"),
        ({"direction": "sideways"}, "direction", "must be one of"),
    ],
)
def test_vehicle_check__invalid(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    changes: dict[str, Any],
    field: str,
    words: str,
) -> None:
    body = {"vehicle_plate": "京A12345", "occupant_temperatures_c": [36.5]}
    assert words in problems(client.post("/api/vehicle-checks", json={**body, **changes}))[field]
    assert checkpoint.calls == []


# --- shifts --------------------------------------------------------------------------------------


def test_shift__valid(client: TestClient, checkpoint: RecordingCheckpoint) -> None:
    # A keyboard-wedge scanner ends the text with CR LF; the checkpoint gets the code only.
    response = client.post(
        "/api/shifts", json={"badge_text": "HC1:BADGE-V002\r\n", "action": "start"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["volunteer_id"] == "V002"
    assert checkpoint.calls == [Call("change_shift", ("HC1:BADGE-V002", "start"))]
    assert "V002" in client.get("/api/state").json()["node"]["volunteers_on_duty"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"badge_text": "BADGE-V002", "action": "start"}, "badge_text", "not a badge's QR code"),
        ({"badge_text": "", "action": "start"}, "badge_text", "Badge:"),
        ({"badge_text": "HC1:BADGE-V002", "action": "pause"}, "action", "must be one of"),
    ],
)
def test_shift__invalid(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    body: dict[str, str],
    field: str,
    words: str,
) -> None:
    assert words in problems(client.post("/api/shifts", json=body))[field]
    assert checkpoint.calls == []


# --- disinfections ---------------------------------------------------------------------------------


def test_disinfection__valid(client: TestClient, checkpoint: RecordingCheckpoint) -> None:
    body = {"area": "observation-room", "agent": "84消毒液 1:100"}
    response = client.post("/api/disinfections", json=body)
    assert response.status_code == 201, response.text
    assert checkpoint.calls == [Call("log_disinfection", (DisinfectionRound(**body), "V001"))]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"area": "Hut!"}, "area", "Area: choose one of the areas"),
        ({"area": "hut", "volunteer_id": "V002"}, "volunteer_id", "not a field of this form"),
        ({"agent": ""}, "agent", "Disinfectant: must not be empty"),
    ],
)
def test_disinfection__invalid(
    client: TestClient,
    checkpoint: RecordingCheckpoint,
    body: dict[str, str],
    field: str,
    words: str,
) -> None:
    assert words in problems(client.post("/api/disinfections", json=body))[field]
    assert checkpoint.calls == []


# --- the event stream ---------------------------------------------------------------------------


def test_events__second_update_after_a_change(
    client: TestClient, checkpoint: RecordingCheckpoint
) -> None:
    with client.stream("GET", "/api/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = EventReader(response.iter_lines())
        assert [hold.hold_id for hold in events.next_update().holds] == ["H1"]
        checkpoint.add_hold(open_hold("H2", reasons=("yellow-code",)))
        second = events.next_update()
        assert [hold.hold_id for hold in second.holds] == ["H1", "H2"]
        assert second.decision is not None and second.decision.reasons == ("yellow-code",)


def test_events__an_action_reaches_every_open_console(
    client: TestClient, checkpoint: RecordingCheckpoint
) -> None:
    with client.stream("GET", "/api/events") as response:
        events = EventReader(response.iter_lines())
        assert len(events.next_update().holds) == 1
        client.post("/api/holds/H1/resolve", json={"resolution": "referred"})
        assert events.next_update().holds == ()


def test_events__keep_alive_while_nothing_changes(client: TestClient) -> None:
    with client.stream("GET", "/api/events") as response:
        events = EventReader(response.iter_lines())
        events.next_update()
        assert events.next(timeout_s=3).comments == ["keep-alive"]


# --- the page and the published schema -------------------------------------------------------------


def test_page__both_languages_and_nothing_from_outside(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'data-lang="zh"' in page
    for zh, en in [
        ("转留观室", "Observation room"),
        ("劝返", "Turn back"),
        ("只保存证件号码的加密摘要和后4位", "Only a keyed hash and the last 4 characters are kept"),
        ("离线：记录已保存，恢复后上传", "Offline: records are kept and uploaded later"),
    ]:
        assert zh in page and en in page
    # An offline gate: no CDN, no web fonts, everything in this one response.
    assert "http://" not in page and "https://" not in page


def test_page__language_from_the_factory(checkpoint: RecordingCheckpoint) -> None:
    page = TestClient(create_app(checkpoint, language="en")).get("/").text
    assert 'data-lang="en"' in page


def test_create_app__unknown_language_is_refused(checkpoint: RecordingCheckpoint) -> None:
    with pytest.raises(ValueError, match="fr"):
        create_app(checkpoint, language="fr")  # type: ignore[arg-type]


def test_openapi_lists_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(method, path) for path, item in paths.items() for method in item}
    assert routes == {
        ("get", "/"),
        ("get", "/api/state"),
        ("get", "/api/events"),
        ("post", "/api/holds/{hold_id}/resolve"),
        ("post", "/api/registrations"),
        ("post", "/api/vehicle-checks"),
        ("post", "/api/shifts"),
        ("post", "/api/session"),
        ("get", "/api/session"),
        ("delete", "/api/session"),
        ("post", "/api/disinfections"),
        ("get", "/api/reasons"),
    }
    assert "text/event-stream" in paths["/api/events"]["get"]["responses"]["200"]["content"]
    for path, item in paths.items():
        if "post" in item:
            assert {"409", "422"} <= set(item["post"]["responses"]), path
