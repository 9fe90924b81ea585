"""GY-MCU90614 framing with byte literals: frames, splits, junk, bad sums, commands."""

from __future__ import annotations

import pytest

from edge.devices.base import FrameFault
from edge.devices.thermometer.protocol import (
    AUTO_OUTPUT_AT_POWER_UP,
    BAUD_9600,
    BAUD_115200,
    CONTINUOUS_OUTPUT,
    NO_AUTO_OUTPUT_AT_POWER_UP,
    QUERY_OUTPUT,
    FrameReader,
    TemperatureFrame,
    command,
    encode_frame,
    parse_command,
)

# 36.50 °C object (0x0E42), 22.00 °C ambient (0x0898);
# sum 5A+5A+45+04+0E+42+08+98 = 0x1ED -> ED.
PERSON = bytes.fromhex("5A 5A 45 04 0E 42 08 98 ED")
# -5.00 °C object (0xFE0C), -10.00 °C ambient (0xFC18): signed, big-endian.
FROST = bytes.fromhex("5A 5A 45 04 FE 0C FC 18 1B")
PERSON_FRAME = TemperatureFrame(3650, 2200)
FROST_FRAME = TemperatureFrame(-500, -1000)


def summary(items: list[TemperatureFrame | FrameFault]) -> list[object]:
    return [f"fault:{item.kind}" if isinstance(item, FrameFault) else item for item in items]


@pytest.mark.parametrize(
    ("wire", "frame", "object_c", "ambient_c"),
    [(PERSON, PERSON_FRAME, 36.5, 22.0), (FROST, FROST_FRAME, -5.0, -10.0)],
)
def test_frame__valid(wire: bytes, frame: TemperatureFrame, object_c: float, ambient_c: float):
    assert FrameReader().feed(wire) == [frame]
    assert (frame.object_c, frame.ambient_c) == (object_c, ambient_c)
    assert encode_frame(frame.object_raw, frame.ambient_raw) == wire


def test_reader_split_anywhere__valid() -> None:
    wire = PERSON + FROST
    for cut in range(1, len(wire)):
        reader = FrameReader()
        assert reader.feed(wire[:cut]) + reader.feed(wire[cut:]) == [PERSON_FRAME, FROST_FRAME]


def test_reader_byte_by_byte__valid() -> None:
    reader = FrameReader()
    items = [item for byte in b"\x00" + PERSON + FROST for item in reader.feed(bytes([byte]))]
    assert summary(items) == ["fault:garbage", PERSON_FRAME, FROST_FRAME]


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"\x00\x13\xff" + PERSON, ["fault:garbage", PERSON_FRAME]),
        (b"\x5a" + PERSON, ["fault:garbage", PERSON_FRAME]),  # a third 5A before the head
        (b"\x5a\x5a\x46\x04" + PERSON, ["fault:garbage", PERSON_FRAME]),  # wrong data type
        (b"\x5a\x5a\x45\x05" + PERSON, ["fault:garbage", PERSON_FRAME]),  # wrong length
        (PERSON[:-1] + b"\xee" + FROST, ["fault:checksum", FROST_FRAME]),
        (PERSON[:4] + b"\x4e" + PERSON[5:] + FROST, ["fault:checksum", FROST_FRAME]),
        (PERSON[:6] + FROST, ["fault:checksum", FROST_FRAME]),  # lost bytes: resync inside
        # Lost bytes whose sum happens to match: ambient 231.09 °C is no MLX90614 value.
        (PERSON[:5] + FROST, ["fault:garbage", FROST_FRAME]),
        (encode_frame(-7001, 2200) + FROST, ["fault:garbage", FROST_FRAME]),
        (encode_frame(3650, 12501) + FROST, ["fault:garbage", FROST_FRAME]),
        (b"\x01\x02\x03", ["fault:garbage"]),
    ],
)
def test_reader__invalid(wire: bytes, expected: list[object]) -> None:
    assert summary(FrameReader().feed(wire)) == expected


def test_reader_keeps_half_a_head() -> None:
    reader = FrameReader()
    assert summary(reader.feed(b"\x07\x5a")) == ["fault:garbage"]
    assert reader.feed(PERSON[1:]) == [PERSON_FRAME]


@pytest.mark.parametrize(
    ("instruction", "wire"),
    [
        (CONTINUOUS_OUTPUT, "A5 45 EA"),
        (QUERY_OUTPUT, "A5 15 BA"),
        (AUTO_OUTPUT_AT_POWER_UP, "A5 51 F6"),
        (NO_AUTO_OUTPUT_AT_POWER_UP, "A5 52 F7"),
        (BAUD_9600, "A5 AE 53"),
        (BAUD_115200, "A5 AF 54"),
    ],
)
def test_command__valid(instruction: int, wire: str) -> None:
    assert command(instruction) == bytes.fromhex(wire)
    assert parse_command(bytes.fromhex(wire)) == (instruction, 3)


@pytest.mark.parametrize("instruction", [0x00, 0x46, 0xA5])
def test_command__invalid(instruction: int) -> None:
    with pytest.raises(ValueError, match="not an instruction"):
        command(instruction)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("A5 45 EB", (None, 1)),  # bad sum: skip the A5 and look again
        ("00 11 A5 45", (None, 2)),  # junk before the head
        ("A5 45", (None, 0)),  # not all there yet
        ("00 11", (None, 2)),
    ],
)
def test_parse_command__invalid(wire: str, expected: tuple[None, int]) -> None:
    assert parse_command(bytes.fromhex(wire)) == expected
