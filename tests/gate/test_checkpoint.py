"""The checkpoint: what a volunteer sees and what lands in the outbox, with real codes and pins."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from gpiozero.pins.mock import MockFactory

from edge.contract.catalogue import decode
from edge.contract.events import DeviceFault, HoldResolved, Passage
from edge.contract.topics import Role, Site
from edge.credentials.store import TrustStore
from edge.credentials.trust import root_keys_for
from edge.credentials.verifier import Verifier
from edge.devices.base import CodeScan, ScanFailed, TemperatureReading
from edge.gate.checkpoint import GateCheckpoint
from edge.gate.decision import GatePolicy
from edge.gate.gpio.config import BarrierConfig, GpioConfig
from edge.gate.gpio.gateio import GateIO
from edge.gate.views import (
    DisinfectionRound,
    HoldResolution,
    NodeView,
    Refusal,
    Registration,
    VehicleCheck,
)
from edge.outbox import Outbox
from simulators.site import SiteKit

NODE = Site("demo").node(Role.GATE, "g01")
SHANGHAI = ZoneInfo("Asia/Shanghai")
ID_KEY = b"k" * 32
RELAY_PIN = 17


@dataclass
class Clock:
    wall: datetime
    mono: float = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@dataclass
class Gate:
    checkpoint: GateCheckpoint
    outbox: Outbox
    io: GateIO
    kit: SiteKit
    clock: Clock
    # The node's device states the checkpoint sees (NodeView.devices): flip to "fault".
    devices: dict[str, str]

    def scan(self, text: str) -> None:
        self.checkpoint.on_reading(CodeScan(text, "scanner", self.clock.mono))

    def temperature(self, body_c: float) -> None:
        self.checkpoint.on_reading(TemperatureReading("thermometer", self.clock.mono, body_c))

    def events(self) -> list[object]:
        return [
            decode(r.topic, r.payload, NODE.site.prefix).payload for r in self.outbox.after(0, 1000)
        ]

    def on_duty(self, volunteer: str = "v017") -> str:
        """`volunteer` scans the badge at the gate's scanner unless on duty already; the id."""
        if volunteer not in self.checkpoint.on_duty:
            self.scan(self.kit.code("badge", volunteer=volunteer, now=self.clock.wall))
        return volunteer

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events()]  # type: ignore[attr-defined]

    def relay_energised(self) -> bool:
        return bool(self.io.barrier.is_open)

    def relay_history(self) -> list[bool]:
        pin = self.io.pin_factory.pin(RELAY_PIN)
        return [bool(s.state) for s in pin.states]


def start_gate(tmp_path: Path, kit: SiteKit, clock: Clock, **policy: object) -> Gate:
    trust = TrustStore(root_keys_for([kit.root_key.public_key()]))
    trust.apply(kit.trust_list(clock.wall), clock.wall)
    outbox = Outbox(tmp_path / "outbox.db", NODE, capacity=50)
    io = GateIO(
        GpioConfig(barrier=BarrierConfig(relay_pin=RELAY_PIN, pulse_s=0.05)),
        pin_factory=MockFactory(),
    )
    devices = {"scanner": "ok", "thermometer": "ok"}
    checkpoint = GateCheckpoint(
        gate="g01", outbox=outbox, verifier=Verifier(trust), policy=GatePolicy(**policy),
        actions=io, direction="out", zone=SHANGHAI, cutoff_hour=17,
        id_hash_key=ID_KEY, clock=lambda: clock.wall, monotonic=lambda: clock.mono,
        node_view=lambda: NodeView(
            site="demo", node="g01", broker_connected=False, devices=dict(devices), outbox_depth=0,
            outbox_capacity=50, volunteers_on_duty=checkpoint.on_duty, trust_list_age_s=None,
        ),
    )  # fmt: skip
    return Gate(checkpoint, outbox, io, kit, clock, devices)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    clock = Clock(datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0))
    kit = SiteKit(tmp_path / "site")
    running = start_gate(tmp_path, kit, clock)
    yield running
    running.io.close()


def decision(gate: Gate) -> tuple[str, tuple[str, ...]]:
    view = gate.checkpoint.update().decision
    assert view is not None
    return view.outcome, view.reasons


