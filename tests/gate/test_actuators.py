"""The gate's relay, lamps, buzzer, exit button and door contact, on gpiozero's simulated pins."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device, DigitalInputDevice
from gpiozero.exc import GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPin
from pydantic import ValidationError

from edge.devices.link import FaultChange
from edge.gate.gpio.config import (
    BarrierConfig,
    BuzzerConfig,
    DoorContactConfig,
    GpioConfig,
    LampsConfig,
)
from edge.gate.gpio.gateio import GateIO, on_raspberry_pi, pin_factory_for
from edge.gate.gpio.outputs import Barrier

RELAY, GREEN, RED, BUZZER, EXIT, DOOR = 17, 27, 22, 23, 24, 25
DEADLINE_S = 2.0
# Thread wake-ups on two shared cores run late, never early.
LATE_S = 0.06


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """A fresh simulated header per test, also made gpiozero's default so nothing reaches real pins."""
    previous = Device.pin_factory
    mock = MockFactory()
    Device.pin_factory = mock
    yield mock
    mock.reset()
    Device.pin_factory = previous


@pytest.fixture
def build(factory: MockFactory) -> Iterator[Callable[..., GateIO]]:
    """Builds GateIO on the test's factory and closes every one built, even after a failure."""
    built: list[GateIO] = []

    def _build(config: GpioConfig | None = None, **callbacks: Any) -> GateIO:
        gate = GateIO(config or GpioConfig(), pin_factory=factory, **callbacks)
        built.append(gate)
        return gate

    yield _build
    for gate in built:
        gate.close()


@pytest.fixture
def barrier(factory: MockFactory) -> Iterator[Callable[..., Barrier]]:
    built: list[Barrier] = []

    def _barrier(**fields: Any) -> Barrier:
        part = Barrier(BarrierConfig(**fields), pin_factory=factory)
        built.append(part)
        return part

    yield _barrier
    for part in built:
        part.shutdown()


def wait_until(condition: Callable[[], bool], deadline_s: float = DEADLINE_S) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not met before the deadline"
        time.sleep(0.005)


def levels(pin: MockPin) -> list[bool]:
    return [change.state for change in pin.states]


def spells(pin: MockPin, level: bool) -> list[float]:
    """Durations of every finished interval the pin spent at `level`."""
    # Each PinState holds the time since the previous change, so an interval's length is
    # the timestamp of the change that ended it.
    return [
        after.timestamp
        for before, after in zip(pin.states, pin.states[1:], strict=False)
        if before.state == level and after.state != level
    ]


def idle_at(factory: MockFactory, number: int, level: bool) -> MockPin:
    """The pin as the wiring holds it before the node runs, with its history starting there."""
    pin: MockPin = factory.pin(number)
    if level:
        pin.drive_high()
    else:
        pin.drive_low()
    pin.clear_states()
    return pin


# relay wiring -> (pin level at rest, pin level while open)
POLARITY = [
    pytest.param({"active_high": True, "fail": "secure"}, False, True, id="high-secure"),
    pytest.param({"active_high": False, "fail": "secure"}, True, False, id="low-secure"),
    pytest.param({"active_high": True, "fail": "safe"}, True, False, id="high-safe"),
    pytest.param({"active_high": False, "fail": "safe"}, False, True, id="low-safe"),
]


@pytest.mark.parametrize(("wiring", "rest", "opened"), POLARITY)
def test_relay_levels__valid(factory, barrier, wiring, rest, opened):
    gate = barrier(**wiring, mode="latched", open_s=5.0)
    pin = factory.pin(RELAY)
    assert pin.state == rest
    assert gate.open() is True
    # open() returned while the relay is still open: it did not wait out the opening.
    assert pin.state == opened
    assert gate.is_open
    gate.close()
    assert pin.state == rest
    assert not gate.is_open


@pytest.mark.parametrize(("wiring", "rest", "opened"), POLARITY)
def test_boot_and_restart__never_open(factory, build, wiring, rest, opened):
    pin = idle_at(factory, RELAY, rest)
    config = GpioConfig(barrier=BarrierConfig(**wiring))
    for _ in range(2):  # the node starting, stopping and starting again
        build(config).close()
    assert opened not in levels(pin)


def test_shutdown__returns_relay_to_rest(factory, build):
    pin = idle_at(factory, RELAY, False)
    gate = build(GpioConfig(barrier=BarrierConfig(mode="latched", open_s=5.0)))
    gate.open_barrier()
    assert pin.state is True
    gate.close()
    assert levels(pin) == [False, True, False]
    gate.open_barrier()  # after shutdown: ignored, the door stays locked
    assert pin.state is False


