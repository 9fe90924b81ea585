"""The load generator's fleet sends valid passages, every node's seq 1..N once, from several processes."""

from __future__ import annotations

import queue
from collections import Counter

import pytest

from edge.contract import catalogue, topics
from edge.contract.base import chain_hash
from edge.contract.catalogue import encode
from edge.contract.events import Passage
from edge.contract.presence import Birth
from edge.contract.topics import Role, Site
from edge.mqtt import Endpoint
from simulators.broker import PrivateBroker
from simulators.fleet import FleetPlan, run_fleet
from tests.conftest import Subscriber, identity


def fleet_endpoints(broker: PrivateBroker, plan: FleetPlan) -> list[Endpoint]:
    """One identity per publisher process: each is a connection of its own."""
    return [identity(broker, f"fleet-{i}") for i in range(plan.processes)]


def drain(sub: Subscriber, count: int) -> list[catalogue.Message]:
    """`count` messages, decoded, then a short wait proving nothing more came."""
    messages = [sub.next(10) for _ in range(count)]
    with pytest.raises(queue.Empty):
        sub.messages.get(timeout=0.3)
    return [catalogue.decode(m.topic, m.payload) for m in messages]


def test_fleet__every_node_sends_seq_1_to_n_once_as_valid_passages(
    broker: PrivateBroker, mqtt_subscriber: Subscriber
) -> None:
    plan = FleetPlan(site="north", nodes=3, events_per_node=20, processes=2, window=7)
    site = Site(plan.site)
    mqtt_subscriber.subscribe(topics.everything())

    result = run_fleet(plan, fleet_endpoints(broker, plan), timeout_s=30)

    assert result.errors == {}
    assert result.published == plan.total == 60
    assert result.seconds > 0 and result.rate > 0
    assert sorted(w.acknowledged for w in result.workers) == [20, 40]
    messages = drain(mqtt_subscriber, plan.total + plan.nodes)
    births = [m for m in messages if isinstance(m.payload, Birth)]
    passages = [m for m in messages if isinstance(m.payload, Passage)]
    assert len(births) + len(passages) == len(messages)
    assert sorted(str(m.topic.node) for m in births) == ["g0001", "g0002", "g0003"]
    by_node: dict[str | None, list[int]] = {}
    for message in passages:
        assert message.topic.site == site and message.topic.role is Role.GATE
        assert isinstance(message.payload, Passage)
        by_node.setdefault(message.topic.node, []).append(message.payload.seq)
    # Each node's events arrive in seq order: one publisher owns a node.
    assert by_node == {name: list(range(1, 21)) for name in ("g0001", "g0002", "g0003")}
    # And form each node's hash chain, as a real outbox would: the gateway checks it.
    for name in ("g0001", "g0002", "g0003"):
        chain = [m.payload for m in passages if m.topic.node == name]
        links = [e.prev_hash for e in chain if isinstance(e, Passage)]
        assert links[1:] == [chain_hash(encode(e)) for e in chain[:-1]]
        assert links[0] is None
    assert len({m.payload.event_id for m in passages}) == 60  # type: ignore[attr-defined]
    outcomes = Counter(m.payload.outcome for m in passages)  # type: ignore[attr-defined]
    assert outcomes["allow"] > 30


def test_fleet__a_broker_that_is_not_there_is_a_reported_error_not_a_hang(
    broker: PrivateBroker,
) -> None:
    broker.stop()
    plan = FleetPlan(nodes=2, events_per_node=5, processes=2, births=False)

    result = run_fleet(plan, fleet_endpoints(broker, plan), timeout_s=10)

    assert result.published == 0
    assert set(result.errors) == {0, 1}
    assert all("ConnectionRefusedError" in e for e in result.errors.values()), result.errors
