"""One RS485 bus polled round by round: which readings are reported, and each sensor's fault."""

# Reporting, per sensor (docs/depot-node.md):
#   an ok reading is reported when it is the first since the start or since a fault, when
#   the temperature or humidity moved by at least its deadband from the last one reported,
#   or when max_interval_s passed since that one (or the clock stepped back past it);
#   a failed poll counts towards a fault: after `fault_after` in a row the sensor is in
#   fault (one device-fault raised), and a failed reading is reported when its status
#   differs from the last one reported or max_interval_s passed; fewer failures in a row
#   are a line glitch, neither reported nor raised. The next ok reading clears the fault.

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edge.contract.events import DepotReading
from edge.depot.config import BusSection, SensorSection
from edge.devices.modbus.driver import ModbusBus, SensorFault
from edge.devices.modbus.protocol import DepotReading as ModbusReading
from edge.devices.modbus.protocol import SensorFaultKind
from edge.fault_log import FaultLog

log = logging.getLogger(__name__)

ReadingStatus = Literal["ok", "timeout", "crc", "range"]
# The contract's reading status of each way a poll fails: `timeout` is any poll without a
# usable answer from the asked sensor (none, another slave id's, a Modbus refusal, noise,
# a failed port); the device-fault event names the exact kind.
STATUS_OF: dict[SensorFaultKind, ReadingStatus] = {
    "timeout": "timeout", "wrong-slave": "timeout", "refused": "timeout", "bus": "timeout",
    "crc": "crc", "out-of-range": "range",
}  # fmt: skip
# Readings carry one decimal: differences are compared at that precision, not in binary.
DIGITS = 3


@dataclass(frozen=True)
class FaultStep:
    """A sensor's fault raised or cleared by one poll."""

    state: Literal["raised", "cleared"]
    fault: str
    detail: str | None


@dataclass(frozen=True)
class Step:
    """What one poll of a sensor gives: a reading to report, a fault change, both or neither."""

    reading: DepotReading | None = None
    fault: FaultStep | None = None


class SensorTrack:
    """One sensor's reporting and fault state between polls.

    Args:
        sensor: its config (zone, address, deadbands, longest interval).
        fault_after: failed polls in a row that make a fault.
        fault: the fault reported for it before a restart, if any: its next good reading
            clears it, and a failing poll does not raise it again.
    """

    def __init__(self, sensor: SensorSection, fault_after: int, fault: str | None = None) -> None:
        self.sensor = sensor
        self.fault_after = fault_after
        self.fault = fault
        self.failures = 0
        self.last: DepotReading | None = None  # the last reading reported

    @property
    def state(self) -> Literal["ok", "fault"]:
        return "fault" if self.fault else "ok"

    def step(self, result: ModbusReading | SensorFault, at: datetime) -> Step:
        """Take one poll's result, taken at `at` on the node's wall clock.

        Returns:
            The reading to report (call `reported` once it is committed) and the fault
            raised or cleared, if any.
        """
        if isinstance(result, SensorFault):
            return self._failed(result, at)
        change = None
        if self.fault:
            change = FaultStep("cleared", self.fault, None)
        self.fault, self.failures = None, 0
        reading = DepotReading(
            sensor=self.sensor.zone, bus_address=self.sensor.slave_id, at=at, status="ok",
            temperature_c=result.temperature_c, humidity_pct=result.humidity_rh,
        )  # fmt: skip
        return Step(reading if self._due(reading) else None, change)

    def _failed(self, result: SensorFault, at: datetime) -> Step:
        self.failures += 1
        change = None
        if self.fault is None and self.failures >= self.fault_after:
            self.fault = result.kind
            change = FaultStep("raised", result.kind, result.detail)
        if self.fault is None:
            return Step()  # a glitch so far
        reading = DepotReading(
            sensor=self.sensor.zone, bus_address=self.sensor.slave_id, at=at,
            status=STATUS_OF[result.kind],
        )  # fmt: skip
        return Step(reading if self._due(reading) else None, change)

    def _due(self, reading: DepotReading) -> bool:
        last = self.last
        if last is None or last.status != reading.status:
            return True  # the first, the first after a fault, or the first of a fault
        elapsed = (reading.at - last.at).total_seconds()
        if elapsed < 0 or elapsed >= self.sensor.max_interval_s:
            return True
        if reading.status != "ok":
            return False
        moved_c = _moved(reading.temperature_c, last.temperature_c)
        moved_pct = _moved(reading.humidity_pct, last.humidity_pct)
        return moved_c >= self.sensor.deadband_c or moved_pct >= self.sensor.deadband_pct

    def reported(self, reading: DepotReading) -> None:
        """`reading` is committed to the outbox: the next ones are measured from it."""
        self.last = reading


class BusPoller:
    """Polls every sensor of one bus each round; the round's reports become one batch.

    Args:
        name: the worker's name (a device in presence when it crashed), e.g. bus-1.
        section: the bus's config.
        record: commits one round's readings in one transaction; False if it could not
            (they are reported again next round, since nothing counts as reported).
        faults: where each sensor's faults are raised and cleared.
        clock: the node's wall clock: each reading's `at`.
        reported: (device, fault) reported before this start, from the fault log.
    """

    def __init__(
        self, name: str, section: BusSection, *,
        record: Callable[[list[DepotReading]], bool], faults: FaultLog,
        clock: Callable[[], datetime], reported: Collection[tuple[str, str]] = (),
    ) -> None:  # fmt: skip
        self.name = name
        self.section = section
        self.profile = section.load()
        self._record = record
        self._faults = faults
        self._clock = clock
        earlier = dict(reported)
        self.tracks = [
            SensorTrack(sensor, section.fault_after, earlier.get(sensor.zone))
            for sensor in section.sensors
        ]

    @property
    def settle_s(self) -> float:
        """Time after a start by which a sensor still in fault has failed `fault_after` polls."""
        worst_round = len(self.tracks) * (1 + self.profile.retries) * self.profile.reply_timeout_s
        return self.section.fault_after * (self.section.poll_s + worst_round)

    def run(self, stop: threading.Event) -> None:
        """Poll round after round until `stop` is set."""
        calibrations = {s.slave_id: s.calibration_offsets() for s in self.section.sensors}
        with ModbusBus(self.section.url, self.profile, calibrations) as bus:
            while not stop.is_set():
                began = time.monotonic()
                self.poll_round(bus, stop)
                stop.wait(max(0.0, self.section.poll_s - (time.monotonic() - began)))

    def poll_round(self, bus: ModbusBus, stop: threading.Event | None = None) -> None:
        """Poll each sensor once; raise and clear faults; commit the reports as one batch."""
        due: list[tuple[SensorTrack, DepotReading]] = []
        for track in self.tracks:
            if stop is not None and stop.is_set():
                break
            step = track.step(bus.poll(track.sensor.slave_id), self._clock())
            if (change := step.fault) is not None:
                zone = track.sensor.zone
                log.warning(
                    "%s (slave %s on %s): %s %s: %s", zone, track.sensor.slave_id,
                    self.section.url, change.fault, change.state, change.detail,
                )  # fmt: skip
                self._faults.record_fault(zone, change.fault, change.state, change.detail)
            if step.reading is not None:
                due.append((track, step.reading))
        if due and self._record([reading for _, reading in due]):
            for track, reading in due:
                track.reported(reading)


def _moved(value: float | None, last: float | None) -> float:
    # Both are set: an ok reading carries temperature and humidity (the contract says so).
    return round(abs((value or 0.0) - (last or 0.0)), DIGITS)
