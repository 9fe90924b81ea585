"""GM65 line framing: codes ended by a suffix, replies, and fragments a pause cut off."""

# The scanner's output has no length and no checksum: a code is everything up to its
# suffix (hardware/protocols/gm65-scanner.md). What a line that goes quiet before its
# suffix means is unknowable: it may be a whole code sent with another suffix, or the
# first part of one the module or the USB adapter paused in. Its rest, when it comes,
# looks like a code of its own. So a line cut off by a quiet gap is dropped *and* so is
# everything up to the next suffix: no part of a code ever reaches the verifier.

from __future__ import annotations

from dataclasses import dataclass

from edge.devices.base import FrameFault
from edge.devices.scanner.protocol import (
    REPLY_HEAD,
    REPLY_OVERHEAD,
    STX,
    NodeSuffix,
    SettingReply,
    parse_reply,
)

LINE_END: dict[NodeSuffix, int] = {"cr": 0x0D, "crlf": 0x0A, "tab": 0x09}


@dataclass(frozen=True)
class Fragment:
    """Bytes of a code that cannot be used: never verified, the person must scan again.

    Either a line that went quiet before its suffix, or what followed such a line up
    to the next suffix (the rest of a paused code, or a code sent right after noise).
    """

    length: int
    why: str


ScanItem = str | SettingReply | FrameFault | Fragment


class ScanFramer:
    """Turns the scanner's bytes into codes, setting replies, fragments and frame faults.

    A line holding any byte that is not printable UTF-8 is dropped whole: line noise
    may also have printable bytes, and a code with a stray prefix must never reach the
    verifier as if it were read.

    Args:
        suffix: what ends a code (the node always sets one: see NodeSuffix).
        max_code_chars: longest code in bytes; a longer line is an overflow fault.
        gap_s: quiet time after the last byte that cuts a line off (`quiet`).
    """

    def __init__(
        self, suffix: NodeSuffix = "cr", max_code_chars: int = 4296, gap_s: float = 0.1
    ) -> None:
        self.suffix = suffix
        self.max_code_chars = max_code_chars
        self.gap_s = gap_s
        self._end = LINE_END[suffix]
        self._line = bytearray()
        self._reply: bytearray | None = None
        # Dropping: every byte up to and including the next suffix goes. `_told` says
        # whether the dropped run was already reported (an overflow, a stray 02).
        self._dropping = False
        self._dropped = 0
        self._told = False
        self._last_at: float | None = None

    @property
    def quiet_now(self) -> bool:
        """The line has been quiet for `gap_s` (as `quiet` last saw): a command may go out."""
        return self._last_at is None

    def feed(self, data: bytes, at: float = 0.0) -> list[ScanItem]:
        """Take the next bytes from the wire.

        Args:
            data: any number of bytes, split anywhere.
            at: when they were read (monotonic seconds); `quiet` measures from it.

        Returns:
            The codes, replies, fragments and frame faults they complete, in order.
        """
        out: list[ScanItem] = []
        if data:
            self._last_at = at
        for byte in data:
            if self._reply is not None and self._reply_byte(byte, out):
                continue
            if byte == self._end:
                self._end_line(out)
            elif byte == STX and not self._line and not self._dropped:
                # A reply starts a line; no code holds an 02, so even a run being
                # dropped after a pause cannot start with one.
                self._reply = bytearray([byte])
            elif self._dropping:
                self._dropped += 1
            else:
                self._line.append(byte)
                if len(self._line) > self.max_code_chars:
                    out.append(FrameFault("overflow", f"line longer than {self.max_code_chars}"))
                    self._drop(told=True)
        return out

    def quiet(self, now: float) -> list[ScanItem]:
        """A read found nothing: cut off what has been quiet for `gap_s`, resync after it.

        Args:
            now: monotonic seconds, on the same clock as `feed`'s `at`.

        Returns:
            A fragment (and the garbage fault it is) or a cut-off reply's fault; [] if
            the line is idle or was quiet for less than `gap_s`.
        """
        if self._last_at is None or now - self._last_at < self.gap_s:
            return []
        self._last_at = None
        out: list[ScanItem] = []
        if self._reply is not None:
            out.append(FrameFault("garbage", f"reply cut off after {len(self._reply)} bytes"))
            self._reply = None
            self._drop(told=False)
        elif self._line:
            self._cut(out, len(self._line), f"{len(self._line)} bytes without a suffix")
            self._line.clear()
        elif self._dropping and self._dropped and not self._told:
            self._cut(out, self._dropped, f"{self._dropped} more bytes without a suffix")
        elif self._dropping:
            self._drop(told=False)  # a reported run went quiet; what follows is news
        return out

    def _cut(self, out: list[ScanItem], length: int, why: str) -> None:
        out.append(FrameFault("garbage", why))
        out.append(Fragment(length, why))
        self._drop(told=False)

    def _drop(self, *, told: bool) -> None:
        self._line.clear()
        self._dropping, self._dropped, self._told = True, 0, told

    def _end_line(self, out: list[ScanItem]) -> None:
        line, self._line = bytes(self._line), bytearray()
        if self._dropping:
            if self._dropped and not self._told:
                why = f"{self._dropped} bytes up to the suffix after a cut-off line"
                out.append(Fragment(self._dropped, why))
            self._dropping, self._dropped, self._told = False, 0, False
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
            self._drop(told=True)
            return False
        self._reply.append(byte)
        if len(self._reply) >= 4 and len(self._reply) == REPLY_OVERHEAD + self._reply[3]:
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
