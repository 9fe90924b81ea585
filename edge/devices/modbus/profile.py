"""Settings of an RS485 bus of XY-MD02-class Modbus RTU temperature/humidity sensors."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from edge.devices.base import DeviceProfile

# A read of two registers: 8 request bytes, 9 answer bytes, and a 3.5-character gap each.
EXCHANGE_CHARS = 8 + 9 + 2 * 3.5


class ModbusSensorProfile(DeviceProfile):
    """XY-MD02 / SHT20-class modules sharing one RS485 bus, polled in turn.

    Every module on a bus must speak the same line settings; those vary between buses
    (as shipped most are 9600 8N1, some installers set 8E1), so a site with another bus
    writes its own profile. The serial fields of DeviceProfile for streaming parts
    (`silence_fault_s`, `stuck_after_s`) do not apply: a polled sensor that does not
    answer is a timeout at once.
    """

    part: Literal["xy-md02"] = "xy-md02"
    model: str = Field("XY-MD02", description="module as printed, e.g. XY-MD02, SHT20-RS485")
    baudrate: Literal[1200, 2400, 4800, 9600, 14400, 19200] = Field(
        9600, description="bus speed; every module on the bus set to it (9600 as shipped)"
    )
    parity: Literal["N", "E", "O"] = Field("N", description="parity bit, the same on the bus")
    stopbits: Literal[1, 2] = Field(1, description="stop bits, the same on the bus")
    input_function: Literal[3, 4] = Field(
        4,
        description="function that reads temperature and humidity: 04 (input registers) "
        "on XY-MD02; a few clones answer only 03",
    )
    temperature_register: int = Field(
        0x0001, ge=0, le=0xFFFF, description="register of temperature x 10, signed"
    )
    humidity_register: int = Field(
        0x0002, ge=0, le=0xFFFF, description="register of humidity x 10, right after temperature"
    )
    reply_timeout_s: float = Field(
        0.3, gt=0, le=5,
        description="wait this long for an answer before asking again; a module answers "
        "within ~20 ms of the request's end",
    )  # fmt: skip
    retries: int = Field(
        1, ge=0, le=3,
        description="ask again this often before a timeout fault: more retries make one dead "
        "sensor hold up the whole bus's round",
    )  # fmt: skip

    @model_validator(mode="after")
    def _humidity_follows_temperature(self) -> Self:
        if self.humidity_register != self.temperature_register + 1:
            raise ValueError(
                f"humidity_register {self.humidity_register:#06x} must follow "
                f"temperature_register {self.temperature_register:#06x} (one read gets both)"
            )
        return self

    @model_validator(mode="after")
    def _timeout_fits_baudrate(self) -> Self:
        bits = 1 + 8 + (self.parity != "N") + self.stopbits
        exchange_s = EXCHANGE_CHARS * bits / self.baudrate
        if self.reply_timeout_s <= exchange_s:
            raise ValueError(
                f"reply_timeout_s {self.reply_timeout_s} is too short for baudrate "
                f"{self.baudrate}: a request and its answer take {exchange_s:.3f} s"
            )
        return self
