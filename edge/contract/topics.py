"""Every MQTT topic Gatepost uses, built and parsed in one place.

Tree (one segment each; slugs are lower-case letters, digits, '-' and '_'):

    <prefix>/v1/<site>/<role>/<node>/status          node presence (retained)
    <prefix>/v1/<site>/<role>/<node>/health          node heartbeat
    <prefix>/v1/<site>/<role>/<node>/event/<kind>    node events
    <prefix>/v1/<site>/<role>/<node>/update          software update result (retained)
    <prefix>/v1/<site>/depot/<node>/reading          depot reading batches
    <prefix>/v1/<site>/alert/<kind>                  gateway alerts
    <prefix>/v1/<site>/summary[/<node>]              gateway summaries (retained)
    <prefix>/v1/<site>/supply-level                  supply alert level (retained)
    <prefix>/v1/<site>/stock                         stock per category (retained)
    <prefix>/v1/<site>/config/<node>                 signed node config (retained)
    <prefix>/v1/<site>/trust                         signed trust list (retained)
    <prefix>/v1/<site>/revocations                   signed revocation list (retained)
    <prefix>/v1/<site>/receipt/<node>                what the gateway stored (retained)

No other module writes a topic string: they call the builders here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from edge.errors import UnknownTopic

DEFAULT_PREFIX = "gatepost"
CONTRACT_VERSION = "v1"

_E = TypeVar("_E", bound=StrEnum)
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class Role(StrEnum):
    """What a node does at its site."""

    GATE = "gate"
    DEPOT = "depot"


class EventKind(StrEnum):
    """Durable node events, published at QoS 1 from the outbox."""

    PASSAGE = "passage"
    HOLD = "hold"
    HOLD_RESOLVED = "hold-resolved"
    REGISTRATION = "registration"
    SHIFT = "shift"
    DISINFECTION = "disinfection"
    DAILY_REPORT = "daily-report"
    DEVICE_FAULT = "device-fault"
    WEIGHT = "weight"


# What only happens at a gate; a depot node publishing one is a mistake.
GATE_EVENTS = frozenset(
    {EventKind.PASSAGE, EventKind.HOLD, EventKind.HOLD_RESOLVED, EventKind.REGISTRATION}
)
# What only happens at a depot (its platform scales); a gate node publishing one is a mistake.
DEPOT_EVENTS = frozenset({EventKind.WEIGHT})


class AlertKind(StrEnum):
    """Alarms the gateway raises for the command center."""

    FEVER = "fever"
    RED_CODE = "red-code"
    NODE_OFFLINE = "node-offline"
    GATE_UNATTENDED = "gate-unattended"
    REPORT_MISSING = "report-missing"
    DISINFECTION_LOW = "disinfection-low"
    TRUST_STALE = "trust-stale"
    CLOCK_SKEW = "clock-skew"
    DATA_LOSS = "data-loss"
    DEPOT_CLIMATE = "depot-climate"
    DEPOT_SENSOR_STALE = "depot-sensor-stale"
    STOCK_DISCREPANCY = "stock-discrepancy"
    STOCK_SHORTAGE = "stock-shortage"
    STOCK_REPORT_MISSING = "stock-report-missing"
    SEQ_JUMP = "seq-jump"
    DOCUMENT_REFUSED = "document-refused"
    CHAIN_BREAK = "chain-break"
    CHAIN_FORK = "chain-fork"
    CHAIN_START = "chain-start"
    HOLD_OVERRIDE = "hold-override"


class TopicKind(StrEnum):
    """The shapes of topic in the tree above."""

    STATUS = "status"
    HEALTH = "health"
    EVENT = "event"
    READING = "reading"
    ALERT = "alert"
    SITE_SUMMARY = "site-summary"
    GATE_SUMMARY = "gate-summary"
    SUPPLY_LEVEL = "supply-level"
    STOCK_SUMMARY = "stock-summary"
    CONFIG = "config"
    TRUST = "trust"
    REVOCATIONS = "revocations"
    RECEIPT = "receipt"
    UPDATE = "update"


def check_slug(value: str, what: str) -> str:
    """Return `value` if it is a valid topic segment, else raise ValueError naming `what`."""
    if not _SLUG.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not a valid topic segment "
            "(1-63 of a-z, 0-9, '-', '_', starting with a letter or digit)"
        )
    return value


@dataclass(frozen=True)
class Site:
    """A site's branch of the tree: `<prefix>/v1/<site>`."""

    name: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_slug(self.prefix, "prefix")
        check_slug(self.name, "site")

    @property
    def root(self) -> str:
        return f"{self.prefix}/{CONTRACT_VERSION}/{self.name}"

    def node(self, role: Role, name: str) -> Node:
        return Node(self, Role(role), name)


