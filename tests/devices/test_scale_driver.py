"""The scale driver over a real pty with the simulated indicator: only settled weights count."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import serial

from edge.devices.base import FrameFault, RawSample
from edge.devices.registry import DRIVERS, PROFILES
from edge.devices.scale.driver import ScaleDriver, WeightReading
from edge.devices.scale.profile import ScaleProfile
from edge.devices.scale.protocol import encode_st_gs
from simulators.devices.scale import SimulatedScale
from simulators.pty import PseudoTerminal

ST_GS = ScaleProfile(frames_per_s=20)
TOLEDO = ScaleProfile(format="toledo", bytesize=7, parity="E", frames_per_s=20)


def collect(driver: ScaleDriver, until: float) -> list[WeightReading | FrameFault]:
    items: list[WeightReading | FrameFault] = []
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        items += driver.read()
    return items


@pytest.fixture(params=[ST_GS, TOLEDO], ids=["st-gs", "toledo"])
def scale(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimulatedScale]:
    with SimulatedScale(tmp_path / "scale", request.param, settle_s=0.6) as simulated:
        yield simulated


@contextmanager
def open_driver(scale: SimulatedScale) -> Iterator[ScaleDriver]:
    profile = scale.profile
    with serial.serial_for_url(
        str(scale.path), baudrate=profile.baudrate, bytesize=profile.bytesize,
        parity=profile.parity, timeout=0.05,
    ) as port:  # fmt: skip
        driver = ScaleDriver(port, profile, "pallet-n95")
        driver.setup()
        yield driver


def test_pallet_loaded__unstable_then_one_settled_weight(scale: SimulatedScale) -> None:
    scale.load("1250.5")
    time.sleep(scale.power_up_s)
    with open_driver(scale) as driver:
        driver.read()
        scale.load("1250.5")  # again: motion for 0.6 s, then stable
        items = collect(driver, 1.4)
    readings = [i for i in items if isinstance(i, WeightReading)]
    assert not [i for i in items if isinstance(i, FrameFault)]
    moving = [r for r in readings if not r.stable]
    assert moving, "the simulator swings while settling"
    assert all(r.weight_kg is None for r in moving)  # unstable is never a weight
    usable = [r for r in readings if r.usable]
    assert usable and {r.weight_kg for r in usable} == {Decimal("1250.50")}
    assert all(r.source == "pallet-n95" and r.basis == "gross" for r in usable)
    # The first usable reading comes after `stable_frames` stable frames in a row.
    first = readings.index(usable[0])
    assert all(r.stable for r in readings[first - ST_GS.stable_frames + 1 : first + 1])


def test_overload__never_a_weight(scale: SimulatedScale) -> None:
    scale.load(10, settle_s=0)
    scale.overload()
    time.sleep(scale.power_up_s)
    with open_driver(scale) as driver:
        readings = [i for i in collect(driver, 0.5) if isinstance(i, WeightReading)]
    assert readings and all(r.overload and r.weight_kg is None for r in readings)


def test_line_noise__garbage_faults_and_the_weight_after_it(scale: SimulatedScale) -> None:
    scale.load(42, settle_s=0)
    time.sleep(scale.power_up_s)
    with open_driver(scale) as driver:
        driver.read()
        scale.faults.corrupt_next = 2
        items = collect(driver, 0.8)
    faults = [i for i in items if isinstance(i, FrameFault)]
    assert faults and all(f.kind in ("garbage", "checksum") for f in faults)
    assert any(isinstance(i, WeightReading) and i.weight_kg == Decimal(42) for i in items)


def test_a_flickering_standstill_flag_is_not_enough(pty_pair: PseudoTerminal) -> None:
    profile = ScaleProfile(stable_frames=3)
    with serial.serial_for_url(pty_pair.path, baudrate=9600, timeout=0.05) as port:
        driver = ScaleDriver(port, profile)
        lines = [("US", "11.9"), ("ST", "12.0"), ("US", "12.1"), ("ST", "12.0"),
                 ("ST", "12.0"), ("ST", "12.1"), ("ST", "12.1"), ("ST", "12.1")]  # fmt: skip
        pty_pair.write(b"".join(encode_st_gs(s, "gross", Decimal(w)) for s, w in lines))  # type: ignore[arg-type]
        readings: list[WeightReading] = []
        deadline = time.monotonic() + 2
        while len(readings) < len(lines) and time.monotonic() < deadline:
            readings += [i for i in driver.read() if isinstance(i, WeightReading)]
    # Two stable 12.0 in a row and a change to 12.1: only the third stable 12.1 counts.
    assert [r.weight_kg for r in readings] == [None] * 7 + [Decimal("12.10")]


def test_another_unit_than_the_profile_is_garbage(pty_pair: PseudoTerminal) -> None:
    with serial.serial_for_url(pty_pair.path, baudrate=9600, timeout=0.05) as port:
        driver = ScaleDriver(port, ScaleProfile(stable_frames=1))
        pty_pair.write(encode_st_gs("ST", "gross", Decimal(5), "lb"))
        items = collect(driver, 0.3)
    assert [(type(i), getattr(i, "kind", None)) for i in items] == [(FrameFault, "garbage")]


def test_registered_as_a_streaming_part_for_a_generic_link(pty_pair: PseudoTerminal) -> None:
    # Through the registry the scale is a live part (raw samples), never a gate reading.
    assert PROFILES["scale-continuous"] is ScaleProfile
    with serial.serial_for_url(pty_pair.path, baudrate=9600, timeout=0.05) as port:
        driver = DRIVERS["scale-continuous"](port, ScaleProfile())
        pty_pair.write(encode_st_gs("ST", "gross", Decimal(5)) + b"zz\r\n")
        items: list[object] = []
        deadline = time.monotonic() + 1
        while len(items) < 2 and time.monotonic() < deadline:
            items += driver.poll()
    assert items[0] == RawSample(None)
    assert isinstance(items[1], FrameFault)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"frames_per_s": 10, "baudrate": 1200}, "do not fit 1200 baud"),
        ({"silence_fault_s": 0.1}, "at least two frames"),
        ({"format": "xk3190"}, "Input should be 'st-gs' or 'toledo'"),
        ({"unit": "oz"}, "Input should be 'kg', 'g', 'lb' or 't'"),
        ({"stable_frames": 0}, "greater than or equal to 1"),
    ],
)
def test_profile__bad_settings(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ScaleProfile.model_validate(fields)
