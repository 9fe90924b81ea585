"""The catalogue of topics: who publishes, who reads, QoS, retain, payload model; and the codec.

`decode()` is the one way in for every consumer (gateway, watcher, node downlink):
it parses the topic, picks the model, and names the failing field on bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from edge.contract import topics
from edge.contract.base import Event, Payload, personal_fields
from edge.contract.command import Alert, Summary
from edge.contract.documents import SignedNodeConfig, SignedRevocationList, SignedTrustList
from edge.contract.events import EVENT_MODELS, DepotReadingBatch
from edge.contract.presence import NODE_STATUS, Birth, Death, Health, UpdateReport
from edge.contract.receipt import Receipt
from edge.contract.supply import StockSummary, SupplyLevel
from edge.contract.topics import EventKind, Node, ParsedTopic, TopicKind
from edge.errors import PayloadInvalid

Party = Literal["node", "gateway", "command-center", "technician", "provisioning"]


@dataclass(frozen=True)
class TopicSpec:
    """How one kind of topic is used. docs/mqtt.md describes each of these."""

    kind: TopicKind
    pattern: str
    builder: Callable[..., str]
    models: tuple[type[Payload], ...]
    qos: Literal[0, 1]
    retained: bool
    publishers: tuple[Party, ...]
    subscribers: tuple[Party, ...]

    @property
    def personal_data(self) -> list[str]:
        """Personal fields any of this topic's payloads can carry."""
        return sorted({f"{m.__name__}.{p}" for m in self.models for p in personal_fields(m)})


_NODE = "<prefix>/v1/<site>/<role>/<node>"
_SITE = "<prefix>/v1/<site>"
_READERS: tuple[Party, ...] = ("gateway", "command-center", "technician")