@dataclass(frozen=True)
class Node:
    """One node's branch: `<prefix>/v1/<site>/<role>/<node>`."""

    site: Site
    role: Role
    name: str

    def __post_init__(self) -> None:
        check_slug(self.name, "node")

    @property
    def root(self) -> str:
        return f"{self.site.root}/{self.role}/{self.name}"


# --- builders: node to gateway -------------------------------------------------


def status(node: Node) -> str:
    """Retained birth/death of a node; also its Last Will topic."""
    return f"{node.root}/status"


def health(node: Node) -> str:
    """Periodic heartbeat of a node."""
    return f"{node.root}/health"


def event(node: Node, kind: EventKind) -> str:
    """A durable event from a node's outbox."""
    return f"{node.root}/event/{_event_kind_for(node.role, kind)}"


def update(node: Node) -> str:
    """Retained: the result of the node's last software update (installed, rolled back...)."""
    return f"{node.root}/update"


def reading(node: Node) -> str:
    """A batch of storage temperature/humidity readings from a depot node."""
    if node.role is not Role.DEPOT:
        raise ValueError(f"reading topics belong to depot nodes, not to {node.role} {node.name!r}")
    return f"{node.root}/reading"


# --- builders: gateway to command center ----------------------------------------


def alert(site: Site, kind: AlertKind) -> str:
    """An alarm's lifecycle change (raised, acknowledged, cleared)."""
    return f"{site.root}/alert/{AlertKind(kind)}"


def site_summary(site: Site) -> str:
    """Retained counts for the whole site since the last cut-off."""
    return f"{site.root}/summary"


def gate_summary(site: Site, node: str) -> str:
    """Retained counts for one gate since the last cut-off."""
    return f"{site.root}/summary/{check_slug(node, 'node')}"


def supply_level(site: Site) -> str:
    """Retained: the site's supply alert level (IV to I) and the rule that set it."""
    return f"{site.root}/supply-level"


def stock_summary(site: Site) -> str:
    """Retained: the site's stock per category, days of cover and reserve targets."""
    return f"{site.root}/stock"


# --- builders: down to nodes ----------------------------------------------------


def config(site: Site, node: str) -> str:
    """Retained signed configuration for one node."""
    return f"{site.root}/config/{check_slug(node, 'node')}"


def trust(site: Site) -> str:
    """Retained signed trust list (kid to key, issuer, allowed use)."""
    return f"{site.root}/trust"


def revocations(site: Site) -> str:
    """Retained signed revocation list."""
    return f"{site.root}/revocations"


def receipt(site: Site, node: str) -> str:
    """Retained: how far the gateway has stored one node's outbox."""
    return f"{site.root}/receipt/{check_slug(node, 'node')}"


# --- subscription filters -------------------------------------------------------


def kind_filters(site: Site) -> dict[TopicKind, str]:
    """One filter per kind of topic in `site`'s branch (every node's status, every alert…)."""
    root = site.root
    return {
        TopicKind.STATUS: f"{root}/+/+/status",
        TopicKind.HEALTH: f"{root}/+/+/health",
        TopicKind.EVENT: f"{root}/+/+/event/+",
        TopicKind.READING: f"{root}/{Role.DEPOT}/+/reading",
        TopicKind.ALERT: f"{root}/alert/+",
        TopicKind.SITE_SUMMARY: site_summary(site),
        TopicKind.GATE_SUMMARY: f"{root}/summary/+",
        TopicKind.SUPPLY_LEVEL: supply_level(site),
        TopicKind.STOCK_SUMMARY: stock_summary(site),
        TopicKind.CONFIG: f"{root}/config/+",
        TopicKind.TRUST: trust(site),
        TopicKind.REVOCATIONS: revocations(site),
        TopicKind.RECEIPT: f"{root}/receipt/+",
        TopicKind.UPDATE: f"{root}/+/+/update",
    }


