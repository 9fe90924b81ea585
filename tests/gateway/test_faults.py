"""Node device faults at the gateway: stored, listed per node while open, on the dashboard, and
a signed document a node refused is an alarm."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.contract.command import Alert
from edge.contract.events import DeviceFault
from edge.contract.presence import Birth
from edge.contract.topics import AlertKind, Role
from gateway.alarm_cases import alarm_cases
from gateway.api.context import GatewayContext
from gateway.rules import AlarmRules
from gateway.store import SqlStore
from gateway.store.records import InboundEvent, InboundPresence
from tests.gateway.factory import Gates
from tests.gateway.test_api_access import bearer, open_api

REFUSED = "trust list serial 5 refused as unknown-signer: no root key QuUrb5Vb1S4=."


def fault(
    gates: Gates, node: str, device: str, name: str, state: str, **fields: Any
) -> InboundEvent:
    return gates.inbound(node, DeviceFault, device=device, fault=name, state=state, **fields)


def listed(api: TestClient, query: str = "") -> list[tuple[str, str, str, str | None]]:
    response = api.get(f"/api/faults{query}", headers=bearer("command"))
    assert response.status_code == 200, response.text
    return [(f["node"], f["device"], f["fault"], f["detail"]) for f in response.json()]


class Gateway:
    """The store, the alarm book and the rules, as ingest drives them after each batch."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.store: SqlStore = ctx.store  # type: ignore[assignment]
        self.rules = AlarmRules(ctx.config, ctx.store, ctx.alarms, ctx.clock, ctx.clock())

    def arrive(self, *items: InboundEvent | InboundPresence) -> None:
        events = [i for i in items if isinstance(i, InboundEvent)]
        presence = [i for i in items if isinstance(i, InboundPresence)]
        self.rules.on_stored(self.store.write(events, presence, cases=alarm_cases))


@pytest.fixture
def gateway(gateway_context: GatewayContext) -> Gateway:
    return Gateway(gateway_context)


@pytest.fixture
def api(gateway_context: GatewayContext) -> TestClient:
    return open_api(gateway_context)


def refusals(published: list[Alert]) -> list[tuple[str | None, str, str]]:
    return [
        (a.node, a.state, a.severity) for a in published if a.kind == AlertKind.DOCUMENT_REFUSED
    ]


# --- stored and listed -------------------------------------------------------------------------


def test_faults__the_open_ones_are_listed_per_node(
    gateway: Gateway, api: TestClient, gates: Gates
) -> None:
    gateway.arrive(
        fault(gates, "g01", "scanner", "timeout", "raised", detail="no frame for 3 s"),
        fault(gates, "g01", "thermometer", "unplugged", "raised"),
        fault(gates, "g02", "outbox", "full", "raised", detail="100000 of 100000 unsent"),
    )
    gateway.arrive(fault(gates, "g01", "thermometer", "unplugged", "cleared"))
    assert listed(api) == [
        ("g01", "scanner", "timeout", "no frame for 3 s"),
        ("g02", "outbox", "full", "100000 of 100000 unsent"),
    ]
    assert listed(api, "?site=north&node=g02") == [
        ("g02", "outbox", "full", "100000 of 100000 unsent")
    ]
    assert listed(api, "?node=g03") == []


def test_faults__out_of_order_the_newest_by_seq_counts(
    gateway: Gateway, api: TestClient, gates: Gates
) -> None:
    raised = fault(gates, "g01", "door", "held-open", "raised")
    cleared = fault(gates, "g01", "door", "held-open", "cleared")
    gateway.arrive(cleared)
    gateway.arrive(raised)  # the older one, late
    assert listed(api) == []


def test_faults__a_node_that_lost_its_state_lists_only_what_it_raises_again(
    gateway: Gateway, api: TestClient, gates: Gates
) -> None:
    def birth(outbox: str) -> InboundPresence:
        payload = Birth(session=1, node_time=gates.now, role=Role.GATE, version="1.0",
                        config_hash="ab" * 8, heartbeat_s=10, outbox_id=outbox, confirmed_seq=0)  # fmt: skip
        return InboundPresence("north", "g01", Role.GATE, payload, gates.now)

    gateway.arrive(birth("1" * 32))
    gateway.arrive(fault(gates, "g01", "scanner", "garbage", "raised"))
    gateway.arrive(birth("2" * 32))  # its state folder was wiped: its fault book with it
    restarted = Gates("north", gates.now + timedelta(seconds=1))
    gateway.arrive(fault(restarted, "g01", "camera", "unplugged", "raised"))
    assert listed(api) == [("g01", "camera", "unplugged", None)]


