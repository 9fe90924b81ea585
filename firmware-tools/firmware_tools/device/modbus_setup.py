"""`fw device modbus-scan` and `modbus-address`: find XY-MD02 sensors, change an id or speed."""

# Sequences (hardware/protocols/xy-md02-modbus.md, "Setup by firmware-tools"):
#   scan     at each speed and parity, each id: <id> 03 01 01 00 02 <crc> (read 0x0101-0x0102),
#            one try with a short timeout; an id that answers anything is listed
#   address  read <from> and <to> as above (<to> must stay silent), then
#            <from> 06 01 01 00 <to> <crc>    (the module echoes the request)
#            [<from> 06 01 02 <baud> <crc>]   (code or rate, as the module already holds it)
#            then wait for <to> to answer (the module takes them after a power cycle)
# pymodbus frames every request, as the depot node does (edge/devices/modbus/driver.py).

from __future__ import annotations

import termios
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import serial

from edge.devices.modbus.driver import ModbusBus, ModuleSettings
from edge.devices.modbus.profile import ModbusSensorProfile
from edge.devices.modbus.protocol import BAUD_CODE_REGISTER, BAUD_CODES, SLAVE_ID_REGISTER
from firmware_tools.device.common import DeviceSetupError, Progress

SCAN_BAUDS = (9600, 19200, 14400, 4800, 2400)  # as shipped first, then the XY-MD02's others
SCAN_PARITIES = ("N", "E")  # 8N1 as shipped; installers' buses are often 8E1
PROBE_TIMEOUT_S = 0.15  # a module answers within 20 ms; the adapter adds its latency


@dataclass(frozen=True)
class Line:
    """The line settings a bus (or one module on it) runs at."""

    baudrate: int
    parity: str = "N"

    def __str__(self) -> str:
        return f"{self.baudrate} 8{self.parity}1"

    def profile(self, timeout_s: float = PROBE_TIMEOUT_S) -> ModbusSensorProfile:
        return ModbusSensorProfile.model_validate(
            {"baudrate": self.baudrate, "parity": self.parity, "reply_timeout_s": timeout_s,
             "retries": 0}
        )  # fmt: skip


@dataclass(frozen=True)
class Found:
    """Something that answered at an id: a module's stored settings, or why not."""

    slave_id: int
    line: Line
    settings: ModuleSettings | None
    note: str = ""


def port_takes(url: str, line: Line) -> str | None:
    """Why the port cannot run these line settings (a pty refuses parity), or None."""
    try:
        with serial.serial_for_url(url, baudrate=line.baudrate, parity=line.parity) as port:
            fd = getattr(port, "fd", None)
            # A Linux pty takes PARENB without error and drops it (the next open then
            # fails with EINVAL): only the flags read back tell.
            if line.parity != "N" and fd is not None and not _has_parity(fd):
                return f"parity {line.parity} did not stick (a pty has none)"
            return None
    except (serial.SerialException, OSError, ValueError, termios.error) as exc:
        return str(exc)


def _has_parity(fd: int) -> bool:
    return bool(termios.tcgetattr(fd)[2] & termios.PARENB)


def probe(bus: ModbusBus, slave_id: int, line: Line) -> Found | None:
    """Read one id's holding 0x0101-0x0102; None when nothing answered in time."""
    answer = bus.read_settings(slave_id)
    if isinstance(answer, ModuleSettings):
        return Found(slave_id, line, answer)
    if answer.kind == "timeout":
        return None
    if answer.kind == "bus" and "no Modbus frame" not in answer.detail:
        raise DeviceSetupError("port", answer.detail)  # the port itself failed
    return Found(slave_id, line, None, f"{answer.kind}: {answer.detail}")


