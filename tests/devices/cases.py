"""One contract case per serial part: what the shared driver tests need to know about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.devices.base import DeviceProfile, Reading
from edge.devices.link import DriverFactory
from simulators.devices.base import SimulatedPart


@dataclass(frozen=True)
class ContractCase:
    """A part as the shared contract tests (test_driver_contract.py) drive it.

    Attributes:
        name: the part, as in test ids.
        profile: its profile with fault timings short enough for a test.
        driver: builds its driver on an open stream.
        simulator: builds its (not yet started) simulator with the pty symlink at the path.
        provoke: makes the running simulator produce one valid reading.
        expected: true for the reading `provoke` should produce.
    """

    name: str
    profile: DeviceProfile
    driver: DriverFactory
    simulator: Callable[[Path], SimulatedPart]
    provoke: Callable[[SimulatedPart], None]
    expected: Callable[[Reading], bool]

    @property
    def streaming(self) -> bool:
        return self.profile.silence_fault_s is not None

    @property
    def checks_stuck(self) -> bool:
        return self.profile.stuck_after_s is not None
