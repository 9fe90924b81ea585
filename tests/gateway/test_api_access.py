"""Gateway API access: tokens, roles per endpoint, personal fields and the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from edge.contract.events import HoldResolved
from edge.contract.topics import AlertKind
from gateway.access import hash_token
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.store import SqlStore
from gateway.store.records import AccessRole, AlarmDraft, DeadLetter
from tests.gateway.factory import Gates

TOKENS: dict[AccessRole, str] = {
    "command": "gpt_command-secret",
    "depot": "gpt_depot-secret",
    "registrar": "gpt_registrar-secret",
    "admin": "gpt_admin-secret",
}
DEPOT_TOKEN_DEPOTS = ("north/d01",)
PLATE = "京A12345"
CAR_REF = "c1" * 32  # keyed hashes, as a gate sends them
PERSON_REF = "e5" * 32


def bearer(role: AccessRole) -> dict[str, str]:
    """The header of the test token of `role` (its name is `<role>-desk`)."""
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def open_api(context: GatewayContext) -> TestClient:
    """The app over `context`, with one token per role in its store (the depot token's
    depot: north/d01)."""
    for role, token in TOKENS.items():
        depots = DEPOT_TOKEN_DEPOTS if role == "depot" else ()
        context.store.add_token(hash_token(token), f"{role}-desk", role, datetime.now(UTC), depots)
    return TestClient(create_app(context))


@pytest.fixture
def api(gateway_context: GatewayContext) -> TestClient:
    return open_api(gateway_context)


@pytest.fixture
def alarm_id(gateway_context: GatewayContext) -> str:
    draft = AlarmDraft(
        kind=AlertKind.FEVER, site="north", node="g01", subject="h1", severity="warning",
        message="fever hold open at g01",
    )  # fmt: skip
    alarm = gateway_context.alarms.raise_alarm(draft)
    assert alarm is not None
    return alarm.alarm_id


@pytest.fixture
def seeded(store: SqlStore, gates: Gates) -> None:
    """A vehicle, a person held for fever (resolved, with a note) and their registration."""
    car = gates.passage(subject="vehicle", vehicle_plate=PLATE, occupants=2, subject_ref=CAR_REF)
    held = gates.passage(outcome="hold", temperature_c=38.4, subject_ref=PERSON_REF)
    hold = gates.hold(held, subject_ref=PERSON_REF)
    resolved = gates.inbound(
        "g01", HoldResolved, hold_id=hold.event.event_id, resolution="registered",
        volunteer_id="v017", note="cough",
    )  # fmt: skip
    store.write([car, held, hold, resolved, gates.registration()])


# --- which role may call what -----------------------------------------------------------

EVERYONE_BUT_ADMIN: tuple[AccessRole, ...] = ("command", "depot", "registrar")
# (method, path, roles besides admin that are let in); {alarm} is a raised alarm's id.
ROLE_TABLE: list[tuple[str, str, set[str]]] = [
    ("GET", "/api/nodes", {"command", "depot"}),
    ("GET", "/api/nodes/north/g01", {"command", "depot"}),
    ("GET", "/api/nodes/fleet", set()),
    ("GET", "/api/faults", {"command", "depot"}),
    ("GET", "/api/passages", {"command", "registrar"}),
    ("GET", "/api/vehicle-checks", {"command", "registrar"}),
    ("GET", "/api/holds", {"command", "registrar"}),
    ("GET", "/api/registrations", {"registrar"}),
    ("GET", "/api/disinfections", {"command"}),
    ("GET", "/api/alarms", {"command"}),
    ("GET", "/api/alarms/{alarm}", {"command"}),
    ("POST", "/api/alarms/{alarm}/acknowledge", {"command", "depot"}),
    ("POST", "/api/alarms/{alarm}/clear", {"command"}),
    ("GET", "/api/tokens", set()),
    ("GET", "/api/audit", set()),
    ("GET", "/api/dead-letters", set()),
    # Stock reads (the writes need a body: tests/gateway/test_api_stock.py tests their roles).
    ("GET", "/api/stock/items", {"command", "depot"}),
    ("GET", "/api/stock/north/d01/on-hand", {"command", "depot"}),
    ("GET", "/api/stock/north/d01/entries", {"command", "depot"}),
    ("GET", "/api/stock/north/d01/scales", {"command", "depot"}),
    ("GET", "/api/stock/north/cover", {"command", "depot"}),
    ("GET", "/api/stock/north/d01/expiring", {"command", "depot"}),
    ("GET", "/api/stock/north/d01/items/grain/fefo?quantity=1", {"command", "depot"}),
    ("GET", "/api/stock/north/prices", {"command", "depot"}),
    ("GET", "/api/stock/north/supply-level", {"command", "depot"}),
    ("GET", "/api/stock/north/applications", {"command", "depot"}),
    ("GET", "/api/stock/north/allocation?item=grain", {"command"}),
    ("GET", "/api/stock/north/daily-report", {"command", "depot"}),
    ("GET", "/api/stock/north/d01/daily-reports/2026-12-05", {"command", "depot"}),
]
# A role let in, asking about what its token does not name: answered as for what does
# not exist. {alarm} is a gate's (g01), no depot token's.
OUT_OF_SCOPE: dict[tuple[str, str, str], str] = {
    ("POST", "/api/alarms/{alarm}/acknowledge", "depot"): "unknown-alarm",
    ("GET", "/api/nodes/north/g01", "depot"): "unknown-node",
}
ROLE_CASES = [
    pytest.param(method, path, role, role in allowed, id=f"{role}-{method}-{path}")
    for method, path, allowed in ROLE_TABLE
    for role in EVERYONE_BUT_ADMIN
]


@pytest.mark.parametrize(("method", "path", "role", "allowed"), ROLE_CASES)
def test_roles__each_endpoint_lets_in_its_roles_only(
    *, api: TestClient, alarm_id: str, method: str, path: str, role: AccessRole, allowed: bool
) -> None:
    response = api.request(method, path.format(alarm=alarm_id), headers=bearer(role))
    if (method, path, role) in OUT_OF_SCOPE:
        assert response.status_code == 404, response.text
        assert response.json()["reason"] == OUT_OF_SCOPE[method, path, role]
    elif allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403
        body = response.json()
        assert body["reason"] == "role-forbidden"
        assert role in body["detail"]  # the caller's role, and the roles that would do
        assert "admin" in body["detail"]


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in ROLE_TABLE])
def test_roles__admin_is_let_in_everywhere(
    api: TestClient, alarm_id: str, method: str, path: str
) -> None:
    response = api.request(method, path.format(alarm=alarm_id), headers=bearer("admin"))
    assert response.status_code == 200, response.text


def test_roles__the_table_covers_every_api_route_of_this_package(api: TestClient) -> None:
    # A new route must get a line in ROLE_TABLE (the dashboard and reports test their own).
    mine = {"nodes", "faults", "passages", "holds", "registrations", "disinfections", "alarms",
            "admin"}  # fmt: skip
    paths = api.get("/openapi.json").json()["paths"]
    routes = {
        (
            method.upper(),
            path.replace("{alarm_id}", "{alarm}").replace("{site}/{node}", "north/g01")
            .replace("{site}/{depot}", "north/d01").replace("{site}", "north")
            .replace("{day}", "2026-12-05").replace("{item}", "grain"),
        )
        for path, operations in paths.items()
        for method, operation in operations.items()
        if mine & set(operation.get("tags", ()))
        or (method == "get" and "stock" in operation.get("tags", ()))  # the writes: see above
    }  # fmt: skip
    assert routes == {(method, path.partition("?")[0]) for method, path, _ in ROLE_TABLE}


# --- tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "token-missing"),
        ({"Authorization": "Bearer gpt_nobody"}, "token-invalid"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "token-invalid"),
        ({"Authorization": "Bearer "}, "token-invalid"),
    ],
    ids=["missing", "unknown", "not-bearer", "empty"],
)
def test_token__invalid(api: TestClient, headers: dict[str, str], reason: str) -> None:
    response = api.get("/api/nodes", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["reason"] == reason


def test_token__revoked_is_refused(api: TestClient, store: SqlStore) -> None:
    assert api.get("/api/nodes", headers=bearer("command")).status_code == 200
    assert store.revoke_token("command-desk", datetime.now(UTC))
    response = api.get("/api/nodes", headers=bearer("command"))
    assert response.status_code == 401
    assert response.json()["reason"] == "token-invalid"


def test_token__in_the_query_only_for_event_streams(api: TestClient) -> None:
    # A token in a URL lands in access logs: only the stream, which has no other way, takes it.
    response = api.get("/api/nodes", params={"access_token": TOKENS["depot"]})
    assert response.status_code == 401
    assert response.json()["reason"] == "token-missing"


def test_token__metrics_needs_none(api: TestClient) -> None:
    assert api.get("/metrics").status_code == 200


def test_tokens__listed_without_hashes(api: TestClient, store: SqlStore) -> None:
    store.revoke_token("depot-desk", datetime.now(UTC))
    response = api.get("/api/tokens", headers=bearer("admin"))
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()}
    assert set(rows) == {f"{role}-desk" for role in TOKENS}
    assert rows["depot-desk"]["revoked_at"] is not None
    assert rows["command-desk"]["role"] == "command"
    text = response.text
    for token in TOKENS.values():
        assert hash_token(token) not in text
        assert token not in text
    assert all("token_hash" not in row for row in rows.values())


# --- personal data -----------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_personal__command_sees_no_personal_fields_and_is_not_audited(
    api: TestClient, store: SqlStore
) -> None:
    passages = api.get("/api/passages", headers=bearer("command")).json()
    holds = api.get("/api/holds", headers=bearer("command")).json()
    vehicles = api.get("/api/vehicle-checks", headers=bearer("command")).json()
    assert len(passages) == 2
    assert len(holds) == 1
    assert len(vehicles) == 1
    assert all(p["subject_ref"] is None and p["vehicle_plate"] is None for p in passages)
    assert vehicles[0]["vehicle_plate"] is None
    assert vehicles[0]["occupants"] == 2  # what is not personal stays
    assert (holds[0]["subject_ref"], holds[0]["note"]) == (None, None)
    assert holds[0]["resolution"] == "registered"
    assert store.audit_log() == []


@pytest.mark.usefixtures("seeded")
def test_personal__registrar_sees_them_and_each_read_is_audited(
    api: TestClient, store: SqlStore
) -> None:
    before = datetime.now(UTC)
    passages = api.get(
        "/api/passages", params={"node": "g01", "subject": "vehicle"}, headers=bearer("registrar")
    ).json()
    holds = api.get("/api/holds", headers=bearer("registrar")).json()
    people = api.get("/api/registrations", headers=bearer("registrar")).json()
    assert [(p["vehicle_plate"], p["subject_ref"]) for p in passages] == [(PLATE, CAR_REF)]
    assert (holds[0]["subject_ref"], holds[0]["note"]) == (PERSON_REF, "cough")
    assert [(r["name"], r["phone"]) for r in people] == [("张三", "13800138000")]

    log = list(reversed(store.audit_log()))  # oldest first
    assert [(e.who, e.role, e.action, e.resource) for e in log] == [
        ("registrar-desk", "registrar", "read", "passages"),
        ("registrar-desk", "registrar", "read", "holds"),
        ("registrar-desk", "registrar", "read", "registrations"),
    ]
    assert all(before - timedelta(seconds=1) <= e.at <= datetime.now(UTC) for e in log)
    detail = json.loads(log[0].detail or "")
    assert (detail["node"], detail["subject"], detail["count"]) == ("g01", "vehicle", 1)
    assert "since" not in detail  # filters not given are not logged as null noise
    assert json.loads(log[2].detail or "")["count"] == 1


@pytest.mark.usefixtures("seeded")
def test_personal__admin_reads_are_audited_and_visible_in_the_audit_log(api: TestClient) -> None:
    api.get("/api/vehicle-checks", headers=bearer("admin"))
    entries = api.get("/api/audit", headers=bearer("admin")).json()
    assert [(e["who"], e["resource"]) for e in entries] == [("admin-desk", "vehicle-checks")]
    assert json.loads(entries[0]["detail"])["count"] == 1


def test_dead_letters__admin_reads_them_audited(api: TestClient, store: SqlStore) -> None:
    now = datetime.now(UTC)
    store.write([], dead=[DeadLetter("gatepost/north/g01/event", b"\xff{", "not-cbor", now)])
    rows = api.get("/api/dead-letters", headers=bearer("admin")).json()
    assert [(r["topic"], r["reason"]) for r in rows] == [("gatepost/north/g01/event", "not-cbor")]
    assert store.audit_log()[0].resource == "dead-letters"