def test_checkpoint__green_code_after_a_normal_temperature_opens_the_barrier_once_recorded(
    gate: Gate,
) -> None:
    gate.temperature(36.6)
    gate.clock.advance(2)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    assert decision(gate) == ("allow", ())
    (passage,) = gate.events()
    assert isinstance(passage, Passage)
    assert (passage.outcome, passage.colour, passage.temperature_c) == ("allow", "green", 36.6)
    assert passage.seq == 1
    # At rest low (fail-secure, active high), energised for one pulse, then back at rest.
    assert gate.relay_history()[:2] == [False, True]
    deadline = time.monotonic() + 2
    while gate.relay_energised() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.relay_history() == [False, True, False]


def test_checkpoint__a_code_waits_for_the_temperature_then_decides_on_it(gate: Gate) -> None:
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    assert gate.checkpoint.update().decision is None
    assert gate.events() == []
    gate.clock.advance(3)
    gate.temperature(38.2)
    assert decision(gate) == ("hold", ("fever",))
    assert gate.kinds() == ["passage", "hold"]
    assert not gate.relay_energised()


def test_checkpoint__a_waiting_code_is_shown_with_its_deadline(gate: Gate) -> None:
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    waiting = gate.checkpoint.update().waiting
    assert waiting is not None
    assert waiting.deadline - waiting.scanned_at == timedelta(seconds=10)
    assert (waiting.colour, waiting.masked_name) == ("green", "张*丰")
    gate.clock.advance(1)
    gate.temperature(36.6)
    assert gate.checkpoint.update().waiting is None


def test_checkpoint__a_passage_that_waited_carries_the_time_it_was_decided(gate: Gate) -> None:
    scanned = gate.clock.wall
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    gate.clock.advance(4)
    gate.temperature(36.6)
    (passage,) = gate.events()
    assert isinstance(passage, Passage)
    assert passage.node_time == scanned + timedelta(seconds=4)


# One reading, one person: the next person is never decided on the previous one's reading.
@pytest.mark.parametrize("gap_s", [0.5, 3.0, 9.0])
def test_checkpoint__an_unmeasured_person_after_a_measured_one_is_held(
    gate: Gate, gap_s: float
) -> None:
    gate.temperature(36.6)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    assert decision(gate) == ("allow", ())
    gate.clock.advance(gap_s)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))  # person B, never measured
    gate.clock.advance(10)
    gate.checkpoint.tick()
    assert decision(gate) == ("hold", ("measure-temperature",))
    assert gate.relay_history().count(True) == 1


def test_checkpoint__a_reading_before_a_refused_code_does_not_count_for_the_next_person(
    gate: Gate,
) -> None:
    gate.temperature(38.5)  # the person with the forged code, feverish
    gate.scan(gate.kit.code("forged", now=gate.clock.wall))
    gate.clock.advance(2)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    gate.clock.advance(1)
    gate.temperature(36.5)  # the green person's own reading
    assert decision(gate) == ("allow", ())


def test_checkpoint__too_far_asks_to_step_closer_and_holds_with_that_reason(gate: Gate) -> None:
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    gate.clock.advance(1)
    gate.checkpoint.on_reading(
        TemperatureReading("thermal-array", gate.clock.mono, None, problem="too-far")
    )
    prompt = gate.checkpoint.update().prompt
    assert prompt is not None and prompt.kind == "step-closer"
    gate.clock.advance(9)
    gate.checkpoint.tick()
    assert decision(gate) == ("hold", ("too-far",))
    (passage, _hold) = gate.events()
    assert isinstance(passage, Passage) and passage.reasons == ("too-far",)


def test_checkpoint__a_code_read_in_part_asks_to_scan_again(gate: Gate) -> None:
    gate.checkpoint.on_reading(ScanFailed("scanner", gate.clock.mono, "pause mid-code"))
    prompt = gate.checkpoint.update().prompt
    assert prompt is not None and prompt.kind == "scan-again"
    assert gate.events() == []


