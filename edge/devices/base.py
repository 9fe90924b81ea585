"""What every device driver shares: the stream it talks to, its readings, its errors.

A driver takes an open stream (anything `serial.serial_for_url` returns) and a profile;
it never opens a path itself, so config may say `/dev/ttyUSB0`, a pty path, `loop://`
or `socket://host:port`. Framing lives in each part's `protocol.py` and does no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from edge.errors import GatepostError

FrameFaultKind = Literal["garbage", "checksum", "overflow"]
TemperatureProblem = Literal["no-face", "too-far", "too-close", "out-of-range"]


class DeviceError(GatepostError):
    """A device could not be used."""


class DeviceTimeout(DeviceError):
    """The device did not answer within the time its profile allows."""


class DeviceRefused(DeviceError):
    """The device answered a setting command with an error or an unexpected reply."""


class SerialStream(Protocol):
    """The part of `serial.Serial` a driver may use."""

    timeout: float | None

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def reset_input_buffer(self) -> None: ...

    @property
    def in_waiting(self) -> int: ...


@dataclass(frozen=True)
class CodeScan:
    """Text read from a QR code (scanner or camera), with the monotonic time of its last byte."""

    text: str
    source: str
    at: float


@dataclass(frozen=True)
class ScanFailed:
    """A code read only in part (the scanner paused mid-code): dropped, never verified.

    The person at the gate must scan again; the console says so.
    """

    source: str
    at: float
    detail: str


@dataclass(frozen=True)
class TemperatureReading:
    """A body temperature measurement, or why none could be taken.

    `body_c` is the calibrated estimate of the person's temperature; `object_c` is what
    the sensor saw (forehead skin), kept for calibration and stuck-value checks.
    """

    source: str
    at: float
    body_c: float | None
    object_c: float | None = None
    ambient_c: float | None = None
    problem: TemperatureProblem | None = None


@dataclass(frozen=True)
class FrameFault:
    """Bytes that were not a valid frame: skipped, counted and reported, never fatal."""

    kind: FrameFaultKind
    detail: str


@dataclass(frozen=True)
class RawSample:
    """A valid frame that is no reading by itself (a streaming part with nobody in front).

    The link counts it as a sign of life (no timeout fault) and watches `key` for the
    stuck check; it does not pass it on to the node. `key` is the raw value that must
    change over time, or None where sameness is normal.
    """

    key: object | None


Reading = CodeScan | TemperatureReading | ScanFailed


class DeviceProfile(BaseModel):
    """Settings of one part model, shared by every instance of it (hardware/profiles/*.yaml).

    Each part's profile subclasses this with its own fields; every field has a default,
    a description and bounds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    part: str = Field(description="which driver reads this part")
    model: str = Field(description="the module's model name, as printed on it")
    baudrate: int = Field(9600, ge=1200, le=4_000_000, description="UART speed, 8N1")
    silence_fault_s: float | None = Field(
        None, gt=0, le=3600,
        description="a streaming part silent this long is in fault (timeout); "
        "none for parts that only speak when something happens (a scanner)",
    )  # fmt: skip
    stuck_after_s: float | None = Field(
        None, gt=0, le=86400,
        description="the same raw value this long means the sensor is stuck; none: no check",
    )  # fmt: skip
    clean_after_s: float = Field(
        5.0, gt=0, le=3600, description="a garbage or checksum fault clears after this long clean"
    )


class Driver(Protocol):
    """A part's driver: configures the part, then turns its bytes into readings."""

    part: ClassVar[str]

    def setup(self) -> None:
        """Bring the part into the mode the node needs (after every open or replug).

        Raises:
            DeviceError: the part refused or did not answer.
        """

    def poll(self) -> Sequence[Reading | FrameFault | RawSample]:
        """Read what the part sent, blocking at most the stream's timeout.

        Returns readings, frame faults and raw samples in the order they arrived; []
        when nothing came. A streaming part whose readings are rarer than its frames
        returns a RawSample for each valid frame, so silence and stuck values are seen.
        """
        ...

    def revive(self) -> None:
        """Try to wake a part that went silent with its port still open.

        The link calls this while the part is in `timeout`, at most once a second.
        A module that restarted (power lost while the USB-serial adapter stayed
        powered) comes back with its saved settings and may wait for a start command
        the node sent only at open; the driver sends it again here. Drivers of parts
        that need nothing do nothing.
        """

    def stuck_key(self, reading: Reading) -> object | None:
        """The raw value that must change over time, or None where sameness is normal."""
        ...
