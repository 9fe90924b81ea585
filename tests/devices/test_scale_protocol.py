"""Continuous weight frames: every format variant the manuals show, unstable, overload, garbled."""

from __future__ import annotations

from decimal import Decimal

import pytest

from edge.devices.base import FrameFault
from edge.devices.scale.protocol import (
    FrameInvalid,
    LineReader,
    WeightFrame,
    encode_st_gs,
    encode_toledo,
    parse_st_gs,
    parse_toledo,
    toledo_checksum,
)


@pytest.mark.parametrize(
    ("line", "stable", "basis", "kg", "unit"),
    [
        (b"ST,GS,+0012.34kg", True, "gross", "12.34", "kg"),  # the example
        (b"US,GS,+0012.34kg", False, "gross", "12.34", "kg"),  # in motion: parsed, unusable
        (b"ST,NT,-0000.50kg", True, "net", "-0.50", "kg"),  # net, negative
        (b"ST,GS,+001250kg", True, "gross", "1250", "kg"),  # no decimal point (division 1)
        (b"ST,+00123.45 g", True, "gross", "0.12345", "g"),  # A&D: no mode field, " g"
        (b"ST,+0001.234kg", True, "gross", "1.234", "kg"),  # A&D: 9 characters, kg
        (b"ST,GS, 12.34,kg", True, "gross", "12.34", "kg"),  # Tiger: space for +, comma
        (b"ST,GS,-  2.5,kg", True, "gross", "-2.5", "kg"),  # Tiger: negative, padded
        (b"ST,GS,+0027.20lb", True, "gross", "12.3377124640", "lb"),  # exact: 0.45359237
        (b"ST,GS,+01.500t", True, "gross", "1500.000", "t"),
        (b"\x02ST,GS,+0012.34kg", True, "gross", "12.34", "kg"),  # an STX in front
    ],
)
def test_parse_st_gs__weights(line: bytes, stable: bool, basis: str, kg: str, unit: str) -> None:
    frame = parse_st_gs(line)
    assert frame == WeightFrame(stable, False, basis, Decimal(kg), unit)  # type: ignore[arg-type]
    assert frame.usable is stable


@pytest.mark.parametrize("line", [b"OL,GS,+9999999kg", b"OL,+999999.9 g", b"OL,NT,-9999999kg"])
def test_parse_st_gs__overload_is_never_a_weight(line: bytes) -> None:
    frame = parse_st_gs(line)
    assert frame.overload and not frame.stable and frame.weight_kg is None
    assert not frame.usable


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"QT,+00000123PC", "not a weight"),  # A&D counting mode
        (b"ST,+0012.34 %", "not a weight"),  # percentage mode
        (b"ST,+0012.34oz", "not a weight"),  # a unit we do not convert
        (b"XX,GS,+0012.34kg", "not an ST/US/OL weight line"),
        (b"ST,GS,+00\xff2.34kg", "not an ST/US/OL weight line"),  # a flipped digit
        (b"ST,GS,+0012.34", "not an ST/US/OL weight line"),  # no unit
        (b"ST,GS,+12.3.4kg", "not an ST/US/OL weight line"),
        (b"ST,GS,kg", "not an ST/US/OL weight line"),
        (b"", "not an ST/US/OL weight line"),
    ],
)
def test_parse_st_gs__garbled(line: bytes, why: str) -> None:
    with pytest.raises(FrameInvalid, match=why):
        parse_st_gs(line)


def test_toledo_checksum__the_manuals_definition() -> None:
    # 2's complement of the 7-bit sum of everything before it: the sum plus it is 0 mod 128.
    frame = encode_toledo(1234, decimals=2)
    assert (sum(frame[:-1]) + frame[-1]) % 128 == 0
    assert toledo_checksum(frame[:-1]) == frame[-1]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"weight_digits": 1234, "decimals": 2}, (True, False, "gross", "12.34", "kg")),
        ({"weight_digits": 1234, "decimals": 0}, (True, False, "gross", "1234", "kg")),
        ({"weight_digits": 1234, "decimals": 4}, (True, False, "gross", "0.1234", "kg")),
        ({"weight_digits": 50, "decimals": 2, "net": True, "negative": True},
         (True, False, "net", "-0.50", "kg")),
        ({"weight_digits": 1234, "motion": True}, (False, False, "gross", "12.34", "kg")),
        ({"weight_digits": 0, "overload": True}, (False, True, "gross", None, "kg")),
        ({"weight_digits": 2720, "unit": "lb"}, (True, False, "gross", "12.3377124640", "lb")),
        ({"weight_digits": 1500, "decimals": 3, "unit": "t"},
         (True, False, "gross", "1500", "t")),
        ({"weight_digits": 12345, "decimals": 1, "unit": "g"},
         (True, False, "gross", "1.2345", "g")),
    ],
)  # fmt: skip
def test_parse_toledo__status_words(
    kwargs: dict[str, object], expected: tuple[bool, bool, str, str | None, str]
) -> None:
    stable, overload, basis, kg, unit = expected
    for checksum in (True, False):
        frame = parse_toledo(encode_toledo(**kwargs, checksum=checksum), checksum=checksum)  # type: ignore[arg-type]
        assert (frame.stable, frame.overload, frame.basis, frame.unit) == (
            stable, overload, basis, unit,
        )  # fmt: skip
        assert frame.weight_kg == (Decimal(kg) if kg is not None else None)