def test_pulse__one_interval_of_pulse_s(factory, barrier):
    gate = barrier(pulse_s=0.05)
    pin = factory.pin(RELAY)
    gate.open()
    wait_until(lambda: not gate.is_open)
    [pulse] = spells(pin, True)
    assert 0.05 - 0.002 <= pulse <= 0.05 + LATE_S


def test_latched__open_for_open_s(factory, barrier):
    gate = barrier(mode="latched", open_s=0.12)
    pin = factory.pin(RELAY)
    gate.open()
    wait_until(lambda: not gate.is_open)
    [opening] = spells(pin, True)
    assert 0.12 - 0.002 <= opening <= 0.12 + LATE_S


def test_open_twice__extends_without_second_pulse(factory, barrier):
    gate = barrier(pulse_s=0.1)
    pin = factory.pin(RELAY)
    assert gate.open() is True
    time.sleep(0.05)
    assert gate.open() is False
    wait_until(lambda: not gate.is_open)
    [pulse] = spells(pin, True)
    assert 0.15 - 0.002 <= pulse <= 0.15 + LATE_S


def test_open_from_many_threads__one_pulse(factory, barrier):
    gate = barrier(pulse_s=0.05)
    pin = factory.pin(RELAY)
    start = threading.Barrier(8)
    opened: list[bool] = []

    def press() -> None:
        start.wait(DEADLINE_S)
        opened.append(gate.open())

    threads = [threading.Thread(target=press) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)
    wait_until(lambda: not gate.is_open)
    assert sorted(opened) == [False] * 7 + [True]
    assert len(spells(pin, True)) == 1


@pytest.mark.parametrize(
    ("outcome", "green", "red"),
    [("allow", True, False), ("hold", False, True), ("deny", False, True)],
)
def test_lamps__valid(factory, build, outcome, green, red):
    gate = build(GpioConfig(lamps=LampsConfig(show_s=0.05)))
    gate.show(outcome)
    assert (factory.pin(GREEN).state, factory.pin(RED).state) == (green, red)
    wait_until(lambda: not factory.pin(GREEN).state and not factory.pin(RED).state)


def test_lamps__new_decision_replaces_the_last(factory, build):
    gate = build(GpioConfig(lamps=LampsConfig(show_s=5.0)))
    gate.show("allow")
    gate.show("deny")
    assert (factory.pin(GREEN).state, factory.pin(RED).state) == (False, True)


@pytest.mark.parametrize(("outcome", "beeps", "units"), [("hold", 2, 1), ("deny", 3, 3)])
def test_buzzer_pattern__valid(factory, build, outcome, beeps, units):
    beep_s = 0.02
    build(GpioConfig(buzzer=BuzzerConfig(beep_s=beep_s))).show(outcome)
    pin = factory.pin(BUZZER)
    wait_until(lambda: len(spells(pin, True)) == beeps)
    time.sleep(0.1)  # a wrong pattern would add more beeps in this time
    sounded = spells(pin, True)
    assert len(sounded) == beeps
    for length in sounded:
        assert units * beep_s - 0.002 <= length <= units * beep_s + LATE_S


@pytest.mark.parametrize("opens_barrier", [True, False])
def test_exit_button__press_calls_back(factory, build, opens_barrier):
    pressed: list[float] = []
    config = GpioConfig(
        barrier=BarrierConfig(mode="latched", open_s=5.0),
        exit_button={"opens_barrier": opens_barrier},
    )
    build(config, on_exit=lambda: pressed.append(time.monotonic()))
    button = factory.pin(EXIT)
    assert not pressed  # the pull-up holds it released
    button.drive_low()
    button.drive_high()
    wait_until(lambda: len(pressed) == 1)
    assert factory.pin(RELAY).state is opens_barrier


def test_exit_button__failing_callback_still_opens(factory, build):
    def broken() -> None:
        raise RuntimeError("the outbox is gone")

    build(GpioConfig(barrier=BarrierConfig(mode="latched", open_s=5.0)), on_exit=broken)
    factory.pin(EXIT).drive_low()
    assert factory.pin(RELAY).state is True


