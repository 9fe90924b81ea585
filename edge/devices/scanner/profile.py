"""Settings of a GM65-class QR scanner: suffix, read mode, limits and reply timing."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from edge.devices.base import DeviceProfile
from edge.devices.scanner.protocol import ReadMode, Suffix

BITS_PER_BYTE = 10  # 8N1


class ScannerProfile(DeviceProfile):
    """A GM65-class module (Hangzhou Grow GM65, GM65-S) on its TTL-232 UART."""

    part: Literal["gm65-scanner"] = "gm65-scanner"
    model: str = Field("GM65", description="module as printed on it")
    silence_fault_s: None = Field(
        None, description="none: a scanner only speaks when a code is read"
    )
    stuck_after_s: None = Field(None, description="none: the same code twice is normal")
    suffix: Suffix = Field(
        "cr", description="what ends each code on the wire: cr, crlf, tab or none"
    )
    read_mode: ReadMode = Field(
        "sensing",
        description="sensing: reads when something moves in front (a phone held up); "
        "continuous: reads all the time, repeating a code after the module's interval",
    )
    beep: bool = Field(True, description="the module beeps on a read; off for quiet sites")
    max_code_chars: int = Field(
        4296, ge=16, le=7089,
        description="longest code in bytes (4296 = QR version 40, alphanumeric); "
        "longer lines are an overflow fault",
    )  # fmt: skip
    frame_gap_s: float = Field(
        0.1, ge=0.01, le=2.0,
        description="quiet time that ends a code when suffix is none, and drops a "
        "partial line that never got its suffix",
    )  # fmt: skip
    reply_timeout_s: float = Field(
        0.5, gt=0, le=10, description="how long setup waits for the answer to each setting"
    )
    configure_on_start: bool = Field(
        True,
        description="write suffix and read mode at every open; off when firmware-tools "
        "has already stored them in the module",
    )

    @model_validator(mode="after")
    def _gap_fits_baudrate(self) -> Self:
        byte_s = BITS_PER_BYTE / self.baudrate
        if self.frame_gap_s < 4 * byte_s:
            raise ValueError(
                f"frame_gap_s {self.frame_gap_s} is shorter than 4 bytes at baudrate "
                f"{self.baudrate} ({4 * byte_s:.3f} s): codes would be cut"
            )
        return self
