"""GM65 framing with byte literals: codes and suffixes, junk, overlong lines, CRC, commands, replies."""

from __future__ import annotations

import pytest

from edge.devices.base import FrameFault
from edge.devices.scanner.protocol import (
    OUTPUT_ZONE,
    SUFFIX_BYTES,
    WRITE_OK,
    ScanFramer,
    ScanItem,
    SettingReply,
    Suffix,
    ZoneCommand,
    crc16_xmodem,
    mode_zone,
    parse_command,
    parse_reply,
    read_command,
    suffix_of_zone,
    write_command,
)

CODE = "HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N IOP-IA%NFQGRJPC%OQHIZC4.OI1RM8ZA"


def summary(items: list[ScanItem]) -> list[object]:
    """Items as a user compares them: texts and replies as they are, faults by kind."""
    return [f"fault:{item.kind}" if isinstance(item, FrameFault) else item for item in items]


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"123456789", 0x31C3),  # the CRC-16/XMODEM check value
        (
            bytes.fromhex("09 01 00 00 00"),
            0xDEC8,
        ),  # manual: save to flash, 7E 00 09 01 00 00 00 DE C8
        (bytes.fromhex("08 02 00 2A 39 01"), 0xA7EA),  # manual: baud 9600, … 2A 39 01 A7 EA
        (bytes.fromhex("07 01 00 2A 02"), 0xD80F),  # manual: read baud, … 2A 02 D8 0F
        (bytes.fromhex("00 01 00"), 0x3331),  # manual: write success reply 02 00 00 01 00 33 31
    ],
)
def test_crc16_xmodem__valid(data: bytes, crc: int) -> None:
    assert crc16_xmodem(data) == crc


@pytest.mark.parametrize(
    ("built", "wire"),
    [
        (write_command(0x002A, b"\x39\x01"), "7E 00 08 02 00 2A 39 01 A7 EA"),
        (read_command(0x002A, 2), "7E 00 07 01 00 2A 02 D8 0F"),
        (write_command(0x0060, b"\x01"), "7E 00 08 01 00 60 01 6F 92"),  # suffix CR
        (write_command(0x0000, b"\xd7"), "7E 00 08 01 00 00 D7 CF 03"),  # sensing mode
    ],
)
def test_command__valid(built: bytes, wire: str) -> None:
    assert built == bytes.fromhex(wire)


@pytest.mark.parametrize(
    ("address", "data"),
    [(-1, b"\x01"), (0x10000, b"\x01"), (0x0060, b""), (0x0060, bytes(256))],
)
def test_write_command__invalid(address: int, data: bytes) -> None:
    with pytest.raises(ValueError, match=r"address|data bytes"):
        write_command(address, data)


@pytest.mark.parametrize("count", [0, 256])
def test_read_command__invalid(count: int) -> None:
    with pytest.raises(ValueError, match="count"):
        read_command(0x0060, count)


