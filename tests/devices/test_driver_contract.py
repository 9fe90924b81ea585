"""The contract every serial part keeps: a real DeviceLink against its simulator over a pty."""

# Each case (tests/devices/case_*.py) says how to build the part and provoke a reading;
# adding a part is one more entry in CASES. Tests that do not apply to a part are
# skipped with the reason, never passed silently.

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from edge.devices.base import (
    DeviceProfile,
    Driver,
    FrameFault,
    RawSample,
    Reading,
    ScanFailed,
    SerialStream,
)
from edge.devices.link import DeviceLink, FaultChange
from simulators.devices.base import SimulatedPart
from tests.devices import case_scanner, case_thermal_array, case_thermometer
from tests.devices.cases import ContractCase

CASES: list[ContractCase] = [case_scanner.CASE, case_thermometer.CASE, case_thermal_array.CASE]

# How late a fault callback may be recorded after the link's own timestamp.
CALLBACK_ALLOWANCE_S = 0.05
STOP_WITHIN_S = 1.0
FRAME_FAULTS = ("garbage", "checksum", "overflow")


class AnnouncingDriver:
    """The part's own driver, telling the test when setup() succeeded and what poll() saw."""

    part: ClassVar[str] = "announcing"

    def __init__(self, driver: Driver, bench: Bench) -> None:
        self._driver = driver
        self._bench = bench

    def setup(self) -> None:
        self._driver.setup()
        self._bench.ready.set()

    def poll(self) -> Sequence[Reading | FrameFault | RawSample]:
        items = self._driver.poll()
        self._bench.on_valid(sum(not isinstance(item, FrameFault) for item in items))
        return items

    def revive(self) -> None:
        self._driver.revive()

    def stuck_key(self, reading: Reading) -> object | None:
        return self._driver.stuck_key(reading)


@dataclass
class Bench:
    """A running simulator and link, with what the link reported, in arrival order."""

    case: ContractCase
    part: SimulatedPart
    ready: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    readings: list[Reading] = field(default_factory=list)
    changes: list[tuple[float, FaultChange]] = field(default_factory=list)
    news: threading.Condition = field(default_factory=threading.Condition)
    valid_items: int = 0  # readings and raw samples the driver returned

    def on_valid(self, count: int) -> None:
        with self.news:
            self.valid_items += count
            self.news.notify_all()

    def on_reading(self, reading: Reading) -> None:
        with self.news:
            self.readings.append(reading)
            self.news.notify_all()

    def on_fault(self, change: FaultChange) -> None:
        with self.news:
            self.changes.append((time.monotonic(), change))
            self.news.notify_all()

    def driver(self, stream: SerialStream, profile: DeviceProfile) -> Driver:
        return AnnouncingDriver(self.case.driver(stream, profile), self)

    def wait(self, what: str, condition: Callable[[], bool], timeout_s: float) -> None:
        with self.news:
            if not self.news.wait_for(condition, timeout_s):
                raise AssertionError(
                    f"{self.case.name}: no {what} within {timeout_s} s; "
                    f"faults {self.fault_log()}, readings {self.readings}"
                )

    def times(self, fault: str, state: str) -> list[float]:
        with self.news:
            return [at for at, c in self.changes if c.fault == fault and c.state == state]

    def fault_log(self) -> list[str]:
        return [f"{c.fault} {c.state}" for _, c in self.changes]

    def raised(self, *faults: str) -> Callable[[], bool]:
        return lambda: any(c.fault in faults and c.state == "raised" for _, c in self.changes)

    def cleared(self, fault: str) -> Callable[[], bool]:
        return lambda: bool(self.times(fault, "cleared"))

    def all_cleared(self) -> bool:
        """Every fault ever raised has been cleared since (the link reports each change)."""
        last = {change.fault: change.state for _, change in self.changes}
        return all(state == "cleared" for state in last.values())

    def provoke_until_expected(self, deadline_s: float = 4.0, attempt_s: float = 1.0) -> Reading:
        """Provoke, again after each `attempt_s` without the expected reading; that reading."""
        start, end = len(self.readings), time.monotonic() + deadline_s
        while time.monotonic() < end:
            self.case.provoke(self.part)
            with self.news:
                if self.news.wait_for(
                    lambda: any(map(self.case.expected, self.readings[start:])),
                    min(attempt_s, max(0.0, end - time.monotonic())),
                ):
                    return next(r for r in self.readings[start:] if self.case.expected(r))
        raise AssertionError(f"{self.case.name}: no expected reading; got {self.readings[start:]}")


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    """The part's simulator and a DeviceLink on its own thread, set up and ready."""
    case: ContractCase = request.param
    part = case.simulator(tmp_path / case.name)
    bench = Bench(case, part)
    link = DeviceLink(
        case.name, str(part.path), case.profile, bench.driver,
        on_reading=bench.on_reading, on_fault=bench.on_fault,
    )  # fmt: skip
    with part:
        link.start(bench.stop)
        try:
            assert bench.ready.wait(3), f"{case.name}: setup did not succeed: {bench.fault_log()}"
            yield bench
        finally:
            stopped_at = time.monotonic()
            bench.stop.set()
            link.join(STOP_WITHIN_S + 1)
            took = time.monotonic() - stopped_at
    assert took < STOP_WITHIN_S, f"{case.name}: link took {took:.2f} s to stop"


def test_valid_reading_arrives(bench: Bench) -> None:
    bench.case.provoke(bench.part)
    bench.wait("reading", lambda: bool(bench.readings), 2.0)
    assert bench.case.expected(bench.readings[0]), bench.readings
    time.sleep(0.2)  # one provocation is one reading, not two
    assert len(bench.readings) == 1, bench.readings
    assert bench.changes == []


