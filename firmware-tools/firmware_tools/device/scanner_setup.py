"""`fw device scanner-setup`: find a GM65's baud, store 115200, the suffix and read mode."""

# Sequence (hardware/protocols/gm65-scanner.md, "Setup by firmware-tools"):
#   1 find      at each GM65 rate: 7E 00 07 01 00 00 61 <crc>, read zones 0x0000-0x0060
#   2 suffix    7E 00 08 01 00 60 <zone 0x0060> <crc>
#   3 mode      7E 00 08 01 00 00 <zone 0x0000> <crc>
#   4 baud      7E 00 08 02 00 2A <divisor lo hi> <crc>; answered at the old speed, then
#               the host reopens at the new one
#   5 save      7E 00 09 01 00 00 00 DE C8 (flash), at the new speed
#   6 verify    reopen at the new speed, read zones 0x0000-0x0060 again and compare
# The save comes only once the module is known to answer at the new speed: if anything
# before it fails, a power cycle alone also brings the module back as it was.

from __future__ import annotations

import time
from dataclasses import dataclass

import serial

from edge.devices.scanner.profile import ScannerProfile
from edge.devices.scanner.protocol import (
    BAUD_DIVISORS,
    OUTPUT_ZONE,
    REPLY_HEAD,
    REPLY_OVERHEAD,
    ZONE_BAUD,
    ZONE_MODE,
    ZONE_OUTPUT,
    SettingReply,
    baud_of_zones,
    mode_zone,
    parse_reply,
    read_mode_of_zone,
    suffix_of_zone,
    write_command,
)
from edge.devices.scanner.settings import READ_SETTINGS, READ_SPAN
from firmware_tools.device.common import DeviceSetupError, Progress

# The GM65's rates, most likely first: as shipped, as this tool leaves it, then the rest.
PROBE_RATES = (9600, 115200, 57600, 38400, 19200, 4800, 2400, 1200)
TARGET_BAUD = 115200
SAVE = bytes.fromhex("7E 00 09 01 00 00 00 DE C8")  # type 09: zones to flash
REPLY_TIMEOUT_S = 0.3  # beyond the reply's wire time; the module answers within ms


@dataclass(frozen=True)
class ScannerSettings:
    """The three things setup changes, as zone bytes."""

    baud: int
    mode: int  # zone 0x0000
    output: int  # zone 0x0060

    @classmethod
    def from_zones(cls, zones: bytes) -> ScannerSettings:
        """From a read of zones 0x0000-0x0060 (97 bytes)."""
        baud = baud_of_zones(zones[ZONE_BAUD], zones[ZONE_BAUD + 1])
        if baud is None:
            raise DeviceSetupError(
                "find", f"zone 0x002A-0x002B holds {zones[ZONE_BAUD:ZONE_BAUD + 2].hex(' ')}, "
                "no GM65 rate",
            )  # fmt: skip
        return cls(baud, zones[ZONE_MODE], zones[ZONE_OUTPUT - ZONE_MODE])

    def describe(self) -> str:
        return (
            f"{self.baud} baud, suffix {suffix_of_zone(self.output)} "
            f"(0x0060 = {self.output:#04x}), read mode {read_mode_of_zone(self.mode)} "
            f"(0x0000 = {self.mode:#04x})"
        )


class ScannerPort:
    """A GM65 on a serial URL, reopened at whatever speed the module runs at."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._port: serial.Serial | None = None

    def open(self, baud: int) -> None:
        self.close()
        try:
            self._port = serial.serial_for_url(self.url, baudrate=baud, timeout=0.02)
        except (serial.SerialException, OSError) as exc:
            raise DeviceSetupError("open", f"cannot open {self.url} at {baud}: {exc}") from None

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    @property
    def baud(self) -> int:
        assert self._port is not None
        return int(self._port.baudrate)

    def ask(self, command: bytes, data_bytes: int = 1) -> SettingReply | None:
        """Send a command and wait for its reply frame; None if none came in time."""
        assert self._port is not None
        self._port.reset_input_buffer()
        self._port.write(command)
        wire_s = (len(command) + REPLY_OVERHEAD + data_bytes) * 10 / self.baud
        deadline = time.monotonic() + wire_s + REPLY_TIMEOUT_S
        buffer = b""
        while time.monotonic() < deadline:
            buffer += self._port.read(256)
            start = buffer.find(REPLY_HEAD)  # codes scanned meanwhile come before it
            if start < 0 or len(buffer) < start + 4:
                continue
            end = start + REPLY_OVERHEAD + buffer[start + 3]
            if len(buffer) >= end:
                try:
                    return parse_reply(buffer[start:end])
                except ValueError:
                    buffer = buffer[start + 1 :]  # a damaged reply: as good as none
        return None

    def read_zones(self) -> bytes | None:
        reply = self.ask(READ_SETTINGS, READ_SPAN)
        if reply is None or reply.status != 0 or len(reply.data) != READ_SPAN:
            return None
        return reply.data

    def write(self, step: str, command: bytes) -> None:
        check(step, self.ask(command), self.baud)


def check(step: str, reply: SettingReply | None, baud: int) -> None:
    """Raise unless the reply is the module's `02 00 00 01 00` (done)."""
    if reply is None:
        raise DeviceSetupError(step, f"no reply at {baud} baud")
    if not reply.write_ok:
        raise DeviceSetupError(
            step, f"the module refused it (status {reply.status:#04x}, "
            f"data {reply.data.hex(' ')})",
        )  # fmt: skip


