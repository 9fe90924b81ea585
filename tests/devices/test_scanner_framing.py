"""GM65 line framing with byte literals and timings: suffixes, junk, overflow, pauses, bursts."""

from __future__ import annotations

import math

import pytest

from edge.devices.base import FrameFault
from edge.devices.scanner.framing import Fragment, ScanFramer, ScanItem
from edge.devices.scanner.profile import ScannerProfile
from edge.devices.scanner.protocol import SUFFIX_BYTES, WRITE_OK, NodeSuffix, SettingReply
from tests.devices.case_scanner import REAL_CODE

CODE = "HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N IOP-IA%NFQGRJPC%OQHIZC4.OI1RM8ZA"
LONG_CODE = "HC1:" + "6BFOXN%TS3" * 60  # 604 characters: 0.63 s of wire at 9600


def summary(items: list[ScanItem]) -> list[object]:
    """Items as a user compares them: texts and replies as they are, the rest by kind."""
    out: list[object] = []
    for item in items:
        if isinstance(item, FrameFault):
            out.append(f"fault:{item.kind}")
        elif isinstance(item, Fragment):
            out.append("fragment")
        else:
            out.append(item)
    return out


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
def test_framer__valid(suffix: NodeSuffix, data: bytes, expected: list[object]) -> None:
    assert summary(ScanFramer(suffix).feed(data)) == expected


@pytest.mark.parametrize("suffix", ["cr", "crlf", "tab"])
def test_framer_split_anywhere__valid(suffix: NodeSuffix) -> None:
    wire = b"A1" + SUFFIX_BYTES[suffix]
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
def test_framer__invalid(suffix: NodeSuffix, data: bytes, expected: list[object]) -> None:
    assert summary(ScanFramer(suffix).feed(data)) == expected


@pytest.mark.parametrize(
    ("length", "expected"),
    [(16, ["A" * 16, "B2"]), (17, ["fault:overflow", "B2"]), (500, ["fault:overflow", "B2"])],
)
def test_framer_overflow(length: int, expected: list[object]) -> None:
    framer = ScanFramer("cr", max_code_chars=16)
    items = framer.feed(b"A" * length + b"\r") + framer.feed(b"B2\r")
    assert summary(items) == expected


@pytest.mark.parametrize(
    ("first", "rest", "expected"),
    [
        # Cut off: dropped, and so is what follows up to the next suffix (reported too).
        (b"HC1:AB", b"CD\rB2\r", ["fault:garbage", "fragment", "fragment", "B2"]),
        (b"HC1:ABCD", b"\rB2\r", ["fault:garbage", "fragment", "B2"]),  # only the CR was left
        (WRITE_OK[:4], WRITE_OK[4:] + b"B2\rC3\r", ["fault:garbage", "fragment", "C3"]),
        (b"A" * 40, b"\rB2\r", ["fault:overflow", "B2"]),  # told once, at the overflow
        (b"A" * 40, b"A\rB2\r", ["fault:overflow", "fragment", "B2"]),  # after a pause: news
        (b"\x02A", b"BC\rB2\r", ["fault:garbage", "fragment", "B2"]),  # new bytes after quiet
        (b"", b"B2\r", ["B2"]),  # nothing was waiting: the pause was between codes
        (b"A1\r", b"B2\r", ["A1", "B2"]),
    ],
)
def test_framer_quiet__invalid(first: bytes, rest: bytes, expected: list[object]) -> None:
    framer = ScanFramer("cr", max_code_chars=16, gap_s=0.1)
    items = framer.feed(first, at=1.0)
    items += framer.quiet(1.05)  # not quiet long enough: nothing happens
    items += framer.quiet(1.1)
    items += framer.feed(rest, at=1.3)
    assert summary(items) == expected


def test_framer_resync_lasts_until_a_suffix() -> None:
    # A module that restarted sending TAB: each code goes quiet without a CR, each is
    # reported (scan again), none is ever a code, and a CR-ended code works again.
    framer = ScanFramer("cr", gap_s=0.1)
    items: list[ScanItem] = []
    for start in (0.0, 1.0, 2.0):
        items += framer.feed(CODE.encode() + b"\t", at=start) + framer.quiet(start + 0.5)
    items += framer.feed(b"\r" + CODE.encode() + b"\r", at=3.0)
    assert summary(items) == ["fault:garbage", "fragment"] * 3 + [CODE]