def test_checkpoint__no_temperature_within_the_window_is_a_hold_to_measure(gate: Gate) -> None:
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    gate.clock.advance(9)
    gate.checkpoint.tick()
    assert gate.events() == []
    gate.clock.advance(1)
    gate.checkpoint.tick()
    assert decision(gate) == ("hold", ("measure-temperature",))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # Decided without waiting: a red code is stopped measured or not; a refused
        # code is held, and its missing temperature is said too.
        ("red", ("deny", ("red-code",))),
        ("forged", ("hold", ("bad-signature", "measure-temperature"))),
        ("expired", ("hold", ("expired", "measure-temperature"))),
    ],
)
def test_checkpoint__refused_and_red_codes_are_decided_at_once_and_never_open(
    gate: Gate, kind: str, expected: tuple[str, tuple[str, ...]]
) -> None:
    gate.scan(gate.kit.code(kind, now=gate.clock.wall))  # type: ignore[arg-type]
    assert decision(gate) == expected
    assert gate.relay_history() == [False]


def release(gate: Gate, hold_id: str, temperature_c: float | None = None) -> None:
    gate.checkpoint.resolve_hold(
        hold_id, HoldResolution(resolution="released", temperature_c=temperature_c), gate.on_duty()
    )


def resolutions(gate: Gate) -> list[HoldResolved]:
    return [e for e in gate.events() if isinstance(e, HoldResolved)]


def fever_hold(gate: Gate, body_c: float = 38.9) -> str:
    gate.temperature(body_c)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    (hold,) = gate.checkpoint.update().holds
    return hold.hold_id


def test_checkpoint__a_held_person_is_released_after_a_normal_re_measure(gate: Gate) -> None:
    gate.temperature(37.5)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    assert decision(gate) == ("hold", ("re-measure",))
    (hold,) = gate.checkpoint.update().holds
    with pytest.raises(Refusal, match="measure-temperature"):
        release(gate, hold.hold_id)  # the reading that held them does not release them
    gate.clock.advance(2)
    gate.temperature(37.4)
    with pytest.raises(Refusal, match="fever"):
        release(gate, hold.hold_id)
    with pytest.raises(Refusal, match="measure-temperature"):
        release(gate, hold.hold_id)  # that reading is used up
    assert not gate.relay_energised()
    gate.clock.advance(2)
    gate.temperature(36.94)
    release(gate, hold.hold_id)
    assert gate.checkpoint.update().holds == ()
    assert gate.kinds() == ["passage", "hold", "shift", "hold-resolved"]
    (resolved,) = resolutions(gate)
    assert (resolved.temperature_c, resolved.temperature_source) == (36.9, "sensor")
    assert True in gate.relay_history()


def test_checkpoint__a_typed_temperature_never_releases_a_fever_while_the_thermometer_works(
    gate: Gate,
) -> None:
    hold_id = fever_hold(gate)
    with pytest.raises(Refusal, match="sensor-reading-required"):
        release(gate, hold_id, 36.5)
    assert gate.relay_history() == [False]
    assert resolutions(gate) == []
    assert [h.hold_id for h in gate.checkpoint.update().holds] == [hold_id]


def test_checkpoint__a_reading_another_person_used_does_not_release_a_hold(gate: Gate) -> None:
    hold_id = fever_hold(gate)
    gate.clock.advance(2)
    gate.temperature(36.5)  # the next person in the lane, decided on this reading
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    assert decision(gate) == ("allow", ())
    with pytest.raises(Refusal, match="measure-temperature"):
        release(gate, hold_id)
    assert resolutions(gate) == []


def test_checkpoint__a_stale_re_measure_does_not_release_a_hold(gate: Gate) -> None:
    hold_id = fever_hold(gate)
    gate.clock.advance(2)
    gate.temperature(36.5)
    gate.clock.advance(GatePolicy().temperature_window_s + 1)
    with pytest.raises(Refusal, match="measure-temperature"):
        release(gate, hold_id)


def test_checkpoint__a_typed_temperature_releases_only_while_the_thermometer_is_faulty(
    gate: Gate,
) -> None:
    hold_id = fever_hold(gate)
    gate.devices["thermometer"] = "fault"
    with pytest.raises(Refusal, match="fever"):
        release(gate, hold_id, 37.5)
    release(gate, hold_id, 36.5)
    (resolved,) = resolutions(gate)
    assert (resolved.temperature_c, resolved.temperature_source) == (36.5, "manual")
    assert True in gate.relay_history()


