"""GM65 scanner driver: sets suffix and read mode, keeps checking them, turns lines into scans."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from edge.devices.base import (
    CodeScan,
    DeviceRefused,
    DeviceTimeout,
    FrameFault,
    RawSample,
    Reading,
    ScanFailed,
    SerialStream,
)
from edge.devices.scanner.framing import Fragment, ScanFramer, ScanItem
from edge.devices.scanner.profile import ScannerProfile
from edge.devices.scanner.protocol import (
    OUTPUT_ZONE,
    REPLY_OVERHEAD,
    ZONE_MODE,
    ZONE_OUTPUT,
    SettingReply,
    mode_zone,
    write_command,
)
from edge.devices.scanner.settings import READ_SETTINGS, READ_SPAN, NodeSettings, SettingsWatch

log = logging.getLogger(__name__)

SOURCE = "scanner"
Item = Reading | FrameFault | RawSample


class ScannerDriver:
    """Reads codes from a GM65-class scanner on an open stream.

    The stream's timeout bounds every read, so `poll` and `setup` never block longer
    than it (plus `reply_timeout_s` for each setting in `setup`).

    Args:
        stream: the open serial port (its timeout should be short, e.g. 0.02 s).
        profile: suffix, read mode, limits.
        clock: monotonic seconds; a parameter so tests can drive time.
    """

    part: ClassVar[str] = "gm65-scanner"

    def __init__(
        self, stream: SerialStream, profile: ScannerProfile,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._stream = stream
        self.profile = profile
        self._clock = clock
        self._framer = self._new_framer()
        # What came in and nobody took yet: setup takes replies out of it, poll takes
        # the rest, so a code scanned while setup waits is not lost.
        self._inbox: list[Item | SettingReply] = []
        # The settings read's answer is 103 bytes: its wire time comes on top.
        read_s = (len(READ_SETTINGS) + READ_SPAN + REPLY_OVERHEAD) * profile.byte_s
        self._watch = SettingsWatch(
            NodeSettings(profile.suffix, profile.read_mode, profile.beep),
            profile.settings_check_s or 0.0,
            profile.reply_timeout_s + read_s + profile.adapter_latency_s,
        )

    def setup(self) -> None:
        """Write the suffix and read mode the node needs and check each answer.

        Raises:
            DeviceTimeout: no answer within `reply_timeout_s`.
            DeviceRefused: an answer other than the write-success reply.
        """
        self._framer = self._new_framer()
        if self.profile.configure_on_start:
            # The suffix first: if the module still sent another one, every code read
            # while we set the mode would come out as a garbage line.
            self._write_zone("suffix", ZONE_OUTPUT, OUTPUT_ZONE[self.profile.suffix])
            self._write_zone(
                "read mode", ZONE_MODE, mode_zone(self.profile.read_mode, self.profile.beep)
            )
        self._watch.restart(self._clock())

    def poll(self) -> Sequence[Item]:
        """Codes, failed scans and frame faults that arrived since the last call ([] if none).

        Raises:
            SettingsLost: the module reads back other settings than setup wrote.
            DeviceTimeout: the module stopped answering its settings reads.
        """
        if self._watch.problem is not None:
            raise self._watch.problem
        self._inbox += self._read()
        now = self._clock()
        items: list[Item] = []
        for item in self._inbox:
            if not isinstance(item, SettingReply):
                items.append(item)
            elif not self._watch.reply(item, now):
                log.warning("scanner: reply nobody asked for: %s", item)
        self._inbox.clear()
        if self._watching:
            self._watch.check_overdue(now)
            if any(isinstance(item, ScanFailed | FrameFault) for item in items):
                self._watch.soon(now)  # garbage after good reads: a restarted module?
            if command := self._watch.due(now, self._framer.quiet_now):
                self._stream.write(command)
        return items

    def revive(self) -> None:
        """Nothing: a scanner is silent whenever nobody scans, so it is never in timeout."""

    def stuck_key(self, reading: Reading) -> object | None:
        """None: the same code scanned twice is a person scanning twice."""
        del reading
        return None

    @property
    def _watching(self) -> bool:
        return self.profile.configure_on_start and self.profile.settings_check_s is not None

    def _new_framer(self) -> ScanFramer:
        return ScanFramer(
            self.profile.suffix, self.profile.max_code_chars, self.profile.frame_gap_s
        )

    def _write_zone(self, what: str, address: int, value: int) -> None:
        self._stream.write(write_command(address, bytes([value])))
        reply = self._await_reply(what)
        if not reply.write_ok:
            raise DeviceRefused(
                f"scanner refused the {what} setting (zone {address:#06x} = {value:#04x}): "
                f"status {reply.status:#04x}, data {reply.data.hex(' ') or '-'}"
            )

    def _await_reply(self, what: str) -> SettingReply:
        deadline = self._clock() + self.profile.reply_timeout_s
        while True:
            for index, item in enumerate(self._inbox):
                if isinstance(item, SettingReply):
                    del self._inbox[index]
                    return item
            if self._clock() >= deadline:
                raise DeviceTimeout(
                    f"scanner did not answer the {what} setting "
                    f"within {self.profile.reply_timeout_s} s"
                )
            self._inbox += self._read()

    def _read(self) -> list[Item | SettingReply]:
        data = self._stream.read(max(1, self._stream.in_waiting))
        now = self._clock()
        if data:
            return self._scans(self._framer.feed(data, now), now)
        # The line went quiet: a line still waiting for its suffix is a fragment.
        return self._scans(self._framer.quiet(now), now)

    @staticmethod
    def _scans(items: list[ScanItem], at: float) -> list[Item | SettingReply]:
        out: list[Item | SettingReply] = []
        for item in items:
            if isinstance(item, str):
                out.append(CodeScan(item, SOURCE, at))
            elif isinstance(item, Fragment):
                out.append(ScanFailed(SOURCE, at, item.why))
            else:
                out.append(item)
        return out