@pytest.mark.parametrize(
    ("closed_when_high", "level", "state"),
    [
        (False, False, "closed"),
        (False, True, "open"),
        (True, True, "closed"),
        (True, False, "open"),
    ],
)
def test_door_state__valid(factory, build, closed_when_high, level, state):
    gate = build(GpioConfig(door=DoorContactConfig(closed_when_high=closed_when_high)))
    pin = factory.pin(DOOR)
    # Away from `level` and back, so the contact sees a change whatever the pull did.
    (pin.drive_low, pin.drive_high)[not level]()
    (pin.drive_high, pin.drive_low)[not level]()
    assert gate.door.state == state


def test_door__held_open_raises_then_clears(factory, build):
    changes: list[str] = []
    faults: list[FaultChange] = []
    config = GpioConfig(door=DoorContactConfig(held_open_fault_s=0.05))
    gate = build(config, on_door=changes.append, on_fault=faults.append)
    pin = factory.pin(DOOR)
    pin.drive_low()  # shut (the pull-up alone reads as open)
    changes.clear()
    pin.drive_high()
    wait_until(lambda: len(faults) == 1)
    assert faults == [FaultChange("door", "held-open", "raised", "open longer than 0.05 s")]
    assert gate.door.held_open
    pin.drive_low()
    assert faults[1:] == [FaultChange("door", "held-open", "cleared")]
    assert changes == ["open", "closed"]
    assert not gate.door.held_open


def test_door__brief_opening_raises_nothing(factory, build):
    faults: list[FaultChange] = []
    build(GpioConfig(door=DoorContactConfig(held_open_fault_s=0.1)), on_fault=faults.append)
    pin = factory.pin(DOOR)
    pin.drive_low()
    pin.drive_high()
    pin.drive_low()
    time.sleep(0.2)
    assert faults == []


def test_gateio__part_that_fails_releases_the_rest(factory, build):
    pin = idle_at(factory, RELAY, False)
    squatter = DigitalInputDevice(DOOR, pin_factory=factory)
    with pytest.raises(GPIOPinInUse):
        build()
    squatter.close()
    build().close()  # every pin was free again
    assert levels(pin) == [False]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"pin_factory": "mock"},
        {"barrier": {"mode": "latched", "open_s": 8}},
        {"barrier": {"mode": "pulse", "pulse_s": 0.5, "fail": "safe", "active_high": False}},
        {"buzzer": None, "barrier": {"relay_pin": 23}},
        {"lamps": None, "buzzer": None, "exit_button": None, "door": None},
        {"door": {"pull_up": False, "closed_when_high": True, "held_open_fault_s": 120}},
    ],
)
def test_gpio_config__valid(data):
    config = GpioConfig.model_validate(data)
    pins = [pin for _, pin in config.pins()]
    assert len(pins) == len(set(pins))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"buzzer": {"pin": 17}}, "barrier.relay_pin and buzzer.pin both use GPIO 17"),
        ({"exit_button": {"pin": 25}}, "exit_button.pin and door.pin both use GPIO 25"),
        ({"lamps": {"green_pin": 22}}, "green_pin and red_pin are both GPIO 22"),
        ({"barrier": {"relay_pin": 28}}, "less than or equal to 27"),
        ({"barrier": {"relay_pin": 1}}, "greater than or equal to 2"),
        ({"barrier": {"relay": "momentary"}}, "Extra inputs are not permitted"),
        ({"barrier": {"mode": "latched", "pulse_s": 0.8}}, "'latched', so pulse_s does not"),
        ({"barrier": {"open_s": 3}}, "'pulse', so open_s does not apply"),
        ({"barrier": {"fail": "open"}}, "'safe' or 'secure'"),
        ({"barrier": None}, "barrier"),
        ({"pin_factory": "pigpio"}, "'auto' or 'mock'"),
        ({"door": {"held_open_fault_s": 0}}, "greater than or equal to 0.05"),
    ],
)
def test_gpio_config__invalid(data, message):
    with pytest.raises(ValidationError, match=message):
        GpioConfig.model_validate(data)


@pytest.mark.parametrize("model", [b"Raspberry Pi 4 Model B Rev 1.4\x00", b"Raspberry Pi 5\x00"])
def test_on_raspberry_pi__valid(tmp_path: Path, model):
    (tmp_path / "model").write_bytes(model)
    assert on_raspberry_pi(tmp_path / "model")
    assert pin_factory_for("auto", tmp_path / "model") is None


@pytest.mark.parametrize("model", [b"Radxa ROCK 5B\x00", None])
def test_on_raspberry_pi__invalid(tmp_path: Path, model):
    if model is not None:
        (tmp_path / "model").write_bytes(model)
    assert not on_raspberry_pi(tmp_path / "model")
    assert isinstance(pin_factory_for("auto", tmp_path / "model"), MockFactory)
