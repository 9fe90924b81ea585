"""Retained summaries: counts since the cut-off per gate and per site, for late subscribers too."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from edge.contract import topics
from edge.contract.base import Payload
from edge.contract.catalogue import decode
from edge.contract.command import Summary
from edge.contract.events import Passage
from edge.contract.topics import Site
from edge.mqtt import publish
from gateway.config import GatewayConfig, SiteSection, SummarySection
from gateway.store import open_store
from gateway.store.settings import StoreSection
from gateway.summaries import SummaryPublisher
from simulators.broker import PrivateBroker
from tests.conftest import Subscriber, connect, identity
from tests.gateway.factory import Gates

NORTH = Site("north")


def test_summaries__a_late_subscriber_gets_each_gates_and_the_sites_counts_retained(
    broker: PrivateBroker, store_section: StoreSection
) -> None:
    config = GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01", "g02"), depots=("d01",)),),
        store=store_section,
        summary=SummarySection(every_s=0.01),
    )
    store = open_store(config.store)
    gates = Gates("north")
    store.write(
        [
            gates.passage("g01"),
            gates.passage("g01", outcome="hold", reasons=("fever",), temperature_c=38.5,
                          colour="yellow", subject_ref="cd" * 32),
            gates.passage("g02", outcome="deny", colour="red", reasons=("red",)),
            gates.passage("g02", subject="vehicle", occupants=3, vehicle_plate="京A12345"),
            gates.inbound("g01", Passage,
                          node_time=datetime.now(UTC) - timedelta(days=2), direction="in",
                          outcome="allow", credential="none"),
        ]
    )  # fmt: skip
    client = connect(identity(broker, "gateway-pub"))
    sent: list[str] = []

    def send(topic: str, payload: Payload) -> None:
        sent.append(topic)
        publish(client, topic, payload).wait_for_publish(5)

    publisher = SummaryPublisher(config, store, send, lambda: datetime.now(UTC))
    assert publisher.publish_due() == 3
    time.sleep(0.02)
    assert publisher.publish_due() == 0, "nothing changed: nothing sent again"
    store.write([gates.passage("g01")])
    publisher.touched("north", "g01")
    time.sleep(0.02)
    assert publisher.publish_due() == 2, "g01 and the site changed; g02 did not"
    assert sent[3:] == [topics.gate_summary(NORTH, "g01"), topics.site_summary(NORTH)]
    client.disconnect()
    client.loop_stop()

    late = Subscriber.connect(identity(broker, "command-center-tool"))
    late.subscribe(f"{NORTH.root}/summary/#")
    late.subscribe(topics.site_summary(NORTH))
    got: dict[str, Summary] = {}
    raw: list[bytes] = []
    for _ in range(3):
        message = late.next()
        assert message.retain
        raw.append(bytes(message.payload))
        decoded = decode(message.topic, message.payload).payload
        assert isinstance(decoded, Summary)
        got[message.topic] = decoded
    late.close()
    g01 = got[topics.gate_summary(NORTH, "g01")].counts
    g02 = got[topics.gate_summary(NORTH, "g02")].counts
    site = got[topics.site_summary(NORTH)]
    assert (g01.person_checks, g01.held, g01.fever, g01.yellow) == (3, 1, 1, 1)
    assert (g02.person_checks, g02.vehicle_checks, g02.turned_back, g02.red) == (1, 1, 1, 1)
    assert g02.temperature_readings == 4  # one person and three occupants
    assert site.counts.person_checks == 4  # the event two days old is in an earlier period
    assert (site.nodes_online, site.nodes_total) == (0, 3)
    for payload in raw:
        assert b"cd" * 32 not in payload
        assert "京A12345".encode() not in payload
    store.close()
