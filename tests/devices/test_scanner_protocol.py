"""GM65 wire format with byte literals: CRC, zone commands and replies, zone bytes."""

from __future__ import annotations

import pytest

from edge.devices.scanner.protocol import (
    OUTPUT_ZONE,
    WRITE_OK,
    ModuleReadMode,
    SettingReply,
    Suffix,
    ZoneCommand,
    crc16_xmodem,
    mode_zone,
    parse_command,
    parse_reply,
    read_command,
    read_mode_of_zone,
    suffix_of_zone,
    write_command,
)
from edge.devices.scanner.settings import READ_SETTINGS


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
        (bytes.fromhex("07 01 00 0A 01"), 0xEE8A),  # manual: read zone 0x000A, … 01 EE 8A
        (bytes.fromhex("00 01 3E"), 0xE4AC),  # manual: its reply 02 00 00 01 3E E4 AC
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
        (read_command(0x000A, 1), "7E 00 07 01 00 0A 01 EE 8A"),  # the manual's read example
        (READ_SETTINGS, "7E 00 07 01 00 00 61 6D E7"),  # zones 0x0000..0x0060
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
        (bytes.fromhex("02 00 00 01 3E E4 AC"), SettingReply(0, b"\x3e"), False),  # manual
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


@pytest.mark.parametrize("suffix", ["cr", "crlf", "tab", "none"])
def test_output_zone_round_trip(suffix: Suffix) -> None:
    assert suffix_of_zone(OUTPUT_ZONE[suffix]) == suffix


def test_mode_zone() -> None:
    # LED on, beep, standard aiming and light; bits 1-0: 11 sensing, 10 continuous.
    assert mode_zone("sensing") == 0xD7
    assert mode_zone("continuous", beep=False) == 0x96
    assert mode_zone("manual") == 0xD4


@pytest.mark.parametrize("mode", ["manual", "command", "continuous", "sensing"])
def test_read_mode_round_trip(mode: ModuleReadMode) -> None:
    assert read_mode_of_zone(mode_zone(mode)) == mode


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