def modbus_scan(
    url: str, bauds: Sequence[int], parities: Sequence[str], ids: Sequence[int],
    progress: Progress, *, timeout_s: float = PROBE_TIMEOUT_S,
) -> list[Found]:  # fmt: skip
    """Ask every id at every speed and parity for its stored id and baud.

    Args:
        url: the RS485 adapter's serial URL.
        bauds, parities: the line settings to try, in order.
        ids: slave ids to ask, 1..247.
        progress: one line per line setting, one per find.
        timeout_s: how long one probe waits (no retries): a full scan of 247 ids at one
            setting takes at most 247 x this.

    Returns:
        Everything that answered, in the order found.
    """
    found: list[Found] = []
    for parity in parities:
        for baud in bauds:
            line = Line(baud, parity)
            progress.step(f"scan {line}", f"{line}: ids {ids[0]}-{ids[-1]}")
            refused = port_takes(url, line)
            if refused:
                progress.note(f"  skipped: the port refuses {line}: {refused}")
                continue
            with ModbusBus(url, line.profile(timeout_s)) as bus:
                for slave_id in ids:
                    hit = probe(bus, slave_id, line)
                    if hit is not None:
                        found.append(hit)
                        progress.note(f"  id {slave_id}: {describe(hit)}")
                    elif slave_id % 50 == 0:
                        progress.note(f"  … asked ids up to {slave_id}")
    return found


def describe(found: Found) -> str:
    if found.settings is None:
        return f"something answers, not as an XY-MD02 ({found.note})"
    stored = found.settings.baudrate
    return (
        f"XY-MD02 (holds id {found.settings.slave_id}, "
        f"baud {stored if stored else f'code {found.settings.baud_code}?'})"
    )