def find_baud(port: ScannerPort, progress: Progress) -> tuple[int, bytes]:
    """The rate the module answers a settings read at, and the zones it read."""
    for rate in PROBE_RATES:
        port.open(rate)
        zones = port.read_zones()
        progress.note(f"  {rate:>6} baud: {'answered' if zones else 'no answer'}")
        if zones is not None:
            return rate, zones
    port.close()
    rates = ", ".join(str(r) for r in PROBE_RATES)
    raise DeviceSetupError(
        "find", f"no GM65 answered on {port.url} at {rates} baud: check power (5 V), "
        "TX/RX crossed, and that nothing else holds the port",
    )  # fmt: skip


def scanner_setup(url: str, profile: ScannerProfile, progress: Progress) -> ScannerSettings:
    """Store 115200 baud and the profile's suffix and read mode in the module's flash.

    Args:
        url: the module's serial URL (a device path or a pty in tests).
        profile: gives the suffix, read mode and beep the node expects.
        progress: prints one line per step.

    Returns:
        The settings read back at the new speed after the save.

    Raises:
        DeviceSetupError: naming the step that failed, after putting back what was there.
    """
    port = ScannerPort(url)
    wanted = ScannerSettings(
        TARGET_BAUD, mode_zone(profile.read_mode, profile.beep), OUTPUT_ZONE[profile.suffix]
    )
    try:
        progress.step("find", "finding the module's baud rate (settings read)")
        found_at, zones = find_baud(port, progress)
        before = ScannerSettings.from_zones(zones)
        progress.note(f"  found: {before.describe()}")
        state = _State(runs_at=found_at)
        try:
            after = _apply(port, wanted, state, progress)
        except DeviceSetupError as failed:
            progress.note(f"  FAILED at {failed.step}: {failed.reason}")
            restored = _restore(port, before, state, progress)
            raise DeviceSetupError(failed.step, f"{failed.reason}; {restored}") from None
        progress.note(f"  done: {after.describe()}, saved to flash")
        return after
    finally:
        port.close()


@dataclass
class _State:
    """What a rollback must know: the speed the module runs at now, and whether flash changed."""

    runs_at: int
    saved: bool = False


def _apply(
    port: ScannerPort, wanted: ScannerSettings, state: _State, progress: Progress
) -> ScannerSettings:
    suffix, mode = suffix_of_zone(wanted.output), read_mode_of_zone(wanted.mode)
    progress.step("suffix", f"suffix {suffix} (zone 0x0060 = {wanted.output:#04x})")
    port.write("suffix", write_command(ZONE_OUTPUT, bytes([wanted.output])))
    progress.step("mode", f"read mode {mode} (zone 0x0000 = {wanted.mode:#04x})")
    port.write("mode", write_command(ZONE_MODE, bytes([wanted.mode])))
    progress.step("baud", f"{wanted.baud} baud (zone 0x002A), then reopen at it")
    port.write("baud", baud_command(wanted.baud))
    state.runs_at = wanted.baud
    port.open(wanted.baud)
    progress.step("save", "save to flash")
    reply = port.ask(SAVE)
    state.saved = reply is None or reply.write_ok  # unanswered: it may have been written
    check("save", reply, wanted.baud)
    progress.step("verify", f"reopen at {wanted.baud} and read the settings back")
    port.open(wanted.baud)
    after = _read_back(port, "verify")
    if after != wanted:
        raise DeviceSetupError("verify", f"read back {after.describe()}")
    return after


def baud_command(rate: int) -> bytes:
    """The zone 0x002A-0x002B write that sets `rate` (the module answers at the old one)."""
    return write_command(ZONE_BAUD, BAUD_DIVISORS[rate].to_bytes(2, "little"))


def _read_back(port: ScannerPort, step: str) -> ScannerSettings:
    zones = port.read_zones()
    if zones is None:
        raise DeviceSetupError(step, f"no answer to the settings read at {port.baud} baud")
    return ScannerSettings.from_zones(zones)


def _restore(port: ScannerPort, before: ScannerSettings, state: _State, progress: Progress) -> str:
    """Put back the settings and speed found; a sentence saying how that went."""
    progress.step("restore", f"restoring {before.describe()}")
    runs_at, saved = state.runs_at, state.saved
    try:
        port.open(runs_at)
        zones = port.read_zones()
        if zones is None and runs_at != before.baud:
            runs_at = before.baud  # the baud write never took: the module is where it was
            port.open(runs_at)
            zones = port.read_zones()
        if zones is None:
            raise DeviceSetupError("restore", f"no answer at {runs_at} baud")
        now = ScannerSettings.from_zones(zones)
        # Only what differs: a zone whose write was refused still holds what was there.
        if now.output != before.output:
            port.write("restore", write_command(ZONE_OUTPUT, bytes([before.output])))
        if now.mode != before.mode:
            port.write("restore", write_command(ZONE_MODE, bytes([before.mode])))
        if runs_at != before.baud:
            port.write("restore", baud_command(before.baud))
            port.open(before.baud)
        if saved:
            port.write("restore", SAVE)
        now = _read_back(port, "restore")
    except DeviceSetupError as exc:
        return (
            f"restoring failed too ({exc.reason}): the module may run at {runs_at} or "
            f"{before.baud} baud; run scanner-setup again or power-cycle it"
        )
    if now != before:
        return f"restore read back {now.describe()}, not what was found"
    progress.note(f"  restored: {now.describe()}")
    return f"rolled back to {before.describe()}"
