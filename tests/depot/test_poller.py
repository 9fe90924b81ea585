"""Which polls of a depot's sensors are reported, and their faults raised once and cleared once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.contract.base import Event
from edge.contract.catalogue import decode
from edge.contract.events import DepotReading, DepotReadingBatch, DeviceFault
from edge.contract.topics import Role, Site
from edge.depot.config import BusSection, SensorSection
from edge.depot.poller import BusPoller, SensorTrack
from edge.devices.modbus.driver import ModbusBus, SensorFault
from edge.devices.modbus.profile import ModbusSensorProfile
from edge.devices.modbus.protocol import DepotReading as ModbusReading
from edge.fault_log import FaultLog
from edge.outbox import Outbox, OutboxError
from simulators.devices.modbus_bus import (
    SensorFaults,
    SimulatedModbusBus,
    SimulatedSensor,
    constant,
)

START = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
SENSOR = SensorSection(zone="cold-store-1", slave_id=1, deadband_c=0.2, deadband_pct=1.0,
                       max_interval_s=300)  # fmt: skip
Poll = tuple[float, float] | str  # (°C, %RH) read, or the kind of fault the poll gave


def run(
    polls: list[tuple[float, Poll]], sensor: SensorSection = SENSOR, fault_after: int = 2
) -> list[str]:
    """What each poll gives: the status reported ("" for none), then any fault change."""
    track = SensorTrack(sensor, fault_after)
    seen = []
    for second, poll in polls:
        result: ModbusReading | SensorFault
        if isinstance(poll, str):
            result = SensorFault(sensor.slave_id, poll, f"{poll} detail", at=second)  # type: ignore[arg-type]
        else:
            result = ModbusReading(sensor.slave_id, poll[0], poll[1], at=second)
        step = track.step(result, START + timedelta(seconds=second))
        said: str = step.reading.status if step.reading else ""
        if step.reading:
            track.reported(step.reading)
        if step.fault:
            said += f" {step.fault.state} {step.fault.fault}"
        seen.append(said.strip())
    return seen


@pytest.mark.parametrize(
    ("polls", "expected"),
    [
        # The first reading after a start is reported, then nothing until it moves.
        ([(0, (4.0, 60.0)), (10, (4.0, 60.0)), (20, (4.1, 60.5))], ["ok", "", ""]),
        # Moved by the deadband from the last one REPORTED (a slow drift is not lost).
        ([(0, (4.0, 60.0)), (10, (4.1, 60.0)), (20, (4.2, 60.0)), (30, (4.3, 60.0))],
         ["ok", "", "ok", ""]),
        ([(0, (4.0, 60.0)), (10, (3.8, 60.0))], ["ok", "ok"]),  # down as well as up
        # Tenths compared as tenths: 0.1 -> 0.3 is 0.2 (not 0.19999…).
        ([(0, (0.1, 60.0)), (10, (0.3, 60.0))], ["ok", "ok"]),
        ([(0, (4.0, 60.0)), (10, (4.0, 60.9)), (20, (4.0, 61.0))], ["ok", "", "ok"]),
        # Unchanged, it still reports once max_interval_s has passed since the last report.
        ([(0, (4.0, 60.0)), (290, (4.0, 60.0)), (300, (4.0, 60.0)), (310, (4.0, 60.0))],
         ["ok", "", "ok", ""]),
        # A clock stepped back: reported (the interval cannot be trusted), then measured anew.
        ([(0, (4.0, 60.0)), (-3600, (4.0, 60.0)), (-3590, (4.0, 60.0))], ["ok", "ok", ""]),
        # One failed poll is a glitch: neither reported nor raised, nor does it force a report.
        ([(0, (4.0, 60.0)), (10, "crc"), (20, (4.0, 60.0))], ["ok", "", ""]),
        # Two in a row are a fault: raised once, its status reported once, not every round.
        ([(0, (4.0, 60.0)), (10, "timeout"), (20, "timeout"), (30, "timeout"), (40, "timeout")],
         ["ok", "", "timeout raised timeout", "", ""]),
        # Still in fault after max_interval_s: reported again, not raised again.
        ([(0, "timeout"), (10, "timeout"), (20, "timeout"), (310, "timeout")],
         ["", "timeout raised timeout", "", "timeout"]),
        # Back: cleared once, and its first reading reported whatever the deadband.
        ([(0, (4.0, 60.0)), (10, "timeout"), (20, "timeout"), (30, (4.0, 60.0)),
          (40, (4.0, 60.0))],
         ["ok", "", "timeout raised timeout", "ok cleared timeout", ""]),
        # The contract's status of each kind; the fault keeps the kind that raised it.
        ([(0, "wrong-slave"), (10, "wrong-slave")], ["", "timeout raised wrong-slave"]),
        ([(0, "refused"), (10, "bus")], ["", "timeout raised bus"]),
        ([(0, "out-of-range"), (10, "out-of-range"), (20, "crc"), (30, "crc")],
         ["", "range raised out-of-range", "crc", ""]),
        # A glitch between failures starts the count again.
        ([(0, "crc"), (10, (4.0, 60.0)), (20, "crc"), (30, (4.0, 60.0))], ["", "ok", "", ""]),
    ],
)  # fmt: skip
def test_sensor_track__reports(polls: list[tuple[float, Poll]], expected: list[str]) -> None:
    assert run(polls) == expected


def test_sensor_track__deadband_zero_reports_every_poll_and_fault_after_one_raises_at_once() -> (
    None
):
    every = SENSOR.model_copy(update={"deadband_c": 0.0, "deadband_pct": 0.0})
    assert run([(0, (4.0, 60.0)), (10, (4.0, 60.0)), (20, (4.0, 60.0))], every) == ["ok"] * 3
    assert run([(0, "timeout"), (10, (4.0, 60.0))], fault_after=1) == [
        "timeout raised timeout", "ok cleared timeout",
    ]  # fmt: skip


def test_sensor_track__a_fault_reported_before_a_restart_is_neither_raised_again_nor_kept() -> None:
    still = SensorTrack(SENSOR, 2, fault="timeout")
    step = still.step(SensorFault(1, "timeout", "no answer", at=0), START)
    assert step.fault is None  # not raised twice
    assert step.reading is not None and step.reading.status == "timeout"
    back = SensorTrack(SENSOR, 2, fault="timeout")
    step = back.step(ModbusReading(1, 4.0, 60.0, at=0), START)
    assert step.fault is not None and (step.fault.state, step.fault.fault) == ("cleared", "timeout")
    assert back.state == "ok"


# A real bus on a pty, a real outbox: each round one batch, faults once across a restart.
COLD, FREEZER, DRY = 1, 2, 3
# Short waits, and one retry: a busy test machine stalling one answer is no glitch here.
PROFILE = {"reply_timeout_s": 0.15, "retries": 1}


@pytest.fixture
def rs485(tmp_path: Path) -> Iterator[SimulatedModbusBus]:
    sensors = [
        SimulatedSensor(COLD, constant(4.0), constant(65.0)),
        SimulatedSensor(FREEZER, constant(-18.5), constant(40.2)),
        SimulatedSensor(DRY, constant(22.0), constant(55.5)),
    ]
    with SimulatedModbusBus(tmp_path / "rs485", sensors) as simulated:
        yield simulated


class Depot:
    """A depot's outbox, fault log and one bus's poller, as DepotNode wires them."""

    def __init__(self, tmp_path: Path, rs485: SimulatedModbusBus, clock: list[datetime]) -> None:
        node = Site("suite").node(Role.DEPOT, "d01")
        self.outbox = Outbox(tmp_path / "state" / "outbox.db", node, capacity=10)
        self.faults = FaultLog(self.outbox, lambda: clock[0])
        profile = tmp_path / "fast.yaml"
        profile.write_text("part: xy-md02\n" + "".join(f"{k}: {v}\n" for k, v in PROFILE.items()))
        section = BusSection(
            url=str(rs485.path), profile=str(profile), poll_s=1,
            sensors=(SensorSection(zone="cold-store-1", slave_id=COLD),
                     SensorSection(zone="freezer", slave_id=FREEZER),
                     SensorSection(zone="dry-store", slave_id=DRY)),
        )  # fmt: skip
        self.poller = BusPoller(
            "bus-1", section, record=self.record, faults=self.faults, clock=lambda: clock[0],
            reported=self.faults.reported_faults,
        )  # fmt: skip
        self.bus = ModbusBus(str(rs485.path), ModbusSensorProfile(**PROFILE))

    def record(self, readings: list[DepotReading]) -> bool:
        try:
            with self.outbox.transaction() as batch:
                batch.add(DepotReadingBatch(**batch.ids(START), readings=tuple(readings)))
        except OutboxError:
            return False
        return True

    def rounds(self, count: int) -> None:
        for _ in range(count):
            self.poller.poll_round(self.bus)

    def events(self) -> list[Any]:
        rows = self.outbox.after(0, 1000)
        return [decode(row.topic, row.payload, "gatepost").payload for row in rows]

    def close(self) -> None:
        self.bus.close()
        self.outbox.close()


def faults_in(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.device, e.fault, e.state) for e in events if isinstance(e, DeviceFault)]


def batches_in(events: list[Event]) -> list[list[tuple[str, str]]]:
    return [
        [(r.sensor, r.status) for r in e.readings]
        for e in events if isinstance(e, DepotReadingBatch)
    ]  # fmt: skip


def test_bus_poller__each_round_is_one_batch_and_a_dead_sensor_one_fault_across_a_restart(
    tmp_path: Path, rs485: SimulatedModbusBus
) -> None:
    clock = [START]
    depot = Depot(tmp_path, rs485, clock)
    depot.rounds(1)
    assert batches_in(depot.events()) == [
        [("cold-store-1", "ok"), ("freezer", "ok"), ("dry-store", "ok")],
    ]
    rs485.sensors[FREEZER].faults = SensorFaults(dead=True)
    depot.rounds(3)
    events = depot.events()
    assert faults_in(events) == [("freezer", "timeout", "raised")]
    assert batches_in(events)[1:] == [[("freezer", "timeout")]]  # once, on the second failure
    assert [t.state for t in depot.poller.tracks] == ["ok", "fault", "ok"]
    depot.close()
    # Restarted with the freezer still dead: it is not raised again, and is reported once.
    clock[0] = START + timedelta(minutes=1)
    again = Depot(tmp_path, rs485, clock)
    again.rounds(3)
    events = again.events()
    assert faults_in(events) == [("freezer", "timeout", "raised")]
    assert batches_in(events)[2:] == [
        [("cold-store-1", "ok"), ("freezer", "timeout"), ("dry-store", "ok")],
    ]
    rs485.sensors[FREEZER].faults = SensorFaults()
    again.rounds(2)
    events = again.events()
    assert faults_in(events) == [
        ("freezer", "timeout", "raised"),
        ("freezer", "timeout", "cleared"),
    ]
    assert batches_in(events)[3:] == [[("freezer", "ok")]]
    assert again.faults.reported_faults == set()
    again.close()


def test_bus_poller__readings_the_outbox_refused_are_reported_next_round(
    tmp_path: Path, rs485: SimulatedModbusBus
) -> None:
    clock = [START]
    depot = Depot(tmp_path, rs485, clock)
    for _ in range(10):  # the outbox's capacity: the gateway is away
        depot.outbox.add(
            lambda ids: DeviceFault(**ids, device="x", fault="y", state="raised"), START
        )
    depot.rounds(1)
    assert batches_in(depot.events()) == []
    depot.outbox.confirm(10)  # the gateway is back and stored them
    depot.rounds(1)
    assert batches_in(depot.events()) == [
        [("cold-store-1", "ok"), ("freezer", "ok"), ("dry-store", "ok")],
    ]
    depot.close()


def test_bus_poller__an_unplugged_adapter_is_a_bus_fault_of_each_sensor_cleared_when_back(
    tmp_path: Path, rs485: SimulatedModbusBus
) -> None:
    depot = Depot(tmp_path, rs485, [START])
    depot.rounds(1)
    rs485.unplug()
    depot.rounds(2)
    zones = ("cold-store-1", "freezer", "dry-store")
    assert faults_in(depot.events()) == [(zone, "bus", "raised") for zone in zones]
    assert batches_in(depot.events())[1:] == [[(zone, "timeout") for zone in zones]]
    rs485.plug()
    depot.rounds(1)
    assert faults_in(depot.events())[3:] == [(zone, "bus", "cleared") for zone in zones]
    assert batches_in(depot.events())[2:] == [[(zone, "ok") for zone in zones]]
    depot.close()
