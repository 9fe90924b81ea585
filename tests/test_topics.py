"""Topic builders and the parser agree; a topic outside the contract is refused with a reason."""

from __future__ import annotations

import re

import paho.mqtt.client as paho
import pytest

from edge.contract import topics
from edge.contract.topics import AlertKind, EventKind, ParsedTopic, Role, Site, TopicKind
from edge.errors import UnknownTopic

SITE = Site("north")
GATE = SITE.node(Role.GATE, "g01")
DEPOT = SITE.node(Role.DEPOT, "d01")

BUILT = [
    (topics.status(GATE), ParsedTopic(TopicKind.STATUS, SITE, Role.GATE, "g01")),
    (topics.health(DEPOT), ParsedTopic(TopicKind.HEALTH, SITE, Role.DEPOT, "d01")),
    (
        topics.event(GATE, EventKind.HOLD_RESOLVED),
        ParsedTopic(TopicKind.EVENT, SITE, Role.GATE, "g01", event_kind=EventKind.HOLD_RESOLVED),
    ),
    (topics.reading(DEPOT), ParsedTopic(TopicKind.READING, SITE, Role.DEPOT, "d01")),
    (
        topics.alert(SITE, AlertKind.DATA_LOSS),
        ParsedTopic(TopicKind.ALERT, SITE, alert_kind=AlertKind.DATA_LOSS),
    ),
    (topics.site_summary(SITE), ParsedTopic(TopicKind.SITE_SUMMARY, SITE)),
    (topics.gate_summary(SITE, "g01"), ParsedTopic(TopicKind.GATE_SUMMARY, SITE, node="g01")),
    (topics.supply_level(SITE), ParsedTopic(TopicKind.SUPPLY_LEVEL, SITE)),
    (topics.stock_summary(SITE), ParsedTopic(TopicKind.STOCK_SUMMARY, SITE)),
    (topics.config(SITE, "g01"), ParsedTopic(TopicKind.CONFIG, SITE, node="g01")),
    (topics.trust(SITE), ParsedTopic(TopicKind.TRUST, SITE)),
    (topics.revocations(SITE), ParsedTopic(TopicKind.REVOCATIONS, SITE)),
    (topics.receipt(SITE, "g01"), ParsedTopic(TopicKind.RECEIPT, SITE, node="g01")),
    (topics.update(DEPOT), ParsedTopic(TopicKind.UPDATE, SITE, Role.DEPOT, "d01")),
]


@pytest.mark.parametrize(("topic", "parsed"), BUILT, ids=[t for t, _ in BUILT])
def test_parse__valid(topic: str, parsed: ParsedTopic) -> None:
    assert topics.parse(topic) == parsed


def test_parse__covers_every_topic_kind() -> None:
    assert {parsed.kind for _, parsed in BUILT} == set(TopicKind)


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("other/v1/north/gate/g01/status", "not under gatepost/v1/<site>/"),
        ("gatepost/v2/north/gate/g01/status", "contract version 'v2'"),
        ("gatepost/v1/north/gate/g01/bogus", "no gate node topic ending 'bogus'"),
        ("gatepost/v1/north/gate/g01/event/party", "'party' is not a known EventKind"),
        ("gatepost/v1/north/alert/meteor", "'meteor' is not a known AlertKind"),
        ("gatepost/v1/north/gate/g01/reading", "no gate node topic ending 'reading'"),
        ("gatepost/v1/north/kiosk/k1/status", "no topic of shape 'kiosk/k1/status'"),
        ("gatepost/v1/North/gate/g01/status", "site 'North' is not a valid topic segment"),
        ("gatepost/v1/north/gate/g 01/status", "node 'g 01' is not a valid topic segment"),
        ("gatepost/v1/north", "not under gatepost/v1/<site>/"),
        ("gatepost/v1/north/summary/g01/extra", "no topic of shape"),
    ],
)
def test_parse__invalid(topic: str, why: str) -> None:
    with pytest.raises(UnknownTopic, match="unknown topic") as caught:
        topics.parse(topic)
    assert why in caught.value.why


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Site("north/east"), "site 'north/east' is not a valid topic segment"),
        (lambda: Site("+"), "site '+' is not a valid topic segment"),
        (lambda: Site("north", prefix="a#"), "prefix 'a#' is not a valid topic segment"),
        (lambda: SITE.node(Role.GATE, ""), "node '' is not a valid topic segment"),
        (lambda: SITE.node("kiosk", "k1"), "'kiosk' is not a valid Role"),  # type: ignore[arg-type]
        (lambda: topics.reading(GATE), "reading topics belong to depot nodes"),
        (lambda: topics.config(SITE, "#"), "node '#' is not a valid topic segment"),
    ],
)
def test_builders__invalid(build, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def test_filters() -> None:
    assert topics.everything() == "gatepost/v1/#"
    assert topics.shared("ingest", topics.everything("acme")) == "$share/ingest/acme/v1/#"


def test_custom_prefix_round_trips() -> None:
    site = Site("north", prefix="acme")
    topic = topics.status(site.node(Role.GATE, "g01"))
    assert topic == "acme/v1/north/gate/g01/status"
    assert topics.parse(topic, prefix="acme").site == site


def test_kind_filters__each_matches_its_kind_and_no_other() -> None:
    kinds = topics.kind_filters(SITE)
    assert set(kinds) == set(TopicKind)
    for topic, parsed in BUILT:
        matching = {kind for kind, f in kinds.items() if paho.topic_matches_sub(f, topic)}
        assert matching == {parsed.kind}, topic
    assert not paho.topic_matches_sub(kinds[TopicKind.STATUS], "gatepost/v1/south/gate/g01/status")