def test_checkpoint__a_yellow_code_is_registered_and_the_id_number_is_never_stored(
    gate: Gate,
) -> None:
    volunteer = gate.on_duty()
    gate.temperature(36.5)
    gate.scan(gate.kit.code("yellow", now=gate.clock.wall))
    (hold,) = gate.checkpoint.update().holds
    with pytest.raises(Refusal, match="action-not-offered"):
        gate.checkpoint.resolve_hold(
            hold.hold_id, HoldResolution(resolution="released", temperature_c=36.5), volunteer
        )
    form = Registration(name="王芳", id_number="11010119900101123X", phone="13800138000",
                        destination="Dongcun market")  # fmt: skip
    gate.checkpoint.resolve_hold(
        hold.hold_id, HoldResolution(resolution="registered", registration=form), volunteer
    )
    assert gate.kinds() == ["shift", "passage", "hold", "registration", "hold-resolved"]
    stored = b"".join(r.payload for r in gate.outbox.after(0, 100))
    assert b"11010119900101123X" not in stored
    registration = gate.events()[3]
    assert registration.id_last4 == "123X"  # type: ignore[attr-defined]
    assert registration.hold_id == hold.hold_id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "temperature", "resolution", "refusal"),
    [
        ("forged", 36.5, "released", "code-refused"),  # a forged code is never let through
        ("forged", 36.5, "registered", "code-refused"),  # not even by registering the person
        ("red", 36.5, "released", ""),
        ("green", None, "registered", "action-not-offered"),  # registering is no measurement
    ],
)
def test_checkpoint__a_hold_ends_only_in_a_way_that_fits_its_reasons(
    gate: Gate, kind: str, temperature: float | None, resolution: str, refusal: str
) -> None:
    if temperature is not None:
        gate.temperature(temperature)
    gate.scan(gate.kit.code(kind, now=gate.clock.wall))  # type: ignore[arg-type]
    gate.clock.advance(10)
    gate.checkpoint.tick()
    if kind == "red":
        assert gate.checkpoint.update().holds == ()  # denied, no hold to release
        return
    (hold,) = gate.checkpoint.update().holds
    form = Registration(name="王芳", id_number="11010119900101123X")
    with pytest.raises(Refusal, match=refusal):
        gate.checkpoint.resolve_hold(hold.hold_id, HoldResolution(
            resolution=resolution, temperature_c=36.5,
            registration=form if resolution == "registered" else None,
        ), gate.on_duty())  # fmt: skip
    assert gate.relay_history() == [False]


def test_checkpoint__a_forged_code_is_turned_back_and_never_opens(gate: Gate) -> None:
    gate.scan(gate.kit.code("forged", now=gate.clock.wall))
    gate.clock.advance(10)
    gate.checkpoint.tick()
    (hold,) = gate.checkpoint.update().holds
    with pytest.raises(Refusal, match="code-refused"):
        release(gate, hold.hold_id)  # no temperature at all: the probe's request
    gate.checkpoint.resolve_hold(
        hold.hold_id, HoldResolution(resolution="turned-back"), gate.on_duty()
    )
    assert [r.resolution for r in resolutions(gate)] == ["turned-back"]
    assert gate.relay_history() == [False]


def forged_hold(gate: Gate, body_c: float | None = 36.5) -> str:
    """A person held for a forged code (measured at `body_c`, if given)."""
    if body_c is not None:
        gate.temperature(body_c)
    gate.scan(gate.kit.code("forged", now=gate.clock.wall))
    gate.clock.advance(10)
    gate.checkpoint.tick()
    (hold,) = gate.checkpoint.update().holds
    return hold.hold_id


def supervisor(gate: Gate) -> str:
    badge = gate.kit.code("badge", volunteer="s001", role="supervisor", now=gate.clock.wall)
    gate.scan(badge)
    return "s001"


OVERRIDE = HoldResolution(resolution="released", override=True)


