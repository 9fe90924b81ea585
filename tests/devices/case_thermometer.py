"""The GY-MCU90614 thermometer as the shared driver contract tests drive it."""

from __future__ import annotations

from pathlib import Path

from edge.devices.base import Reading, TemperatureReading
from edge.devices.registry import DRIVERS
from edge.devices.thermometer.profile import ThermometerProfile
from simulators.devices.base import SimulatedPart
from simulators.devices.thermometer import SimulatedThermometer
from tests.devices.cases import ContractCase

BODY_C = 36.6
PROFILE = ThermometerProfile(silence_fault_s=0.5, stuck_after_s=1.0, clean_after_s=0.5)


def simulator(path: Path) -> SimulatedPart:
    # Stored not to stream after power-up: it streams only when told A5 45 EA.
    return SimulatedThermometer(
        path, PROFILE.baudrate, interval_s=0.1, auto_output_at_power_up=False
    )


def provoke(part: SimulatedPart) -> None:
    assert isinstance(part, SimulatedThermometer)
    # Long enough for 3 settle frames even with the contract's slow_factor of 2.
    part.present(BODY_C, duration_s=0.8)


def expected(reading: Reading) -> bool:
    return (
        isinstance(reading, TemperatureReading)
        and reading.problem is None
        and reading.body_c is not None
        and abs(reading.body_c - BODY_C) <= 0.1
    )


CASE = ContractCase("gy-mcu90614", PROFILE, DRIVERS["gy-mcu90614"], simulator, provoke, expected)
