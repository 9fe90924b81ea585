"""DeviceLink with a scripted driver on a test clock: revive while in timeout, failed scans."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
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
from edge.devices.link import REVIVE_EVERY_S, DeviceLink, FaultChange, take_realtime
from edge.devices.thermometer.profile import ThermometerProfile

POLL_S = 0.1  # test-clock seconds each poll takes
PROFILE = ThermometerProfile(silence_fault_s=3.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedDriver:
    """A part whose poll at test time t returns `script(t)`; stops the link at `end`."""

    part: ClassVar[str] = "scripted"

    def __init__(
        self, clock: Clock, stop: threading.Event, end: float,
        script: Callable[[float], list[Reading | FrameFault | RawSample]],
    ) -> None:  # fmt: skip
        self.clock, self.stop, self.end, self.script = clock, stop, end, script
        self.revived: list[float] = []

    def setup(self) -> None:
        pass

    def poll(self) -> Sequence[Reading | FrameFault | RawSample]:
        self.clock.now = round(self.clock.now + POLL_S, 6)
        if self.clock.now >= self.end:
            self.stop.set()
        return self.script(self.clock.now)

    def revive(self) -> None:
        self.revived.append(self.clock.now)

    def stuck_key(self, reading: Reading) -> object | None:
        return None


def run_link(
    end: float, script: Callable[[float], list[Reading | FrameFault | RawSample]]
) -> tuple[ScriptedDriver, list[Reading], list[FaultChange]]:
    clock, stop = Clock(), threading.Event()
    driver = ScriptedDriver(clock, stop, end, script)
    readings: list[Reading] = []
    changes: list[FaultChange] = []

    def factory(stream: SerialStream, profile: DeviceProfile) -> Driver:
        return driver

    link = DeviceLink(
        "thermometer", "loop://", PROFILE, factory,
        on_reading=readings.append, on_fault=changes.append, clock=clock,
    )  # fmt: skip
    link.run(stop)
    return driver, readings, changes


def test_revive_while_in_timeout__valid() -> None:
    # Silent from the start until t = 7.5 (a module waiting for its start command).
    driver, _, changes = run_link(12.0, lambda t: [RawSample(t)] if t >= 7.5 else [])
    assert [(c.fault, c.state) for c in changes] == [("timeout", "raised"), ("timeout", "cleared")]
    # From the timeout (3 s of silence) once a second, and not after readings returned.
    assert driver.revived == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert REVIVE_EVERY_S == 1.0


def test_no_revive_while_alive__valid() -> None:
    driver, _, changes = run_link(10.0, lambda t: [RawSample(t)])
    assert driver.revived == []
    assert changes == []


def test_scan_failed_reaches_the_node_and_is_no_sign_of_life() -> None:
    failed = ScanFailed("scanner", 1.0, "12 bytes without a suffix")
    driver, readings, changes = run_link(5.0, lambda t: [failed] if t in (1.0, 3.5) else [])
    assert readings == [failed, failed]
    # A part that only ever sent fragments is as silent as one that sent nothing.
    assert [(c.fault, c.state) for c in changes] == [("timeout", "raised")]
    assert driver.revived == [3.0, 4.0, 5.0]


def _in_a_thread(priority: int) -> tuple[bool, int, int]:
    """take_realtime in a thread of its own: (taken, its policy, its priority)."""
    seen: list[tuple[bool, int, int]] = []

    def run() -> None:
        taken = take_realtime("scanner", priority)
        seen.append((taken, os.sched_getscheduler(0), os.sched_getparam(0).sched_priority))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seen[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_RR needs root or the unit's LimitRTPRIO")
def test_realtime__the_thread_takes_sched_rr_and_only_it() -> None:
    assert _in_a_thread(10) == (True, os.SCHED_RR, 10)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's thread is untouched


def test_realtime__refused_is_said_and_the_thread_reads_on_as_a_normal_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.devices.link"):
        assert _in_a_thread(100) == (False, os.SCHED_OTHER, 0)  # past the kernel's 99
    assert "scanner: no real-time priority 100" in caplog.text