def test_checkpoint__no_override_unless_the_site_allows_it(gate: Gate) -> None:
    hold_id = forged_hold(gate)
    boss = supervisor(gate)
    with pytest.raises(Refusal, match="override-not-allowed"):
        gate.checkpoint.resolve_hold(hold_id, OVERRIDE, boss, "supervisor")
    assert gate.relay_history() == [False]


def test_checkpoint__an_override_needs_a_supervisor_and_a_refused_code(tmp_path: Path) -> None:
    clock = Clock(datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0))
    gate = start_gate(tmp_path, SiteKit(tmp_path / "site"), clock, supervisor_override=True)
    hold_id = forged_hold(gate)
    volunteer, boss = gate.on_duty(), supervisor(gate)
    with pytest.raises(Refusal, match="supervisor-required"):
        gate.checkpoint.resolve_hold(hold_id, OVERRIDE, volunteer, "volunteer")
    back = HoldResolution(resolution="turned-back", override=True)
    with pytest.raises(Refusal, match="nothing-to-override"):
        gate.checkpoint.resolve_hold(hold_id, back, boss, "supervisor")
    assert gate.relay_history() == [False]

    gate.checkpoint.resolve_hold(hold_id, OVERRIDE, "s001", "supervisor")
    (resolved,) = resolutions(gate)
    assert (resolved.resolution, resolved.override, resolved.volunteer_id) == (
        "released", True, "s001",
    )  # fmt: skip
    assert True in gate.relay_history()

    # A fever is no code to override: the held person is still measured again.
    fever = forged_hold(gate, body_c=38.6)
    with pytest.raises(Refusal, match="measure-temperature"):
        gate.checkpoint.resolve_hold(fever, OVERRIDE, "s001", "supervisor")
    # Nor is a hold for something else than a refused code.
    gate.temperature(38.6)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    plain = next(h.hold_id for h in gate.checkpoint.update().holds if h.hold_id != fever)
    with pytest.raises(Refusal, match="nothing-to-override"):
        gate.checkpoint.resolve_hold(plain, OVERRIDE, "s001", "supervisor")
    gate.io.close()


def vehicle_hold(gate: Gate) -> str:
    gate.checkpoint.check_vehicle(
        VehicleCheck(vehicle_plate="京A12345", occupant_temperatures_c=(38.5,)), gate.on_duty()
    )
    (hold,) = gate.checkpoint.update().holds
    return hold.hold_id


def test_checkpoint__a_vehicle_fever_is_released_only_with_a_re_measure(gate: Gate) -> None:
    gate.temperature(36.5)  # before the vehicle was held: not its occupant's re-measure
    gate.clock.advance(1)
    hold_id = vehicle_hold(gate)
    with pytest.raises(Refusal, match="measure-temperature"):
        release(gate, hold_id)
    with pytest.raises(Refusal, match="sensor-reading-required"):
        release(gate, hold_id, 36.5)
    assert gate.relay_history() == [False]
    gate.clock.advance(1)
    gate.temperature(36.6)
    release(gate, hold_id)
    (resolved,) = resolutions(gate)
    assert (resolved.temperature_c, resolved.temperature_source) == (36.6, "sensor")
    assert True in gate.relay_history()


def test_checkpoint__a_vehicle_fever_takes_a_typed_temperature_while_the_thermometer_is_faulty(
    gate: Gate,
) -> None:
    hold_id = vehicle_hold(gate)
    gate.devices["thermometer"] = "unplugged"
    release(gate, hold_id, 36.7)
    (resolved,) = resolutions(gate)
    assert resolved.temperature_source == "manual"


def test_checkpoint__unknown_holds_are_refused(gate: Gate) -> None:
    with pytest.raises(Refusal, match="unknown-hold"):
        gate.checkpoint.resolve_hold(
            "01JDEMO0000000000000000000", HoldResolution(resolution="referred"), gate.on_duty()
        )


