"""The GY-MCU90640 thermal array as the shared driver contract tests drive it."""

from __future__ import annotations

from pathlib import Path

from edge.devices.base import Reading, TemperatureReading
from edge.devices.registry import DRIVERS
from edge.devices.thermal_array.profile import ThermalArrayProfile
from simulators.devices.base import SimulatedPart
from simulators.devices.thermal_array import SimulatedThermalArray
from tests.devices.cases import ContractCase

BODY_C = 36.8
# 4 Hz frames: 0.8 s of silence is three missed frames; 3 settle frames take 0.75 s.
PROFILE = ThermalArrayProfile(
    silence_fault_s=0.8, stuck_after_s=1.5, clean_after_s=0.5, settle_frames=3,
    reply_timeout_s=0.5, settings_check_s=0.5,
)  # fmt: skip


def simulator(path: Path) -> SimulatedPart:
    # Its scene is its own (simulators/devices/thermal_scene.py): at 0.5 m in a 21 °C room
    # the shipped compensation reads 36.8 °C within about 0.1 °C.
    return SimulatedThermalArray(path, PROFILE.baudrate, rate_hz=PROFILE.rate_hz)


def provoke(part: SimulatedPart) -> None:
    assert isinstance(part, SimulatedThermalArray)
    # Long enough for 3 settle frames even at the contract's slow_factor of 2 (2 Hz).
    part.present(BODY_C, "ok", duration_s=2.0)


def expected(reading: Reading) -> bool:
    return (
        isinstance(reading, TemperatureReading)
        and reading.problem is None
        and reading.body_c is not None
        and abs(reading.body_c - BODY_C) <= 0.2
    )


CASE = ContractCase("gy-mcu90640", PROFILE, DRIVERS["gy-mcu90640"], simulator, provoke, expected)
