"""A serial part kept alive: opened by URL, reopened after an unplug, watched for faults.

One thread per part. Readings go to `on_reading`; faults are raised and cleared
through `on_fault` exactly once per change, so the node can turn each change into
one device-fault event.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import serial

from edge.devices.base import (
    DeviceError,
    DeviceProfile,
    Driver,
    FrameFault,
    RawSample,
    Reading,
    ScanFailed,
    SerialStream,
)

log = logging.getLogger(__name__)

FaultState = Literal["raised", "cleared"]
DeviceState = Literal["ok", "fault", "unplugged", "disabled"]
# How long one read may block when nothing comes. Bytes that arrive end the wait at once
# (drivers read what is waiting), so this sets only the idle wake-ups and the stop delay.
READ_TIMEOUT_S = 0.1
REOPEN_EVERY_S = 1.0
# While a part is in timeout its driver's revive() runs this often: a module that
# restarted with the port open may wait for its start command (a few bytes a second
# cost the line nothing, and a part that is truly gone ignores them).
REVIVE_EVERY_S = 1.0


@dataclass(frozen=True)
class FaultChange:
    """A fault of one device starting or ending."""

    device: str
    fault: str
    state: FaultState
    detail: str | None = None


DriverFactory = Callable[[SerialStream, DeviceProfile], Driver]


def take_realtime(name: str, priority: int) -> bool:
    """Make the calling thread SCHED_RR at `priority`, ahead of every normal thread of the
    Pi (the kiosk browser's too); False, logged, where the system does not allow it (the
    unit's LimitRTPRIO, or root). Only threads that sleep on a port between readings may:
    a busy real-time thread starves the rest of the Pi."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
    except (OSError, AttributeError) as exc:  # AttributeError: not Linux
        log.warning("%s: no real-time priority %d (%s): it shares the cores with the rest",
                    name, priority, exc)  # fmt: skip
        return False
    return True


class SupervisedDevice:
    """A device watched on its own thread: its faults, each change reported once.

    Args:
        name: the device's name in events and status (scanner, thermometer…).
        on_fault: called on the device's thread for every fault change.
    """

    def __init__(self, name: str, on_fault: Callable[[FaultChange], None]) -> None:
        self.name = name
        self._on_fault = on_fault
        self.faults: dict[str, str | None] = {}
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> DeviceState:
        if "unplugged" in self.faults:
            return "unplugged"
        return "fault" if self.faults else "ok"

    def start(self, stop: threading.Event, *, realtime_priority: int = 0) -> None:
        """Read on a thread of its own; with `realtime_priority`, a SCHED_RR one."""

        def run() -> None:
            if realtime_priority:
                take_realtime(self.name, realtime_priority)
            self.run(stop)

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()

    def join(self, timeout_s: float = 5.0) -> None:
        if self._thread:
            self._thread.join(timeout_s)

    def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def _raise(self, fault: str, detail: str | None) -> None:
        if fault in self.faults:
            return
        self.faults[fault] = detail
        log.warning("%s: %s: %s", self.name, fault, detail)
        self._on_fault(FaultChange(self.name, fault, "raised", detail))

    def _clear(self, fault: str) -> None:
        if self.faults.pop(fault, "absent") == "absent":
            return
        log.info("%s: %s cleared", self.name, fault)
        self._on_fault(FaultChange(self.name, fault, "cleared"))


class DeviceLink(SupervisedDevice):
    """Keeps one serial part open and its faults known.

    Args:
        name: the device's name in events and status (scanner, thermometer…).
        url: anything `serial.serial_for_url` opens.
        profile: the part's profile; baud rate and fault timings come from it.
        driver: builds the part's driver on an open stream.
        on_reading: called on the link's thread for every reading.
        on_fault: called on the link's thread for every fault change.
        clock: monotonic seconds; a parameter so tests can drive time.
    """

    def __init__(
        self, name: str, url: str, profile: DeviceProfile, driver: DriverFactory, *,
        on_reading: Callable[[Reading], None], on_fault: Callable[[FaultChange], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        super().__init__(name, on_fault)
        self.url = url
        self.profile = profile
        self._driver_factory = driver
        self._on_reading = on_reading
        self._clock = clock
        self._last_good = clock()
        self._last_frame_fault = 0.0
        self._stuck_value: object | None = None
        self._stuck_since = 0.0
        self._stuck_seen = 0.0
        self._last_revive = float("-inf")
        self._new_profile = threading.Event()

    def use_profile(self, profile: DeviceProfile) -> None:
        """Read with `profile` from now on (a live calibration): the driver is set up again."""
        self.profile = profile
        self._new_profile.set()

    def run(self, stop: threading.Event) -> None:
        """Open, set up and read the part until `stop` is set, reopening after every loss."""
        while not stop.is_set():
            try:
                port = serial.serial_for_url(
                    self.url, baudrate=self.profile.baudrate, timeout=READ_TIMEOUT_S
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                self._raise("unplugged", f"cannot open {self.url}: {exc}")
                stop.wait(REOPEN_EVERY_S)
                continue
            try:
                with port:
                    self._serve(port, stop)
            except (serial.SerialException, OSError) as exc:
                self._raise("unplugged", f"{self.url}: {exc}")
                stop.wait(REOPEN_EVERY_S)
            except DeviceError as exc:
                self._raise("setup", str(exc))
                stop.wait(REOPEN_EVERY_S)

    def _serve(self, port: SerialStream, stop: threading.Event) -> None:
        driver = self._driver_factory(port, self.profile)
        driver.setup()
        self._clear("unplugged")
        self._clear("setup")
        self._last_good = self._clock()
        while not stop.is_set():
            if self._new_profile.is_set():
                self._new_profile.clear()
                driver = self._driver_factory(port, self.profile)
                driver.setup()
            items = driver.poll()
            for item in items:
                if isinstance(item, FrameFault):
                    self._last_frame_fault = self._clock()
                    self._raise(item.kind, item.detail)
                elif isinstance(item, RawSample):
                    self._alive(item.key)
                elif isinstance(item, ScanFailed):
                    self._on_reading(item)  # the person must scan again; no sign of life
                else:
                    self._good(driver, item)
            self.check_timers()
            self._revive(driver)

    def _revive(self, driver: Driver) -> None:
        now = self._clock()
        if "timeout" in self.faults and now - self._last_revive >= REVIVE_EVERY_S:
            self._last_revive = now
            driver.revive()

    def _good(self, driver: Driver, reading: Reading) -> None:
        self._alive(driver.stuck_key(reading))
        self._on_reading(reading)

    def _alive(self, key: object | None) -> None:
        now = self._clock()
        self._last_good = now
        self._clear("timeout")
        if key is None or key != self._stuck_value:
            self._stuck_value, self._stuck_since = key, now
            self._clear("stuck")
        self._stuck_seen = now

    def check_timers(self) -> None:
        """Raise or clear the faults that depend on time passing (called after every poll)."""
        now, profile = self._clock(), self.profile
        if now - self._last_frame_fault >= profile.clean_after_s:
            for kind in ("garbage", "checksum", "overflow"):
                self._clear(kind)
        if profile.silence_fault_s and now - self._last_good >= profile.silence_fault_s:
            self._raise("timeout", f"nothing valid for {now - self._last_good:.0f} s")
        # Stuck means the same value kept arriving, measured up to the last time it was
        # seen: a part that went silent is in timeout, not stuck.
        same_for = self._stuck_seen - self._stuck_since
        if (
            profile.stuck_after_s
            and self._stuck_value is not None
            and same_for >= profile.stuck_after_s
        ):
            self._raise("stuck", f"same value {self._stuck_value} for {same_for:.0f} s")
