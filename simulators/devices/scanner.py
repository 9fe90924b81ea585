"""A simulated GM65-class QR scanner: sends codes with their suffix, answers zone-bit commands."""

# Line speed. A pty moves bytes at any speed, but the speed the host set is readable on
# the simulator's side (SimulatedPart.host_speed). So the simulated module keeps its baud
# in zones 0x002A-0x002B, as the GM65 does, and treats a host whose line speed differs as
# the real module would: bytes it sends are noise (ignored, no reply), and codes it scans
# arrive as junk. A write to the baud zones is answered at
# the old speed, then the module runs at the new one; like every zone, it is kept over
# a power cycle only once saved (type 09).

from __future__ import annotations

import logging
from pathlib import Path

from edge.devices.scanner.protocol import (
    BAUD_DIVISORS,
    OUTPUT_ZONE,
    SUFFIX_BYTES,
    TYPE_READ,
    TYPE_SAVE,
    TYPE_WRITE,
    WRITE_OK,
    ZONE_BAUD,
    ZONE_MODE,
    ZONE_OUTPUT,
    ModuleReadMode,
    Suffix,
    ZoneCommand,
    baud_of_zones,
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
        refuse_save: the save command (type 09) gets an error reply (a worn flash).
        check_line_speed: ignore what a host sends at another speed than the module's
            (the module note above); False for a host that cannot set one (a socket).
    """

    # The manual gives no start-up time; a camera-based module needs a moment.
    power_up_s = 0.8

    def __init__(
        self, path: Path, baudrate: int = 9600, suffix: Suffix = "cr",
        read_mode: ModuleReadMode = "continuous",
    ) -> None:  # fmt: skip
        if baudrate not in BAUD_DIVISORS:
            raise ValueError(f"a GM65 runs at one of {sorted(BAUD_DIVISORS)}, not {baudrate}")
        super().__init__(path, baudrate, interval_s=None)
        divisor = BAUD_DIVISORS[baudrate].to_bytes(2, "little")
        self.saved: dict[int, int] = {
            ZONE_MODE: mode_zone(read_mode),
            ZONE_BAUD: divisor[0],
            ZONE_BAUD + 1: divisor[1],
            ZONE_OUTPUT: OUTPUT_ZONE[suffix],
        }
        self.zones = dict(self.saved)
        self.commands: list[ZoneCommand] = []
        self.refuse: set[int] = set()
        self.refuse_save = False
        self.check_line_speed = True

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
        frame = text.encode("utf-8") + SUFFIX_BYTES[self.suffix]
        if not self.host_in_step():
            frame = bytes(0xF0 | (byte & 0x0F) for byte in frame)  # framing errors: junk
        self.send(frame)

    def power_up(self) -> None:
        """Back to the saved zones: what the host wrote without saving is gone."""
        self.zones = dict(self.saved)
        self.baudrate = self._zone_baud() or self.baudrate

    def host_in_step(self) -> bool:
        """Whether the host's line speed is the module's (always, when not checked)."""
        return not self.check_line_speed or self.host_speed() == self.baudrate

    def _receive(self, data: bytes) -> None:
        if self.check_line_speed and self.powered and not self.host_in_step():
            log.debug("scanner at %d hears noise (host at %s)", self.baudrate, self.host_speed())
            self.received.clear()
            return
        super()._receive(data)
        new = self._zone_baud()
        if new and new != self.baudrate:  # answered at the old speed: now switch
            log.info("scanner now at %d baud", new)
            self.baudrate = new

    def _zone_baud(self) -> int | None:
        return baud_of_zones(self.zones.get(ZONE_BAUD, 0), self.zones.get(ZONE_BAUD + 1, 0))

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
            if self.refuse_save:
                return reply_frame(b"\x00", status=0x01)
            self.saved = dict(self.zones)
            return WRITE_OK
        return b""