def test_faults__depot_staff_see_their_depots_registrars_none(
    gateway: Gateway, api: TestClient, gates: Gates
) -> None:
    gateway.arrive(fault(gates, "d01", "outbox", "nearly-full", "raised"))
    gateway.arrive(fault(gates, "g01", "scanner", "garbage", "raised"))
    keeper = api.get("/api/faults", headers=bearer("depot"))  # the token of north/d01
    assert [(f["node"], f["device"]) for f in keeper.json()] == [("d01", "outbox")]
    center = api.get("/api/faults", headers=bearer("command"))
    assert {f["node"] for f in center.json()} == {"d01", "g01"}
    assert api.get("/api/faults", headers=bearer("registrar")).status_code == 403


def test_faults__on_the_dashboard_with_their_gate(
    gateway: Gateway, api: TestClient, gates: Gates
) -> None:
    gateway.arrive(fault(gates, "g02", "scanner", "timeout", "raised", detail="no frame"))
    snapshot = api.get("/api/dashboard", headers=bearer("command")).json()
    by_gate = {gate["node"]: gate["faults"] for gate in snapshot["sites"][0]["gates"]}
    assert by_gate["g01"] == []
    assert [(f["device"], f["fault"], f["detail"]) for f in by_gate["g02"]] == [
        ("scanner", "timeout", "no frame")
    ]


# --- a refused signed document is an alarm ---------------------------------------------------


def test_refused__a_refused_trust_list_is_a_critical_alarm_a_valid_one_clears_it(
    gateway: Gateway, gates: Gates, published: list[Alert]
) -> None:
    gateway.arrive(fault(gates, "g01", "trust-list", "refused", "raised", detail=REFUSED))
    assert refusals(published) == [("g01", "raised", "critical")]
    (alert,) = published
    assert (
        alert.message == "north/g01 refused a trust list (unknown-signer) and keeps the one it had"
    )
    alarm = gateway.store.live_alarm(AlertKind.DOCUMENT_REFUSED, "north", "g01", "trust-list")
    assert alarm is not None
    # Refused again (another forgery): the same alarm, not a second one.
    gateway.arrive(fault(gates, "g01", "trust-list", "refused", "raised", detail=REFUSED + " 2"))
    assert refusals(published) == [("g01", "raised", "critical")]
    gateway.arrive(fault(gates, "g01", "trust-list", "refused", "cleared"))
    assert refusals(published) == [("g01", "raised", "critical"), ("g01", "cleared", "critical")]


def test_refused__each_document_and_node_is_its_own_alarm(
    gateway: Gateway, gates: Gates, published: list[Alert]
) -> None:
    gateway.arrive(
        fault(gates, "g01", "revocations", "refused", "raised", detail="… refused as expired."),
        fault(
            gates, "g01", "config", "refused", "raised", detail="config serial 4 is for node g02"
        ),
        fault(gates, "g02", "trust-list", "refused", "raised", detail=REFUSED),
    )
    assert sorted(a.message for a in published) == [
        "north/g01 refused a node config (invalid) and keeps the one it had",
        "north/g01 refused a revocation list (expired) and keeps the one it had",
        "north/g02 refused a trust list (unknown-signer) and keeps the one it had",
    ]


def test_refused__stored_with_its_event_even_if_the_rules_never_run(
    gateway: Gateway, gates: Gates
) -> None:
    # Acknowledged to the broker once stored: the alarm must be in the same transaction.
    event = fault(gates, "g01", "trust-list", "refused", "raised", detail=REFUSED)
    written = gateway.store.write([event], cases=alarm_cases)
    assert [a.kind for a in written.alarms] == [AlertKind.DOCUMENT_REFUSED]


def test_refused__a_clear_that_overtook_its_raise_leaves_no_alarm(
    gateway: Gateway, gates: Gates
) -> None:
    raised = fault(gates, "g01", "trust-list", "refused", "raised", detail=REFUSED)
    cleared = fault(gates, "g01", "trust-list", "refused", "cleared")
    gateway.arrive(cleared)
    gateway.arrive(raised)
    assert (
        gateway.store.live_alarm(AlertKind.DOCUMENT_REFUSED, "north", "g01", "trust-list") is None
    )


def test_refused__other_device_faults_raise_no_alarm(
    gateway: Gateway, gates: Gates, published: list[Alert]
) -> None:
    gateway.arrive(
        fault(gates, "g01", "scanner", "timeout", "raised"),
        fault(gates, "g01", "outbox", "full", "raised"),
        fault(gates, "g01", "uplink", "crashed", "raised", detail="RuntimeError: refused"),
    )
    assert published == []