def test_checkpoint__an_actor_not_on_duty_is_refused_and_nothing_is_recorded(gate: Gate) -> None:
    gate.temperature(38.6)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    (hold,) = gate.checkpoint.update().holds
    gate.on_duty("v017")
    before = gate.kinds()
    with pytest.raises(Refusal, match="not-on-duty"):
        gate.checkpoint.resolve_hold(hold.hold_id, HoldResolution(resolution="referred"), "v099")
    with pytest.raises(Refusal, match="not-on-duty"):
        gate.checkpoint.check_vehicle(
            VehicleCheck(vehicle_plate="京A12345", occupant_temperatures_c=(36.5,)), "v099"
        )
    with pytest.raises(Refusal, match="not-on-duty"):
        gate.checkpoint.log_disinfection(DisinfectionRound(), "v099")
    form = Registration(name="王芳", id_number="11010119900101123X")
    with pytest.raises(Refusal, match="not-on-duty"):
        gate.checkpoint.register(form, "v099")
    assert gate.kinds() == before
    assert gate.checkpoint.update().holds == (hold,)
    assert gate.relay_history() == [False]


def test_checkpoint__a_badge_scan_starts_then_ends_a_shift(gate: Gate) -> None:
    badge = gate.kit.code("badge", volunteer="v042", now=gate.clock.wall)
    gate.scan(badge)
    assert gate.checkpoint.on_duty == ("v042",)
    gate.scan(badge)
    assert not gate.checkpoint.on_duty
    assert [e.action for e in gate.events()] == ["start", "end"]
    with pytest.raises(Refusal, match="not-a-badge"):
        gate.checkpoint.change_shift(gate.kit.code("green", now=gate.clock.wall), "start")
    with pytest.raises(Refusal, match="bad-signature"):
        gate.checkpoint.change_shift(gate.kit.code("forged", now=gate.clock.wall), "start")


def test_checkpoint__vehicle_with_a_feverish_occupant_is_held(gate: Gate) -> None:
    view = gate.checkpoint.check_vehicle(
        VehicleCheck(vehicle_plate="京A12345", occupant_temperatures_c=(36.5, 38.4)),
        gate.on_duty("v017"),
    )
    assert (view.outcome, view.reasons) == ("hold", ("vehicle-fever",))
    (passage,) = [e for e in gate.events() if isinstance(e, Passage)]
    assert (passage.subject, passage.occupants, passage.temperature_c) == ("vehicle", 2, 38.4)
    assert passage.volunteer_id == "v017"  # who let a car through, or held it


def test_checkpoint__a_full_outbox_holds_the_person_and_opens_nothing(gate: Gate) -> None:
    volunteer = gate.on_duty()  # the shift is one of the outbox's 50 events
    for _ in range(49):
        gate.checkpoint.log_disinfection(DisinfectionRound(), volunteer)
    gate.temperature(38.6)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    # The volunteer handles this person by hand, and must see why: a fever.
    assert decision(gate) == ("hold", ("outbox-full", "fever"))
    assert gate.relay_history() == [False]
    assert len(gate.events()) == 50


