"""Settings of a GM65-class QR scanner: suffix, read mode, limits and reply timing."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from edge.devices.base import DeviceProfile
from edge.devices.scanner.protocol import NodeSuffix, ReadMode

BITS_PER_BYTE = 10  # 8N1
GAP_BYTES = 10  # a gap must be longer than this many characters on the wire


class ScannerProfile(DeviceProfile):
    """A GM65-class module (Hangzhou Grow GM65, GM65-S) on its TTL-232 UART."""

    part: Literal["gm65-scanner"] = "gm65-scanner"
    model: str = Field("GM65", description="module as printed on it")
    silence_fault_s: None = Field(
        None, description="none: a scanner only speaks when a code is read"
    )
    stuck_after_s: None = Field(None, description="none: the same code twice is normal")
    suffix: NodeSuffix = Field(
        "cr",
        description="what ends each code on the wire: cr, crlf or tab (never none: "
        "a code must have an end that a pause inside it cannot fake)",
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
        description="quiet time after which a line without its suffix is dropped as a "
        "fragment (and everything up to the next suffix with it); the person scans again",
    )  # fmt: skip
    adapter_latency_s: float = Field(
        0.016, ge=0.001, le=0.255,
        description="longest a USB-serial adapter holds bytes before passing them on "
        "(FTDI's latency timer, 16 ms by default): bursts this far apart are one line",
    )  # fmt: skip
    settings_check_s: float | None = Field(
        5.0, ge=0.2, le=3600,
        description="read suffix and read mode back this often; a module that restarted "
        "with its saved settings is then set up again (none: never)",
    )  # fmt: skip
    reply_timeout_s: float = Field(
        0.5, gt=0, le=10, description="how long setup waits for the answer to each setting"
    )
    configure_on_start: bool = Field(
        True,
        description="write suffix and read mode at every open and check them every "
        "settings_check_s; off when firmware-tools has already stored them in the module",
    )

    @property
    def byte_s(self) -> float:
        """Wire time of one character at `baudrate`."""
        return BITS_PER_BYTE / self.baudrate

    @model_validator(mode="after")
    def _gap_fits_baudrate(self) -> Self:
        # Bytes of one code arrive in bursts up to one adapter latency apart (and one
        # character apart at slow speeds); a gap that short would cut codes.
        shortest = 2 * self.adapter_latency_s + GAP_BYTES * self.byte_s
        if self.frame_gap_s < shortest:
            raise ValueError(
                f"frame_gap_s {self.frame_gap_s} is too short for baudrate {self.baudrate} "
                f"and adapter_latency_s {self.adapter_latency_s}: bytes of one code may "
                f"arrive {shortest:.3f} s apart, so codes would be cut"
            )
        return self
