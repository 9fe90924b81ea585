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
# A code as the gate reads it: a signed health code of 351 characters (simulators/site.py).
REAL_CODE = (
    "HC1:NCFQA0Z00FFWTWGSLKC 4-89:8L..QK/C 0SS8BV%K.PD0$CL2E+8DAECAWEWY07OD7QLFN08OD *VR-0Q "
    "J+GJA67D*55L1P%A6I0NW7/E7V50T30LVC%FF/ C+8DAECAWE9X5V3E% CUPC*VD6%E* CZKE1$CN3DZ$ECKDZPCF"
    "6B4FJE9S0D64+OXCTB.2 NTSKQP:QJZA7VNMZJQ9O-F1KWBKCCFVCBEC* C.1T7BK7-S9DM5982ABD9QU33 GQ-K"
    "SHHUXC25SDYUSOD08+H9B1*ORR-RUK9XN3PP42%KI268OJH8TQQ3+A8E+DXV7FKDONG8C5 MB+94QSAXJDV4GI0"
)
PROFILE = ScannerProfile(clean_after_s=0.5, settings_check_s=0.3)


def simulator(path: Path) -> SimulatedPart:
    # Saved with CRLF and manual mode: only a setup that writes the profile's CR and
    # sensing mode makes codes readable, after every open and after every restart.
    return SimulatedScanner(path, PROFILE.baudrate, suffix="crlf", read_mode="manual")


def provoke(part: SimulatedPart) -> None:
    assert isinstance(part, SimulatedScanner)
    part.scan(CODE)


def expected(reading: Reading) -> bool:
    return isinstance(reading, CodeScan) and reading.text == CODE and reading.source == "scanner"


CASE = ContractCase("gm65-scanner", PROFILE, DRIVERS["gm65-scanner"], simulator, provoke, expected)
