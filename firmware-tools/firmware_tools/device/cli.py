"""`gatepost fw device scanner-setup|thermo-calibrate|modbus-scan|modbus-address`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from firmware_tools.device.common import DeviceSetupError, Progress

GUIDE = "docs/device-setup.md"
RANGE_MAX = 247  # Modbus RTU unicast ids


def add_device(tools: Any) -> None:
    """Register `gatepost fw device …` under the fw tools."""
    device = tools.add_parser(
        "device",
        help="set up the modules a node reads: scanner, thermometer, Modbus sensors",
        description=f"Talk to one module on its serial port, one step per line; a failed "
        f"step puts back what was there and says which step failed. Guide: {GUIDE}.",
    )
    actions = device.add_subparsers(dest="action", required=True, metavar="ACTION")

    scanner = actions.add_parser(
        "scanner-setup",
        help="find a GM65's baud, store 115200, CR suffix and the read mode in its flash",
        description="Try the GM65's rates with a settings read, write the profile's suffix "
        "and read mode and 115200 baud, save to flash, reopen at 115200 and read back. Then "
        "set `baudrate: 115200` and `configure_on_start` as you like in the node's config.",
    )
    scanner.add_argument("port", metavar="PORT", help="serial port, e.g. /dev/gatepost-scanner")
    scanner.add_argument(
        "--profile", default="gm65-scanner",
        help="profile giving suffix, read mode and beep (hardware/profiles name or a path)",
    )  # fmt: skip
    scanner.set_defaults(run=_run_scanner)

    thermo = actions.add_parser(
        "thermo-calibrate",
        help="measure the IR thermometer against a blackbody and store its offset",
        description="Average N object temperatures with a blackbody calibrator in front of "
        "the sensor, refuse an unsteady reference, and write offset = reference - mean to "
        "devices.thermometer.settings.object_offset_c in --config.",
    )
    thermo.add_argument("port", metavar="PORT", help="serial port, e.g. /dev/gatepost-thermometer")
    thermo.add_argument(
        "--reference", type=_bounded(float, 20.0, 50.0, "--reference"), required=True,
        help="the blackbody's set temperature in °C (20-50)",
    )  # fmt: skip
    thermo.add_argument(
        "--samples", type=_bounded(int, 5, 500, "--samples"), default=20,
        help="frames to average (5-500, default 20; about 14 a second)",
    )  # fmt: skip
    thermo.add_argument("--baud", type=int, choices=(9600, 115200), default=9600)
    thermo.add_argument("--config", type=Path, help="the gate's config file to store it in")
    thermo.set_defaults(run=_run_thermo)

    scan = actions.add_parser(
        "modbus-scan",
        help="find the Modbus sensors on an RS485 bus: ids, speed, parity",
        description="Read holding registers 0x0101-0x0102 at every id, speed and parity "
        "given, one try each with a short timeout, and print what answered.",
    )
    scan.add_argument("port", metavar="PORT", help="serial port, e.g. /dev/gatepost-rs485")
    scan.add_argument("--bauds", type=_bauds, default="9600,19200,14400,4800,2400")
    scan.add_argument("--parities", type=_parities, default="N,E", help="of N, E, O")
    scan.add_argument("--ids", type=_ids, default=f"1-{RANGE_MAX}", help="e.g. 1-20 or 1,5,7")
    scan.add_argument(
        "--timeout", type=_bounded(float, 0.02, 2.0, "--timeout"), default=0.15,
        help="seconds one probe waits (0.02-2, default 0.15)",
    )  # fmt: skip
    scan.set_defaults(run=_run_scan)

    address = actions.add_parser(
        "modbus-address",
        help="give a sensor another slave id (and speed), checked free first",
        description="Refuse when --to already answers; write holding 0x0101 (and 0x0102 "
        "with --set-baud) at --from, then wait for it to answer at --to: the module takes a "
        "new id at power-up, so switch its power off and on when asked.",
    )
    address.add_argument("port", metavar="PORT", help="serial port, e.g. /dev/gatepost-rs485")
    address.add_argument("--from", dest="from_id", type=_slave_id, required=True)
    address.add_argument("--to", dest="to_id", type=_slave_id, required=True)
    address.add_argument("--baud", type=int, choices=(2400, 4800, 9600, 14400, 19200), default=9600)
    address.add_argument("--parity", choices=("N", "E", "O"), default="N")
    address.add_argument("--set-baud", type=int, choices=(9600, 14400, 19200))
    address.add_argument(
        "--wait", type=_bounded(float, 0.0, 600.0, "--wait"), default=60.0,
        help="seconds to wait for it at the new id (default 60)",
    )  # fmt: skip
    address.set_defaults(run=_run_address)


def _run_scanner(args: argparse.Namespace) -> int:
    from edge.configfile import PROFILES_DIR
    from edge.devices.registry import load_profile
    from edge.devices.scanner.profile import ScannerProfile
    from firmware_tools.device.scanner_setup import scanner_setup

    path = Path(args.profile)
    profile = load_profile(path if path.suffix else PROFILES_DIR / f"{args.profile}.yaml")
    if not isinstance(profile, ScannerProfile):
        return _fail(DeviceSetupError("profile", f"{args.profile} is no scanner profile"))
    return _run(lambda progress: scanner_setup(args.port, profile, progress))


def _run_thermo(args: argparse.Namespace) -> int:
    from firmware_tools.device.thermo_calibrate import OFFSET_KEY, thermo_calibrate

    def work(progress: Progress) -> None:
        result = thermo_calibrate(
            args.port, args.reference, args.samples, progress, baud=args.baud,
            config=args.config,
        )  # fmt: skip
        progress.note(
            f"devices.thermometer.settings.{OFFSET_KEY}: {result.offset_c:+.2f}"
            + (f" written to {args.config}" if args.config else " (not stored: no --config)")
        )
        # The file's offset takes effect when the node starts; a running gate takes it
        # signed, as its live `calibration` section (docs/config-push.md).
        progress.note(
            "to a running gate: gatepost fw config push NODE --site SITE --root-key ROOT.pem "
            f"--set calibration.thermometer_object_offset_c={result.offset_c:.2f}"
        )

    return _run(work)


def _run_scan(args: argparse.Namespace) -> int:
    from firmware_tools.device.modbus_setup import modbus_scan, table

    _quiet_pymodbus()

    def work(progress: Progress) -> None:
        found = modbus_scan(
            args.port, args.bauds, args.parities, args.ids, progress, timeout_s=args.timeout
        )
        progress.note(table(found) if found else "nothing answered")

    return _run(work)


def _run_address(args: argparse.Namespace) -> int:
    from firmware_tools.device.modbus_setup import Line, modbus_address

    _quiet_pymodbus()
    return _run(
        lambda progress: modbus_address(
            args.port, args.from_id, args.to_id, Line(args.baud, args.parity), progress,
            new_baud=args.set_baud, wait_s=args.wait,
        )
    )  # fmt: skip


def _run(work: Any) -> int:
    try:
        work(Progress(sys.stdout))
    except DeviceSetupError as exc:
        return _fail(exc)
    return 0


def _fail(exc: DeviceSetupError) -> int:
    print(f"error: {exc.step}: {exc.reason}", file=sys.stderr)
    return 1


def _quiet_pymodbus() -> None:
    # pymodbus logs every unanswered probe; a scan expects most of them.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _bounded(kind: type, low: float, high: float, name: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: {text!r} is no number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name}: {value} is outside {low:g}-{high:g}")
        return value

    return parse


def _slave_id(text: str) -> int:
    return int(_bounded(int, 1, RANGE_MAX, "slave id")(text))


def _ids(text: str) -> list[int]:
    """`1-247`, `1,5,7` or a mix, as a sorted list of distinct ids."""
    if len(text) > 1000:
        raise argparse.ArgumentTypeError("--ids: at most 1000 characters")
    ids: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        first, last = _slave_id(low), _slave_id(high or low)
        if first > last:
            raise argparse.ArgumentTypeError(f"--ids: {part!r} runs backwards")
        ids.update(range(first, last + 1))
    return sorted(ids)


def _bauds(text: str) -> list[int]:
    rates = (1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200)
    if text.count(",") >= 10:
        raise argparse.ArgumentTypeError("--bauds: at most 10 rates")
    out: list[int] = []
    for part in text.split(","):
        if not part.strip().isdigit() or int(part) not in rates:
            raise argparse.ArgumentTypeError(f"--bauds: {part!r} is not one of {rates}")
        out.append(int(part))
    return out


def _parities(text: str) -> list[str]:
    out = [p.strip().upper() for p in text.split(",")]
    if len(out) > 3:
        raise argparse.ArgumentTypeError("--parities: at most N, E and O")
    if bad := [p for p in out if p not in ("N", "E", "O")]:
        raise argparse.ArgumentTypeError(f"--parities: {', '.join(bad)}: give N, E or O")
    return out
