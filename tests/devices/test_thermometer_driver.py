"""The thermometer driver over a real pty: one reading per person, settling, range, calibration."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from edge.devices.base import FrameFault, RawSample, Reading, TemperatureReading
from edge.devices.thermometer.driver import ThermometerDriver
from edge.devices.thermometer.profile import ThermometerProfile
from edge.devices.thermometer.protocol import CONTINUOUS_OUTPUT, command, encode_frame
from simulators.devices.thermometer import SimulatedThermometer
from simulators.pty import PseudoTerminal

ROOM = 22.0
PROFILE = ThermometerProfile()


@pytest.fixture
def port(pty_pair: PseudoTerminal) -> Iterator[serial.Serial]:
    with serial.serial_for_url(pty_pair.path, baudrate=9600, timeout=0.02) as opened:
        yield opened


def feed(
    pty: PseudoTerminal, port: serial.Serial, objects: list[float], profile: ThermometerProfile
) -> tuple[list[TemperatureReading], list[RawSample]]:
    """Send one frame per object temperature (ambient 22 °C); what the driver made of them."""
    driver = ThermometerDriver(port, profile)
    driver.setup()
    pty.write(b"".join(encode_frame(round(c * 100), 2200 + i % 3) for i, c in enumerate(objects)))
    items: list[Reading | FrameFault | RawSample] = []
    deadline = time.monotonic() + 2.0
    while sum(isinstance(i, RawSample) for i in items) < len(objects):
        assert time.monotonic() < deadline, f"only {items} from {len(objects)} frames"
        items += driver.poll()
    assert not [i for i in items if isinstance(i, FrameFault)]
    readings = [i for i in items if isinstance(i, TemperatureReading)]
    return readings, [i for i in items if isinstance(i, RawSample)]


def person(*objects: float) -> list[float]:
    return [ROOM, *objects, ROOM]


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (person(36.5, 36.6, 36.5, 36.6, 36.5, 36.6), [(36.5, 36.5)]),  # one reading per person
        (person(31.0, 34.0, 36.4, 36.5, 36.6, 36.6), [(36.5, 36.5)]),  # stepping in: settles late
        (person(36.5, 36.5, 36.5) + person(38.2, 38.3, 38.3), [(36.5, 36.5), (38.3, 38.3)]),
        (person(36.5, 36.8, 36.6), [(36.6, 36.6)]),  # a 0.3 spread still settles; median
        (person(*[36.6] * 40), [(36.6, 36.6)]),  # standing there long: still one
    ],
)
def test_episode__valid(
    pty_pair: PseudoTerminal,
    port: serial.Serial,
    objects: list[float],
    expected: list[tuple[float, float]],
) -> None:
    readings, _ = feed(pty_pair, port, objects, PROFILE)
    assert [(r.object_c, r.body_c) for r in readings] == expected
    assert all(r.problem is None and r.source == "thermometer" for r in readings)
    assert all(r.ambient_c is not None and abs(r.ambient_c - ROOM) < 0.05 for r in readings)


@pytest.mark.parametrize(
    "objects",
    [
        person(35.0, 36.0, 35.0, 36.0, 35.0, 36.0),  # never within 0.3: no reading
        person(36.5, 36.5),  # gone before 3 frames
        person(36.5, 36.5) + person(36.5, 36.5),  # two brief visits do not add up
        person(29.9, 29.9, 29.9, 29.9),  # below presence: nobody there
        person(36.5, 36.9, 36.5),  # a 0.4 spread
    ],
)
def test_episode__invalid(
    pty_pair: PseudoTerminal, port: serial.Serial, objects: list[float]
) -> None:
    readings, samples = feed(pty_pair, port, objects, PROFILE)
    assert readings == []
    assert len(samples) == len(objects)  # the link still sees every frame: alive


@pytest.mark.parametrize(
    ("profile", "objects", "expected"),
    [
        (PROFILE.model_copy(update={"body_offset_c": 1.2}), person(35.3, 35.4, 35.4), (35.4, 36.6)),
        (PROFILE.model_copy(update={"settle_frames": 1}), person(31.0, 36.5), (31.0, 31.0)),
        (PROFILE.model_copy(update={"presence_min_c": 34.0}), person(33.9, 33.9, 33.9), None),
    ],
)
def test_profile_settings(
    pty_pair: PseudoTerminal,
    port: serial.Serial,
    profile: ThermometerProfile,
    objects: list[float],
    expected: tuple[float, float] | None,
) -> None:
    readings, _ = feed(pty_pair, port, objects, profile)
    assert [(r.object_c, r.body_c) for r in readings] == ([expected] if expected else [])


@pytest.mark.parametrize("objects", [person(50.0, 50.1, 50.0), person(43.1, 43.1, 43.1)])
def test_out_of_range(pty_pair: PseudoTerminal, port: serial.Serial, objects: list[float]):
    readings, _ = feed(pty_pair, port, objects, PROFILE)
    assert len(readings) == 1
    assert readings[0].problem == "out-of-range"
    assert readings[0].body_c is None
    assert readings[0].object_c == objects[1]  # the median of the three


def test_reading_time_is_the_last_byte(pty_pair: PseudoTerminal, port: serial.Serial) -> None:
    before = time.monotonic()
    readings, _ = feed(pty_pair, port, person(36.5, 36.5, 36.5), PROFILE)
    assert before < readings[0].at <= time.monotonic()


def test_stuck_key_is_the_latest_raw_frame(pty_pair: PseudoTerminal, port: serial.Serial):
    driver = ThermometerDriver(port, PROFILE)
    pty_pair.write(encode_frame(3650, 2201) + encode_frame(3651, 2202))
    items: list[Reading | FrameFault | RawSample] = []
    while len(items) < 2:
        items += driver.poll()
    assert items == [RawSample((3650, 2201)), RawSample((3651, 2202))]
    reading = TemperatureReading("thermometer", 0.0, 36.5)
    assert driver.stuck_key(reading) == (3651, 2202)


@pytest.mark.parametrize(("configure", "sent"), [(True, command(CONTINUOUS_OUTPUT)), (False, b"")])
def test_setup_starts_continuous_output(
    pty_pair: PseudoTerminal, port: serial.Serial, configure: bool, sent: bytes
) -> None:
    ThermometerDriver(port, PROFILE.model_copy(update={"configure_on_start": configure})).setup()
    assert pty_pair.read(16, timeout_s=0.2) == sent


@pytest.mark.parametrize(("configure", "sent"), [(True, command(CONTINUOUS_OUTPUT)), (False, b"")])
def test_revive_starts_continuous_output(
    pty_pair: PseudoTerminal, port: serial.Serial, configure: bool, sent: bytes
) -> None:
    # The link calls revive() while in timeout: a module that restarted silent waits for it.
    ThermometerDriver(port, PROFILE.model_copy(update={"configure_on_start": configure})).revive()
    assert pty_pair.read(16, timeout_s=0.2) == sent


def test_simulated_person_is_measured_once(tmp_path: Path) -> None:
    # The simulator's forehead is 1.5 °C below body; the profile's offset calibrates it back.
    profile = PROFILE.model_copy(update={"body_offset_c": 1.5})
    with (
        SimulatedThermometer(tmp_path / "thermo", skin_offset_c=1.5, interval_s=0.05) as part,
        serial.serial_for_url(str(part.path), baudrate=9600, timeout=0.02) as opened,
    ):
        driver = ThermometerDriver(opened, profile)
        driver.setup()
        part.present(37.8, duration_s=0.5)
        readings: list[TemperatureReading] = []
        deadline = time.monotonic() + 0.9
        while time.monotonic() < deadline:
            readings += [i for i in driver.poll() if isinstance(i, TemperatureReading)]
        assert part.instructions == [CONTINUOUS_OUTPUT]
    assert len(readings) == 1, readings
    assert readings[0].body_c == pytest.approx(37.8, abs=0.06)
