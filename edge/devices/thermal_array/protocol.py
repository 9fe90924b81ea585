"""GY-MCU90640 framing: 1544-byte temperature frames in, four-byte A5 commands out (no I/O)."""

# Wire format, from the vendor's "GY-MCU90640 Module User Manual V1.0" (§IV), all
# multi-byte values little-endian (hardware/protocols/gy-mcu90640-thermal-array.md):
#
#   offset  bytes  field
#   0       2      5A 5A                 header
#   2       2      02 06                 data length 0x0602 = 1538 (768 pixels + Ta)
#   4       1536   int16 x 768           pixel °C x100, row by row, 32 per row, 24 rows
#   1540    2      int16                 Ta, the sensor's own temperature °C x100
#   1542    2      uint16                checksum: sum of the 771 words before it
#                                        (header, length, pixels, Ta), modulo 2^16
#
# Emissivity reply: 5A 5A EE SS, EE = emissivity x100 (<= 100), SS = (5A + 5A + EE) & FF.
# Commands: A5 CC PP SS with SS = (A5 + CC + PP) & FF; setting commands get no reply.

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.devices.base import FrameFault
from edge.devices.thermal_array.profile import FRAME_BYTES, RATE_CODES

log = logging.getLogger(__name__)

ROWS, COLS = 24, 32
HEADER = b"\x5a\x5a"
LENGTH = (2 * (ROWS * COLS + 1)).to_bytes(2, "little")  # 02 06
REPLY_BYTES = 4
# Bytes before the first frame or reply after an open are the tail of a frame already
# on the wire, not line noise; only more junk than one frame is reported there.
TAIL_ALLOWANCE = FRAME_BYTES

Pixels = NDArray[np.float32]
"""Temperatures in °C, shape (24, 32), row 0 at the top of the picture."""


@dataclass(frozen=True, eq=False)
class ThermalFrame:
    """One picture: pixel temperatures, the module's own temperature, the raw bytes."""

    pixels: Pixels
    ambient_c: float
    raw: bytes


@dataclass(frozen=True)
class EmissivityReply:
    """The module's answer to the emissivity query."""

    emissivity: float


Parsed = ThermalFrame | EmissivityReply | FrameFault


def checksum(body: bytes) -> int:
    """Sum of the little-endian 16-bit words of `body` (even length), modulo 2^16."""
    return int(np.frombuffer(body, dtype="<u2").sum(dtype=np.uint64)) & 0xFFFF


def command(code: int, parameter: int) -> bytes:
    """A four-byte command: A5, code, parameter, 8-bit sum of the three."""
    head = bytes((0xA5, code, parameter))
    return head + bytes((sum(head) & 0xFF,))


def rate_command(rate_hz: float) -> bytes:
    """Set the update rate (0.5, 1, 2, 4 or 8 Hz)."""
    return command(0x25, RATE_CODES[rate_hz])


def emissivity_command(emissivity: float) -> bytes:
    """Set the emissivity the module's MCU uses for pixel temperatures (0.01-1.00)."""
    return command(0x45, round(emissivity * 100))


STREAM_COMMAND = command(0x35, 0x02)  # continuous output
QUERY_MODE_COMMAND = command(0x35, 0x01)  # one frame per command
EMISSIVITY_QUERY = command(0x55, 0x01)
SAVE_COMMAND = command(0x65, 0x01)  # settings to flash: never sent by the driver


def encode_frame(pixels: NDArray[np.floating], ambient_c: float) -> bytes:
    """The bytes the module sends for a picture (for simulators and tests).

    Args:
        pixels: temperatures in °C, shape (24, 32).
        ambient_c: the sensor's own temperature.

    Returns:
        A complete 1544-byte frame with a valid checksum.
    """
    values = np.append(np.asarray(pixels, np.float64).reshape(-1), ambient_c)
    words: bytes = np.clip(np.rint(values * 100), -32768, 32767).astype("<i2").tobytes()
    body = HEADER + LENGTH + words
    return body + checksum(body).to_bytes(2, "little")


def decode_frame(raw: bytes) -> ThermalFrame:
    """A frame whose header and checksum were checked, as temperatures."""
    values = np.frombuffer(raw, dtype="<i2", count=ROWS * COLS + 1, offset=4)
    pixels = (values[:-1].astype(np.float32) / np.float32(100)).reshape(ROWS, COLS)
    return ThermalFrame(pixels=pixels, ambient_c=float(values[-1]) / 100, raw=raw)


class ThermalArrayFramer:
    """Turns the byte stream into frames, emissivity replies and frame faults.

    Junk is skipped up to the next header; a frame with a bad checksum is dropped whole
    (its header and length matched, so it was a frame), reported once.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._junk = 0
        self._synced = False

    def feed(self, data: bytes) -> list[Parsed]:
        """Add received bytes; return what they completed, in order."""
        self._buffer += data
        out: list[Parsed] = []
        while self._next(out):
            pass
        self._report_junk(out, final=False)
        return out

    def _next(self, out: list[Parsed]) -> bool:
        """Consume one item from the buffer; False when more bytes are needed."""
        buf = self._buffer
        start = buf.find(HEADER)
        if start < 0:
            # Keep a trailing 5A: it may be the first half of the next header.
            keep = 1 if buf.endswith(HEADER[:1]) else 0
            self._skip(len(buf) - keep)
            return False
        self._skip(start)
        if len(buf) < REPLY_BYTES:
            return False
        if buf[2:4] == LENGTH:
            if len(buf) < FRAME_BYTES:
                return False
            raw = bytes(buf[:FRAME_BYTES])
            del buf[:FRAME_BYTES]
            self._report_junk(out, final=True)
            computed, stored = checksum(raw[:-2]), int.from_bytes(raw[-2:], "little")
            if computed != stored:
                out.append(
                    FrameFault("checksum", f"frame sums to {computed:04X}, says {stored:04X}")
                )
            else:
                self._synced = True
                out.append(decode_frame(raw))
            return True
        if buf[2] <= 100 and buf[3] == (0xB4 + buf[2]) & 0xFF:
            self._report_junk(out, final=True)
            self._synced = True  # the module answered between frames: a frame boundary
            out.append(EmissivityReply(buf[2] / 100))
            del buf[:REPLY_BYTES]
            return True
        self._skip(1)  # a 5A 5A that heads nothing known: junk, look again one byte on
        return True

    def _skip(self, count: int) -> None:
        if count > 0:
            del self._buffer[:count]
            self._junk += count

    def _report_junk(self, out: list[Parsed], *, final: bool) -> None:
        """Report a run of skipped bytes once: where it ends, or once it is a frame long.

        `final` means a frame or reply follows the run. A run that grows past a frame's
        length without one (line noise, a wrong baud rate) is reported as it piles up.
        """
        if not self._junk:
            return
        if final and not self._synced and self._junk <= TAIL_ALLOWANCE:
            log.debug("skipped %d bytes of a frame already under way", self._junk)
            self._junk = 0
        elif final or self._junk > TAIL_ALLOWANCE:
            out.append(FrameFault("garbage", f"{self._junk} bytes of junk between frames"))
            self._junk = 0
