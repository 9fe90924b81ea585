"""The scanner driver over a real pty: setup writes and checks settings, then codes come through."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from edge.devices.base import CodeScan, DeviceRefused, DeviceTimeout, FrameFault, RawSample, Reading
from edge.devices.scanner.driver import ScannerDriver
from edge.devices.scanner.profile import ScannerProfile
from edge.devices.scanner.protocol import (
    OUTPUT_ZONE,
    WRITE_OK,
    ZONE_MODE,
    ZONE_OUTPUT,
    Suffix,
    mode_zone,
)
from simulators.devices.scanner import SimulatedScanner
from simulators.pty import PseudoTerminal

CODE = "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9D-ZC1JU3GMOGDPQE.4CB2"


@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[SimulatedScanner]:
    # It starts out sending TAB, so only a working setup makes CR/CRLF/none codes readable.
    part = SimulatedScanner(tmp_path / "scanner", suffix="tab")
    with part:
        yield part


def open_port(path: Path | str) -> serial.Serial:
    return serial.serial_for_url(str(path), baudrate=9600, timeout=0.02)


def poll_for(
    driver: ScannerDriver, count: int, timeout_s: float = 1.0
) -> list[Reading | FrameFault | RawSample]:
    items: list[Reading | FrameFault | RawSample] = []
    deadline = time.monotonic() + timeout_s
    while len(items) < count and time.monotonic() < deadline:
        items += driver.poll()
    return items


@pytest.mark.parametrize("suffix", ["cr", "crlf", "tab", "none"])
def test_setup_then_scan__valid(scanner: SimulatedScanner, suffix: Suffix) -> None:
    profile = ScannerProfile(suffix=suffix, read_mode="sensing", beep=False)
    with open_port(scanner.path) as port:
        driver = ScannerDriver(port, profile)
        driver.setup()
        assert scanner.zones[ZONE_OUTPUT] == OUTPUT_ZONE[suffix]
        assert scanner.zones[ZONE_MODE] == mode_zone("sensing", beep=False)
        before = time.monotonic()
        scanner.scan(CODE)
        sent = time.monotonic()
        items = poll_for(driver, 1)
    assert [(i.text, i.source) for i in items if isinstance(i, CodeScan)] == [(CODE, "scanner")]
    assert len(items) == 1
    scan = items[0]
    assert isinstance(scan, CodeScan)
    # The time of the last byte, not of the poll that noticed it (a quiet gap for "none").
    assert before < scan.at <= sent + 0.05


@pytest.mark.parametrize(
    ("refuse", "silent", "error", "message"),
    [
        ({ZONE_OUTPUT}, False, DeviceRefused, "suffix"),
        ({ZONE_MODE}, False, DeviceRefused, "read mode"),
        (set(), True, DeviceTimeout, "did not answer the suffix"),
    ],
)
def test_setup__invalid(
    scanner: SimulatedScanner, refuse: set[int], silent: bool, error: type[Exception], message: str
) -> None:
    scanner.refuse = refuse
    scanner.faults.silent = silent
    profile = ScannerProfile(reply_timeout_s=0.3)
    with open_port(scanner.path) as port:
        started = time.monotonic()
        with pytest.raises(error, match=message):
            ScannerDriver(port, profile).setup()
        assert time.monotonic() - started < profile.reply_timeout_s + 0.2


def test_setup_without_configuring(scanner: SimulatedScanner) -> None:
    profile = ScannerProfile(suffix="tab", configure_on_start=False)
    with open_port(scanner.path) as port:
        driver = ScannerDriver(port, profile)
        driver.setup()
        scanner.scan(CODE)
        items = poll_for(driver, 1)
    assert scanner.commands == []
    assert [i.text for i in items if isinstance(i, CodeScan)] == [CODE]


def test_scans_during_setup_are_kept(pty_pair: PseudoTerminal) -> None:
    with open_port(pty_pair.path) as port:
        # Someone scans while the node is still setting the module up.
        pty_pair.write(b"A1\r" + WRITE_OK + b"B2\r" + WRITE_OK)
        driver = ScannerDriver(port, ScannerProfile())
        driver.setup()
        items = poll_for(driver, 2)
    assert [i.text for i in items if isinstance(i, CodeScan)] == ["A1", "B2"]


def test_faults_reach_poll(pty_pair: PseudoTerminal) -> None:
    profile = ScannerProfile(max_code_chars=16, configure_on_start=False)
    with open_port(pty_pair.path) as port:
        driver = ScannerDriver(port, profile)
        driver.setup()
        pty_pair.write(b"\x00\xffA1\r" + b"A" * 40 + b"\rB2\r" + WRITE_OK)
        items = poll_for(driver, 3)
    # The reply nobody asked for is logged, not passed on.
    assert [summary(i) for i in items] == ["fault:garbage", "fault:overflow", "B2"]


def summary(item: Reading | FrameFault | RawSample) -> str:
    if isinstance(item, FrameFault):
        return f"fault:{item.kind}"
    assert isinstance(item, CodeScan)
    return item.text


def test_stuck_key_is_none(pty_pair: PseudoTerminal) -> None:
    with open_port(pty_pair.path) as port:
        driver = ScannerDriver(port, ScannerProfile())
        assert driver.stuck_key(CodeScan(CODE, "scanner", 0.0)) is None
