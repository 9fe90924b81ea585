"""GM65 scanner driver: sets suffix and read mode at open, then turns lines into code scans."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import ClassVar

from edge.devices.base import (
    CodeScan,
    DeviceRefused,
    DeviceTimeout,
    FrameFault,
    RawSample,
    Reading,
    SerialStream,
)
from edge.devices.scanner.profile import ScannerProfile
from edge.devices.scanner.protocol import (
    OUTPUT_ZONE,
    ZONE_MODE,
    ZONE_OUTPUT,
    ScanFramer,
    SettingReply,
    mode_zone,
    write_command,
)

log = logging.getLogger(__name__)

SOURCE = "scanner"


class ScannerDriver:
    """Reads codes from a GM65-class scanner on an open stream.

    The stream's timeout bounds every read, so `poll` and `setup` never block longer
    than it (plus `reply_timeout_s` for each setting in `setup`).

    Args:
        stream: the open serial port (its timeout should be short, e.g. 0.02 s).
        profile: suffix, read mode, limits.
    """

    part: ClassVar[str] = "gm65-scanner"

    def __init__(self, stream: SerialStream, profile: ScannerProfile) -> None:
        self._stream = stream
        self.profile = profile
        self._framer = ScanFramer(profile.suffix, profile.max_code_chars)
        # What the framer produced and nobody took yet: setup takes replies out of it,
        # poll takes the rest, so a code scanned while setup waits is not lost.
        self._inbox: list[CodeScan | SettingReply | FrameFault] = []
        self._last_byte_at: float | None = None

    def setup(self) -> None:
        """Write the suffix and read mode the node needs and check each answer.

        Raises:
            DeviceTimeout: no answer within `reply_timeout_s`.
            DeviceRefused: an answer other than the write-success reply.
        """
        self._framer = ScanFramer(self.profile.suffix, self.profile.max_code_chars)
        if not self.profile.configure_on_start:
            return
        # The suffix first: if the module still sent another one, every code read
        # while we set the mode would come out as a garbage line.
        self._write_zone("suffix", ZONE_OUTPUT, OUTPUT_ZONE[self.profile.suffix])
        self._write_zone(
            "read mode", ZONE_MODE, mode_zone(self.profile.read_mode, self.profile.beep)
        )

    def poll(self) -> Sequence[Reading | FrameFault | RawSample]:
        """Codes and frame faults that arrived since the last call ([] if none)."""
        self._inbox += self._read()
        items: list[Reading | FrameFault | RawSample] = []
        for item in self._inbox:
            if isinstance(item, SettingReply):
                log.warning("scanner: reply nobody asked for: %s", item)
            else:
                items.append(item)
        self._inbox.clear()
        return items

    def stuck_key(self, reading: Reading) -> object | None:
        """None: the same code scanned twice is a person scanning twice."""
        del reading
        return None

    def _write_zone(self, what: str, address: int, value: int) -> None:
        self._stream.write(write_command(address, bytes([value])))
        reply = self._await_reply(what)
        if not reply.write_ok:
            raise DeviceRefused(
                f"scanner refused the {what} setting (zone {address:#06x} = {value:#04x}): "
                f"status {reply.status:#04x}, data {reply.data.hex(' ') or '-'}"
            )

    def _await_reply(self, what: str) -> SettingReply:
        deadline = time.monotonic() + self.profile.reply_timeout_s
        while True:
            for index, item in enumerate(self._inbox):
                if isinstance(item, SettingReply):
                    del self._inbox[index]
                    return item
            if time.monotonic() >= deadline:
                raise DeviceTimeout(
                    f"scanner did not answer the {what} setting "
                    f"within {self.profile.reply_timeout_s} s"
                )
            self._inbox += self._read()

    def _read(self) -> list[CodeScan | SettingReply | FrameFault]:
        data = self._stream.read(max(1, self._stream.in_waiting))
        now = time.monotonic()
        if data:
            self._last_byte_at = now
            return self._scans(self._framer.feed(data), now)
        if self._last_byte_at is not None and now - self._last_byte_at >= self.profile.frame_gap_s:
            # The line went quiet: a code without suffix ends at its last byte.
            at, self._last_byte_at = self._last_byte_at, None
            return self._scans(self._framer.flush(), at)
        return []

    @staticmethod
    def _scans(
        items: list[str | SettingReply | FrameFault], at: float
    ) -> list[CodeScan | SettingReply | FrameFault]:
        return [CodeScan(item, SOURCE, at) if isinstance(item, str) else item for item in items]
