"""Gateway API event lists: passages, vehicle checks, holds, disinfections and their filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from edge.contract.events import Disinfection
from gateway.api.context import GatewayContext
from gateway.store import SqlStore
from tests.gateway.factory import Gates
from tests.gateway.test_api_access import bearer, open_api

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def api(gateway_context: GatewayContext) -> TestClient:
    return open_api(gateway_context)


@pytest.fixture
def day(store: SqlStore) -> Gates:
    """A morning at site north: an hour of passages at g01 and g02, holds, disinfections."""
    gates = Gates("north", now=T0)
    held = gates.passage("g01", node_time=at(10), outcome="hold", colour="yellow")
    store.write([
        gates.passage("g01", node_time=at(0)),
        gates.passage("g02", node_time=at(5), outcome="deny", colour="red"),
        held,
        gates.passage("g02", node_time=at(20), subject="vehicle", occupants=3),
        gates.passage("g01", node_time=at(30), subject="vehicle", outcome="deny",
                      colour="red", occupants=1),
        gates.passage("g01", node_time=at(50), colour=None, credential="none"),
        gates.hold(held, node_time=at(11)),
        gates.inbound("g01", Disinfection, node_time=at(15), volunteer_id="v017",
                      area="barrier"),
        gates.disinfection("g02", node_time=at(45)),
    ])  # fmt: skip
    return gates


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def get(api: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(path, params=params, headers=bearer("command"))
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def minutes(rows: list[dict[str, Any]]) -> list[int]:
    return [int((datetime.fromisoformat(r["node_time"]) - T0).total_seconds() // 60) for r in rows]


def query(params: dict[str, Any]) -> str:
    return urlencode(params, safe=":+") or "no-filter"


# --- passages ----------------------------------------------------------------------------


FILTERS_VALID: list[tuple[dict[str, Any], list[int]]] = [
    ({}, [50, 30, 20, 10, 5, 0]),
    ({"order": "oldest"}, [0, 5, 10, 20, 30, 50]),
    ({"node": "g02"}, [20, 5]),
    ({"since": "2024-03-01T08:10:00Z", "until": "2024-03-01T08:30:00Z"}, [20, 10]),
    # The same window said in the site's local time (UTC+8): offsets are honoured.
    ({"since": "2024-03-01T16:10:00+08:00", "until": "2024-03-01T16:30:00+08:00"}, [20, 10]),
    ({"outcome": "deny"}, [30, 5]),
    ({"colour": "red", "node": "g01"}, [30]),
    ({"colour": "yellow"}, [10]),
    ({"subject": "vehicle"}, [30, 20]),
    ({"subject": "person", "outcome": "allow"}, [50, 0]),
    ({"site": "south"}, []),
    ({"limit": 2}, [50, 30]),
    ({"limit": 2, "offset": 2}, [20, 10]),
]


@pytest.mark.usefixtures("day")
@pytest.mark.parametrize(
    ("params", "expected"), FILTERS_VALID, ids=[query(p) for p, _ in FILTERS_VALID]
)
def test_passages__filters__valid(
    api: TestClient, params: dict[str, Any], expected: list[int]
) -> None:
    assert minutes(get(api, "/api/passages", **params)) == expected


FILTERS_INVALID: list[tuple[dict[str, Any], str]] = [
    ({"since": "2024-03-01T08:00:00"}, "query.since"),  # naive: which zone? refused
    ({"until": "yesterday"}, "query.until"),
    ({"since": "9999-12-31T23:59:59-23:00"}, "query.since"),  # past year 9999 in UTC
    ({"since": "2024-03-01T09:00:00Z", "until": "2024-03-01T08:00:00Z"}, "query.until"),
    ({"limit": 0}, "query.limit"),
    ({"limit": 1001}, "query.limit"),
    ({"limit": 10**30}, "query.limit"),
    ({"offset": -1}, "query.offset"),
    ({"offset": 2**70}, "query.offset"),
    ({"outcome": "maybe"}, "query.outcome"),
    ({"colour": "blue"}, "query.colour"),
    ({"subject": "cow"}, "query.subject"),
    ({"order": "random"}, "query.order"),
    ({"node": "G01; DROP TABLE passages"}, "query.node"),
]


@pytest.mark.parametrize(
    ("params", "field"), FILTERS_INVALID, ids=[query(p) for p, _ in FILTERS_INVALID]
)
def test_passages__filters__invalid(api: TestClient, params: dict[str, Any], field: str) -> None:
    response = api.get("/api/passages", params=params, headers=bearer("command"))
    assert response.status_code == 422
    body = response.json()
    assert body["reason"] == "invalid-input"
    assert [problem["field"] for problem in body["fields"]] == [field]
    assert field in body["detail"]


def test_passages__out_of_order_seqs_come_back_in_seq_order(
    api: TestClient, store: SqlStore
) -> None:
    # The broker redelivers 3 before 1 and 2; the same second on the gate's clock.
    gates = Gates("north", now=T0)
    for seq in (3, 1, 2):
        store.write([gates.passage("g01", seq=seq, temperature_c=36.0 + seq / 10)])
    assert [r["seq"] for r in get(api, "/api/passages", order="oldest")] == [1, 2, 3]
    assert [r["seq"] for r in get(api, "/api/passages")] == [3, 2, 1]


@pytest.mark.usefixtures("day")
def test_vehicle_checks__only_vehicles_with_occupants(api: TestClient) -> None:
    rows = get(api, "/api/vehicle-checks", order="oldest")
    assert [(r["node"], r["subject"], r["occupants"]) for r in rows] == [
        ("g02", "vehicle", 3),
        ("g01", "vehicle", 1),
    ]
    assert minutes(get(api, "/api/vehicle-checks", outcome="deny")) == [30]
    # `subject` is fixed here: a person filter is not a parameter of this list.
    assert minutes(get(api, "/api/vehicle-checks", subject="person")) == [30, 20]


# --- holds and disinfections ---------------------------------------------------------


def test_holds__open_and_resolved(api: TestClient, store: SqlStore, day: Gates) -> None:
    (open_hold,) = get(api, "/api/holds")
    assert (open_hold["resolution"], open_hold["resolved_at"]) == (None, None)
    assert open_hold["reasons"] == ["fever"]
    day.later(55 * 60)  # 08:55
    hold = day.hold(day.passage("g02", outcome="hold"))
    store.write([hold, day.resolved(hold, "referred")])

    rows = get(api, "/api/holds", order="oldest")
    assert [(r["node"], r["resolution"], r["resolved_by"]) for r in rows] == [
        ("g01", None, None),
        ("g02", "referred", "v017"),
    ]
    assert rows[1]["resolved_temperature_c"] == 36.6
    assert [r["node"] for r in get(api, "/api/holds", open_only=True)] == ["g01"]
    assert [r["node"] for r in get(api, "/api/holds", node="g02")] == ["g02"]
    assert get(api, "/api/holds", until="2024-03-01T08:11:00Z") == []


@pytest.mark.usefixtures("day")
def test_disinfections__by_node_and_time(api: TestClient) -> None:
    rows = get(api, "/api/disinfections")
    assert [(r["node"], r["area"], r["volunteer_id"]) for r in rows] == [
        ("g02", "hut", "v017"),
        ("g01", "barrier", "v017"),
    ]
    assert [r["node"] for r in get(api, "/api/disinfections", node="g01")] == ["g01"]
    assert get(api, "/api/disinfections", since="2024-03-01T08:46:00+00:00") == []


@pytest.mark.usefixtures("day")
def test_registrations__window_filters(api: TestClient, store: SqlStore, day: Gates) -> None:
    store.write([day.registration("g02", node_time=T0 + timedelta(hours=2), name="李四")])
    response = api.get(
        "/api/registrations",
        params={"node": "g02", "since": "2024-03-01T09:00:00Z"},
        headers=bearer("registrar"),
    )
    assert [r["name"] for r in response.json()] == ["李四"]
    response = api.get(
        "/api/registrations", params={"since": "2024-03-01T09:00:00"}, headers=bearer("registrar")
    )
    assert response.status_code == 422
