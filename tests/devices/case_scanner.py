"""The GM65 scanner as the shared driver contract tests drive it."""

from __future__ import annotations

from pathlib import Path

from edge.devices.base import CodeScan, Reading
from edge.devices.registry import DRIVERS
from edge.devices.scanner.profile import ScannerProfile
from simulators.devices.base import SimulatedPart
from simulators.devices.scanner import SimulatedScanner
from tests.devices.cases import ContractCase

CODE = "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9D-ZC1JU3GMOGDPQE.4CB2"
PROFILE = ScannerProfile(clean_after_s=0.5)


def simulator(path: Path) -> SimulatedPart:
    # Shipped sending CRLF: only a setup that writes the profile's CR makes codes readable.
    return SimulatedScanner(path, PROFILE.baudrate, suffix="crlf")


def provoke(part: SimulatedPart) -> None:
    assert isinstance(part, SimulatedScanner)
    part.scan(CODE)


def expected(reading: Reading) -> bool:
    return isinstance(reading, CodeScan) and reading.text == CODE and reading.source == "scanner"


CASE = ContractCase("gm65-scanner", PROFILE, DRIVERS["gm65-scanner"], simulator, provoke, expected)
