"""Gateway API alarms: listing, and acknowledging and clearing them from the command center."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from edge.contract.command import Alert
from edge.contract.topics import AlertKind
from gateway.alarms import MESSAGES, draft, words_of
from gateway.api.context import GatewayContext
from gateway.store.records import AlarmDraft, AlarmRecord
from tests.gateway.test_api_access import bearer, open_api

CLIMATE = {"zone": "fridge-2", "value": "4.6", "storage_class": "vaccine-fridge"}
# Values for every alarm message the rules make, by wording key.
SAMPLES: dict[str, dict[str, str]] = {
    "fever": {"temperature": "38.4"},
    "fever.unmeasured": {},
    "red-code": {},
    "node-offline.lost": {},
    "node-offline.shutdown": {},
    "node-offline.silent": {"silent_s": "31", "missed": "3"},
    "clock-skew": {"skew_s": "+95"},
    "data-loss.hole": {"contiguous": "41", "seq_max": "57", "first_missing": "42"},
    "data-loss.tail": {"first": "58", "last": "60"},
    "seq-jump.event": {"seq": "900001", "jump": "899990", "mark": "11"},
    "seq-jump.heartbeat": {"seq": "3000018", "jump": "3000015", "mark": "3"},
    "seq-jump.birth": {"seq": "900000", "jump": "899997", "mark": "3"},
    "document-refused.trust-list": {"reason": "unknown-signer"},
    "document-refused.revocations": {"reason": "stale-serial"},
    "document-refused.config": {"reason": "invalid"},
    "chain-break": {"seq": "57"},
    "chain-fork": {"seq": "57"},
    "chain-start": {"seq": "1"},
    "hold-override": {"volunteer": "s-001", "hold": "01KAAAAAAAAAAAAAAAAAAAAAAA"},
    "trust-stale.none": {},
    "trust-stale.old": {"age_h": "50"},
    "gate-unattended": {},
    "report-missing": {"day": "2026-12-05"},
    "disinfection-low.count": {"count": "2", "day": "2026-12-05", "minimum": "4"},
    "depot-climate.temperature-above": {
        "zone": "cold-store-1",
        "lasted_min": "600",
        "storage_class": "cold",
        "value": "8.4",
        "threshold": "8.0",
        "condition": "heat",
    },
    "depot-climate.temperature-below": {
        "zone": "cold-store-1",
        "lasted_min": "600",
        "storage_class": "cold",
        "value": "-0.7",
        "threshold": "-0.5",
        "condition": "freeze",
    },
    "depot-climate.humidity-above": {
        "zone": "shelf-a",
        "lasted_min": "60",
        "storage_class": "room",
        "value": "81.0",
        "threshold": "75.0",
        "condition": "humid",
    },
    "depot-climate.humidity-below": {
        "zone": "shelf-a",
        "lasted_min": "60",
        "storage_class": "dry",
        "value": "18.0",
        "threshold": "20.0",
        "condition": "parched",
    },
    "depot-climate.temperature-above-day": CLIMATE | {
        "threshold": "8.0", "lasted_min": "61", "day": "2026-12-06", "condition": "heat-day"},
    "depot-climate.temperature-below-day": CLIMATE | {
        "threshold": "2.0", "lasted_min": "600", "day": "2026-12-07", "condition": "cold-day"},
    "depot-climate.humidity-above-day": CLIMATE | {
        "threshold": "75.0", "lasted_min": "120", "day": "2026-12-06", "condition": "humid"},
    "depot-climate.humidity-below-day": CLIMATE | {
        "threshold": "20.0", "lasted_min": "120", "day": "2026-12-06", "condition": "dry"},
    "depot-climate.temperature-rise": CLIMATE | {
        "rate": "0.60", "gap_min": "1.0", "threshold": "0.50", "condition": "door"},
    "depot-climate.temperature-fall": CLIMATE | {
        "rate": "1.10", "gap_min": "2.5", "threshold": "0.50", "condition": "door"},
    "depot-climate.humidity-rise": CLIMATE | {
        "rate": "3.00", "gap_min": "1.0", "threshold": "2.00", "condition": "door"},
    "depot-climate.humidity-fall": CLIMATE | {
        "rate": "3.00", "gap_min": "1.0", "threshold": "2.00", "condition": "dry-out"},
    "depot-sensor-stale": {"zone": "cold-store-1", "silent_min": "16"},
    "stock-discrepancy": {"scale": "pallet-n95", "item": "n95-mask", "weighed": "380",
                          "ledger": "400", "unit": "piece", "lasted_min": "12"},
    "stock-shortage": {"target": "item:grain", "days": "6.5", "target_days": "15"},
    "stock-shortage.out": {"target": "category:protective", "target_days": "7"},
    "stock-report-missing": {"day": "2026-12-05", "deadline": "17:30"},
}  # fmt: skip


def sample(key: str, node: str = "g02") -> AlarmDraft:
    """The alarm the rules raise for `key`, at north/`node`, with the sample values."""
    kind = AlertKind(key.partition(".")[0])
    return draft(kind, key, "north", node, "warning", subject=f"s-{key}", **SAMPLES[key])


def record_of(alarm: AlarmDraft) -> AlarmRecord:
    return AlarmRecord(
        alarm_id="a1", kind=alarm.kind, site=alarm.site, node=alarm.node, subject=alarm.subject,
        severity=alarm.severity, state="raised", message=alarm.message,
        raised_at=datetime(2026, 12, 5, 8, tzinfo=UTC),
    )  # fmt: skip


@pytest.fixture
def api(gateway_context: GatewayContext) -> TestClient:
    return open_api(gateway_context)


def raise_alarm(ctx: GatewayContext, node: str, kind: AlertKind = AlertKind.NODE_OFFLINE) -> str:
    draft = AlarmDraft(
        kind=kind, site="north", node=node, subject="", severity="critical",
        message=f"{node} is offline",
    )  # fmt: skip
    alarm = ctx.alarms.raise_alarm(draft)
    assert alarm is not None
    return alarm.alarm_id


def post(api: TestClient, alarm_id: str, action: str) -> tuple[int, dict[str, str]]:
    response = api.post(f"/api/alarms/{alarm_id}/{action}", headers=bearer("command"))
    body: dict[str, str] = response.json()
    return response.status_code, body


def test_acknowledge__publishes_once_and_records_who(
    api: TestClient, gateway_context: GatewayContext, published: list[Alert]
) -> None:
    alarm_id = raise_alarm(gateway_context, "g01")
    assert [a.state for a in published] == ["raised"]

    status, first = post(api, alarm_id, "acknowledge")
    assert status == 200
    assert (first["state"], first["acknowledged_by"]) == ("acknowledged", "command-desk")
    assert [(a.alert_id, a.state) for a in published] == [
        (alarm_id, "raised"), (alarm_id, "acknowledged"),
    ]  # fmt: skip

    status, second = post(api, alarm_id, "acknowledge")  # someone else clicks too
    assert status == 200
    assert second == first  # the first acknowledgement stands
    assert len(published) == 2


def test_clear__publishes_and_then_refuses_acknowledge(
    api: TestClient, gateway_context: GatewayContext, published: list[Alert]
) -> None:
    alarm_id = raise_alarm(gateway_context, "g02")
    status, cleared = post(api, alarm_id, "clear")
    assert status == 200
    assert (cleared["state"], cleared["cleared_by"]) == ("cleared", "command-desk")
    assert published[-1].state == "cleared"

    status, body = post(api, alarm_id, "acknowledge")
    assert status == 409
    assert body["reason"] == "alarm-cleared"
    status, again = post(api, alarm_id, "clear")
    assert (status, again) == (200, cleared)
    assert [a.state for a in published] == ["raised", "cleared"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/alarms/01HZZZZZZZZZZZZZZZZZZZZZZZ"),
        ("POST", "/api/alarms/nope/acknowledge"),
        ("POST", "/api/alarms/nope/clear"),
    ],
)
def test_alarm__unknown_is_404(
    api: TestClient, published: list[Alert], method: str, path: str
) -> None:
    response = api.request(method, path, headers=bearer("command"))
    assert response.status_code == 404
    assert response.json()["reason"] == "unknown-alarm"
    assert published == []


def test_alarm__malformed_id_is_422(api: TestClient) -> None:
    response = api.get("/api/alarms/" + "x" * 65, headers=bearer("command"))
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "path.alarm_id"


@pytest.mark.parametrize(
    ("state", "nodes"),
    [
        (None, ["g02", "g01"]),
        ("live", ["g02", "g01"]),
        ("raised", ["g02"]),
        ("acknowledged", ["g01"]),
        ("cleared", ["d01"]),
        ("all", ["d01", "g02", "g01"]),
    ],
)
def test_alarms__state_filter__valid(
    api: TestClient, gateway_context: GatewayContext, state: str | None, nodes: list[str]
) -> None:
    acknowledged = raise_alarm(gateway_context, "g01")
    raise_alarm(gateway_context, "g02")
    cleared = raise_alarm(gateway_context, "d01", kind=AlertKind.DEPOT_CLIMATE)
    gateway_context.alarms.acknowledge(acknowledged, "test")
    gateway_context.alarms.clear(cleared, "test")
    params = {"state": state} if state else {}
    response = api.get("/api/alarms", params=params, headers=bearer("command"))
    assert [a["node"] for a in response.json()] == nodes  # newest raised first


@pytest.mark.parametrize("params", [{"state": "open"}, {"limit": 0}, {"limit": "many"}])
def test_alarms__state_filter__invalid(api: TestClient, params: dict[str, object]) -> None:
    response = api.get("/api/alarms", params=params, headers=bearer("command"))
    assert response.status_code == 422
    assert response.json()["reason"] == "invalid-input"


# --- words -------------------------------------------------------------------------------------


def test_samples__cover_every_message() -> None:
    assert set(SAMPLES) == set(MESSAGES)


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_words__a_message_reads_back_as_its_key_and_values(key: str) -> None:
    words = words_of(record_of(sample(key)))
    assert words.key == key
    assert words.values == {"site": "north", "node": "g02", "place": "g02", **SAMPLES[key]}


def test_words__a_message_made_elsewhere_gets_its_kinds_words() -> None:
    # Written by an older gateway, or by hand: no template matches it.
    made = AlarmDraft(AlertKind.FEVER, "north", "g01", "h1", "critical", "fever hold open at g01")
    words = words_of(record_of(made))
    assert (words.key, words.values["place"]) == ("other", "g01")


def test_words__an_older_depot_message_is_not_read_as_a_days_sum() -> None:
    older = draft(
        AlertKind.DEPOT_CLIMATE, "depot-climate.temperature-above", "north", "d01", "critical",
        zone="z", value="8.9", threshold="8.0", lasted_min="600", storage_class="cold",
        condition="heat",
    )  # fmt: skip
    assert words_of(record_of(older)).key == "depot-climate.temperature-above"


def test_words__a_message_naming_another_place_is_not_read_as_this_one() -> None:
    alarm = AlarmDraft(
        AlertKind.TRUST_STALE, "north", "g01", "", "warning", "north/g02 has no trust list"
    )
    assert words_of(record_of(alarm)).key == "other"


def test_alarms__listed_and_acknowledged_with_their_words(
    api: TestClient, gateway_context: GatewayContext
) -> None:
    alarm = gateway_context.alarms.raise_alarm(sample("fever"))
    assert alarm is not None
    (listed,) = api.get("/api/alarms", headers=bearer("command")).json()
    assert listed["words"] == {
        "key": "fever", "values": {"site": "north", "node": "g02", "place": "g02", "temperature": "38.4"},
    }  # fmt: skip
    assert listed["message"] == "fever 38.4 °C held at north/g02"  # MQTT and logs keep English
    acknowledged = api.post(
        f"/api/alarms/{alarm.alarm_id}/acknowledge", headers=bearer("command")
    ).json()
    assert acknowledged["words"]["key"] == "fever"