def everything(prefix: str = DEFAULT_PREFIX) -> str:
    """Filter matching every topic of this contract version under `prefix`."""
    return f"{check_slug(prefix, 'prefix')}/{CONTRACT_VERSION}/#"


def shared(group: str, topic_filter: str) -> str:
    """A `$share/` subscription, so several consumers split one stream."""
    return f"$share/{check_slug(group, 'share group')}/{topic_filter}"


# --- parsing --------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedTopic:
    """What a topic string says: its kind and the names in it."""

    kind: TopicKind
    site: Site
    role: Role | None = None
    node: str | None = None
    event_kind: EventKind | None = None
    alert_kind: AlertKind | None = None


# A fleet uses a few thousand distinct topics over and over; the gateway parses each
# message's, so the answer is remembered (ParsedTopic is immutable; refusals are not kept).
@functools.lru_cache(maxsize=16_384)
def parse(topic: str, prefix: str = DEFAULT_PREFIX) -> ParsedTopic:
    """Parse a topic of this contract.

    Raises:
        UnknownTopic: the topic is outside `prefix`, of another contract version, or
            has a shape or a name the contract does not define.
    """
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != prefix:
        raise UnknownTopic(topic, f"not under {prefix}/{CONTRACT_VERSION}/<site>/")
    if parts[1] != CONTRACT_VERSION:
        raise UnknownTopic(topic, f"contract version {parts[1]!r}, this build speaks v1")
    try:
        site = Site(parts[2], prefix)
        return _parse_rest(site, parts[3:])
    except ValueError as exc:
        raise UnknownTopic(topic, str(exc)) from None


def _parse_rest(site: Site, rest: list[str]) -> ParsedTopic:
    match rest:
        case ["alert", kind]:
            return ParsedTopic(TopicKind.ALERT, site, alert_kind=_member(AlertKind, kind))
        case ["summary"]:
            return ParsedTopic(TopicKind.SITE_SUMMARY, site)
        case ["summary", node]:
            return ParsedTopic(TopicKind.GATE_SUMMARY, site, node=check_slug(node, "node"))
        case ["supply-level"]:
            return ParsedTopic(TopicKind.SUPPLY_LEVEL, site)
        case ["stock"]:
            return ParsedTopic(TopicKind.STOCK_SUMMARY, site)
        case ["config", node]:
            return ParsedTopic(TopicKind.CONFIG, site, node=check_slug(node, "node"))
        case ["trust"]:
            return ParsedTopic(TopicKind.TRUST, site)
        case ["revocations"]:
            return ParsedTopic(TopicKind.REVOCATIONS, site)
        case ["receipt", node]:
            return ParsedTopic(TopicKind.RECEIPT, site, node=check_slug(node, "node"))
        case [role, node, *leaf] if role in Role.__members__.values():
            return _parse_node_leaf(site, Role(role), check_slug(node, "node"), leaf)
    raise ValueError(f"no topic of shape {'/'.join(rest)!r} under a site")


def _parse_node_leaf(site: Site, role: Role, node: str, leaf: list[str]) -> ParsedTopic:
    match leaf:
        case ["status"]:
            return ParsedTopic(TopicKind.STATUS, site, role, node)
        case ["health"]:
            return ParsedTopic(TopicKind.HEALTH, site, role, node)
        case ["update"]:
            return ParsedTopic(TopicKind.UPDATE, site, role, node)
        case ["event", kind]:
            event_kind = _event_kind_for(role, _member(EventKind, kind))
            return ParsedTopic(TopicKind.EVENT, site, role, node, event_kind=event_kind)
        case ["reading"] if role is Role.DEPOT:
            return ParsedTopic(TopicKind.READING, site, role, node)
    raise ValueError(f"no {role} node topic ending {'/'.join(leaf)!r}")


def _event_kind_for(role: Role, kind: str) -> EventKind:
    event_kind = EventKind(kind)
    if role is not Role.GATE and event_kind in GATE_EVENTS:
        raise ValueError(f"{event_kind} events come from gate nodes, not from a {role} node")
    if role is not Role.DEPOT and event_kind in DEPOT_EVENTS:
        raise ValueError(f"{event_kind} events come from depot nodes, not from a {role} node")
    return event_kind


def _member(enum: type[_E], value: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(m.value for m in enum)
        raise ValueError(f"{value!r} is not a known {enum.__name__} ({known})") from None