@pytest.mark.parametrize(
    ("wire", "reply", "write_ok"),
    [
        (WRITE_OK, SettingReply(0, b"\x00"), True),
        (bytes.fromhex("02 00 00 02 39 01 C1 4C"), SettingReply(0, b"\x39\x01"), False),
    ],
)
def test_parse_reply__valid(wire: bytes, reply: SettingReply, write_ok: bool) -> None:
    assert parse_reply(wire) == reply
    assert reply.write_ok is write_ok


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        ("02 00 00 01 00 33 30", "crc"),
        ("03 00 00 01 00 33 31", "not a reply"),
        ("02 00 00 02 00 33 31", "length"),
        ("02 00 00 01", "not a reply"),
    ],
)
def test_parse_reply__invalid(wire: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_reply(bytes.fromhex(wire))


@pytest.mark.parametrize(
    ("suffix", "data", "expected"),
    [
        ("cr", CODE.encode() + b"\r", [CODE]),
        ("crlf", CODE.encode() + b"\r\n", [CODE]),
        ("tab", CODE.encode() + b"\t", [CODE]),
        ("cr", b"A1\rB2\r\r", ["A1", "B2"]),  # an empty line is no code and no fault
        ("cr", "Zoë 10€\r".encode(), ["Zoë 10€"]),
        ("cr", b"A1\r" + WRITE_OK + b"B2\r", ["A1", SettingReply(0, b"\x00"), "B2"]),
    ],
)
def test_framer__valid(suffix: Suffix, data: bytes, expected: list[object]) -> None:
    assert summary(ScanFramer(suffix).feed(data)) == expected


@pytest.mark.parametrize("suffix", ["cr", "crlf", "tab"])
def test_framer_split_anywhere__valid(suffix: Suffix) -> None:
    wire = b"A1" + {"cr": b"\r", "crlf": b"\r\n", "tab": b"\t"}[suffix]
    wire = wire + WRITE_OK + CODE.encode() + wire[2:]
    whole = summary(ScanFramer(suffix).feed(wire))
    assert whole == ["A1", SettingReply(0, b"\x00"), CODE]
    for cut in range(1, len(wire)):
        framer = ScanFramer(suffix)
        assert summary(framer.feed(wire[:cut]) + framer.feed(wire[cut:])) == whole, cut


@pytest.mark.parametrize(
    ("suffix", "data", "expected"),
    [
        # Junk on the code's own line: the whole line goes, the next code comes through.
        ("cr", b"\x00\xfe\x13" + CODE.encode() + b"\rB2\r", ["fault:garbage", "B2"]),
        ("cr", b"AB\x07CD\rB2\r", ["fault:garbage", "B2"]),
        ("cr", b"\xc3\x28\rB2\r", ["fault:garbage", "B2"]),  # not UTF-8
        ("cr", b"A1\r\nB2\r", ["A1", "fault:garbage"]),  # module sends CRLF, profile says CR
        ("crlf", b"A1\nB2\r\n", ["fault:garbage", "B2"]),
        ("tab", b"A1\rB2\t", ["fault:garbage"]),
        ("cr", b"\x02\x41B2\rB2\r", ["fault:garbage", "B2"]),  # 02 then not 00: no reply
        ("cr", bytes.fromhex("02 00 00 01 00 33 30") + b"B2\r", ["fault:checksum", "B2"]),
    ],
)
def test_framer__invalid(suffix: Suffix, data: bytes, expected: list[object]) -> None:
    assert summary(ScanFramer(suffix).feed(data)) == expected


@pytest.mark.parametrize(
    ("length", "expected"),
    [(16, ["A" * 16, "B2"]), (17, ["fault:overflow", "B2"]), (500, ["fault:overflow", "B2"])],
)
def test_framer_overflow(length: int, expected: list[object]) -> None:
    framer = ScanFramer("cr", max_code_chars=16)
    items = framer.feed(b"A" * length + b"\r") + framer.feed(b"B2\r")
    assert summary(items) == expected


def test_framer_flush__valid() -> None:
    framer = ScanFramer("none")
    assert framer.feed(CODE.encode()) == []
    assert framer.flush() == [CODE]
    assert framer.flush() == []


@pytest.mark.parametrize(
    ("suffix", "data", "expected"),
    [
        ("cr", b"A1", ["fault:garbage"]),  # never got its suffix
        ("cr", WRITE_OK[:4], ["fault:garbage"]),  # reply cut off
        ("none", b"AB\x01", ["fault:garbage"]),
        ("none", b"A" * 40, []),  # overflow reported at feed time, not again
    ],
)
def test_framer_flush__invalid(suffix: Suffix, data: bytes, expected: list[object]) -> None:
    framer = ScanFramer(suffix, max_code_chars=16)
    framer.feed(data)
    assert summary(framer.flush()) == expected
    assert summary(framer.feed(b"B2" + SUFFIX_BYTES[suffix]) + framer.flush()) == ["B2"]


@pytest.mark.parametrize("suffix", ["cr", "crlf", "tab", "none"])
def test_output_zone_round_trip(suffix: Suffix) -> None:
    assert suffix_of_zone(OUTPUT_ZONE[suffix]) == suffix


def test_mode_zone() -> None:
    # LED on, beep, standard aiming and light; bits 1-0: 11 sensing, 10 continuous.
    assert mode_zone("sensing") == 0xD7
    assert mode_zone("continuous", beep=False) == 0x96


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("7E 00 08 01 00 60 01 6F 92", (ZoneCommand(0x08, 0x0060, b"\x01"), 9)),
        ("7E 00 08 01 00 60 01 AB CD", (ZoneCommand(0x08, 0x0060, b"\x01"), 9)),
        ("7E 00 07 01 00 2A 02 D8 0F 7E", (ZoneCommand(0x07, 0x002A, b"\x02"), 9)),
    ],
)
def test_parse_command__valid(wire: str, expected: tuple[ZoneCommand, int]) -> None:
    assert parse_command(bytes.fromhex(wire)) == expected


@pytest.mark.parametrize(
    ("wire", "used"),
    [
        ("7E 00 08 01 00 60 01 6F 93", 9),  # bad CRC: ignored whole
        ("55 AA 7E 00", 2),  # junk before a head
        ("55 AA 7E", 2),  # a last 7E may start the next head
        ("7E 00 08 01 00 60 01", 0),  # not all there yet
    ],
)
def test_parse_command__invalid(wire: str, used: int) -> None:
    assert parse_command(bytes.fromhex(wire)) == (None, used)
