"""GY-MCU90614 framing: 9-byte `5A 5A 45 04` temperature frames and 3-byte `A5` commands."""

# Wire format (GY-MCU90614 module manual, "communication protocol"; the tables and a
# worked checksum are in hardware/protocols/gy-mcu90614-thermometer.md):
#
#   frame    module -> host   5A 5A | 45 | 04 | TO_hi TO_lo | TA_hi TA_lo | SUM
#   command  host -> module   A5 | instruction | SUM
#
# TO and TA are the object and ambient temperature in °C x 100, big-endian signed.
# SUM is the low byte of the sum of every byte before it (the head bytes included).

from __future__ import annotations

from dataclasses import dataclass

from edge.devices.base import FrameFault

HEAD = b"\x5a\x5a"
TYPE_TEMPERATURE = 0x45
DATA_LENGTH = 0x04
FRAME_BYTES = 9
COMMAND_HEAD = 0xA5
# What an MLX90614 can measure (datasheet): object -70..380 °C, ambient -40..125 °C
# (x 100 in a signed 16-bit value, the object tops out at 327.67 °C on this wire).
OBJECT_RANGE_RAW = (-7000, 32767)
AMBIENT_RANGE_RAW = (-4000, 12500)

# Instructions (the module manual's names).
CONTINUOUS_OUTPUT = 0x45  # stream frames from now on (the module's power-up default)
QUERY_OUTPUT = 0x15  # send one frame
AUTO_OUTPUT_AT_POWER_UP = 0x51  # stored; takes effect at the next power-up
NO_AUTO_OUTPUT_AT_POWER_UP = 0x52  # stored; takes effect at the next power-up
BAUD_9600 = 0xAE  # stored; takes effect at the next power-up
BAUD_115200 = 0xAF
INSTRUCTIONS = frozenset(
    {
        CONTINUOUS_OUTPUT,
        QUERY_OUTPUT,
        AUTO_OUTPUT_AT_POWER_UP,
        NO_AUTO_OUTPUT_AT_POWER_UP,
        BAUD_9600,
        BAUD_115200,
    }
)


def checksum(data: bytes) -> int:
    """The module's check byte.

    Args:
        data: every byte of the frame or command before the check byte.

    Returns:
        The low byte of their sum.
    """
    return sum(data) & 0xFF


@dataclass(frozen=True)
class TemperatureFrame:
    """One frame: raw values as sent (°C x 100), so a stuck check can compare them exactly."""

    object_raw: int
    ambient_raw: int

    @property
    def object_c(self) -> float:
        return self.object_raw / 100

    @property
    def ambient_c(self) -> float:
        return self.ambient_raw / 100


def encode_frame(object_raw: int, ambient_raw: int) -> bytes:
    """A frame as the module sends it (for simulators and tests).

    Args:
        object_raw: object temperature x 100, -32768..32767.
        ambient_raw: ambient temperature x 100, -32768..32767.

    Returns:
        The 9-byte frame with its SUM.
    """
    body = (
        HEAD
        + bytes([TYPE_TEMPERATURE, DATA_LENGTH])
        + object_raw.to_bytes(2, "big", signed=True)
        + ambient_raw.to_bytes(2, "big", signed=True)
    )
    return body + bytes([checksum(body)])


def command(instruction: int) -> bytes:
    """A command for the module, e.g. command(CONTINUOUS_OUTPUT) == A5 45 EA.

    Args:
        instruction: one of INSTRUCTIONS.

    Returns:
        `A5 instruction SUM`.

    Raises:
        ValueError: an instruction the manual does not list.
    """
    if instruction not in INSTRUCTIONS:
        raise ValueError(f"{instruction:#04x} is not an instruction the module knows")
    return bytes([COMMAND_HEAD, instruction, (COMMAND_HEAD + instruction) & 0xFF])


def parse_command(buffer: bytes) -> tuple[int | None, int]:
    """The first command in `buffer`, for a simulated module.

    Returns:
        (instruction, bytes used): (None, n>0) for junk or a bad sum, which the
        module ignores; (None, 0) when more bytes are needed.
    """
    start = buffer.find(bytes([COMMAND_HEAD]))
    if start < 0:
        return None, len(buffer)
    if start > 0:
        return None, start
    if len(buffer) < 3:
        return None, 0
    if buffer[2] != checksum(buffer[:2]):
        return None, 1
    return buffer[1], 3


class FrameReader:
    """Finds frames in the byte stream: resyncs on the head, checks type, length and sum.

    Bytes before a head are reported as one garbage fault per `feed`; a frame with a
    bad sum is a checksum fault, one with values no MLX90614 gives is garbage, and
    reading resumes at the next head inside it (a frame that lost bytes in transit
    must not hide the frame after it).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[TemperatureFrame | FrameFault]:
        """Take the next bytes from the wire.

        Args:
            data: any number of bytes, split anywhere.

        Returns:
            The frames and frame faults they complete, in order.
        """
        buf = self._buffer
        buf += data
        out: list[TemperatureFrame | FrameFault] = []
        skipped = 0
        while True:
            start = buf.find(HEAD)
            if start < 0:
                # Keep a last 5A: it may be the first half of the next head.
                start = len(buf) - 1 if buf.endswith(HEAD[:1]) else len(buf)
            skipped += start
            del buf[:start]
            if len(buf) < FRAME_BYTES:
                break
            if buf[2] != TYPE_TEMPERATURE or buf[3] != DATA_LENGTH:
                skipped += 1
                del buf[:1]
                continue
            if skipped:
                out.append(_junk(skipped))
                skipped = 0
            out.append(self._frame(bytes(buf[:FRAME_BYTES])))
        if skipped:
            out.append(_junk(skipped))
        return out

    def _frame(self, frame: bytes) -> TemperatureFrame | FrameFault:
        if frame[-1] != checksum(frame[:-1]):
            self._resume_inside(frame)
            return FrameFault(
                "checksum",
                f"sum {frame[-1]:02X} should be {checksum(frame[:-1]):02X}: {frame.hex(' ')}",
            )
        parsed = TemperatureFrame(
            int.from_bytes(frame[4:6], "big", signed=True),
            int.from_bytes(frame[6:8], "big", signed=True),
        )
        # An 8-bit sum passes one damaged frame in 256: values the sensor cannot
        # produce show such a frame for what it is.
        low_o, high_o = OBJECT_RANGE_RAW
        low_a, high_a = AMBIENT_RANGE_RAW
        if not (low_o <= parsed.object_raw <= high_o and low_a <= parsed.ambient_raw <= high_a):
            self._resume_inside(frame)
            return FrameFault("garbage", f"values outside the sensor's range: {frame.hex(' ')}")
        del self._buffer[:FRAME_BYTES]
        return parsed

    def _resume_inside(self, frame: bytes) -> None:
        resume = frame.find(HEAD, 2)
        if resume < 0:
            resume = FRAME_BYTES - 1 if frame.endswith(HEAD[:1]) else FRAME_BYTES
        del self._buffer[:resume]


def _junk(count: int) -> FrameFault:
    return FrameFault("garbage", f"{count} bytes before a frame head")