def test_checkpoint__the_exit_button_opens_with_a_full_outbox_and_the_exit_is_recorded_later(
    gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    volunteer = gate.on_duty()  # the shift is one of the outbox's 50 events
    for _ in range(49):
        gate.checkpoint.log_disinfection(DisinfectionRound(), volunteer)
    with caplog.at_level(logging.WARNING):
        gate.checkpoint.on_exit_button()
    assert gate.relay_history()[:2] == [False, True]  # leaving never waits for the outbox
    assert "Traceback" not in caplog.text
    assert "1 exit(s) wait for room" in caplog.text
    assert gate.kinds().count("passage") == 0
    gate.checkpoint.tick()
    assert gate.kinds().count("passage") == 0  # still no room: kept
    gate.outbox.confirm(10)  # the gateway stored ten events: room again
    gate.checkpoint.tick()
    exits = [e for e in gate.events() if isinstance(e, Passage)]
    assert [(e.direction, e.outcome, e.credential) for e in exits] == [("out", "allow", "none")]


def test_checkpoint__device_faults_do_not_take_room_from_passages(gate: Gate) -> None:
    for _ in range(20):  # a flapping scanner
        gate.checkpoint.record_fault("scanner", "garbage", "raised", "junk")
        gate.checkpoint.record_fault("scanner", "garbage", "cleared", None)
    volunteer = gate.on_duty()  # the shift is one of the outbox's 50 events
    for _ in range(49):
        gate.checkpoint.log_disinfection(DisinfectionRound(), volunteer)
    assert gate.kinds().count("disinfection") == 49


def test_checkpoint__a_fault_is_raised_once_and_cleared_once_across_a_restart(
    tmp_path: Path, gate: Gate
) -> None:
    gate.checkpoint.record_fault("thermometer", "timeout", "raised", "silent 3 s")
    gate.checkpoint.record_fault("scanner", "unplugged", "raised", "gone")
    gate.outbox.close()
    gate.io.close()
    again = start_gate(tmp_path, gate.kit, gate.clock)
    # The thermometer is still silent after the restart: its link raises timeout again.
    again.checkpoint.record_fault("thermometer", "timeout", "raised", "silent 3 s")
    # The scanner came back while the node was down: nothing raises it; reconciling clears it.
    again.checkpoint.reconcile_faults({("thermometer", "timeout")})
    faults = [(e.device, e.fault, e.state) for e in again.events() if isinstance(e, DeviceFault)]
    assert faults == [
        ("thermometer", "timeout", "raised"),
        ("scanner", "unplugged", "raised"),
        ("scanner", "unplugged", "cleared"),
    ]
    assert again.checkpoint.reported_faults == {("thermometer", "timeout")}
    again.io.close()


def test_checkpoint__daily_report_at_the_cut_off_then_a_zero_report(gate: Gate) -> None:
    gate.temperature(36.6)
    gate.scan(gate.kit.code("green", now=gate.clock.wall))
    gate.scan(gate.kit.code("red", now=gate.clock.wall))
    gate.checkpoint.log_disinfection(DisinfectionRound(), gate.on_duty())
    # 02:00 UTC is 10:00 in Shanghai; the cut-off is 17:00 local.
    gate.clock.advance(7 * 3600 - 1)
    gate.checkpoint.tick()
    assert "daily-report" not in gate.kinds()
    gate.clock.advance(1)
    gate.checkpoint.tick()
    report = gate.events()[-1]
    assert report.kind == "daily-report"  # type: ignore[attr-defined]
    counts = report.counts  # type: ignore[attr-defined]
    assert (counts.person_checks, counts.allowed, counts.turned_back, counts.red) == (2, 1, 1, 1)
    assert counts.disinfections == 1
    assert report.period_end.hour == 17  # type: ignore[attr-defined]
    gate.clock.advance(24 * 3600)
    gate.checkpoint.tick()
    zero = gate.events()[-1]
    assert zero.zero_report  # type: ignore[attr-defined]


def test_checkpoint__open_holds_and_shifts_survive_a_restart(tmp_path: Path, gate: Gate) -> None:
    gate.scan(gate.kit.code("badge", volunteer="v042", now=gate.clock.wall))
    gate.scan(gate.kit.code("yellow", now=gate.clock.wall))
    gate.clock.advance(10)
    gate.checkpoint.tick()
    holds = gate.checkpoint.update().holds
    gate.outbox.close()
    gate.io.close()
    again = start_gate(tmp_path, gate.kit, gate.clock)
    assert again.checkpoint.update().holds == holds
    assert again.checkpoint.on_duty == ("v042",)
    assert json.loads(again.outbox.get_meta("on_duty")) == ["v042"]
    again.io.close()


def test_checkpoint__household_exits_are_counted_per_week_and_kept_across_a_restart(
    tmp_path: Path, gate: Gate
) -> None:
    household = gate.kit.code("household", weekly_exits=2, now=gate.clock.wall)
    for _ in range(2):
        gate.clock.advance(5)
        gate.temperature(36.5)
        gate.scan(household)
        assert decision(gate) == ("allow", ())
        assert gate.checkpoint.update().waiting is None
    gate.outbox.close()
    gate.io.close()
    again = start_gate(tmp_path, gate.kit, gate.clock)
    again.temperature(36.5)
    again.scan(household)
    assert decision(again) == ("hold", ("household-quota",))
    # A new week (in the site's time zone) starts the count again.
    again.clock.advance(7 * 24 * 3600)
    fresh = again.kit.code("household", weekly_exits=2, now=again.clock.wall)
    again.temperature(36.5)
    again.scan(fresh)
    assert decision(again) == ("allow", ())
    again.io.close()
