"""A simulated GM65-class QR scanner: sends codes with their suffix, answers zone-bit commands."""

from __future__ import annotations

import logging
from pathlib import Path

from edge.devices.scanner.protocol import (
    OUTPUT_ZONE,
    SUFFIX_BYTES,
    TYPE_READ,
    TYPE_SAVE,
    TYPE_WRITE,
    WRITE_OK,
    ZONE_MODE,
    ZONE_OUTPUT,
    ModuleReadMode,
    Suffix,
    ZoneCommand,
    mode_zone,
    parse_command,
    read_mode_of_zone,
    reply_frame,
    suffix_of_zone,
)
from simulators.devices.base import SimulatedPart

log = logging.getLogger(__name__)


class SimulatedScanner(SimulatedPart):
    """A GM65 behind a pty: `scan(text)` is a person holding up a code.

    Args:
        path: where the symlink to the pty goes.
        baudrate: line speed.
        suffix: the suffix saved in its flash: sent until the host writes zone 0x0060,
            and again after every power cycle.
        read_mode: the read mode saved in its flash; in manual or command mode it
            reads nothing, since nobody presses its trigger.

    Attributes:
        zones: zone-bit bytes by address, as they are now (the host writes them).
        saved: what the module runs with at power-up (written by a save command).
        commands: every valid command received, in order.
        refuse: zone addresses whose writes get an error reply (to test refusals).
    """

    # The manual gives no start-up time; a camera-based module needs a moment.
    power_up_s = 0.8

    def __init__(
        self, path: Path, baudrate: int = 9600, suffix: Suffix = "cr",
        read_mode: ModuleReadMode = "continuous",
    ) -> None:  # fmt: skip
        super().__init__(path, baudrate, interval_s=None)
        self.saved: dict[int, int] = {
            ZONE_MODE: mode_zone(read_mode),
            ZONE_OUTPUT: OUTPUT_ZONE[suffix],
        }
        self.zones = dict(self.saved)
        self.commands: list[ZoneCommand] = []
        self.refuse: set[int] = set()

    @property
    def suffix(self) -> Suffix:
        """The suffix the module sends now (from zone 0x0060)."""
        return suffix_of_zone(self.zones[ZONE_OUTPUT])

    @property
    def read_mode(self) -> ModuleReadMode:
        """The read mode it runs now (from zone 0x0000)."""
        return read_mode_of_zone(self.zones[ZONE_MODE])

    def scan(self, text: str) -> None:
        """A person holds up a code: send it as the module does, with the current faults.

        Args:
            text: the code's content; sent as UTF-8, then the suffix zone 0x0060 selects.
        """
        if self.read_mode in ("manual", "command"):
            log.info("scanner in %s mode: the code held up is not read", self.read_mode)
            return
        self.send(text.encode("utf-8") + SUFFIX_BYTES[self.suffix])

    def power_up(self) -> None:
        """Back to the saved zones: what the host wrote without saving is gone."""
        self.zones = dict(self.saved)

    def reply(self, command: bytes) -> bytes | None:
        answers = b""
        while True:
            parsed, used = parse_command(command)
            if not used:
                break
            del self.received[:used]
            command = command[used:]
            if parsed is not None:
                self.commands.append(parsed)
                answers += self._answer(parsed)
        return answers or None

    def corrupt(self, frame: bytes) -> bytes:
        """A byte in the middle of the code hit by noise: 0xFF is never valid UTF-8."""
        middle = len(frame) // 2
        return frame[:middle] + b"\xff" + frame[middle + 1 :]

    def _answer(self, command: ZoneCommand) -> bytes:
        if command.kind == TYPE_WRITE:
            if command.address in self.refuse:
                # The manual documents only the success reply; any other is a refusal.
                return reply_frame(b"\x00", status=0x01)
            for offset, value in enumerate(command.data):
                self.zones[command.address + offset] = value
            log.debug("scanner zone %#06x <- %s", command.address, command.data.hex(" "))
            return WRITE_OK
        if command.kind == TYPE_READ:
            count = command.data[0] if command.data else 1
            return reply_frame(bytes(self.zones.get(command.address + i, 0) for i in range(count)))
        if command.kind == TYPE_SAVE:
            self.saved = dict(self.zones)
            return WRITE_OK
        return b""
