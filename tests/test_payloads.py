"""Payload models: good payloads round-trip, bad ones are refused with the failing field named."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.contract import catalogue, topics
from edge.contract.base import DEVICES_MAX, REASONS_MAX, new_event_id
from edge.contract.documents import (
    CONFIG_MAX_BYTES,
    CONFIG_SECTIONS_MAX,
    REVOCATIONS_MAX,
    TRUST_ENTRIES_MAX,
    Revocation,
    RevocationListBody,
    SignedRevocationList,
    TrustEntry,
)
from edge.contract.events import (
    EVENT_MODELS,
    READINGS_MAX,
    CheckpointCounts,
    DailyReport,
    Passage,
)
from edge.contract.presence import Birth, Health
from edge.contract.topics import EventKind, Role, Site
from edge.errors import ContractError, PayloadInvalid, UnknownTopic
from edge.mqtt import BrokerUrl, Endpoint, new_client, publish
from firmware_tools.site_pki import IdentityRole, SitePki

T0 = datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
GATE = Site("north").node(Role.GATE, "g01")
PASSAGE_TOPIC = topics.event(GATE, EventKind.PASSAGE)


def passage(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "schema_version": 1, "event_id": new_event_id(T0), "seq": 7,
        "node_time": T0.isoformat(), "kind": "passage", "direction": "in",
        "outcome": "allow", "colour": "green", "credential": "health-code",
        "temperature_c": 36.6,
    }  # fmt: skip
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def daily_report(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "event_id": new_event_id(T0), "seq": 40, "node_time": T0.isoformat(),
        "kind": "daily-report", "day": "2026-11-22",
        "period_start": "2026-11-21T16:00:00+08:00", "period_end": "2026-11-22T16:00:00+08:00",
        "counts": {}, "zero_report": True,
    }  # fmt: skip
    body.update(overrides)
    return body


def test_event_models__kind_matches_the_topic_kind() -> None:
    for kind, model in EVENT_MODELS.items():
        assert model.model_fields["kind"].default == kind.value
    assert set(EVENT_MODELS) == set(EventKind)


def test_passage__valid_round_trip() -> None:
    message = catalogue.decode(PASSAGE_TOPIC, json.dumps(passage()))
    assert isinstance(message.payload, Passage)
    assert message.payload.temperature_c == 36.6
    assert catalogue.decode(PASSAGE_TOPIC, catalogue.encode(message.payload)) == message


@pytest.mark.parametrize(
    ("topic", "body", "problem"),
    [
        (PASSAGE_TOPIC, passage(schema_version=2), "schema_version: Input should be 1"),
        (PASSAGE_TOPIC, passage(seq=0), "seq: Input should be greater than or equal to 1"),
        (PASSAGE_TOPIC, passage(event_id="not-a-ulid"), "event_id: String should match"),
        (PASSAGE_TOPIC, passage(node_time="2026-11-22T08:15:00"), "node_time: Input should have timezone"),
        (PASSAGE_TOPIC, passage(temperature_c=52.0), "temperature_c: Input should be less than or equal to 45"),
        (PASSAGE_TOPIC, passage(colour="purple"), "colour: Input should be 'green', 'yellow' or 'red'"),
        (PASSAGE_TOPIC, passage(id_number="110101199001011234"), "id_number: Extra inputs are not permitted"),
        (PASSAGE_TOPIC, passage(direction=None), "direction: Field required"),
        (PASSAGE_TOPIC, passage(outcome="hold"), "a hold outcome needs at least one reason"),
        (PASSAGE_TOPIC, passage(vehicle_plate="京A12345"), "vehicle_plate, occupants and volunteer_id belong to vehicle"),
        (topics.event(GATE, EventKind.HOLD), passage(), "kind: Input should be 'hold'"),
        (topics.event(GATE, EventKind.DAILY_REPORT), daily_report(counts={"fever": -1}), "counts.fever: Input should be greater than or equal to 0"),
        (topics.event(GATE, EventKind.DAILY_REPORT), daily_report(counts={"allowed": 3}), "zero_report must be true exactly when every count is zero"),
        (topics.event(GATE, EventKind.DAILY_REPORT), daily_report(period_end="2026-11-22T16:30:00+08:00"), "period_end is a cut-off to the hour"),
        (topics.reading(Site("north").node(Role.DEPOT, "d01")),
         {"event_id": new_event_id(T0), "seq": 1, "node_time": T0.isoformat(), "readings": [
             {"sensor": "cold-1", "bus_address": 1, "at": T0.isoformat(), "status": "ok"}]},
         "readings.0: Value error, an ok reading carries temperature_c and humidity_pct"),
        (topics.status(GATE), {"state": "asleep"}, "Input tag 'asleep' found using 'state' does not match"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)  # fmt: skip
def test_decode__invalid_names_the_field(topic: str, body: dict[str, object], problem: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        catalogue.decode(topic, json.dumps(body))
    assert any(problem in line for line in caught.value.problems), caught.value.problems
    assert caught.value.topic == topic


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"{not json", "payload: Invalid JSON"),
        (b"\xff\xfe", "payload: Invalid JSON"),
        (b"", "payload: Invalid JSON"),
        (b"[]", "Input should be an object"),
    ],
)
def test_decode__not_json_object(data: bytes, problem: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        catalogue.decode(PASSAGE_TOPIC, data)
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_daily_report__zero_report_valid() -> None:
    report = catalogue.decode(
        topics.event(GATE, EventKind.DAILY_REPORT), json.dumps(daily_report())
    )
    assert isinstance(report.payload, DailyReport)
    assert report.payload.zero_report and report.payload.counts == CheckpointCounts()
    assert report.payload.day == date(2026, 11, 22)


def test_no_topic_the_command_center_reads_carries_personal_data() -> None:
    for spec in catalogue.CATALOGUE.values():
        if "command-center" in spec.subscribers:
            assert spec.personal_data == [], f"{spec.pattern} carries {spec.personal_data}"


def test_personal_data_is_marked_where_it_is() -> None:
    personal = catalogue.CATALOGUE[topics.TopicKind.EVENT].personal_data
    for field in ("Registration.name", "Registration.id_hash", "Registration.phone",
                  "Passage.subject_ref", "Passage.vehicle_plate"):  # fmt: skip
        assert field in personal


def test_event_ids__sort_by_time() -> None:
    ids = [new_event_id(T0 + timedelta(milliseconds=ms)) for ms in (0, 1, 1000, 86_400_000)]
    assert ids == sorted(ids)
    assert len(set(new_event_id(T0) for _ in range(1000))) == 1000


def test_publish__refuses_a_payload_its_topic_does_not_carry() -> None:
    client = new_client("unconnected", Endpoint(BrokerUrl("127.0.0.1", 1)))
    health = Health(node_time=T0, session=1, uptime_s=1, last_seq=0, outbox_depth=0,
                    outbox_capacity=10)  # fmt: skip
    with pytest.raises(ContractError, match="does not carry a Health"):
        publish(client, topics.status(GATE), health)
    with pytest.raises(ContractError, match="unknown topic"):
        publish(client, "gatepost/v1/north/nowhere", health)


def test_signing_bytes__cover_everything_but_the_signature() -> None:
    body = RevocationListBody(entries=(Revocation(by="cti", sha256="ab" * 32),))
    doc = SignedRevocationList(
        serial=3, issued_at=T0, signer_kid="a2lk", signature="A" * 86, body=body
    )
    assert b'"signature"' not in doc.signing_bytes()
    assert doc.signing_bytes() == doc.model_copy(update={"signature": "B" * 86}).signing_bytes()
    assert doc.signing_bytes() != doc.model_copy(update={"serial": 4}).signing_bytes()
    reparsed = catalogue.decode(topics.revocations(Site("north")), catalogue.encode(doc)).payload
    assert isinstance(reparsed, SignedRevocationList)
    assert reparsed.signing_bytes() == doc.signing_bytes()


def test_trust_entry__needs_exactly_one_key() -> None:
    with pytest.raises(ValueError, match="exactly one of public_key and certificate"):
        TrustEntry(kid="a2lk", issuer="North CDC", uses=("health-code",),
                   not_before=T0, not_after=T0 + timedelta(days=1))  # fmt: skip


def test_birth__requires_config_hash_and_version() -> None:
    with pytest.raises(ValueError, match="config_hash"):
        Birth.model_validate({"session": 1, "node_time": T0, "role": "gate", "version": "1",
                              "config_hash": "xyz", "heartbeat_s": 5})  # fmt: skip


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("mqtt://127.0.0.1", BrokerUrl("127.0.0.1", 1883)),
        ("mqtt://broker.local:1884", BrokerUrl("broker.local", 1884)),
        ("mqtts://gw:8884", BrokerUrl("gw", 8884, tls=True)),
    ],
)
def test_broker_url__valid(url: str, parsed: BrokerUrl) -> None:
    assert BrokerUrl.parse(url) == parsed


@pytest.mark.parametrize("url", ["127.0.0.1:1883", "http://gw", "mqtt://", "mqtt://gw:99999"])
def test_broker_url__invalid(url: str) -> None:
    with pytest.raises(ValueError, match="broker URL"):
        BrokerUrl.parse(url)


def test_endpoint__the_client_id_is_the_certificates_name(site_pki: SitePki) -> None:
    files = site_pki.issue(IdentityRole.GATE, "endpoint-id")
    endpoint = files.endpoint(BrokerUrl("gw", 8883, tls=True))
    assert endpoint.client_id("asked-for") == "gate-endpoint-id"
    assert new_client("asked-for", endpoint)._client_id == b"gate-endpoint-id"
    assert Endpoint(BrokerUrl("gw", 1883)).client_id("asked-for") == "asked-for"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"cert": Path("c.pem")}, "certificate and its key are given together"),
        ({"ca": Path("ca.crt"), "plain": True}, "certificates need an mqtts:// broker"),
        ({"password": "x"}, "a password needs a user name"),
    ],
)
def test_endpoint__invalid(files: dict[str, Any], message: str) -> None:
    url = BrokerUrl("gw", 1883) if files.pop("plain", False) else BrokerUrl("gw", 8883, tls=True)
    with pytest.raises(ValueError, match=message):
        Endpoint(url, **files)


SIG = "A" * 86
ALERT = {"alert_id": new_event_id(T0), "kind": "fever", "state": "raised", "severity": "critical",
         "site": "north", "node": "g01", "raised_at": T0.isoformat(), "at": T0.isoformat(),
         "message": "fever case held at gate g01"}  # fmt: skip
SUMMARY = {"site": "north", "since": "2026-11-21T16:00:00+08:00", "at": T0.isoformat(),
           "counts": {"person_checks": 3}}  # fmt: skip
BIRTH = {"state": "online", "session": 1, "node_time": T0.isoformat(), "role": "gate",
         "version": "0.1.0", "config_hash": "0f" * 8, "heartbeat_s": 5}  # fmt: skip
CONFIG = {"serial": 2, "issued_at": T0.isoformat(), "signer_kid": "a2lk", "signature": SIG,
          "document": "config", "body": {"node": "g01", "config": {"fever_c": 37.3}}}  # fmt: skip
NORTH = Site("north")


@pytest.mark.parametrize(
    ("topic", "body", "problem"),
    [
        (PASSAGE_TOPIC, passage(seq="5"), "seq: Input should be a valid integer"),
        (PASSAGE_TOPIC, passage(node_time=1795000000), "node_time: Input should be a valid datetime"),
        (topics.alert(NORTH, topics.AlertKind.FEVER), {**ALERT, "site": "south"}, "site: 'south' is not the topic's 'north'"),
        (topics.alert(NORTH, topics.AlertKind.RED_CODE), ALERT, "kind: 'fever' is not the topic's 'red-code'"),
        (topics.site_summary(NORTH), {**SUMMARY, "node": "g01"}, "node: 'g01' is not the topic's None"),
        (topics.gate_summary(NORTH, "g02"), {**SUMMARY, "node": "g01"}, "node: 'g01' is not the topic's 'g02'"),
        (topics.site_summary(NORTH), {**SUMMARY, "nodes_online": 3, "nodes_total": 2}, "nodes_online cannot exceed nodes_total"),
        (topics.status(NORTH.node(Role.DEPOT, "d01")), BIRTH, "role: 'gate' is not the topic's 'depot'"),
        (topics.config(NORTH, "g02"), CONFIG, "body.node: 'g01' is not the topic's 'g02'"),
        (topics.config(NORTH, "g01"), {**CONFIG, "expires_at": "2026-11-01T00:00:00Z"}, "expires_at must be after issued_at"),
        (topics.config(NORTH, "g01"), {**CONFIG, "signature": "c2ln"}, "signature: String should match pattern"),
        (topics.event(GATE, EventKind.DAILY_REPORT), daily_report(day="2026-11-21"), "day must be the date of period_end"),
    ],
)  # fmt: skip
def test_decode__contradictions_and_cross_field_rules(
    topic: str, body: dict[str, object], problem: str
) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        catalogue.decode(topic, json.dumps(body))
    assert any(problem in line for line in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        (topics.alert(NORTH, topics.AlertKind.FEVER), ALERT),
        (topics.site_summary(NORTH), SUMMARY),
        (topics.gate_summary(NORTH, "g01"), {**SUMMARY, "node": "g01"}),
        (topics.status(GATE), BIRTH),
        (topics.config(NORTH, "g01"), CONFIG),
    ],
)
def test_decode__consistent_payloads_pass(topic: str, body: dict[str, object]) -> None:
    assert catalogue.decode(topic, json.dumps(body)).topic == topics.parse(topic)


def test_depot_node_cannot_publish_gate_events() -> None:
    depot = NORTH.node(Role.DEPOT, "d01")
    with pytest.raises(ValueError, match="passage events come from gate nodes"):
        topics.event(depot, EventKind.PASSAGE)
    with pytest.raises(UnknownTopic, match="hold events come from gate nodes"):
        topics.parse("gatepost/v1/north/depot/d01/event/hold")
    assert topics.parse(topics.event(depot, EventKind.DEVICE_FAULT)).node == "d01"


def test_publish__refuses_a_payload_that_contradicts_its_topic() -> None:
    client = new_client("unconnected", Endpoint(BrokerUrl("127.0.0.1", 1)))
    event = catalogue.decode(PASSAGE_TOPIC, json.dumps(passage())).payload
    with pytest.raises(PayloadInvalid, match="kind: 'passage' is not the topic's"):
        publish(client, topics.event(GATE, EventKind.HOLD), event)


# --- bounds: every list and string that crosses a boundary has one ---------------------------

# Strings, lists and maps a payload may carry without a bound of their own in the schema.
UNBOUNDED_ON_PURPOSE = {
    # The sections of a node config: the node checks each against its own config model, and
    # the whole is at most CONFIG_MAX_BYTES of JSON (a rule the schema cannot state).
    "SignedNodeConfig.body.config.*",
}
_QUANTIFIER_WITHOUT_END = re.compile(r"(?<!\\)[*+]|\{\d+,\}")


def unbounded(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """Paths in a JSON schema to a string, array or object of no bounded size."""
    if "$ref" in schema:
        return unbounded(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, path)
    found: list[str] = []
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found += unbounded(option, defs, path)
    kind = schema.get("type")
    if kind == "string" and not ({"const", "enum", "format", "maxLength"} & set(schema)):
        pattern = schema.get("pattern")
        if pattern is None or _QUANTIFIER_WITHOUT_END.search(pattern):
            found.append(path)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(path)
        items = schema.get("items")
        found += unbounded(items, defs, f"{path}.0") if isinstance(items, dict) else []
        for index, item in enumerate(schema.get("prefixItems", [])):
            found += unbounded(item, defs, f"{path}.{index}")
    if kind == "object":
        for name, field in schema.get("properties", {}).items():
            found += unbounded(field, defs, f"{path}.{name}")
        values = [schema.get("additionalProperties"), *schema.get("patternProperties", {}).values()]
        values = [v for v in values if v not in (None, False)]
        if values and "maxProperties" not in schema:
            found.append(path)
        for value in values:
            found += unbounded(value if isinstance(value, dict) else {}, defs, f"{path}.*")
            if value is True:
                found.append(f"{path}.*")
    return [p for p in found if p not in UNBOUNDED_ON_PURPOSE]


def test_every_string_list_and_map_of_every_payload_has_a_bound() -> None:
    models = {model for spec in catalogue.CATALOGUE.values() for model in spec.models}
    found = []
    for model in sorted(models, key=lambda m: m.__name__):
        schema = model.model_json_schema()
        found += unbounded(schema, schema.get("$defs", {}), model.__name__)
    assert not found, f"no bound on: {found}"


DEPOT = NORTH.node(Role.DEPOT, "d01")
READING = {"sensor": "cold-1", "bus_address": 1, "at": T0.isoformat(), "status": "timeout"}
TRUST_ENTRY = {"kid": "a2lk", "issuer": "North CDC", "uses": ["health-code"],
               "public_key": "MCowBQYDK2VwAyEA", "not_before": T0.isoformat(),
               "not_after": (T0 + timedelta(days=1)).isoformat()}  # fmt: skip
ENVELOPE = {"serial": 2, "issued_at": T0.isoformat(), "signer_kid": "a2lk", "signature": SIG}
CODES = [f"reason-{i}" for i in range(REASONS_MAX + 1)]
USES = ["health-code", "dcc-test", "dcc-vaccination", "dcc-recovery", "household-pass", "badge"]


def _event(kind: str, **fields: object) -> dict[str, object]:
    return {"event_id": new_event_id(T0), "seq": 3, "node_time": T0.isoformat(), "kind": kind,
            **fields}  # fmt: skip


def _devices(count: int) -> dict[str, str]:
    return {f"device-{i}": "ok" for i in range(count)}


def _trust(count: int = 1, **entry: object) -> dict[str, object]:
    return {
        **ENVELOPE,
        "document": "trust",
        "body": {"entries": [{**TRUST_ENTRY, **entry}] * count},
    }


def _revocations(count: int) -> dict[str, object]:
    entries = [{"by": "cti", "sha256": f"{i:064x}"} for i in range(count)]
    return {**ENVELOPE, "document": "revocations", "body": {"entries": entries}}


def _config(config: dict[str, object]) -> dict[str, object]:
    return {**CONFIG, "body": {"node": "g01", "config": config}}


HEALTH = {"node_time": T0.isoformat(), "session": 1, "uptime_s": 5.0, "last_seq": 3,
          "outbox_depth": 0, "outbox_capacity": 100}  # fmt: skip
# (topic, what fits the bound, what is one past it, the problem named)
BOUNDS: dict[str, tuple[str, Callable[[int], dict[str, object]], int, str]] = {
    "passage reasons": (PASSAGE_TOPIC, lambda n: passage(reasons=CODES[:n]), REASONS_MAX,
                        "reasons: Tuple should have at most 16 items"),
    "hold reasons": (topics.event(GATE, EventKind.HOLD),
                     lambda n: _event("hold", passage_id=new_event_id(T0), reasons=CODES[:n]),
                     REASONS_MAX, "reasons: Tuple should have at most 16 items"),
    "registration name": (topics.event(GATE, EventKind.REGISTRATION),
                          lambda n: _event("registration", name="王" * n, id_hash="ab" * 32,
                                           id_last4="123X", volunteer_id="v1"),
                          64, "name: String should have at most 64 characters"),
    "registration trip": (topics.event(GATE, EventKind.REGISTRATION),
                          lambda n: _event("registration", name="王五", id_hash="ab" * 32,
                                           id_last4="123X", volunteer_id="v1", origin="海" * n),
                          200, "origin: String should have at most 200 characters"),
    "hold note": (topics.event(GATE, EventKind.HOLD_RESOLVED),
                  lambda n: _event("hold-resolved", hold_id=new_event_id(T0),
                                   resolution="referred", volunteer_id="v1", note="x" * n),
                  200, "note: String should have at most 200 characters"),
    "fault detail": (topics.event(GATE, EventKind.DEVICE_FAULT),
                     lambda n: _event("device-fault", device="scanner", fault="timeout",
                                      state="raised", detail="x" * n),
                     200, "detail: String should have at most 200 characters"),
    "birth devices": (topics.status(GATE), lambda n: {**BIRTH, "devices": _devices(n)},
                      DEVICES_MAX, "online.devices: Dictionary should have at most 64 items"),
    "health devices": (topics.health(GATE), lambda n: {**HEALTH, "devices": _devices(n)},
                       DEVICES_MAX, "devices: Dictionary should have at most 64 items"),
    "depot readings": (topics.reading(DEPOT),
                       lambda n: {**_event("reading"), "readings": [READING] * n},
                       READINGS_MAX, "readings: Tuple should have at most 247 items"),
    "trust entries": (topics.trust(NORTH), _trust, TRUST_ENTRIES_MAX,
                      "body.entries: Tuple should have at most 2000 items"),
    "trust uses": (topics.trust(NORTH), lambda n: _trust(uses=(USES * 2)[:n]), len(USES),
                   "body.entries.0.uses: Tuple should have at most 6 items"),
    "trust kid": (topics.trust(NORTH), lambda n: _trust(kid="a2lk" * (n // 4)), 44,
                  "body.entries.0.kid: String should have at most 44 characters"),
    "trust key": (topics.trust(NORTH), lambda n: _trust(public_key="MCow" * (n // 4)), 2048,
                  "body.entries.0.public_key: String should have at most 2048 characters"),
    "trust certificate": (topics.trust(NORTH),
                          lambda n: _trust(public_key=None, certificate="MIIB" * (n // 4)),
                          16_384, "certificate: String should have at most 16384 characters"),
    "revocations": (topics.revocations(NORTH), _revocations, REVOCATIONS_MAX,
                    "body.entries: Tuple should have at most 100000 items"),
    "config sections": (topics.config(NORTH, "g01"),
                        lambda n: _config({f"section_{i}": {} for i in range(n)}),
                        CONFIG_SECTIONS_MAX, "body.config: Dictionary should have at most 32"),
    "config size": (topics.config(NORTH, "g01"),
                    lambda n: _config({"console": {"note": "x" * (n - len('{"console":{"note":""}}'))}}),
                    CONFIG_MAX_BYTES, f"config is {CONFIG_MAX_BYTES + 4} bytes of JSON"),
}  # fmt: skip


@pytest.mark.parametrize("bound", BOUNDS)
def test_bounds__valid(bound: str) -> None:
    topic, body, limit, _ = BOUNDS[bound]
    catalogue.decode(topic, json.dumps(body(limit), ensure_ascii=False).encode())


@pytest.mark.parametrize("bound", BOUNDS)
def test_bounds__invalid(bound: str) -> None:
    topic, body, limit, problem = BOUNDS[bound]
    over = limit + (4 if bound in {"trust kid", "trust key", "trust certificate",
                                   "config size"} else 1)  # fmt: skip
    with pytest.raises(PayloadInvalid) as caught:
        catalogue.decode(topic, json.dumps(body(over), ensure_ascii=False).encode())
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def _hold_resolved(**fields: object) -> dict[str, object]:
    body = _event(
        "hold-resolved", hold_id=new_event_id(T0), resolution="released", volunteer_id="v017",
        temperature_c=36.5, **fields,
    )  # fmt: skip
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize("source", [None, "sensor", "manual"])
def test_hold_resolved__temperature_source__valid(source: str | None) -> None:
    # Optional: a node from before the field still sends valid events.
    topic = topics.event(GATE, EventKind.HOLD_RESOLVED)
    message = catalogue.decode(topic, json.dumps(_hold_resolved(temperature_source=source)))
    assert message.payload.temperature_source == source  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", ["typed", "", 1])
def test_hold_resolved__temperature_source__invalid(source: object) -> None:
    topic = topics.event(GATE, EventKind.HOLD_RESOLVED)
    with pytest.raises(PayloadInvalid) as caught:
        catalogue.decode(topic, json.dumps(_hold_resolved(temperature_source=source)))
    assert any("temperature_source" in line for line in caught.value.problems)
