"""Continuous weight output of weighing indicators: ASCII `ST,GS,+0012.34kg` lines and Toledo.

Two families (hardware/protocols/scale-continuous.md cites the manuals):

  st-gs    `<ST|US|OL>,[<GS|NT>,]<sign><digits with point>[,]<unit> CR LF`
           e.g. `ST,GS,+0012.34kg`, `US,NT,-0000.50kg`, `ST,+00123.45 g` (A&D, no mode
           field), `ST,GS, 12.34,kg` (a space for +, a comma before the unit)
  toledo   `STX SWA SWB SWC <6 digits weight> <6 digits tare> CR [CKS]`, 7 data bits;
           SWA bits 0-2 place the decimal point, SWB says net, negative, overload,
           motion and kg/lb, SWC says g or t; CKS is the 2's complement of the 7-bit sum
           of every byte before it (STX and CR included)

No I/O here: `LineReader` cuts the byte stream into frames and `parse_*` turn a frame into
a WeightFrame or raise FrameInvalid. A frame with motion (US, SWB bit 3) or overload (OL,
SWB bit 2) is parsed, but it is never a usable weight (`WeightFrame.usable`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from edge.devices.base import FrameFault, FrameFaultKind

ScaleFormat = Literal["st-gs", "toledo"]
Unit = Literal["kg", "g", "lb", "t"]
Basis = Literal["gross", "net"]

STX = 0x02
CR = 0x0D
LF = 0x0A
# The longest frame either family sends is 22 bytes (st-gs with spaces); anything longer
# without a terminator is line noise, dropped as garbage rather than buffered for ever.
FRAME_MAX = 40
TOLEDO_BODY = 16  # STX, SWA, SWB, SWC, 6 weight digits, 6 tare digits
# One kilogram of each unit, exactly (the pound is 0.45359237 kg by definition).
KG_PER_UNIT: dict[Unit, Decimal] = {
    "kg": Decimal(1), "g": Decimal("0.001"), "t": Decimal(1000), "lb": Decimal("0.45359237"),
}  # fmt: skip
_ST_GS = re.compile(
    rb"^(?P<status>ST|US|OL|QT),(?:(?P<mode>GS|NT),)?\s*(?P<sign>[+-]?)\s*"
    rb"(?P<number>\d+(?:\.\d+)?|\.\d+)\s*,?\s*(?P<unit>kg|g|lb|t|pcs|PC|%|oz|ozt|tl)\s*$"
)
# Toledo output is 7-bit: a 7E1 line read as 8 bits carries the parity in the top bit.
_SEVEN_BITS = bytes(i & 0x7F for i in range(256))
# Status word A, bits 0-2: where the decimal point goes (a power of ten on the 6 digits).
_TOLEDO_EXPONENT = {0: 2, 1: 1, 2: 0, 3: -1, 4: -2, 5: -3, 6: -4, 7: -5}


class FrameInvalid(ValueError):
    """Bytes that are no frame of the configured format; the message says why."""


@dataclass(frozen=True)
class WeightFrame:
    """One frame as the indicator meant it.

    `weight_kg` is the shown weight converted exactly to kilograms (None when the frame
    carries none, as an overload's); `stable` is the indicator's own standstill flag.
    """

    stable: bool
    overload: bool
    basis: Basis
    weight_kg: Decimal | None
    unit: Unit

    @property
    def usable(self) -> bool:
        """A stable, in-range weight: the only kind a node may report."""
        return self.stable and not self.overload and self.weight_kg is not None


def parse_st_gs(line: bytes) -> WeightFrame:
    """One `ST,GS,+0012.34kg`-style line, without its CR LF.

    Args:
        line: the bytes between two line ends (a leading STX is tolerated).

    Returns:
        The frame; an `OL` frame has overload set and no weight.

    Raises:
        FrameInvalid: not this format, or a unit that is no weight (pcs, %, oz…).
    """
    match = _ST_GS.match(line.strip(b"\x02 \r\n"))
    if match is None:
        raise FrameInvalid(f"not an ST/US/OL weight line: {_show(line)}")
    status = match["status"].decode()
    unit = match["unit"].decode()
    if status == "QT" or unit not in KG_PER_UNIT:
        raise FrameInvalid(f"{status} {unit}: not a weight (counting or percentage mode?)")
    basis: Basis = "net" if match["mode"] == b"NT" else "gross"
    if status == "OL":
        return WeightFrame(False, True, basis, None, unit)
    value = Decimal(match["number"].decode())  # digits and one point: always a number
    if match["sign"] == b"-":
        value = -value
    kg = value * KG_PER_UNIT[unit]
    return WeightFrame(status == "ST", False, basis, kg, unit)


def toledo_checksum(data: bytes) -> int:
    """The Toledo check character: 2's complement of the 7-bit sum of `data`.

    Args:
        data: every byte before the check character, STX and CR included.

    Returns:
        A value 0..127.
    """
    return -sum(data) & 0x7F


def parse_toledo(frame: bytes, *, checksum: bool) -> WeightFrame:
    """One Toledo continuous frame: STX, three status words, 6 + 6 digits, CR [, CKS].

    Args:
        frame: from STX to CR, plus the check character when `checksum`.
        checksum: the indicator is set to send the check character.

    Returns:
        The frame. An overload or under-zero frame (SWB bit 2) has no weight.

    Raises:
        FrameInvalid: wrong length, a bad check character, status words whose fixed
            bits are wrong, or digits that are not digits.
    """
    want = TOLEDO_BODY + 1 + (1 if checksum else 0)
    if len(frame) != want or frame[0] != STX or frame[TOLEDO_BODY] != CR:
        raise FrameInvalid(f"not a {want}-byte Toledo frame: {_show(frame)}")
    if checksum and frame[-1] & 0x7F != toledo_checksum(frame[:-1]):
        raise FrameInvalid(
            f"check character {frame[-1] & 0x7F:02X} should be "
            f"{toledo_checksum(frame[:-1]):02X}: {_show(frame)}"
        )
    swa, swb, swc = (byte & 0x7F for byte in frame[1:4])
    # Bit 5 is always 1 in every status word and bit 6 is 0 in SWC: a byte that breaks
    # this is no status word (a shifted frame).
    if not (swa & 0x20 and swb & 0x20 and swc & 0x20) or swc & 0x40:
        raise FrameInvalid(f"status words {swa:02X} {swb:02X} {swc:02X} are malformed")
    digits = frame[4:10]
    if not digits.isdigit() or not frame[10:16].isdigit():
        raise FrameInvalid(f"weight or tare is not 6 digits: {_show(frame)}")
    unit: Unit = {1: "g", 2: "t"}.get(swc & 0x07, "kg" if swb & 0x10 else "lb")  # type: ignore[assignment]
    basis: Basis = "net" if swb & 0x01 else "gross"
    if swb & 0x04:
        return WeightFrame(False, True, basis, None, unit)
    value = Decimal(int(digits)).scaleb(_TOLEDO_EXPONENT[swa & 0x07])
    if swb & 0x02:
        value = -value
    return WeightFrame(not swb & 0x08, False, basis, value * KG_PER_UNIT[unit], unit)


def encode_st_gs(
    status: Literal["ST", "US", "OL"], basis: Basis, weight: Decimal, unit: Unit = "kg",
    *, decimals: int = 2, mode_field: bool = True,
) -> bytes:  # fmt: skip
    """A line as an ST/GS indicator sends it (for simulators and tests).

    Args:
        status: ST stable, US unstable, OL overload.
        basis: gross (GS) or net (NT).
        weight: in `unit`.
        unit: the indicator's unit.
        decimals: digits after the point, as the indicator's division sets them.
        mode_field: false for indicators that send no GS/NT field (A&D balances).

    Returns:
        e.g. b"ST,GS,+0012.34kg\\r\\n" (7 characters of number, point included).
    """
    sign = "-" if weight < 0 else "+"
    number = f"{abs(weight):0{7}.{decimals}f}" if status != "OL" else "9" * 7
    mode = ("NT," if basis == "net" else "GS,") if mode_field else ""
    return f"{status},{mode}{sign}{number}{unit}\r\n".encode()


def encode_toledo(
    weight_digits: int, *, decimals: int = 2, net: bool = False, negative: bool = False,
    overload: bool = False, motion: bool = False, unit: Unit = "kg", tare_digits: int = 0,
    checksum: bool = True,
) -> bytes:  # fmt: skip
    """A Toledo continuous frame (for simulators and tests).

    Args:
        weight_digits: the shown weight without its point, 0..999999.
        decimals: digits after the point, 0..4.
        net, negative, overload, motion: SWB bits 0, 1, 2 and 3.
        unit: kg or lb (SWB bit 4), g or t (SWC bits 0-2).
        tare_digits: the tare, 0..999999.
        checksum: append the check character.

    Returns:
        STX ... CR [CKS].
    """
    swa = 0x20 | (decimals + 2)
    swb = 0x20 | net | negative << 1 | overload << 2 | motion << 3 | (unit != "lb") << 4
    swc = 0x20 | {"g": 1, "t": 2}.get(unit, 0)
    body = bytes([STX, swa, swb, swc]) + f"{weight_digits:06d}{tare_digits:06d}".encode()
    body += bytes([CR])
    return body + bytes([toledo_checksum(body)]) if checksum else body


class LineReader:
    """Cuts the byte stream into frames of one format and parses them.

    st-gs frames end at LF (a CR before it is dropped); Toledo frames start at STX and
    end at CR, plus one check character when the indicator sends it. Bytes that make no
    frame are FrameFault("garbage"), one per bad frame; a frame longer than FRAME_MAX
    is dropped as garbage.

    Args:
        format: st-gs or toledo.
        checksum: a Toledo indicator appends the check character.
    """

    def __init__(self, format: ScaleFormat, *, checksum: bool = True) -> None:
        self.format = format
        self.checksum = checksum
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[WeightFrame | FrameFault]:
        """Take the next bytes from the wire.

        Args:
            data: any number of bytes, split anywhere.

        Returns:
            The frames and frame faults they complete, in order.
        """
        if self.format == "toledo":
            self._buffer += data.translate(_SEVEN_BITS)
            return self._toledo()
        self._buffer += data
        out: list[WeightFrame | FrameFault] = []
        while (end := self._buffer.find(LF)) >= 0:
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if line.strip():
                out.append(_parsed(line, parse_st_gs))
        if len(self._buffer) > FRAME_MAX:
            out.append(FrameFault("garbage", f"{len(self._buffer)} bytes without a line end"))
            self._buffer.clear()
        return out

    def _toledo(self) -> list[WeightFrame | FrameFault]:
        buf = self._buffer
        out: list[WeightFrame | FrameFault] = []
        size = TOLEDO_BODY + 1 + (1 if self.checksum else 0)
        while True:
            start = buf.find(STX)
            if start != 0:
                skipped = len(buf) if start < 0 else start
                if skipped:
                    out.append(FrameFault("garbage", f"{skipped} bytes before STX"))
                del buf[:skipped]
            if len(buf) < size:
                return out
            frame = bytes(buf[:size])
            cr = frame.find(CR, 1)
            if cr >= 0 and cr != TOLEDO_BODY:
                # A frame that lost bytes: report it, resume at the next STX inside it.
                out.append(FrameFault("garbage", f"short Toledo frame: {_show(frame[: cr + 1])}"))
                del buf[:1]
                continue
            item = _parsed(frame, lambda f: parse_toledo(f, checksum=self.checksum))
            if isinstance(item, FrameFault):
                del buf[:1]  # resync on the next STX
            else:
                del buf[:size]
            out.append(item)


def _parsed(frame: bytes, parse: Callable[[bytes], WeightFrame]) -> WeightFrame | FrameFault:
    try:
        return parse(frame)
    except FrameInvalid as exc:
        kind: FrameFaultKind = "checksum" if str(exc).startswith("check character") else "garbage"
        return FrameFault(kind, str(exc))


def _show(data: bytes) -> str:
    text = data[:FRAME_MAX].decode("ascii", "backslashreplace")
    return repr(text)