def table(found: Iterable[Found]) -> str:
    """The summary a technician copies into the depot's config."""
    rows = [("id", "baud", "parity", "stored id", "stored baud", "note")]
    for f in found:
        settings = f.settings
        rows.append((
            str(f.slave_id), str(f.line.baudrate), f.line.parity,
            str(settings.slave_id) if settings else "-",
            str(settings.baudrate or settings.baud_code) if settings else "-",
            f.note[:60],
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def write_register(url: str, line: Line, slave_id: int, register: int, value: int) -> None:
    """One function 06 write, checked against the module's echo.

    Raises:
        DeviceSetupError: no echo, or a Modbus exception answer.
    """
    from pymodbus.client import ModbusSerialClient
    from pymodbus.exceptions import ModbusException

    client = ModbusSerialClient(
        url, baudrate=line.baudrate, parity=line.parity, timeout=0.5, retries=1
    )
    step = f"write {register:#06x}"
    try:
        answer = client.write_register(register, value, device_id=slave_id)
    except ModbusException as exc:
        raise DeviceSetupError(step, f"id {slave_id} did not confirm {value}: {exc}") from None
    finally:
        client.close()  # type: ignore[no-untyped-call]  # pymodbus: untyped
    if answer.isError():
        raise DeviceSetupError(
            step, f"id {slave_id} refused {value} (exception code {answer.exception_code})"
        )


def modbus_address(
    url: str, from_id: int, to_id: int, line: Line, progress: Progress, *,
    new_baud: int | None = None, wait_s: float = 60.0,
) -> ModuleSettings:  # fmt: skip
    """Give the sensor at `from_id` the id `to_id` (and a new speed), and see it answer there.

    Args:
        url: the RS485 adapter's serial URL.
        from_id, to_id: its id now, and the one it gets (1..247).
        line: the bus's speed and parity now.
        progress: one line per step.
        new_baud: a speed to store too (9600, 14400 or 19200); None keeps it.
        wait_s: how long to wait for it at the new id (the technician cycles its power).

    Returns:
        What it holds, read at its new id.

    Raises:
        DeviceSetupError: the sensor does not answer, `to_id` is taken, a write is
            refused, or it never answers at the new id; written values are put back
            where the sensor still answers at its old id.
    """
    if from_id == to_id and new_baud is None:
        raise DeviceSetupError("probe", f"--from and --to are both {from_id}: nothing to change")
    progress.step("probe", f"id {from_id} and id {to_id} at {line}")
    with ModbusBus(url, line.profile()) as bus:
        current = probe(bus, from_id, line)
        taken = probe(bus, to_id, line) if to_id != from_id else None
    if current is None or current.settings is None:
        why = current.note if current else "no answer"
        raise DeviceSetupError("probe", f"no XY-MD02 at id {from_id} at {line} ({why})")
    if taken is not None:
        raise DeviceSetupError(
            "probe", f"id {to_id} is taken on the bus: {describe(taken)}; nothing written"
        )
    before = current.settings
    progress.note(f"  id {from_id}: {describe(current)}; id {to_id} is free")
    progress.step("write", f"holding 0x0101 = {to_id} at id {from_id}")
    write_register(url, line, from_id, SLAVE_ID_REGISTER, to_id)
    try:
        if new_baud is not None:
            value = _baud_value(before, new_baud)
            progress.step("write baud", f"holding 0x0102 = {value} ({new_baud}) at id {from_id}")
            write_register(url, line, from_id, BAUD_CODE_REGISTER, value)
        target = Line(new_baud or line.baudrate, line.parity)
        progress.step("verify", f"id {to_id} at {target}")
        after = _wait_for(url, to_id, target, wait_s, progress)
    except DeviceSetupError as failed:
        progress.note(f"  FAILED at {failed.step}: {failed.reason}")
        restored = _restore(url, from_id, line, before, progress)
        raise DeviceSetupError(failed.step, f"{failed.reason}; {restored}") from None
    progress.note(f"  done: id {to_id} answers, {describe(Found(to_id, target, after))}")
    return after


def _baud_value(before: ModuleSettings, baud: int) -> int:
    """The baud register value in the form the module already uses: a code or the rate."""
    codes = {rate: code for code, rate in BAUD_CODES.items()}
    if baud not in codes:
        raise DeviceSetupError("write baud", f"{baud} is no XY-MD02 speed ({sorted(codes)})")
    return codes[baud] if before.baud_code in BAUD_CODES else baud


def _wait_for(
    url: str, slave_id: int, line: Line, wait_s: float, progress: Progress
) -> ModuleSettings:
    deadline = time.monotonic() + wait_s
    asked = False
    with ModbusBus(url, line.profile()) as bus:
        while True:
            hit = probe(bus, slave_id, line)
            if hit is not None and hit.settings is not None:
                return hit.settings
            if time.monotonic() >= deadline:
                raise DeviceSetupError(
                    "verify", f"id {slave_id} did not answer at {line} within {wait_s:.0f} s"
                )
            if not asked:  # the XY-MD02 takes a new id or speed at power-up
                progress.note(
                    f"  not yet: switch the sensor's power off and on (断电重启); "
                    f"waiting up to {wait_s:.0f} s"
                )
                asked = True
            time.sleep(0.2)


def _restore(url: str, from_id: int, line: Line, before: ModuleSettings, progress: Progress) -> str:
    """Write back the id and baud found, if the sensor still answers at its old id."""
    progress.step("restore", f"holding 0x0101 = {from_id}, 0x0102 = {before.baud_code}")
    with ModbusBus(url, line.profile()) as bus:
        still = probe(bus, from_id, line)
    if still is None or still.settings is None:
        return (
            f"id {from_id} no longer answers at {line}: the sensor may hold its new "
            "settings; run modbus-scan to find it"
        )
    try:
        write_register(url, line, from_id, SLAVE_ID_REGISTER, before.slave_id)
        write_register(url, line, from_id, BAUD_CODE_REGISTER, before.baud_code)
    except DeviceSetupError as exc:
        return f"restoring failed too ({exc.reason}); run modbus-scan before using the bus"
    progress.note(f"  restored: id {from_id} holds id {before.slave_id}, baud {before.baud_code}")
    return f"rolled back: id {from_id} holds id {before.slave_id} and baud {before.baud_code}"
