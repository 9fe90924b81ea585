"""Settings of a GY-MCU90614-class IR thermometer: link, person episodes and calibration."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from edge.devices.base import DeviceProfile


class ThermometerProfile(DeviceProfile):
    """A GY-MCU90614-class module (MLX90614 behind a small MCU) on a UART.

    The module streams about 14 frames a second whether or not anyone is in front of
    it; the driver turns that stream into one reading per person (an episode).
    """

    part: Literal["gy-mcu90614"] = "gy-mcu90614"
    model: str = Field("GY-MCU90614", description="module as printed, e.g. GY-MCU90614-BCC")
    baudrate: Literal[9600, 115200] = Field(
        9600, description="UART speed, 8N1: the two the module supports (9600 as shipped)"
    )
    silence_fault_s: float = Field(
        3.0, gt=0, le=3600, description="no valid frame this long: timeout fault"
    )
    stuck_after_s: float = Field(
        300.0, gt=0, le=86400,
        description="byte-identical object and ambient values this long: stuck (a live "
        "sensor's ambient jitters in the last digit)",
    )  # fmt: skip
    presence_min_c: float = Field(
        30.0, ge=20, le=40,
        description="object at least this warm: a person is in front (starts an episode); "
        "below it the episode ends",
    )  # fmt: skip
    settle_frames: int = Field(
        3, gt=0, le=50, description="consecutive in-episode frames that must agree"
    )
    settle_spread_c: float = Field(
        0.3, gt=0, le=5, description="largest max-min object value over those frames"
    )
    body_offset_c: float = Field(
        0.0, ge=-5, le=10,
        description="added to the forehead (object) value to estimate body temperature; "
        "calibrate on site against a clinical thermometer",
    )  # fmt: skip
    object_offset_c: float = Field(
        0.0, ge=-3, le=3,
        description="the sensor's own error, added to every object value before anything "
        "else: `gatepost fw device thermo-calibrate` measures it against a blackbody",
    )  # fmt: skip
    max_plausible_c: float = Field(
        43.0, ge=35, le=80,
        description="a settled object above this is no forehead (a cup, a lamp): the "
        "reading says out-of-range and has no body temperature",
    )  # fmt: skip
    configure_on_start: bool = Field(
        True,
        description="send the continuous-output command (A5 45 EA) at every open, in case "
        "the module was set not to stream after power-up",
    )

    @model_validator(mode="after")
    def _presence_below_plausible(self) -> Self:
        if self.presence_min_c >= self.max_plausible_c:
            raise ValueError(
                f"presence_min_c {self.presence_min_c} must be below "
                f"max_plausible_c {self.max_plausible_c}"
            )
        return self
