"""The scanner's settings read back now and then: a module that restarted has lost them."""

# A GM65 that loses power while its USB-serial adapter stays powered comes back with
# its saved settings: another suffix (every code then looks like garbage) or manual
# mode (it waits for a trigger nobody presses, and the gate silently stops reading).
# The port never closes, so nothing else tells the node. Reading zones 0x0000..0x0060
# back with one `7E 00 07` command shows it; hardware/protocols/gm65-scanner.md.

from __future__ import annotations

from dataclasses import dataclass

from edge.devices.base import DeviceRefused, DeviceTimeout
from edge.devices.scanner.protocol import (
    OUTPUT_ZONE,
    ZONE_MODE,
    ZONE_OUTPUT,
    NodeSuffix,
    ReadMode,
    SettingReply,
    mode_zone,
    read_command,
    read_mode_of_zone,
    suffix_of_zone,
)

READ_SPAN = ZONE_OUTPUT - ZONE_MODE + 1  # one read covers both zones the node writes
READ_SETTINGS = read_command(ZONE_MODE, READ_SPAN)
MISSES_ALLOWED = 2  # unanswered reads in a row before the module counts as gone
SOONEST_AGAIN_S = 1.0  # garbage asks for a check, but not more often than this


class SettingsLost(DeviceRefused):
    """The module no longer runs with what setup wrote: it restarted with saved settings."""


@dataclass(frozen=True)
class NodeSettings:
    """What setup writes, as the zone bytes a read should give back."""

    suffix: NodeSuffix
    read_mode: ReadMode
    beep: bool

    def mismatches(self, zones: bytes) -> list[str]:
        """What differs in zones 0x0000..0x0060 as read, one phrase each; [] if nothing."""
        out: list[str] = []
        mode, output = zones[ZONE_MODE], zones[ZONE_OUTPUT - ZONE_MODE]
        if mode != mode_zone(self.read_mode, self.beep):
            out.append(
                f"read mode {read_mode_of_zone(mode)} (zone 0x0000 = {mode:#04x}, "
                f"set {mode_zone(self.read_mode, self.beep):#04x})"
            )
        if output != OUTPUT_ZONE[self.suffix]:
            out.append(
                f"suffix {suffix_of_zone(output)} (zone 0x0060 = {output:#04x}, "
                f"set {OUTPUT_ZONE[self.suffix]:#04x})"
            )
        return out


class SettingsWatch:
    """Decides when to read the settings back, and judges what comes back.

    Nothing here blocks or writes: the driver asks `due` for the command to send when
    the line is quiet, hands over every reply, and raises `problem` when there is one.

    Args:
        expected: what setup wrote.
        every_s: how often to read them back.
        reply_timeout_s: how long one read may wait for its answer.
    """

    def __init__(self, expected: NodeSettings, every_s: float, reply_timeout_s: float) -> None:
        self.expected = expected
        self.every_s = every_s
        self.reply_timeout_s = reply_timeout_s
        self.problem: SettingsLost | DeviceTimeout | None = None
        self._next = 0.0
        self._sent_at: float | None = None
        self._last_sent = float("-inf")
        self._misses = 0

    def restart(self, now: float) -> None:
        """Setup has just written the settings: the first check comes `every_s` later."""
        self.problem = None
        self._next, self._sent_at, self._misses = now + self.every_s, None, 0

    def soon(self, now: float) -> None:
        """Something looked wrong (garbage after good reads): check as soon as allowed."""
        self._next = min(self._next, max(now, self._last_sent + SOONEST_AGAIN_S))

    def due(self, now: float, line_quiet: bool) -> bytes:
        """The read command to send now, or b"" (a read is out, not due, or a code flows)."""
        if self.problem or self._sent_at is not None or not line_quiet or now < self._next:
            return b""
        self._sent_at = self._last_sent = now
        return READ_SETTINGS

    def reply(self, reply: SettingReply, now: float) -> bool:
        """Judge a reply; False when no read was waiting for one (not ours)."""
        if self._sent_at is None:
            return False
        self._sent_at, self._misses, self._next = None, 0, now + self.every_s
        if reply.status != 0 or len(reply.data) != READ_SPAN:
            self.problem = SettingsLost(
                f"scanner answered its settings read with status {reply.status:#04x} "
                f"and {len(reply.data)} bytes, not {READ_SPAN}"
            )
        elif wrong := self.expected.mismatches(reply.data):
            self.problem = SettingsLost(
                f"scanner settings lost (restarted with its saved ones?): {'; '.join(wrong)}"
            )
        return True

    def check_overdue(self, now: float) -> None:
        """Count a read nobody answered; after MISSES_ALLOWED in a row, the module is gone."""
        if self._sent_at is None or now - self._sent_at < self.reply_timeout_s:
            return
        self._sent_at, self._next = None, now  # ask again at once
        self._misses += 1
        if self._misses >= MISSES_ALLOWED:
            self.problem = DeviceTimeout(
                f"scanner answered none of {self._misses} settings reads within "
                f"{self.reply_timeout_s} s (powered off or restarting?)"
            )
