"""Gateway API nodes: reported and inventory nodes, online or not, and unknown ones."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from edge.contract.presence import Birth
from edge.contract.topics import Role
from gateway.api.context import GatewayContext
from gateway.store import SqlStore
from gateway.store.records import InboundPresence
from tests.gateway.factory import Gates
from tests.gateway.test_api_access import bearer, open_api


@pytest.fixture
def api(gateway_context: GatewayContext) -> TestClient:
    return open_api(gateway_context)


def birth(node: str, role: Role = Role.GATE) -> InboundPresence:
    now = datetime.now(UTC)
    payload = Birth(
        session=1, node_time=now, role=role, version="1.2.0", config_hash="ab" * 8,
        heartbeat_s=10,
    )  # fmt: skip
    return InboundPresence("north", node, role, payload, now)


def test_nodes__inventory_nodes_that_never_reported_are_offline(
    api: TestClient, store: SqlStore, gates: Gates
) -> None:
    # g01 is up; g09 reports without being in the inventory; g02 and d01 never said a word.
    store.write([gates.passage("g09")], presence=[birth("g01"), birth("g09")])
    response = api.get("/api/nodes", headers=bearer("command"))
    assert response.status_code == 200
    nodes = {n["node"]: n for n in response.json()}
    assert list(nodes) == ["d01", "g01", "g02", "g09"]  # by site, then name
    assert (nodes["g01"]["online"], nodes["g01"]["expected"], nodes["g01"]["version"]) == (
        True, True, "1.2.0",
    )  # fmt: skip
    assert nodes["g01"]["last_seen"] is not None
    for silent, role in (("g02", "gate"), ("d01", "depot")):
        assert nodes[silent]["online"] is False
        assert nodes[silent]["last_seen"] is None
        assert nodes[silent]["offline_reason"] == "never-seen"
        assert (nodes[silent]["role"], nodes[silent]["expected"]) == (role, True)
    assert (nodes["g09"]["expected"], nodes["g09"]["seq_max"]) == (False, 1)


@pytest.mark.parametrize(
    ("site", "expected"), [("north", ["d01", "g01", "g02"]), ("south", [])], ids=["north", "south"]
)
def test_nodes__site_filter__valid(api: TestClient, site: str, expected: list[str]) -> None:
    response = api.get("/api/nodes", params={"site": site}, headers=bearer("command"))
    assert [n["node"] for n in response.json()] == expected


def test_nodes__a_depot_token_sees_its_depots_only(api: TestClient, store: SqlStore) -> None:
    store.write([], presence=[birth("g01")])
    listed = api.get("/api/nodes", headers=bearer("depot")).json()
    assert [n["node"] for n in listed] == ["d01"]  # the token's depot, north/d01
    assert api.get("/api/nodes/north/d01", headers=bearer("depot")).status_code == 200
    # A gate it does not keep answers as a node that does not exist.
    refused = api.get("/api/nodes/north/g01", headers=bearer("depot"))
    unknown = api.get("/api/nodes/north/g99", headers=bearer("depot"))
    assert refused.status_code == unknown.status_code == 404
    assert refused.json()["reason"] == unknown.json()["reason"] == "unknown-node"


def test_nodes__site_filter__invalid(api: TestClient) -> None:
    response = api.get("/api/nodes", params={"site": "North Site"}, headers=bearer("depot"))
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "query.site"


def test_node__valid(api: TestClient, store: SqlStore) -> None:
    store.write([], presence=[birth("g01")])
    up = api.get("/api/nodes/north/g01", headers=bearer("command")).json()
    assert (up["node"], up["online"], up["heartbeat_s"], up["expected"]) == ("g01", True, 10, True)
    silent = api.get("/api/nodes/north/d01", headers=bearer("command")).json()
    assert (silent["role"], silent["online"], silent["last_seen"]) == ("depot", False, None)


@pytest.mark.parametrize("path", ["/api/nodes/north/g99", "/api/nodes/south/g01"])
def test_node__invalid(api: TestClient, path: str) -> None:
    response = api.get(path, headers=bearer("command"))
    assert response.status_code == 404
    assert response.json()["reason"] == "unknown-node"


def test_nodes__the_trust_list_age_grows_from_what_the_node_reported(
    gateway_context: GatewayContext, store: SqlStore
) -> None:
    reported_at = datetime.now(UTC)
    payload = Birth(
        session=1, node_time=reported_at, role=Role.GATE, version="1.2.0",
        config_hash="ab" * 8, heartbeat_s=10, trust_list_age_s=60.0,
    )  # fmt: skip
    store.write([], presence=[InboundPresence("north", "g01", Role.GATE, payload, reported_at)])
    later = dataclasses.replace(gateway_context, clock=lambda: reported_at + timedelta(hours=2))
    response = open_api(later).get("/api/nodes/north/g01", headers=bearer("command"))
    assert response.json()["trust_list_age_s"] == 60.0
    assert response.json()["trust_list_age_now_s"] == pytest.approx(60.0 + 7200, abs=0.01)