def read_as_the_node(
    framer: ScanFramer, segments: list[tuple[float, bytes]], *, baudrate: int = 9600,
    latency_s: float = 0.016, chunk: int = 4096, read_timeout_s: float = 0.1,
) -> list[ScanItem]:  # fmt: skip
    """Bytes on the wire as the node's loop reads them through a USB-serial adapter.

    Args:
        framer: the framing unit under test.
        segments: (pause before, bytes): the module sends each run at `baudrate`.
        baudrate: 10 bits per byte on the wire.
        latency_s: the adapter passes on what it received at each tick of this timer.
        chunk: the most one read returns.
        read_timeout_s: a read with nothing to return blocks this long, then the driver
            tells the framer the line was quiet.
    """
    bursts: dict[int, bytearray] = {}
    at = 0.0
    for pause, data in segments:
        at += pause
        for byte in data:
            at += 10 / baudrate
            bursts.setdefault(math.ceil(at / latency_s), bytearray()).append(byte)
    items: list[ScanItem] = []
    last = 0.0
    for tick in sorted(bursts):
        now = tick * latency_s
        items += idle_reads(framer, last, now, read_timeout_s)
        data = bytes(bursts[tick])
        for start in range(0, len(data), chunk):
            items += framer.feed(data[start : start + chunk], now)
        last = now
    return items + idle_reads(framer, last, last + 1.0, read_timeout_s)


def idle_reads(framer: ScanFramer, last: float, until: float, timeout_s: float) -> list[ScanItem]:
    items: list[ScanItem] = []
    now = last + timeout_s + WAKE_UP_S
    while now < until:
        items += framer.quiet(now)
        now += timeout_s + WAKE_UP_S
    return items


WAKE_UP_S = 0.001  # a read that timed out returns a moment after its timeout


@pytest.mark.parametrize(
    ("profile", "pause"),
    [
        pytest.param(ScannerProfile(), 0.15, id="9600"),  # as found (issue 10, A.6)
        pytest.param(ScannerProfile(baudrate=115200), 0.15, id="115200"),
        # Seen once the line was quiet for the gap at a read's wake-up (0.1 s apart).
        pytest.param(ScannerProfile(baudrate=1200, frame_gap_s=0.15), 0.3, id="1200"),
    ],
)
@pytest.mark.parametrize("suffix", ["cr", "crlf"])
def test_pause_at_every_byte__invalid(
    profile: ScannerProfile, pause: float, suffix: NodeSuffix
) -> None:
    # The module pauses inside a code, at each position in turn; the person scans
    # again 0.3 s later. No part of the code may ever be a code, the whole one is.
    wire = REAL_CODE.encode() + SUFFIX_BYTES[suffix]
    for cut in range(1, len(wire)):
        framer = ScanFramer(suffix, profile.max_code_chars, profile.frame_gap_s)
        segments = [(0.0, wire[:cut]), (pause, wire[cut:]), (0.3, wire)]
        items = read_as_the_node(framer, segments, baudrate=profile.baudrate)
        assert [i for i in items if isinstance(i, str)] == [REAL_CODE], cut
        assert summary(items[:2]) == ["fault:garbage", "fragment"], cut
        assert items[-1] == REAL_CODE, cut


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(ScannerProfile(), id="9600"),
        pytest.param(ScannerProfile(baudrate=115200), id="115200"),
        pytest.param(ScannerProfile(baudrate=1200, frame_gap_s=0.15), id="1200"),
    ],
)
@pytest.mark.parametrize("code", [REAL_CODE, LONG_CODE])
def test_codes_in_bursts_and_short_pauses__valid(profile: ScannerProfile, code: str) -> None:
    # A long code takes its time on the wire and comes in adapter bursts; a pause
    # shorter than the gap (less the adapter's latency) is no cut.
    wire = code.encode() + b"\r"
    framer = ScanFramer("cr", profile.max_code_chars, profile.frame_gap_s)
    assert read_as_the_node(framer, [(0.0, wire)], baudrate=profile.baudrate) == [code]
    pause = profile.frame_gap_s - 2 * profile.adapter_latency_s
    for cut in range(1, len(wire), 7):
        framer = ScanFramer("cr", profile.max_code_chars, profile.frame_gap_s)
        segments = [(0.0, wire[:cut]), (pause, wire[cut:])]
        items = read_as_the_node(framer, segments, baudrate=profile.baudrate, chunk=64)
        assert summary(items) == [code], cut