def test_parse_toledo__seven_bit_line_with_parity_bit_set() -> None:
    # On a 7E1 line read as 8 bits the top bit may carry parity: it is masked off.
    frame = bytearray(encode_toledo(1234))
    frame[1] |= 0x80
    frame[-1] |= 0x80
    assert parse_toledo(bytes(frame), checksum=True).weight_kg == Decimal("12.34")


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (encode_toledo(1234)[:-2] + encode_toledo(1234)[-1:], "not a 18-byte Toledo frame"),
        (encode_toledo(1234)[:-1] + bytes([(encode_toledo(1234)[-1] + 1) & 0x7F]),
         "check character"),
        (encode_toledo(1234)[:4] + b"12a456" + encode_toledo(1234)[10:], "check character"),
        (b"\x02\x01\x30\x20" + b"001234000000\r" + bytes([toledo_checksum(
            b"\x02\x01\x30\x20001234000000\r")]), "status words"),
        (b"\x02\x24\x30\x20" + b"0012a4000000\r" + bytes([toledo_checksum(
            b"\x02\x24\x30\x200012a4000000\r")]), "not 6 digits"),
        (b"X" + encode_toledo(1234)[1:], "not a 18-byte Toledo frame"),
    ],
)  # fmt: skip
def test_parse_toledo__garbled(frame: bytes, why: str) -> None:
    with pytest.raises(FrameInvalid, match=why):
        parse_toledo(frame, checksum=True)


def test_encode_st_gs__round_trips() -> None:
    assert encode_st_gs("ST", "gross", Decimal("12.34")) == b"ST,GS,+0012.34kg\r\n"
    assert encode_st_gs("US", "net", Decimal("-0.5")) == b"US,NT,-0000.50kg\r\n"
    assert encode_st_gs("ST", "gross", Decimal("123.45"), "g", mode_field=False) == (
        b"ST,+0123.45g\r\n"
    )


def test_line_reader__st_gs_split_anywhere_and_garbage_between() -> None:
    stream = (
        encode_st_gs("US", "gross", Decimal("11.02"))
        + b"\x13\x88noise\r\n"
        + encode_st_gs("ST", "gross", Decimal("12.34"))
        + encode_st_gs("OL", "gross", Decimal(0))
    )
    reader = LineReader("st-gs")
    items: list[WeightFrame | FrameFault] = []
    for i in range(len(stream)):  # one byte at a time
        items += reader.feed(stream[i : i + 1])
    assert [type(i).__name__ for i in items] == [
        "WeightFrame", "FrameFault", "WeightFrame", "WeightFrame",
    ]  # fmt: skip
    assert isinstance(items[1], FrameFault) and items[1].kind == "garbage"
    assert [i.usable for i in items if isinstance(i, WeightFrame)] == [False, True, False]


def test_line_reader__st_gs_endless_noise_is_bounded() -> None:
    reader = LineReader("st-gs")
    faults = reader.feed(b"\x00" * 100)
    assert [f.kind for f in faults if isinstance(f, FrameFault)] == ["garbage"]
    assert reader.feed(encode_st_gs("ST", "gross", Decimal(1)))[0] == WeightFrame(
        True, False, "gross", Decimal("1.00"), "kg"
    )


def test_line_reader__toledo_resyncs_after_noise_and_a_short_frame() -> None:
    good = encode_toledo(1234)
    short = good[:8] + good[16:]  # lost 8 bytes in transit: CR comes early
    reader = LineReader("toledo", checksum=True)
    items = reader.feed(b"junk" + short + good + good[:5])
    items += reader.feed(good[5:])
    kinds = [i.kind if isinstance(i, FrameFault) else "frame" for i in items]
    assert kinds[0] == "garbage" and kinds[-2:] == ["frame", "frame"]
    assert "garbage" in kinds[1:-2]
    assert all(i.weight_kg == Decimal("12.34") for i in items if isinstance(i, WeightFrame))


def test_line_reader__toledo_on_a_7e1_line_read_as_8_bits() -> None:
    # Even parity in the top bit of every byte (STX and digits too): masked off.
    frame = encode_toledo(125050, decimals=2, net=True)
    even = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in frame)
    assert even != frame
    items = LineReader("toledo").feed(even)
    assert items == [WeightFrame(True, False, "net", Decimal("1250.50"), "kg")]


def test_line_reader__toledo_bad_checksum_is_a_checksum_fault() -> None:
    bad = encode_toledo(1234)[:-1] + b"\x00"
    items = LineReader("toledo").feed(bad + encode_toledo(1234))
    assert next(i.kind for i in items if isinstance(i, FrameFault)) == "checksum"
    assert isinstance(items[-1], WeightFrame) and items[-1].usable
