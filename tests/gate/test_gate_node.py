"""The gate node end to end: simulated devices on ptys, a real broker, mock pins, real codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from playwright.sync_api import Page, expect

from edge.contract import catalogue, topics
from edge.contract.documents import (
    NodeConfigBody,
    RevocationListBody,
    SignedNodeConfig,
    SignedRevocationList,
)
from edge.contract.events import DeviceFault
from edge.contract.presence import Birth
from edge.contract.topics import EventKind, Role, Site
from edge.credentials.trust import revocation_entry
from edge.credentials.verifier import Verifier
from edge.gate.config import load_config
from edge.gate.node import GateNode
from edge.gate.views import HoldResolution
from gateway.store.records import EventQuery
from simulators.broker import PrivateBroker
from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermal_array import SimulatedThermalArray
from simulators.devices.thermometer import SimulatedThermometer
from simulators.processes import python_module, spawn, stop
from simulators.site import SiteKit
from tests.conftest import Subscriber, connect, gateway_running, identity

RELAY_PIN = 17


@dataclass
class Devices:
    scanner: SimulatedScanner
    thermometer: SimulatedThermometer

    def person(self, body_c: float, code: str) -> None:
        self.thermometer.present(body_c, duration_s=0.6)
        time.sleep(0.8)
        self.scanner.scan(code)


@pytest.fixture
def kit(tmp_path: Path, broker: PrivateBroker) -> SiteKit:
    kit = SiteKit(tmp_path / "site")
    kit.publish_trust_list(identity(broker, "provisioning"))
    return kit


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[Devices]:
    scanner = SimulatedScanner(tmp_path / "scanner").start()
    thermometer = SimulatedThermometer(tmp_path / "thermometer").start()
    yield Devices(scanner, thermometer)
    scanner.stop()
    thermometer.stop()


def config_for(kit: SiteKit, broker: PrivateBroker, devices: Devices, **sections: Any) -> Path:
    settings: dict[str, Any] = {
        "broker": {"heartbeat_s": 1, "reconnect_max_s": 0.5},
        "gpio": {"pin_factory": "mock", "barrier": {"relay_pin": RELAY_PIN, "pulse_s": 0.1}},
        "console": {"enabled": False},
    }
    return kit.gate_config(
        "g01", identity(broker, "g01"),
        {"scanner": {"url": str(devices.scanner.path), "profile": "gm65-scanner"},
         "thermometer": {"url": str(devices.thermometer.path), "profile": "gy-mcu90614"}},
        **{**settings, **sections},
    )  # fmt: skip


def events_of(
    sub: Subscriber, kind: EventKind, count: int, timeout_s: float = 15,
    seen: set[str] | None = None,
) -> list[Any]:  # fmt: skip
    """The next `count` events of `kind`; with `seen`, each event once, by its id.

    Delivery is at least once: a node with no gateway to confirm its events sends them
    again after every reconnect.
    """
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < count:
        message = sub.next(max(0.1, deadline - time.monotonic()))
        decoded = catalogue.decode(message.topic, message.payload, "gatepost")
        payload: Any = decoded.payload
        if decoded.topic.kind != topics.TopicKind.EVENT or payload.kind != kind:
            continue
        if seen is not None:
            if payload.event_id in seen:
                continue
            seen.add(payload.event_id)
        found.append(payload)
    return found


def wait_until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.02)


@pytest.fixture
def node_in_process(kit: SiteKit, broker: PrivateBroker, devices: Devices) -> Iterator[GateNode]:
    with running_node(config_for(kit, broker, devices)) as node:
        yield node


def test_gate_node__green_passes_red_is_stopped_fever_is_held(
    kit: SiteKit, devices: Devices, node_in_process: GateNode, mqtt_subscriber: Subscriber
) -> None:
    mqtt_subscriber.subscribe(topics.everything())
    relay = node_in_process.io.pin_factory.pin(RELAY_PIN)  # type: ignore[union-attr]

    devices.person(36.6, kit.code("green"))
    (allowed,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
    assert (allowed.outcome, allowed.colour, allowed.temperature_c) == ("allow", "green", 36.6)
    wait_until(lambda: [s.state for s in relay.states][:3] == [False, True, False])

    devices.person(36.5, kit.code("red"))
    (denied,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
    assert (denied.outcome, denied.reasons) == ("deny", ("red-code",))

    devices.person(38.2, kit.code("green"))
    (held,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
    (hold,) = events_of(mqtt_subscriber, EventKind.HOLD, 1)
    assert (held.outcome, held.reasons, held.temperature_c) == ("hold", ("fever",), 38.2)
    assert hold.passage_id == held.event_id
    # One pulse in all: red and fever never moved the relay.
    assert [s.state for s in relay.states] == [False, True, False]
    assert node_in_process.checkpoint.update().holds[0].hold_id == hold.event_id


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_RR needs root or the unit's LimitRTPRIO")
def test_gate_node__the_scanner_and_thermometer_decide_on_real_time_threads(
    node_in_process: GateNode,
) -> None:
    threads = {thread.name: thread.native_id or 0 for thread in threading.enumerate()}
    for name in ("scanner", "thermometer"):
        assert os.sched_getscheduler(threads[name]) == os.SCHED_RR, name
        assert os.sched_getparam(threads[name]).sched_priority == 10, name
    assert os.sched_getscheduler(threads["uplink"]) == os.SCHED_OTHER  # draining is not urgent


def test_gate_node__an_unplugged_scanner_is_a_device_fault_raised_then_cleared(
    kit: SiteKit, devices: Devices, node_in_process: GateNode, mqtt_subscriber: Subscriber
) -> None:
    mqtt_subscriber.subscribe(topics.event(node_in_process.node, EventKind.DEVICE_FAULT))
    devices.scanner.unplug()
    (raised,) = events_of(mqtt_subscriber, EventKind.DEVICE_FAULT, 1)
    assert (raised.device, raised.fault, raised.state) == ("scanner", "unplugged", "raised")
    assert node_in_process.devices()["scanner"] == "unplugged"
    devices.scanner.plug()
    (cleared,) = events_of(mqtt_subscriber, EventKind.DEVICE_FAULT, 1)
    assert (cleared.fault, cleared.state) == ("unplugged", "cleared")
    mqtt_subscriber.subscribe(topics.event(node_in_process.node, EventKind.PASSAGE))
    devices.person(36.6, kit.code("green"))
    (passage,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
    assert passage.outcome == "allow"


def test_gate_node__a_forged_trust_list_is_refused_and_reported(
    kit: SiteKit, broker: PrivateBroker, node_in_process: GateNode, mqtt_subscriber: Subscriber
) -> None:
    mqtt_subscriber.subscribe(topics.event(node_in_process.node, EventKind.DEVICE_FAULT))
    impostor = SiteKit(kit.folder.parent / "impostor", kit.site)
    impostor.serial = 5
    impostor.publish_trust_list(identity(broker, "provisioning"))
    (fault,) = events_of(mqtt_subscriber, EventKind.DEVICE_FAULT, 1)
    assert isinstance(fault, DeviceFault)
    assert (fault.device, fault.fault, fault.state) == ("trust-list", "refused", "raised")
    assert "unknown-signer" in (fault.detail or "")
    assert node_in_process.trust.trust_list.serial == 1


def test_gate_node__a_trust_list_the_contract_refuses_is_reported_too(
    kit: SiteKit, broker: PrivateBroker, node_in_process: GateNode, mqtt_subscriber: Subscriber
) -> None:
    # Past a bound (more key uses than there are): decode() refuses it before any signature
    # is checked, and the node used to only log it.
    mqtt_subscriber.subscribe(topics.event(node_in_process.node, EventKind.DEVICE_FAULT))
    payload = json.loads(catalogue.encode(kit.trust_list()))
    payload["body"]["entries"][0]["uses"] = ["health-code"] * 7
    provisioning = connect(identity(broker, "provisioning"), "provisioning-raw")
    try:
        provisioning.publish(
            topics.trust(kit.topic_site), json.dumps(payload), qos=1, retain=True
        ).wait_for_publish(5)
    finally:
        provisioning.disconnect()
        provisioning.loop_stop()
    (fault,) = events_of(mqtt_subscriber, EventKind.DEVICE_FAULT, 1)
    assert isinstance(fault, DeviceFault)
    assert (fault.device, fault.fault, fault.state) == ("trust-list", "refused", "raised")
    assert (fault.detail or "").startswith("trust list of unknown serial refused as invalid: ")
    assert node_in_process.trust.trust_list.serial == 1


def test_gate_node__killed_outright_restarts_and_every_committed_event_arrives_without_gaps(
    kit: SiteKit, broker: PrivateBroker, devices: Devices
) -> None:
    gateway = Subscriber.connect(identity(broker, "gateway"), session_expiry_s=600)
    gateway.subscribe(topics.everything())
    config = config_for(kit, broker, devices)

    def start() -> subprocess.Popen[bytes]:
        return spawn(python_module("edge.cli", "edge", "run", "--config", str(config)))

    node = start()
    try:
        births = 0
        seqs: set[int] = set()
        code = kit.code("green")

        def receive(timeout_s: float) -> None:
            nonlocal births
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    message = gateway.next(0.2)
                except AssertionError:
                    continue
                decoded = catalogue.decode(message.topic, message.payload, "gatepost")
                if isinstance(decoded.payload, Birth):
                    births += 1
                elif decoded.topic.kind == topics.TopicKind.EVENT:
                    seqs.add(decoded.payload.seq)  # type: ignore[attr-defined]

        receive(3)
        assert births == 1
        # Scans arrive while the node is killed: each one it committed must come out.
        for _ in range(6):
            devices.scanner.scan(code)
            time.sleep(0.15)
        node.send_signal(signal.SIGKILL)
        node.wait(5)
        for _ in range(3):
            devices.scanner.scan(code)
        node = start()
        for _ in range(4):
            devices.scanner.scan(code)
            time.sleep(0.15)
        receive(8)
    finally:
        stop(node, "gate node")
        gateway.close()
    assert births == 2
    assert seqs, "no events at all"
    assert seqs == set(range(1, max(seqs) + 1)), f"gap in {sorted(seqs)}"
    assert max(seqs) >= 8


def test_gate_node__faults_are_raised_once_and_cleared_once_across_a_kill(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, mqtt_subscriber: Subscriber
) -> None:
    g01 = Site(kit.site).node(Role.GATE, "g01")
    mqtt_subscriber.subscribe(topics.event(g01, EventKind.DEVICE_FAULT))
    config = config_for(kit, broker, devices)

    def start() -> subprocess.Popen[bytes]:
        return spawn(python_module("edge.cli", "edge", "run", "--config", str(config)))

    seen: set[str] = set()

    def faults(count: int, timeout_s: float = 20) -> list[tuple[str, str, str]]:
        found = events_of(mqtt_subscriber, EventKind.DEVICE_FAULT, count, timeout_s, seen)
        return [(f.device, f.fault, f.state) for f in found]

    node = start()
    try:
        devices.thermometer.faults.silent = True  # hangs, and stays so
        devices.scanner.unplug()  # gone, and comes back while the node is down
        assert sorted(faults(2)) == [
            ("scanner", "unplugged", "raised"), ("thermometer", "timeout", "raised"),
        ]  # fmt: skip
        node.send_signal(signal.SIGKILL)
        node.wait(5)
        devices.scanner.plug()
        node = start()
        # The scanner is back: its fault is cleared once. The thermometer is still
        # silent: its fault, reported before the kill, is not raised a second time.
        assert faults(1) == [("scanner", "unplugged", "cleared")]
        with pytest.raises(AssertionError, match="no message"):
            faults(1, timeout_s=4)
        devices.thermometer.faults.silent = False
        assert faults(1) == [("thermometer", "timeout", "cleared")]
    finally:
        stop(node, "gate node")


def test_gate_node__the_door_is_a_device_in_births_health_and_the_console(
    kit: SiteKit, broker: PrivateBroker, devices: Devices
) -> None:
    config = config_for(
        kit, broker, devices,
        gpio={"pin_factory": "mock", "door": {"pin": 25, "held_open_fault_s": 0.3}},
    )  # fmt: skip
    with running_node(config) as node:
        assert node.devices()["door"] in ("ok", "fault")
        assert node.io is not None and node.io.door is not None
        node.io.pin_factory.pin(25).drive_low()
        node.io.pin_factory.pin(25).drive_high()
        wait_until(lambda: node.devices()["door"] == "fault")
        assert node.checkpoint.update().node.devices["door"] == "fault"
        assert node.health(1).devices["door"] == "fault"


def test_gate_node__a_clock_stepped_back_after_boot_keeps_the_uplink_alive(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, mqtt_subscriber: Subscriber
) -> None:
    # A wrong real-time clock an hour ahead, corrected by NTP once the node runs.
    offset = [timedelta(hours=1)]
    node = GateNode(
        load_config(config_for(kit, broker, devices)), pin_factory=MockFactory(),
        clock=lambda: datetime.now(UTC) + offset[0],
    )  # fmt: skip
    mqtt_subscriber.subscribe(topics.health(node.node))
    with node_running(node):
        offset[0] = timedelta(0)
        heartbeats: list[Any] = []
        while len(heartbeats) < 3:
            message = mqtt_subscriber.next(5)
            heartbeats.append(catalogue.decode(message.topic, message.payload).payload)
        assert all(h.uptime_s >= 0 for h in heartbeats)
        assert node.uplink.connected
        assert "uplink" not in node.devices()


def test_gate_node__a_worker_that_dies_is_a_fault_and_is_started_again(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, mqtt_subscriber: Subscriber
) -> None:
    node = GateNode(load_config(config_for(kit, broker, devices)), pin_factory=MockFactory())
    mqtt_subscriber.subscribe(topics.event(node.node, EventKind.DEVICE_FAULT))
    real_health, calls = node.health, [0]

    def health_failing_once(session: int) -> Any:
        calls[0] += 1
        if calls[0] in (2, 3):  # dies, and dies again at once after its restart
            raise RuntimeError("a bug in the heartbeat")
        return real_health(session)

    node.health = health_failing_once  # type: ignore[method-assign]
    with node_running(node, ready=False):
        seen: set[str] = set()
        raised, cleared = events_of(
            mqtt_subscriber, EventKind.DEVICE_FAULT, 2, timeout_s=30, seen=seen
        )
        assert (raised.device, raised.fault, raised.state) == ("uplink", "crashed", "raised")
        assert "a bug in the heartbeat" in raised.detail
        # Raised once and cleared once, after it ran well: the second death adds nothing.
        assert (cleared.device, cleared.state) == ("uplink", "cleared")
        assert calls[0] > 3
        wait_until(lambda: node.uplink.connected)
        with pytest.raises(AssertionError, match="no message"):
            events_of(mqtt_subscriber, EventKind.DEVICE_FAULT, 1, timeout_s=3, seen=seen)


def test_gate_node__keeps_deciding_through_a_broker_outage_and_loses_nothing(
    tmp_path: Path, kit: SiteKit, broker: PrivateBroker, devices: Devices,
    node_in_process: GateNode,
) -> None:  # fmt: skip
    with gateway_running(broker, tmp_path / "gateway.db", kit.site, ("g01",)) as gateway:
        broker.stop()
        wait_until(lambda: not node_in_process.uplink.connected)
        relay = node_in_process.io.pin_factory.pin(RELAY_PIN)  # type: ignore[union-attr]
        for _ in range(3):
            devices.person(36.4, kit.code("green"))
        # The barrier does not wait for the network.
        wait_until(lambda: [s.state for s in relay.states].count(True) == 3)
        assert node_in_process.outbox.depth >= 3
        assert not node_in_process.checkpoint.update().node.broker_connected
        # What the consoles were last pushed: the outbox counter goes with it.
        version = node_in_process.checkpoint.wait_for_change(0, 0)
        assert node_in_process.checkpoint.update().node.outbox_depth >= 3
        broker.start()
        # Rows leave the outbox once the gateway has stored them, not before.
        wait_until(lambda: node_in_process.outbox.depth == 0, timeout_s=30)
        passages = gateway.store.passages(EventQuery(site=kit.site))
        assert [p.outcome for p in passages] == ["allow"] * 3
        # No event changed the gate, yet the consoles are pushed the empty outbox.
        wait_until(lambda: node_in_process.checkpoint.wait_for_change(version, 0.1) > version)
        update = node_in_process.checkpoint.update()
        assert (update.node.outbox_depth, update.node.broker_connected) == (0, True)


@pytest.mark.browser
def test_gate_node__a_volunteer_resolves_a_fever_hold_on_the_console(
    kit: SiteKit,
    broker: PrivateBroker,
    devices: Devices,
    page: Page,
    mqtt_subscriber: Subscriber,
) -> None:
    config = config_for(
        kit,
        broker,
        devices,
        console={"enabled": True, "host": "127.0.0.1", "port": 0, "language": "en"},
    )
    node = GateNode(load_config(config), pin_factory=MockFactory())
    stop_event = threading.Event()
    runner = threading.Thread(target=node.run, args=(stop_event,))
    runner.start()
    try:
        wait_until(lambda: node.console_url is not None and node.trust.trust_list.serial == 1)
        mqtt_subscriber.subscribe(topics.event(node.node, EventKind.HOLD_RESOLVED))
        badge = kit.code("badge", volunteer="v042")
        devices.scanner.scan(badge)  # the shift starts at the gate's scanner
        devices.person(38.4, kit.code("green"))
        wait_until(lambda: len(node.checkpoint.update().holds) == 1)
        (hold,) = node.checkpoint.update().holds

        # The console asks for the badge before it shows anyone; the same badge signs in.
        page.goto(str(node.console_url))
        expect(page.locator("#hold-list > *")).to_have_count(0)
        page.locator('[data-testid="field-badge"]').fill(badge)
        page.locator('[data-testid="shift-sign-in"]').click()
        decision = page.locator('[data-testid="decision"]')
        expect(decision).to_have_attribute("data-outcome", "hold")
        expect(decision).to_contain_text("Fever", use_inner_text=True)
        page.locator(f'[data-testid="resolve-referred-{hold.hold_id}"]').click()
        expect(page.locator(f'[data-testid="hold-{hold.hold_id}"]')).to_have_count(0)

        (resolved,) = events_of(mqtt_subscriber, EventKind.HOLD_RESOLVED, 1)
        assert (resolved.hold_id, resolved.resolution, resolved.volunteer_id) == (
            hold.hold_id,
            "referred",
            "v042",
        )
        assert node.checkpoint.update().holds == ()
    finally:
        stop_event.set()
        runner.join(15)


def test_gate_node__a_signed_config_changes_the_fever_line_live_and_a_forged_one_does_not(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, node_in_process: GateNode,
    mqtt_subscriber: Subscriber,
) -> None:  # fmt: skip
    mqtt_subscriber.subscribe(topics.event(node_in_process.node, EventKind.PASSAGE))
    mqtt_subscriber.subscribe(topics.event(node_in_process.node, EventKind.DEVICE_FAULT))
    topic = topics.config(kit.topic_site, "g01")
    body = NodeConfigBody(node="g01", config={"policy": {"fever_c": 38.5}})
    kit.publish(identity(broker, "provisioning"), topic, kit.sign(SignedNodeConfig, body, serial=1))
    wait_until(lambda: node_in_process.checkpoint.policy.fever_c == 38.5)
    devices.person(38.2, kit.code("green"))
    (passage,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
    assert passage.outcome == "allow"

    impostor = SiteKit(kit.folder.parent / "impostor", kit.site)
    lowered = NodeConfigBody(node="g01", config={"policy": {"fever_c": 36.0}})
    kit.publish(
        identity(broker, "provisioning"), topic, impostor.sign(SignedNodeConfig, lowered, serial=2)
    )
    pins = NodeConfigBody(node="g01", config={"gpio": {"barrier": {"relay_pin": 5}}})
    kit.publish(identity(broker, "provisioning"), topic, kit.sign(SignedNodeConfig, pins, serial=3))
    faults = events_of(mqtt_subscriber, EventKind.DEVICE_FAULT, 2)
    assert [f.fault for f in faults] == ["refused", "refused"]
    assert "unknown-signer" in faults[0].detail
    assert "gpio cannot change while the node runs" in faults[1].detail
    assert node_in_process.checkpoint.policy.fever_c == 38.5


def test_gate_node__a_revoked_code_is_held_once_the_revocation_list_arrives(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, node_in_process: GateNode,
    mqtt_subscriber: Subscriber,
) -> None:  # fmt: skip
    mqtt_subscriber.subscribe(topics.event(node_in_process.node, EventKind.PASSAGE))
    code = kit.code("green")
    cti = Verifier(node_in_process.trust).verify(code, datetime.now(UTC)).cti
    assert cti is not None
    body = RevocationListBody(entries=(revocation_entry("cti", cti),))
    kit.publish(identity(broker, "provisioning"), topics.revocations(kit.topic_site),
                kit.sign(SignedRevocationList, body, serial=1))  # fmt: skip
    wait_until(lambda: node_in_process.trust.revocations.serial == 1)
    devices.person(36.6, code)
    (passage,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
    assert (passage.outcome, passage.reasons) == ("hold", ("revoked",))


@contextmanager
def running_node(config: Path) -> Iterator[GateNode]:
    """A gate node on its own thread, connected and holding the trust list."""
    with node_running(GateNode(load_config(config), pin_factory=MockFactory())) as node:
        yield node


@contextmanager
def node_running(node: GateNode, *, ready: bool = True) -> Iterator[GateNode]:
    """`node` on its own thread; with `ready`, once connected and holding the trust list."""
    stop_event = threading.Event()
    runner = threading.Thread(target=node.run, args=(stop_event,))
    runner.start()
    try:
        if ready:
            wait_until(lambda: hasattr(node, "uplink") and node.uplink.connected)
            wait_until(lambda: node.trust.trust_list.serial == 1)
        yield node
    finally:
        stop_event.set()
        runner.join(15)
        assert not runner.is_alive()


def relay_pulses(node: GateNode) -> int:
    relay = node.io.pin_factory.pin(RELAY_PIN)  # type: ignore[union-attr]
    return [s.state for s in relay.states].count(True)


@pytest.fixture
def array(tmp_path: Path) -> Iterator[SimulatedThermalArray]:
    running = SimulatedThermalArray(tmp_path / "thermal-array").start()
    yield running
    running.stop()


def array_config(kit: SiteKit, broker: PrivateBroker, devices: Devices,
                 array: SimulatedThermalArray, **sections: Any) -> Path:  # fmt: skip
    return kit.gate_config(
        "g01", identity(broker, "g01"),
        {"scanner": {"url": str(devices.scanner.path), "profile": "gm65-scanner"},
         "thermal_array": {"url": str(array.path), "profile": "gy-mcu90640"}},
        console={"enabled": False},
        gpio={"pin_factory": "mock", "barrier": {"relay_pin": RELAY_PIN, "pulse_s": 0.1}},
        **sections,
    )  # fmt: skip


# One reading, one person (A.1): after a measured person, an unmeasured one is held, for
# every source of temperature.
SHORT_WINDOW = {"policy": {"temperature_window_s": 4.0}}


def test_gate_node__an_unmeasured_person_after_a_measured_one_is_held__thermometer(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, mqtt_subscriber: Subscriber
) -> None:
    with running_node(config_for(kit, broker, devices, **SHORT_WINDOW)) as node:
        mqtt_subscriber.subscribe(topics.event(node.node, EventKind.PASSAGE))
        devices.person(36.6, kit.code("green"))  # A: measured, passes
        time.sleep(1.0)
        devices.scanner.scan(kit.code("green"))  # B: 3 s after A's reading, never measured
        first, second = events_of(mqtt_subscriber, EventKind.PASSAGE, 2)
        assert (first.outcome, first.temperature_c) == ("allow", 36.6)
        assert (second.outcome, second.reasons, second.temperature_c) == (
            "hold", ("measure-temperature",), None,
        )  # fmt: skip
        assert relay_pulses(node) == 1


def test_gate_node__an_unmeasured_person_after_a_measured_one_is_held__re_measured(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, mqtt_subscriber: Subscriber
) -> None:
    with running_node(config_for(kit, broker, devices, **SHORT_WINDOW)) as node:
        mqtt_subscriber.subscribe(topics.event(node.node, EventKind.PASSAGE))
        node.checkpoint.change_shift(kit.code("badge", volunteer="v017"), "start")
        devices.person(37.5, kit.code("green"))  # A: held to measure again
        events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
        (hold,) = node.checkpoint.update().holds
        devices.thermometer.present(36.8, duration_s=0.6)  # A measured again
        time.sleep(0.8)
        node.checkpoint.resolve_hold(
            hold.hold_id, HoldResolution(resolution="released"), "v017"
        )  # released on that reading, which is then used up
        devices.scanner.scan(kit.code("green"))  # B, never measured
        (second,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
        assert (second.outcome, second.reasons) == ("hold", ("measure-temperature",))
        assert relay_pulses(node) == 1  # A's release only


def test_gate_node__an_unmeasured_person_after_a_measured_one_is_held__thermal_array(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, array: SimulatedThermalArray,
    mqtt_subscriber: Subscriber,
) -> None:  # fmt: skip
    with running_node(array_config(kit, broker, devices, array, **SHORT_WINDOW)) as node:
        mqtt_subscriber.subscribe(topics.event(node.node, EventKind.PASSAGE))
        array.present(36.6, duration_s=2.5)  # A
        time.sleep(2.0)
        devices.scanner.scan(kit.code("green"))
        (first,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
        assert first.outcome == "allow"
        time.sleep(1.0)
        # B has a fever and stands too far to be measured: never A's reading.
        array.present(39.2, distance="far", duration_s=5.0)
        time.sleep(1.5)
        devices.scanner.scan(kit.code("green"))
        (second,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
        assert (second.outcome, second.reasons) == ("hold", ("too-far",))
        assert relay_pulses(node) == 1


def test_gate_node__a_thermal_array_in_place_of_the_thermometer(
    kit: SiteKit, broker: PrivateBroker, devices: Devices, array: SimulatedThermalArray,
    mqtt_subscriber: Subscriber,
) -> None:  # fmt: skip
    with running_node(array_config(kit, broker, devices, array)) as node:
        mqtt_subscriber.subscribe(topics.event(node.node, EventKind.PASSAGE))
        array.present(38.3, duration_s=3.0)
        time.sleep(2.0)
        devices.scanner.scan(kit.code("green"))
        (passage,) = events_of(mqtt_subscriber, EventKind.PASSAGE, 1)
        assert passage.outcome == "hold"
        assert passage.reasons == ("fever",)
        assert abs(passage.temperature_c - 38.3) <= 0.3
        assert node.devices()["thermal-array"] == "ok"
