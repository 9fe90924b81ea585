"""XY-MD02 register map and the pure step from register values to a depot reading."""

# Register map (hardware/protocols/xy-md02-modbus.md has the sources and where modules differ).
# Framing, CRC-16 and retries are pymodbus's; this module sees register values only.
#
#   input registers, function 04      0x0001  temperature, °C x 10, signed int16
#                                     0x0002  humidity, %RH x 10, unsigned
#   holding registers, function 03    0x0101  slave id, 1..247
#                                     0x0102  baud code (0: 9600, 1: 14400, 2: 19200 on
#                                             XY-MD02; other modules use other codes)

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TEMPERATURE_REGISTER = 0x0001
HUMIDITY_REGISTER = 0x0002
SLAVE_ID_REGISTER = 0x0101
BAUD_CODE_REGISTER = 0x0102
# Holding register 0x0102 as the XY-MD02 sheet lists it (other modules: other codes).
BAUD_CODES = {0: 9600, 1: 14400, 2: 19200}
SCALE = 10
# What an SHT20 can measure (Sensirion datasheet): -40..125 °C, 0..100 %RH.
TEMPERATURE_RANGE_C = (-40.0, 125.0)
HUMIDITY_RANGE_RH = (0.0, 100.0)
# Raw values some modules send instead of a measurement when the sensor element fails.
ERROR_CODES = frozenset({0x7FFF, -0x8000, 0x8000, 0xFFFF})

SensorFaultKind = Literal["timeout", "crc", "wrong-slave", "out-of-range", "refused", "bus"]


@dataclass(frozen=True)
class Calibration:
    """One sensor's offsets, found on site against a reference thermometer and hygrometer.

    Added to what the module reports; a depot keeper's reference reads 4.0 °C where the
    module says 4.3 °C: temperature_c = -0.3.
    """

    temperature_c: float = 0.0
    humidity_rh: float = 0.0


@dataclass(frozen=True)
class DepotReading:
    """A calibrated reading of one sensor on a bus, with the monotonic time it was taken."""

    slave_id: int
    temperature_c: float
    humidity_rh: float
    at: float


@dataclass(frozen=True)
class OutOfRange:
    """Register values no working SHT20-class sensor gives (an error code or a broken element)."""

    detail: str


def signed(register: int) -> int:
    """A 16-bit register as the signed int16 the module means (0xFF4B is -181).

    Args:
        register: 0..0xFFFF as pymodbus returns it.

    Returns:
        -32768..32767.
    """
    return register - 0x10000 if register & 0x8000 else register


def decode(
    slave_id: int, registers: list[int], calibration: Calibration, at: float
) -> DepotReading | OutOfRange:
    """Turn input registers 0x0001-0x0002 into a calibrated reading.

    The range check looks at what the module sent, before the offset: an offset must not
    turn an error code into a plausible value, nor a real -40 °C into a fault.

    Args:
        slave_id: the sensor asked (pymodbus has already checked the answer came from it).
        registers: [temperature, humidity] as read, each 0..0xFFFF.
        calibration: that sensor's offsets.
        at: monotonic time of the answer.

    Returns:
        The reading, temperature and humidity with one decimal (humidity kept within
        0..100 after its offset), or why the values cannot be one.
    """
    if len(registers) != 2:
        return OutOfRange(f"{len(registers)} registers where 2 were asked")
    temperature_raw, humidity_raw = signed(registers[0]), registers[1]
    if temperature_raw in ERROR_CODES or humidity_raw in ERROR_CODES:
        return OutOfRange(
            f"module error code (temperature {registers[0]:#06x}, humidity {humidity_raw:#06x})"
        )
    temperature_c, humidity_rh = temperature_raw / SCALE, humidity_raw / SCALE
    low_t, high_t = TEMPERATURE_RANGE_C
    low_h, high_h = HUMIDITY_RANGE_RH
    if not low_t <= temperature_c <= high_t:
        return OutOfRange(f"temperature {temperature_c} °C outside {low_t}..{high_t}")
    if not low_h <= humidity_rh <= high_h:
        return OutOfRange(f"humidity {humidity_rh} %RH outside {low_h}..{high_h}")
    humidity = min(high_h, max(low_h, humidity_rh + calibration.humidity_rh))
    return DepotReading(
        slave_id=slave_id,
        temperature_c=round(temperature_c + calibration.temperature_c, 1),
        humidity_rh=round(humidity, 1),
        at=at,
    )


def encode(temperature_c: float, humidity_rh: float) -> list[int]:
    """Register values a module sends for these values (for simulators and tests).

    Args:
        temperature_c: -3276.8..3276.7 (beyond the sensor's range on purpose, for faults).
        humidity_rh: 0..6553.5.

    Returns:
        [temperature, humidity], each 0..0xFFFF.
    """
    return [round(temperature_c * SCALE) & 0xFFFF, round(humidity_rh * SCALE) & 0xFFFF]
