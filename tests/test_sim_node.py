"""The simulated gate node speaks the contract: birth first, gap-free seq, Last Will on a crash."""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest

from edge.cli import endpoint_args
from edge.contract import catalogue, topics
from edge.contract.base import Event, chain_hash
from edge.contract.catalogue import encode
from edge.contract.events import Hold, HoldResolved, Passage
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import Role, Site, TopicKind
from simulators.broker import PrivateBroker
from simulators.node import SimulatedGateNode
from simulators.processes import python_module, spawn, stop
from tests.conftest import Subscriber, identity

SITE = Site("north")


def collect(sub: Subscriber, count: int) -> list[catalogue.Message]:
    return [catalogue.decode(m.topic, m.payload) for m in (sub.next() for _ in range(count))]


def test_sim_node__births_then_publishes_gap_free_events_then_dies_cleanly(
    broker: PrivateBroker, mqtt_subscriber: Subscriber
) -> None:
    mqtt_subscriber.subscribe(topics.everything())
    node = SimulatedGateNode(
        identity(broker, "g01"), SITE, "g01", heartbeat_s=1, event_interval_s=0.02
    )
    stop_event = threading.Event()
    runner = threading.Thread(target=node.run, args=(stop_event,))
    runner.start()
    messages = collect(mqtt_subscriber, 60)
    stop_event.set()
    runner.join(10)
    assert not runner.is_alive()

    first = messages[0]
    assert first.topic.kind is TopicKind.STATUS and isinstance(first.payload, Birth)
    assert first.payload.session == 1 and first.payload.role is Role.GATE

    events = [m.payload for m in messages if m.topic.kind is TopicKind.EVENT]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # type: ignore[attr-defined]
    assert len({e.event_id for e in events}) == len(events)  # type: ignore[attr-defined]
    # Chained as a real outbox chains them: each names the bytes of the one before.
    links = [e.prev_hash for e in events if isinstance(e, Event)]
    assert links == [None] + [chain_hash(encode(e)) for e in events[:-1]]
    passages = {e.event_id: e for e in events if isinstance(e, Passage)}
    holds = {e.event_id: e for e in events if isinstance(e, Hold)}
    assert holds and all(h.passage_id in passages for h in holds.values())
    assert all(r.hold_id in holds for r in events if isinstance(r, HoldResolved))
    assert any(isinstance(m.payload, Health) for m in messages)

    rest: list[catalogue.Message] = []
    while not rest or not isinstance(rest[-1].payload, Death):
        rest.append(collect(mqtt_subscriber, 1)[0])
    death = rest[-1].payload
    assert isinstance(death, Death) and (death.reason, death.session) == ("shutdown", 1)


def start_sim_node(broker: PrivateBroker, name: str) -> subprocess.Popen[bytes]:
    """`gatepost sim node` as its own process, as the demo runs it."""
    return spawn(python_module(
        "edge.cli", "sim", "node", *endpoint_args(identity(broker, name)), "--site", "north", "--node", name,
    ))  # fmt: skip


def test_sim_node__killed_process_leaves_its_last_will(
    broker: PrivateBroker, mqtt_subscriber: Subscriber
) -> None:
    status_topic = topics.status(SITE.node(Role.GATE, "g02"))
    mqtt_subscriber.subscribe(status_topic)
    process = start_sim_node(broker, "g02")
    try:
        birth = catalogue.decode(status_topic, mqtt_subscriber.next(10).payload).payload
        assert isinstance(birth, Birth)
        process.send_signal(signal.SIGKILL)
        process.wait(5)
        death = catalogue.decode(status_topic, mqtt_subscriber.next(10).payload).payload
        assert isinstance(death, Death)
        assert (death.reason, death.session) == ("lost", birth.session)
    finally:
        stop(process, "sim node")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sim_node__signal_publishes_clean_offline_and_exits_zero(
    broker: PrivateBroker, mqtt_subscriber: Subscriber, signum: signal.Signals
) -> None:
    status_topic = topics.status(SITE.node(Role.GATE, "g03"))
    mqtt_subscriber.subscribe(status_topic)
    process = start_sim_node(broker, "g03")
    try:
        assert isinstance(
            catalogue.decode(status_topic, mqtt_subscriber.next(10).payload).payload, Birth
        )
        process.send_signal(signum)
        assert process.wait(10) == 0
        death = catalogue.decode(status_topic, mqtt_subscriber.next(5).payload).payload
        assert isinstance(death, Death) and death.reason == "shutdown"
    finally:
        stop(process, "sim node")