def test_garbage_before_frame(bench: Bench) -> None:
    bench.part.faults.garbage = 24
    bench.provoke_until_expected()
    bench.wait("garbage fault", bench.raised("garbage", "checksum"), 1.0)
    kind = next(c.fault for _, c in bench.changes if c.state == "raised")
    bench.wait(f"{kind} cleared", bench.cleared(kind), bench.case.profile.clean_after_s + 1.5)
    clean_for = bench.times(kind, "cleared")[0] - bench.times(kind, "raised")[0]
    # The link times the clean spell from the bad frame itself; the test sees the raise a
    # moment later (its callback runs after the link's timestamp), hence the allowance.
    assert clean_for >= bench.case.profile.clean_after_s - CALLBACK_ALLOWANCE_S


def test_split_frames(bench: Bench) -> None:
    bench.part.faults.split_frames = True
    bench.provoke_until_expected()
    assert bench.changes == []


def test_corrupt_frame(bench: Bench) -> None:
    bench.part.faults.corrupt_next = 1
    bench.provoke_until_expected()
    bench.wait("frame fault", bench.raised(*FRAME_FAULTS), 1.0)
    wrong = [r for r in bench.readings if not bench.case.expected(r)]
    assert wrong == []


def test_unplug_and_replug(bench: Bench) -> None:
    bench.part.unplug()
    bench.wait("unplugged fault", bench.raised("unplugged"), 1.5)
    bench.ready.clear()
    bench.part.plug()
    bench.wait("unplugged cleared", bench.cleared("unplugged"), 3.0)
    assert bench.ready.is_set()  # setup ran again on the new port
    bench.provoke_until_expected()


def test_silent_part(bench: Bench) -> None:
    if bench.case.streaming:  # silent after it spoke, so there is a last value to compare
        bench.wait("valid frames", lambda: bench.valid_items >= 3, 2.0)
    began = time.monotonic()
    bench.part.faults.silent = True
    silence_s = bench.case.profile.silence_fault_s
    if silence_s is None:
        time.sleep(0.6)  # a scanner nobody uses is quiet, and that is fine
        assert bench.changes == []
        return  # and the fixture checks that the link still stops within 1 s
    bench.wait("timeout fault", bench.raised("timeout"), silence_s + 1.0)
    # Not before the silence lasted (less a frame that was already on the wire).
    assert bench.times("timeout", "raised")[0] - began >= silence_s - 0.05
    stuck_after_s = bench.case.profile.stuck_after_s
    if stuck_after_s is not None:
        time.sleep(max(0.0, began + stuck_after_s + 0.3 - time.monotonic()))
    bench.part.faults.silent = False
    bench.wait("timeout cleared", bench.cleared("timeout"), 1.0)
    # Silent past stuck_after_s is still no stuck value: nothing arrived to be the same.
    assert bench.fault_log() == ["timeout raised", "timeout cleared"]


def test_stuck_value(bench: Bench) -> None:
    stuck_after_s = bench.case.profile.stuck_after_s
    if stuck_after_s is None:
        pytest.skip(f"{bench.case.name} has no stuck check: the same value twice is normal")
    began = time.monotonic()
    bench.part.faults.stuck = True
    bench.wait("stuck fault", bench.raised("stuck"), stuck_after_s + 1.5)
    # The frame sent just before the fault may already carry the value that then sticks.
    one_frame = bench.part.interval_s or 0.0
    assert bench.times("stuck", "raised")[0] - began >= stuck_after_s - one_frame
    bench.part.faults.stuck = False
    bench.wait("stuck cleared", bench.cleared("stuck"), 1.0)
    assert "timeout raised" not in bench.fault_log()


def test_slow_part(bench: Bench) -> None:
    if not bench.case.streaming:
        pytest.skip(f"{bench.case.name} does not stream: slow_factor stretches nothing")
    bench.part.faults.slow_factor = 2.0
    bench.provoke_until_expected()
    assert bench.changes == []


def test_pause_inside_a_frame(bench: Bench) -> None:
    # Issue 10, A.6: a pause longer than the scanner's gap inside one frame. A part with
    # fixed-length frames waits for the rest; a scanner drops the code, says so
    # (ScanFailed: the person scans again) and never passes a part of it on.
    bench.part.faults.split_frames = True
    bench.part.faults.split_pause_s = 0.3
    if bench.case.streaming:
        bench.provoke_until_expected()
        assert bench.changes == []
    else:
        bench.case.provoke(bench.part)
        bench.wait(
            "ScanFailed", lambda: any(isinstance(r, ScanFailed) for r in bench.readings), 1.0
        )
        bench.part.faults.split_frames = False
        bench.provoke_until_expected()
    wrong = [r for r in bench.readings if not (isinstance(r, ScanFailed) or bench.case.expected(r))]
    assert wrong == []


def test_power_cycle_with_port_open(bench: Bench) -> None:
    # Issue 10, A.4 and A.5: the module loses power and restarts with its saved settings
    # while the USB-serial adapter keeps the port open, so the node sees no unplug. It
    # must come back into service by itself, every fault raised on the way cleared.
    bench.part.faults.power_cycle = True
    deadline = time.monotonic() + bench.part.power_up_s + 1.0
    while bench.part.faults.power_cycle:
        assert time.monotonic() < deadline, f"{bench.case.name}: simulator did not restart"
        time.sleep(0.02)
    reading = bench.provoke_until_expected(deadline_s=8.0)
    assert bench.case.expected(reading)
    bench.wait("every fault cleared", bench.all_cleared, 3.0)
