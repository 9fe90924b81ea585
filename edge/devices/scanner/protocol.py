"""GM65 wire format: `7E 00` zone-bit commands, `02 00` replies and the zone bytes they carry."""

# Wire format (GM65 Bar Code Reader Module User Manual, Hangzhou Grow Technology, V1.3;
# hardware/protocols/gm65-scanner.md has the tables and a worked CRC example):
#
#   scan     module -> host   <code bytes> <suffix: 0D | 0D 0A | 09 | nothing>
#   command  host -> module   7E 00 | type | len | addr_hi addr_lo | data (len bytes) | crc (2)
#   reply    module -> host   02 00 | status | len | data (len bytes) | crc (2)
#
# type 08 writes zone bytes, 07 reads them (data = how many), 09 saves them to flash.
# The CRC is CRC-16/XMODEM (poly 0x1021, init 0, no reflection, no final xor) over
# type..data of a command and status..data of a reply; a command may send AB CD instead.
# A successful write is answered 02 00 00 01 00 33 31; a read of one byte, e.g.
# 7E 00 07 01 00 60 01 <crc>, with 02 00 00 01 <the byte> <crc>. Codes are framed in
# framing.py.

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Literal

Suffix = Literal["cr", "crlf", "tab", "none"]  # what a module may send
NodeSuffix = Literal["cr", "crlf", "tab"]  # what the node sets: "none" cannot be resynced
ModuleReadMode = Literal["manual", "command", "continuous", "sensing"]
ReadMode = Literal["sensing", "continuous"]  # the modes that read without a trigger

COMMAND_HEAD = b"\x7e\x00"
REPLY_HEAD = b"\x02\x00"
NO_CRC = b"\xab\xcd"  # the manual lets a host skip the CRC with these two bytes
TYPE_READ = 0x07
TYPE_WRITE = 0x08
TYPE_SAVE = 0x09

ZONE_MODE = 0x0000  # LED, sound, aiming, illumination, read mode
ZONE_OUTPUT = 0x0060  # tail (suffix) type and enable, prefix, code id
ZONE_BAUD = 0x002A  # 0x002A-0x002B: the line speed's divisor, low byte first
# The manual's baud table (zone 0x002A-0x002B, about 3,000,000 / rate; its own example
# writes 39 01 for 9600). Only firmware-tools writes it; the node never changes speed.
BAUD_DIVISORS: dict[int, int] = {
    1200: 0x09C4, 2400: 0x04E2, 4800: 0x0271, 9600: 0x0139, 14400: 0x00D0,
    19200: 0x009C, 38400: 0x004E, 57600: 0x0034, 115200: 0x001A,
}  # fmt: skip
WRITE_OK = bytes.fromhex("02 00 00 01 00 33 31")

SUFFIX_BYTES: dict[Suffix, bytes] = {"cr": b"\r", "crlf": b"\r\n", "tab": b"\t", "none": b""}
# Zone 0x0060: bit 0 enables the tail, bits 6-5 pick it (00 CR, 01 CRLF, 10 TAB, 11 none);
# prefix, code id, suffix string and read-fail message (bits 4-1) stay off.
OUTPUT_ZONE: dict[Suffix, int] = {"cr": 0x01, "crlf": 0x21, "tab": 0x41, "none": 0x60}
# Zone 0x0000 bits 1-0: 00 manual, 01 command-triggered, 10 continuous, 11 sensing.
READ_MODE_BITS: dict[ModuleReadMode, int] = {
    "manual": 0b00,
    "command": 0b01,
    "continuous": 0b10,
    "sensing": 0b11,
}
MODE_LED = 0x80  # bit 7: decode-success LED
MODE_SOUND = 0x40  # bit 6: beep on a successful read
MODE_LIGHTS = 0x14  # bits 5-4 aiming, 3-2 illumination: 01 = "standard" (on while reading)

