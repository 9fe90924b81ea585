"""Nothing lost when the broker restarts: real node uplinks, a real gateway, a real Mosquitto.

A restarted Mosquitto (Debian's 2.0) brings back a persistent session without its shared
subscriptions, so until the gateway subscribes again every event goes to nobody, though
the broker acknowledged it to the node. These tests restart the broker under load and
check that every committed event is stored at the gateway once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.contract.events import Passage
from edge.contract.presence import Birth, Health
from edge.contract.topics import Role, Site
from edge.outbox import Outbox, OutboxError
from edge.uplink import Uplink, UplinkSettings
from firmware_tools.site_pki import IdentityRole, SitePki
from gateway.service import Gateway
from simulators.broker import PrivateBroker
from tests.conftest import gateway_running, identity

SITE = Site("north")
GATES = ("g01", "g02", "g03")
EVENTS_PER_S = 30  # per gate: a busy gate, three of them

pytestmark = pytest.mark.slow


class LoadedNode:
    """A gate's real outbox and uplink, with a thread committing passages at a steady rate."""

    def __init__(self, folder: Path, name: str, broker: PrivateBroker) -> None:
        self.node = SITE.node(Role.GATE, name)
        self.outbox = Outbox(folder / name / "outbox.db", self.node)
        self.uplink = Uplink(
            UplinkSettings(
                identity(broker, name, IdentityRole.GATE), heartbeat_s=1, reconnect_min_s=0.2, reconnect_max_s=0.5
            ),
            self.node, self.outbox, birth=self._birth, health=self._health,
        )  # fmt: skip
        self.stop = threading.Event()
        self.feeding = threading.Event()
        self.threads = [
            threading.Thread(target=self.uplink.run, args=(self.stop,)),
            threading.Thread(target=self._feed),
        ]
        for thread in self.threads:
            thread.start()

    def _birth(self, session: int) -> Birth:
        return Birth(session=session, node_time=datetime.now(UTC), role=Role.GATE,
                     version="test", config_hash="0" * 16, heartbeat_s=1)  # fmt: skip

    def _health(self, session: int) -> Health:
        return Health(node_time=datetime.now(UTC), session=session, uptime_s=0,
                      last_seq=self.outbox.last_seq, outbox_depth=self.outbox.depth,
                      outbox_capacity=self.outbox.capacity)  # fmt: skip

    def _feed(self) -> None:
        self.feeding.set()
        while not self.stop.is_set() and self.feeding.is_set():
            try:
                self.outbox.add(self._passage, datetime.now(UTC))
            except OutboxError as exc:  # pragma: no cover - a test failure, said clearly
                raise AssertionError(f"{self.node}: {exc}") from exc
            self.uplink.wake()
            time.sleep(1 / EVENTS_PER_S)

    @staticmethod
    def _passage(ids: dict[str, Any]) -> Passage:
        return Passage(**ids, direction="in", outcome="allow", credential="none")

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """The site's broker as deployed: TLS, client certificates and the site's ACL.

    Every identity is issued before it starts: Mosquitto reads the ACL at its start.
    """
    pki = SitePki.init(tmp_path / "pki", SITE.name)
    for gate in GATES:
        pki.issue(IdentityRole.GATE, gate)
    pki.issue(IdentityRole.GATEWAY, "gw-gateway")  # gateway_running's, for gateway.db
    with PrivateBroker(tmp_path / "broker", pki=pki) as running:
        yield running


@pytest.fixture
def nodes(tmp_path: Path, broker: PrivateBroker) -> Iterator[list[LoadedNode]]:
    running = [LoadedNode(tmp_path / "nodes", name, broker) for name in GATES]
    yield running
    for node in running:
        node.close()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.1)


def stop_feeding(nodes: list[LoadedNode]) -> None:
    for node in nodes:
        node.feeding.clear()


def assert_all_stored_once(gateway: Gateway, nodes: list[LoadedNode], drain_s: float) -> None:
    """Every committed event is at the gateway exactly once, and no outbox holds any."""
    started = time.monotonic()
    wait_until(lambda: all(n.outbox.depth == 0 for n in nodes), drain_s, "every outbox drained")
    print(f"drained {time.monotonic() - started:.1f} s after the load stopped")
    for node in nodes:
        seqs = gateway.store.event_seqs(SITE.name, node.node.name)
        assert seqs == list(range(1, node.outbox.last_seq + 1)), node.node
        assert node.outbox.last_seq > 100


def test_delivery__a_broker_restarted_under_load_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, broker: PrivateBroker, nodes: list[LoadedNode],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    with (
        caplog.at_level(logging.INFO, logger="gateway.receipts"),
        gateway_running(broker, tmp_path / "gateway.db", SITE.name, GATES) as gateway,
    ):
        time.sleep(3)
        broker.stop()  # a restart with an outage: the nodes buffer
        time.sleep(2)
        broker.start()
        time.sleep(4)
        broker.stop()  # a quick restart: the nodes are back before the gateway is
        broker.start()
        time.sleep(4)
        stop_feeding(nodes)
        assert_all_stored_once(gateway, nodes, drain_s=30)
    # Events did go to nobody, and were asked for again: the PUBACK alone lost them.
    assert "asking the node to send them again" in caplog.text


def test_delivery__a_broker_restarted_while_the_gateway_is_down_loses_nothing(
    tmp_path: Path, broker: PrivateBroker, nodes: list[LoadedNode],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    store = tmp_path / "gateway.db"
    with gateway_running(broker, store, SITE.name, GATES):
        time.sleep(2)
    # The gateway is down; its session waits on the broker, which then restarts and
    # forgets the shared subscription that would have queued the events.
    time.sleep(1)
    broker.stop()
    broker.start()
    time.sleep(3)
    with (
        caplog.at_level(logging.INFO, logger="gateway.receipts"),
        gateway_running(broker, store, SITE.name, GATES) as gateway,
    ):
        time.sleep(2)
        stop_feeding(nodes)
        assert_all_stored_once(gateway, nodes, drain_s=30)
    assert "asking the node to send them again" in caplog.text
