"""Settings of a weighing indicator with continuous RS232 output (a platform scale)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from edge.devices.base import DeviceProfile
from edge.devices.scale.protocol import ScaleFormat, Unit


class ScaleProfile(DeviceProfile):
    """An indicator that streams its shown weight several times a second, as set on site.

    hardware/protocols/scale-continuous.md says which indicators send which format and
    how they ship; the profile must match what the indicator is set to (its menu), since
    a scale answers nothing: it only talks.
    """

    part: Literal["scale-continuous"] = "scale-continuous"
    model: str = Field(
        "ST/GS indicator", min_length=1, max_length=80, description="indicator as printed"
    )
    format: ScaleFormat = Field(
        "st-gs", description="st-gs: `ST,GS,+0012.34kg` lines; toledo: STX and status words"
    )
    baudrate: Literal[1200, 2400, 4800, 9600, 19200] = Field(
        9600, description="UART speed as set on the indicator"
    )
    bytesize: Literal[7, 8] = Field(8, description="data bits (Toledo output: usually 7)")
    parity: Literal["N", "E", "O"] = Field("N", description="parity: none, even or odd")
    toledo_checksum: bool = Field(
        True, description="toledo: the indicator sends the check character after CR"
    )
    unit: Unit = Field(
        "kg",
        description="the unit the indicator is set to: a frame in another unit is garbage "
        "(someone changed the menu, or another scale is on the line)",
    )
    frames_per_s: float = Field(
        10, gt=0, le=50, description="how often the indicator sends (the simulator's rate)"
    )
    silence_fault_s: float = Field(
        3.0, gt=0, le=3600, description="no valid frame this long: timeout fault"
    )
    stable_frames: int = Field(
        3, ge=1, le=50,
        description="consecutive stable frames of one weight before it counts (an "
        "indicator's standstill flag can flicker on for one frame while a pallet settles)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _line_fits(self) -> Self:
        # 10 bits a byte, at most 22 bytes a frame.
        if self.frames_per_s * 22 * 10 > self.baudrate:
            raise ValueError(
                f"{self.frames_per_s:g} frames/s do not fit {self.baudrate} baud "
                "(22 bytes of 10 bits each)"
            )
        if self.silence_fault_s * self.frames_per_s < 2:
            raise ValueError("silence_fault_s must span at least two frames")
        return self