_TAILS: tuple[Suffix, ...] = ("cr", "crlf", "tab", "none")  # bits 6-5 of zone 0x0060
_MODES: tuple[ModuleReadMode, ...] = ("manual", "command", "continuous", "sensing")
STX = 0x02
REPLY_OVERHEAD = 6  # 02 00 status len .. crc crc


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM, as the module computes it (binascii's crc_hqx with init 0 is that CRC).

    Args:
        data: type..data of a command, or status..data of a reply.

    Returns:
        The 16-bit CRC; it goes on the wire high byte first.
    """
    return binascii.crc_hqx(data, 0)


def mode_zone(read_mode: ModuleReadMode, beep: bool = True) -> int:
    """The zone 0x0000 byte the node writes: LED on, standard aiming and illumination.

    Args:
        read_mode: sensing (reads when something moves in front) or continuous; a
            simulator may also hold manual or command mode.
        beep: whether the module beeps on a read.

    Returns:
        The byte, e.g. 0xD7 for sensing with beep.
    """
    return MODE_LED | (MODE_SOUND if beep else 0) | MODE_LIGHTS | READ_MODE_BITS[read_mode]


def suffix_of_zone(value: int) -> Suffix:
    """The suffix a module sends with this zone 0x0060 byte (the simulator's side).

    Args:
        value: the zone byte; bit 0 enables the tail, bits 6-5 pick it.

    Returns:
        cr, crlf, tab or none.
    """
    if not value & 0x01:
        return "none"
    return _TAILS[(value >> 5) & 0b11]


def read_mode_of_zone(value: int) -> ModuleReadMode:
    """The read mode a zone 0x0000 byte selects (bits 1-0).

    Args:
        value: the zone byte.

    Returns:
        manual, command, continuous or sensing.
    """
    return _MODES[value & 0b11]


def baud_of_zones(low: int, high: int) -> int | None:
    """The line speed zones 0x002A (low) and 0x002B (high) select; None for no rate listed."""
    divisor = low | high << 8
    return next((rate for rate, d in BAUD_DIVISORS.items() if d == divisor), None)


def write_command(address: int, data: bytes) -> bytes:
    """A zone-bit write: `data` goes to `address` onwards.

    Args:
        address: the first zone byte, 0x0000-0xFFFF.
        data: 1-255 bytes.

    Returns:
        The command with its CRC.
    """
    return _command(TYPE_WRITE, address, data)


def read_command(address: int, count: int = 1) -> bytes:
    """A zone-bit read; the reply's data holds the bytes read.

    Args:
        address: the first zone byte, 0x0000-0xFFFF.
        count: how many bytes to read, 1-255.

    Returns:
        The command with its CRC.
    """
    if not 1 <= count <= 255:
        raise ValueError(f"count must be 1-255, not {count}")
    return _command(TYPE_READ, address, bytes([count]))


def _command(kind: int, address: int, data: bytes) -> bytes:
    if not 0 <= address <= 0xFFFF:
        raise ValueError(f"zone address must be 0x0000-0xFFFF, not {address:#x}")
    if not 1 <= len(data) <= 255:
        raise ValueError(f"a command carries 1-255 data bytes, not {len(data)}")
    body = bytes([kind, len(data)]) + address.to_bytes(2, "big") + data
    return COMMAND_HEAD + body + crc16_xmodem(body).to_bytes(2, "big")


@dataclass(frozen=True)
class ZoneCommand:
    """A command as the module receives it (the simulator's side)."""

    kind: int
    address: int
    data: bytes


def parse_command(buffer: bytes) -> tuple[ZoneCommand | None, int]:
    """The first command in `buffer`, for a simulated module.

    Returns:
        (command, bytes used): (None, n>0) for n bytes of junk or a command with a bad
        CRC, which the module ignores; (None, 0) when more bytes are needed.
    """
    start = buffer.find(COMMAND_HEAD)
    if start < 0:
        keep = 1 if buffer.endswith(COMMAND_HEAD[:1]) else 0
        return None, len(buffer) - keep
    if start > 0:
        return None, start
    if len(buffer) < 6:
        return None, 0
    total = 8 + buffer[3]
    if len(buffer) < total:
        return None, 0
    body, crc = buffer[2 : total - 2], buffer[total - 2 : total]
    if crc != NO_CRC and crc != crc16_xmodem(body).to_bytes(2, "big"):
        return None, total
    return ZoneCommand(body[0], int.from_bytes(body[2:4], "big"), bytes(body[4:])), total


@dataclass(frozen=True)
class SettingReply:
    """The module's answer to a command: status 0 and data `00` for a successful write."""

    status: int
    data: bytes

    @property
    def write_ok(self) -> bool:
        return self.status == 0 and self.data == b"\x00"


def reply_frame(data: bytes, status: int = 0) -> bytes:
    """A reply as the module sends it (for simulators and tests).

    Args:
        data: 00 after a write, the zone bytes after a read (at most 255).
        status: 00 for success.

    Returns:
        `02 00 status len data crc_hi crc_lo`.
    """
    body = bytes([status, len(data)]) + data
    return REPLY_HEAD + body + crc16_xmodem(body).to_bytes(2, "big")


def parse_reply(frame: bytes) -> SettingReply:
    """Check one whole reply frame.

    Args:
        frame: `02 00 status len data crc_hi crc_lo`, nothing before or after.

    Returns:
        The status and data.

    Raises:
        ValueError: wrong head, a length that does not match, or a bad CRC.
    """
    if frame[:2] != REPLY_HEAD or len(frame) < REPLY_OVERHEAD:
        raise ValueError(f"not a reply frame: {frame.hex(' ')}")
    if len(frame) != REPLY_OVERHEAD + frame[3]:
        raise ValueError(f"reply length byte {frame[3]} does not match {len(frame)} bytes")
    body, crc = frame[2:-2], int.from_bytes(frame[-2:], "big")
    if crc != crc16_xmodem(body):
        raise ValueError(f"crc {crc:04X} should be {crc16_xmodem(body):04X}: {frame.hex(' ')}")
    return SettingReply(body[0], bytes(body[2:]))
