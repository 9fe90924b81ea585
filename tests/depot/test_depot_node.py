"""The depot node end to end: sensors on a real pty, the node, a locked Mosquitto, a subscriber."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from edge.contract import catalogue, topics
from edge.contract.events import DepotReadingBatch, DeviceFault
from edge.contract.presence import Birth, Health
from edge.contract.topics import EventKind, Role, Site
from edge.depot.config import load_config, write_config
from edge.depot.node import DepotNode
from edge.mqtt import BrokerUrl, Endpoint
from firmware_tools.site_pki import IdentityRole, SitePki
from simulators.broker import PrivateBroker, free_port
from simulators.devices.modbus_bus import (
    SensorFaults,
    SimulatedModbusBus,
    SimulatedSensor,
    constant,
)
from simulators.processes import python_module, spawn, stop
from tests.conftest import Subscriber

SITE = Site("north")
D01 = SITE.node(Role.DEPOT, "d01")
COLD, FREEZER, DRY = 1, 2, 3
# Node time runs 60 times faster than the wall: a 2-minute max_interval_s passes in 2 s.
SPEEDUP = 60.0


def compressed_clock(speedup: float) -> Callable[[], datetime]:
    began, start = time.monotonic(), datetime.now(UTC)
    return lambda: start + timedelta(seconds=(time.monotonic() - began) * speedup)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[PrivateBroker]:
    """The site's broker as deployed: TLS, client certificates, the site's ACL.

    The depot is `depot-d01` and the subscriber a gateway identity (only a gateway reads
    events such as device faults).
    """
    pki = SitePki.init(tmp_path / "pki", SITE.name)
    pki.issue(IdentityRole.DEPOT, "d01")
    pki.issue(IdentityRole.GATEWAY, "listener")
    with PrivateBroker(tmp_path / "broker", pki=pki) as running:
        yield running


@pytest.fixture
def rs485(tmp_path: Path) -> Iterator[SimulatedModbusBus]:
    sensors = [
        # This module reads 0.3 °C high; the config's calibration takes it off.
        SimulatedSensor(COLD, constant(4.0), constant(65.0), calibration_error_c=0.3),
        SimulatedSensor(FREEZER, constant(-18.5), constant(40.2)),
        SimulatedSensor(DRY, constant(22.0), constant(55.5)),
    ]
    with SimulatedModbusBus(tmp_path / "rs485", sensors) as simulated:
        yield simulated


def depot_config(tmp_path: Path, broker: PrivateBroker, rs485: SimulatedModbusBus) -> Path:
    profile = tmp_path / "fast-bus.yaml"  # short waits: a dead sensor costs 2 x 0.15 s a round
    profile.write_text("part: xy-md02\nreply_timeout_s: 0.15\nretries: 1\n")
    bus = {
        "url": str(rs485.path), "profile": str(profile), "poll_s": 1, "fault_after": 2,
        "sensors": [
            {"zone": "cold-store-1", "slave_id": COLD, "max_interval_s": 120,
             "calibration": {"temperature_c": -0.3}},
            {"zone": "freezer", "slave_id": FREEZER, "max_interval_s": 120},
            {"zone": "dry-store", "slave_id": DRY, "max_interval_s": 120},
        ],
    }  # fmt: skip
    return write_config(
        tmp_path / "depot.yaml", site=SITE.name, name="d01",
        endpoint=broker.endpoint("depot-d01"), buses=[bus],
        broker={"heartbeat_s": 1, "reconnect_max_s": 0.5},
    )  # fmt: skip


def listener(broker: PrivateBroker) -> Subscriber:
    sub = Subscriber.connect(broker.endpoint("gateway-listener"), "listener")
    sub.subscribe(f"{SITE.root}/depot/#")
    return sub


class Seen:
    """What the subscriber received from the depot, decoded, in arrival order."""

    def __init__(self, sub: Subscriber) -> None:
        self.sub = sub
        self.payloads: list[Any] = []
        self.topics: dict[str, set[str]] = {}  # payload type -> topics it came on

    def until(self, condition: Callable[[], bool], timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"not within {timeout_s} s: {self.payloads[-5:]}"
            try:
                message = self.sub.next(0.2)
            except AssertionError:
                continue
            payload = catalogue.decode(message.topic, message.payload).payload
            self.payloads.append(payload)
            self.topics.setdefault(type(payload).__name__, set()).add(message.topic)

    def of(self, kind: type[Any]) -> list[Any]:
        found: dict[str, Any] = {}  # at least once: each event once, by its id
        for payload in self.payloads:
            if isinstance(payload, kind):
                found.setdefault(getattr(payload, "event_id", str(len(found))), payload)
        return list(found.values())

    def faults(self) -> list[tuple[str, str, str]]:
        return [(f.device, f.fault, f.state) for f in self.of(DeviceFault)]

    def at(self, zone: str) -> list[datetime]:
        return [r.at for b in self.of(DepotReadingBatch) for r in b.readings if r.sensor == zone]

    def readings(self, zone: str) -> list[tuple[str, float | None]]:
        return [
            (r.status, r.temperature_c)
            for batch in self.of(DepotReadingBatch) for r in batch.readings if r.sensor == zone
        ]  # fmt: skip


@contextmanager
def running(node: DepotNode) -> Iterator[DepotNode]:
    stop_event = threading.Event()
    runner = threading.Thread(target=node.run, args=(stop_event,))
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not (node.pollers or time.monotonic() > deadline):
            time.sleep(0.02)  # the outbox is in place before the first poller starts
        yield node
    finally:
        stop_event.set()
        runner.join(15)
        assert not runner.is_alive()


def test_depot_node__readings_reach_the_broker_and_a_dead_sensor_is_one_fault_raised_and_cleared(
    tmp_path: Path, locked: PrivateBroker, rs485: SimulatedModbusBus
) -> None:
    sub = listener(locked)
    seen = Seen(sub)
    node = DepotNode(load_config(depot_config(tmp_path, locked, rs485)),
                     clock=compressed_clock(SPEEDUP))  # fmt: skip
    with running(node):
        seen.until(lambda: bool(seen.of(Birth)) and len(seen.of(DepotReadingBatch)) >= 1)
        birth = seen.of(Birth)[0]
        assert birth.role == Role.DEPOT
        assert birth.devices == {"cold-store-1": "ok", "freezer": "ok", "dry-store": "ok",
                                 "outbox": "ok"}  # fmt: skip
        first = seen.of(DepotReadingBatch)[0]
        assert [(r.sensor, r.bus_address, r.status, r.temperature_c, r.humidity_pct)
                for r in first.readings] == [
            ("cold-store-1", COLD, "ok", 4.0, 65.0),  # calibrated
            ("freezer", FREEZER, "ok", -18.5, 40.2),
            ("dry-store", DRY, "ok", 22.0, 55.5),
        ]  # fmt: skip
        # Nothing moves: the next report of each zone comes max_interval_s (node time) later,
        # in the first round after that.
        zones = ("cold-store-1", "freezer", "dry-store")
        seen.until(lambda: all(len(seen.at(zone)) >= 2 for zone in zones))
        for zone in zones:
            first_at, second_at = seen.at(zone)[:2]
            assert second_at - first_at >= timedelta(seconds=120)

        rs485.sensors[FREEZER].faults = SensorFaults(dead=True)
        seen.until(lambda: ("freezer", "timeout", "raised") in seen.faults())
        seen.until(lambda: ("timeout", None) in seen.readings("freezer"))
        seen.until(lambda: any(h.devices.get("freezer") == "fault" for h in seen.of(Health)))
        time.sleep(3)  # more failed rounds: no second raise, no report every round
        rs485.sensors[FREEZER].faults = SensorFaults()
        seen.until(lambda: ("freezer", "timeout", "cleared") in seen.faults())
        seen.until(lambda: seen.readings("freezer")[-1] == ("ok", -18.5))
        time.sleep(2)
        seen.until(lambda: True)
    sub.close()
    assert seen.faults() == [("freezer", "timeout", "raised"), ("freezer", "timeout", "cleared")]
    # In fault, a failed poll is reported once, then once per max_interval_s (node time),
    # not every round.
    failed = [
        r.at for b in seen.of(DepotReadingBatch) for r in b.readings
        if r.sensor == "freezer" and r.status == "timeout"
    ]  # fmt: skip
    assert failed
    assert all(later - earlier >= timedelta(seconds=120) for earlier, later in pairwise(failed))
    # Every batch is on the depot's reading topic, every fault on its event topic.
    assert seen.topics["DepotReadingBatch"] == {topics.reading(D01)}
    assert seen.topics["DeviceFault"] == {topics.event(D01, EventKind.DEVICE_FAULT)}


def outbox_seqs(state: Path) -> dict[int, bytes]:
    """seq -> payload of every row the killed node's outbox holds (it keeps them all:
    no gateway confirmed any)."""
    db = sqlite3.connect(state / "outbox.db")
    try:
        return dict(db.execute("SELECT seq, payload FROM outbox"))
    finally:
        db.close()


def test_depot_node__killed_outright_during_a_broker_outage_loses_no_reported_reading(
    tmp_path: Path, locked: PrivateBroker, rs485: SimulatedModbusBus
) -> None:
    # The cold store warms 0.5 °C a second: every round has a reading to report.
    began = rs485.clock()
    rs485.sensors[COLD].temperature_c = lambda t: 4.0 + 0.5 * int(t - began)
    config = depot_config(tmp_path, locked, rs485)

    def start() -> subprocess.Popen[bytes]:
        return spawn(python_module("edge.cli", "edge", "run", "--config", str(config)))

    sub = listener(locked)
    seen = Seen(sub)
    node = start()
    try:
        seen.until(lambda: len(seen.of(DepotReadingBatch)) >= 2)
        before = {b.seq for b in seen.of(DepotReadingBatch)}
        locked.stop()  # the site's network is down: rounds go to the outbox only
        time.sleep(4)
        node.send_signal(signal.SIGKILL)
        node.wait(5)
        kept = outbox_seqs(tmp_path / "state-d01")
        unsent = {seq for seq in kept if seq > max(before)}
        assert len(unsent) >= 2, f"the node recorded too little during the outage: {kept.keys()}"
        sub.close()
        locked.start()
        sub = listener(locked)
        seen = Seen(sub)
        node = start()
        # Every row it committed comes out after the restart, byte for byte.
        seen.until(lambda: {b.seq for b in seen.of(DepotReadingBatch)} >= unsent, timeout_s=30)
    finally:
        stop(node, "depot node")
        sub.close()
    arrived = {b.seq: catalogue.encode(b) for b in seen.of(DepotReadingBatch)}
    assert all(arrived[seq] == kept[seq] for seq in unsent)
    seqs = sorted(arrived)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"gap in {seqs}"
    warming = [t for s, t in seen.readings("cold-store-1") if t is not None]
    assert warming == sorted(warming)  # in the order they were taken


def outbox_faults(node: DepotNode) -> list[tuple[str, str, str, str | None]]:
    """Each fault event in the outbox; of a detail only its start (pymodbus words the rest)."""
    rows = node.outbox.after(0, 10_000)
    events = [catalogue.decode(row.topic, row.payload).payload for row in rows]
    return [
        (e.device, e.fault, e.state, e.detail and e.detail.split(" (")[0])
        for e in events if isinstance(e, DeviceFault)
    ]  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.1)


def test_depot_node__a_fault_is_raised_once_across_restarts_and_cleared_when_gone(
    tmp_path: Path, rs485: SimulatedModbusBus
) -> None:
    # No broker here: what the node tells the gateway is what its outbox holds.
    profile = tmp_path / "fast-bus.yaml"
    profile.write_text("part: xy-md02\nreply_timeout_s: 0.15\nretries: 1\n")
    zones = [("cold-store-1", COLD), ("freezer", FREEZER), ("dry-store", DRY)]

    def config(*names: str) -> DepotNode:
        bus = {"url": str(rs485.path), "profile": str(profile), "poll_s": 1,
               "sensors": [{"zone": z, "slave_id": s} for z, s in zones if z in names]}  # fmt: skip
        path = write_config(
            tmp_path / "depot.yaml", site=SITE.name, name="d01",
            endpoint=Endpoint(BrokerUrl.parse(f"mqtt://127.0.0.1:{free_port()}")), buses=[bus],
        )  # fmt: skip
        return DepotNode(load_config(path))

    rs485.sensors[FREEZER].faults = SensorFaults(dead=True)
    raised = ("freezer", "timeout", "raised", "no answer")
    with running(config("cold-store-1", "freezer", "dry-store")) as node:
        wait_for(lambda: raised in outbox_faults(node))
    with running(config("cold-store-1", "freezer", "dry-store")) as node:
        wait_for(lambda: any(t.state == "fault" for t in node.pollers[0].tracks))
        time.sleep(3)  # failed rounds after the restart
        assert outbox_faults(node) == [raised]  # not raised a second time
        assert node.devices()["freezer"] == "fault"
        rs485.sensors[FREEZER].faults = SensorFaults()
        wait_for(lambda: len(outbox_faults(node)) == 2)
        assert outbox_faults(node)[1] == ("freezer", "timeout", "cleared", None)
        rs485.sensors[FREEZER].faults = SensorFaults(dead=True)
        wait_for(lambda: len(outbox_faults(node)) == 3)
    # The freezer's sensor is taken off the bus's config while in fault: nothing will
    # clear it, so the node does once the parts have had their time to raise it again.
    with running(config("cold-store-1", "dry-store")) as node:
        wait_for(lambda: len(outbox_faults(node)) == 4, timeout_s=30)
        assert outbox_faults(node)[3] == (
            "freezer", "timeout", "cleared", "not present after a restart"
        )  # fmt: skip
        assert "freezer" not in node.devices()
