"""GM65 framing: text ended by a suffix, `7E 00` zone-bit commands and `02 00` replies."""

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
# A successful write is answered 02 00 00 01 00 33 31.

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Literal

from edge.devices.base import FrameFault

Suffix = Literal["cr", "crlf", "tab", "none"]
ReadMode = Literal["sensing", "continuous"]

COMMAND_HEAD = b"\x7e\x00"
REPLY_HEAD = b"\x02\x00"
NO_CRC = b"\xab\xcd"  # the manual lets a host skip the CRC with these two bytes
TYPE_READ = 0x07
TYPE_WRITE = 0x08
TYPE_SAVE = 0x09

ZONE_MODE = 0x0000  # LED, sound, aiming, illumination, read mode
ZONE_OUTPUT = 0x0060  # tail (suffix) type and enable, prefix, code id
WRITE_OK = bytes.fromhex("02 00 00 01 00 33 31")

SUFFIX_BYTES: dict[Suffix, bytes] = {"cr": b"\r", "crlf": b"\r\n", "tab": b"\t", "none": b""}
# Zone 0x0060: bit 0 enables the tail, bits 6-5 pick it (00 CR, 01 CRLF, 10 TAB, 11 none);
# prefix, code id, suffix string and read-fail message (bits 4-1) stay off.
OUTPUT_ZONE: dict[Suffix, int] = {"cr": 0x01, "crlf": 0x21, "tab": 0x41, "none": 0x60}
# Zone 0x0000 bits 1-0: 00 manual, 01 command-triggered, 10 continuous, 11 sensing.
READ_MODE_BITS: dict[ReadMode, int] = {"continuous": 0b10, "sensing": 0b11}
MODE_LED = 0x80  # bit 7: decode-success LED
MODE_SOUND = 0x40  # bit 6: beep on a successful read
MODE_LIGHTS = 0x14  # bits 5-4 aiming, 3-2 illumination: 01 = "standard" (on while reading)

_TAILS: tuple[Suffix, ...] = ("cr", "crlf", "tab", "none")  # bits 6-5 of zone 0x0060
STX = 0x02
_REPLY_OVERHEAD = 6  # 02 00 status len .. crc crc


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM, as the module computes it (binascii's crc_hqx with init 0 is that CRC).

    Args:
        data: type..data of a command, or status..data of a reply.

    Returns:
        The 16-bit CRC; it goes on the wire high byte first.
    """
    return binascii.crc_hqx(data, 0)


def mode_zone(read_mode: ReadMode, beep: bool = True) -> int:
    """The zone 0x0000 byte the node writes: LED on, standard aiming and illumination.

    Args:
        read_mode: sensing (reads when something moves in front) or continuous.
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
    if frame[:2] != REPLY_HEAD or len(frame) < _REPLY_OVERHEAD:
        raise ValueError(f"not a reply frame: {frame.hex(' ')}")
    if len(frame) != _REPLY_OVERHEAD + frame[3]:
        raise ValueError(f"reply length byte {frame[3]} does not match {len(frame)} bytes")
    body, crc = frame[2:-2], int.from_bytes(frame[-2:], "big")
    if crc != crc16_xmodem(body):
        raise ValueError(f"crc {crc:04X} should be {crc16_xmodem(body):04X}: {frame.hex(' ')}")
    return SettingReply(body[0], bytes(body[2:]))


ScanItem = str | SettingReply | FrameFault


class ScanFramer:
    """Turns the scanner's bytes into codes, setting replies and frame faults.

    A line holding any byte that is not printable UTF-8 is dropped whole: line noise
    may also have printable bytes, and a code with a stray prefix must never reach the
    verifier as if it were read. The person simply scans again.

    Args:
        suffix: what ends a code; with "none", only `flush` (a quiet line) ends one.
        max_code_chars: longest code in bytes (one per character for the ASCII codes
            the node reads); a longer line is an overflow fault.
    """

    def __init__(self, suffix: Suffix = "cr", max_code_chars: int = 4296) -> None:
        self.suffix = suffix
        self.max_code_chars = max_code_chars
        self._line = bytearray()
        self._reply: bytearray | None = None
        self._skipping = False  # after an overflow or stray 02, until the line ends

    def feed(self, data: bytes) -> list[ScanItem]:
        """Take the next bytes from the wire.

        Args:
            data: any number of bytes, split anywhere.

        Returns:
            The codes, setting replies and frame faults they complete, in order;
            a partial line waits for more bytes.
        """
        out: list[ScanItem] = []
        for byte in data:
            if self._reply is not None and self._reply_byte(byte, out):
                continue
            if byte == STX and not self._line and not self._skipping:
                self._reply = bytearray([byte])
            elif self._ends_line(byte):
                self._end_line(out)
            elif not self._skipping:
                self._line.append(byte)
                if len(self._line) > self.max_code_chars:
                    out.append(FrameFault("overflow", f"line longer than {self.max_code_chars}"))
                    self._line.clear()
                    self._skipping = True
        return out

    def flush(self) -> list[ScanItem]:
        """The line went quiet: end a code without suffix, or drop what never got one."""
        out: list[ScanItem] = []
        if self._reply is not None:
            out.append(FrameFault("garbage", f"reply cut off after {len(self._reply)} bytes"))
            self._reply = None
        if self._skipping:
            self._skipping = False
            self._line.clear()
        elif self._line and self.suffix == "none":
            self._end_line(out)
        elif self._line:
            out.append(FrameFault("garbage", f"{len(self._line)} bytes without a suffix"))
            self._line.clear()
        return out

    def _ends_line(self, byte: int) -> bool:
        match self.suffix:
            case "cr":
                return byte == 0x0D
            case "crlf":
                return byte == 0x0A
            case "tab":
                return byte == 0x09
            case "none":
                return False

    def _end_line(self, out: list[ScanItem]) -> None:
        line, self._line = bytes(self._line), bytearray()
        if self._skipping:
            self._skipping = False  # the fault was reported when skipping began
            return
        if self.suffix == "crlf":
            if not line.endswith(b"\r"):
                out.append(FrameFault("garbage", "LF without CR"))
                return
            line = line[:-1]
        if line:
            out.append(_text(line))

    def _reply_byte(self, byte: int, out: list[ScanItem]) -> bool:
        """Add a byte to the reply being read; False if it shows this is no reply."""
        assert self._reply is not None
        if len(self._reply) == 1 and byte != REPLY_HEAD[1]:
            # No reply after all: a line starting with a control byte, dropped whole.
            out.append(FrameFault("garbage", "line starts with a stray 02 byte"))
            self._reply = None
            self._skipping = True
            return False
        self._reply.append(byte)
        if len(self._reply) >= 4 and len(self._reply) == _REPLY_OVERHEAD + self._reply[3]:
            frame, self._reply = bytes(self._reply), None
            try:
                out.append(parse_reply(frame))
            except ValueError as exc:
                out.append(FrameFault("checksum", str(exc)))
        return True


def _text(line: bytes) -> str | FrameFault:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return FrameFault("garbage", f"{len(line)}-byte line is not UTF-8")
    if not text.isprintable():
        return FrameFault("garbage", f"{len(line)}-byte line has control characters")
    return text