CATALOGUE: dict[TopicKind, TopicSpec] = {
    spec.kind: spec
    for spec in (
        TopicSpec(TopicKind.STATUS, f"{_NODE}/status", topics.status,
                  (Birth, Death), 1, True, ("node",), _READERS),
        TopicSpec(TopicKind.HEALTH, f"{_NODE}/health", topics.health,
                  (Health,), 0, False, ("node",), _READERS),
        TopicSpec(TopicKind.EVENT, f"{_NODE}/event/<kind>", topics.event,
                  tuple(EVENT_MODELS.values()), 1, False, ("node",), ("gateway",)),
        TopicSpec(TopicKind.READING, f"{_SITE}/depot/<node>/reading", topics.reading,
                  (DepotReadingBatch,), 1, False, ("node",), _READERS),
        TopicSpec(TopicKind.ALERT, f"{_SITE}/alert/<kind>", topics.alert,
                  (Alert,), 1, False, ("gateway",), ("command-center", "technician")),
        TopicSpec(TopicKind.SITE_SUMMARY, f"{_SITE}/summary", topics.site_summary,
                  (Summary,), 1, True, ("gateway",), ("command-center",)),
        TopicSpec(TopicKind.GATE_SUMMARY, f"{_SITE}/summary/<node>", topics.gate_summary,
                  (Summary,), 1, True, ("gateway",), ("command-center",)),
        TopicSpec(TopicKind.SUPPLY_LEVEL, f"{_SITE}/supply-level", topics.supply_level,
                  (SupplyLevel,), 1, True, ("gateway",), ("command-center",)),
        TopicSpec(TopicKind.STOCK_SUMMARY, f"{_SITE}/stock", topics.stock_summary,
                  (StockSummary,), 1, True, ("gateway",), ("command-center",)),
        TopicSpec(TopicKind.CONFIG, f"{_SITE}/config/<node>", topics.config,
                  (SignedNodeConfig,), 1, True, ("provisioning",), ("node",)),
        TopicSpec(TopicKind.TRUST, f"{_SITE}/trust", topics.trust,
                  (SignedTrustList,), 1, True, ("provisioning",), ("node", "gateway")),
        TopicSpec(TopicKind.REVOCATIONS, f"{_SITE}/revocations", topics.revocations,
                  (SignedRevocationList,), 1, True, ("provisioning",), ("node", "gateway")),
        TopicSpec(TopicKind.RECEIPT, f"{_SITE}/receipt/<node>", topics.receipt,
                  (Receipt,), 1, True, ("gateway",), ("node", "technician")),
        TopicSpec(TopicKind.UPDATE, f"{_NODE}/update", topics.update,
                  (UpdateReport,), 1, True, ("node",), _READERS),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Message:
    """A decoded message: where it came from and its validated payload."""

    topic: ParsedTopic
    payload: Payload

    @property
    def spec(self) -> TopicSpec:
        return CATALOGUE[self.topic.kind]


def entry_topic(node: Node, event: Event) -> str:
    """The topic one durable outbox entry of `node` is published on: a depot's readings on
    its reading topic, every other event on its kind's event topic."""
    if isinstance(event, DepotReadingBatch):
        return topics.reading(node)
    return topics.event(node, EventKind(event.kind))


def encode(payload: Payload) -> bytes:
    """Payload to wire bytes: compact JSON, absent optional fields left out."""
    return payload.model_dump_json(exclude_none=True).encode()


def decode(
    topic: str, data: bytes | bytearray | str, prefix: str = topics.DEFAULT_PREFIX
) -> Message:
    """Parse `topic` and validate `data` against the model it requires.

    Raises:
        UnknownTopic: the topic is not in the contract.
        PayloadInvalid: the payload is not JSON or does not match; names each field.
    """
    parsed = topics.parse(topic, prefix)
    adapter, name = _adapter_for(parsed)
    try:
        payload = adapter.validate_json(data)
    except ValidationError as exc:
        raise PayloadInvalid(topic, name, _problems(exc)) from None
    if problems := contradictions(parsed, payload):
        raise PayloadInvalid(topic, name, problems)
    return Message(parsed, payload)


def contradictions(parsed: ParsedTopic, payload: Payload) -> list[str]:
    """Where a valid payload disagrees with the topic it is on ("field: why")."""
    fields = _FIELDS[type(payload)]
    # The gateway's common case, once per event it ingests: only the kind to compare.
    if parsed.kind is TopicKind.EVENT and "site" not in fields:
        kind = getattr(payload, "kind", None)
        if kind == parsed.event_kind:
            return []
    topic_says: dict[str, object] = {"site": parsed.site.name}
    if parsed.kind is TopicKind.EVENT:
        topic_says["kind"] = parsed.event_kind
    if parsed.kind is TopicKind.ALERT:
        topic_says["kind"] = parsed.alert_kind
    if parsed.kind in (TopicKind.SITE_SUMMARY, TopicKind.GATE_SUMMARY):
        topic_says["node"] = parsed.node
    if isinstance(payload, Birth):
        topic_says["role"] = parsed.role
    problems = [
        f"{field}: {_plain(getattr(payload, field))!r} is not the topic's {_plain(expected)!r}"
        for field, expected in topic_says.items()
        if field in fields and getattr(payload, field) != expected
    ]
    if isinstance(payload, SignedNodeConfig) and payload.body.node != parsed.node:
        problems.append(f"body.node: {payload.body.node!r} is not the topic's {parsed.node!r}")
    return problems


def _adapter_for(parsed: ParsedTopic) -> tuple[TypeAdapter[Any], str]:
    if parsed.kind is TopicKind.STATUS:
        return NODE_STATUS, "Birth or Death"
    if parsed.kind is TopicKind.EVENT:
        assert parsed.event_kind is not None
        model: type[BaseModel] = EVENT_MODELS[parsed.event_kind]
    else:
        model = CATALOGUE[parsed.kind].models[0]
    return _ADAPTERS[model], model.__name__


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {
    model: TypeAdapter(model) for spec in CATALOGUE.values() for model in spec.models
}


# Field names per model, looked up once: pydantic's model_fields is a costly property and
# the gateway asks for every message it ingests.
_FIELDS: dict[type[BaseModel], frozenset[str]] = {
    model: frozenset(model.model_fields) for model in _ADAPTERS
}


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


def _problems(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "payload"
        lines.append(f"{where}: {error['msg']}")
    return lines
