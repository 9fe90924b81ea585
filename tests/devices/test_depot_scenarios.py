"""Depot scenarios on a simulated sensor bus, each seen through the real Modbus driver over a pty."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.devices.modbus.driver import ModbusBus, SensorFault
from edge.devices.modbus.profile import ModbusSensorProfile
from edge.devices.modbus.protocol import DepotReading
from simulators.devices.depot_scenarios import (
    HOUR_S,
    BusNoise,
    CompressorFailure,
    DeadSensor,
    Depot,
    DepotZone,
    DoorOpen,
    Normal,
    Occurrence,
    Scenario,
    WrongId,
    parse_scenarios,
    parse_zones,
)
from simulators.devices.modbus_bus import CompressedClock, SimulatedModbusBus

COLD_STORE = DepotZone("cold-store-1", 1, "cold")
SHELF = DepotZone("shelf-a", 2, "room")
VACCINES = DepotZone("vaccines", 3, "cold")
ZONES = [COLD_STORE, SHELF, VACCINES]
# Short waits keep a dead sensor's poll at 2 x 0.15 s; a real bus keeps the profile's 0.3 s.
PROFILE = ModbusSensorProfile(reply_timeout_s=0.15, retries=1)
HEAT_C = 8.0  # the cold class's upper alarm
STEP_C = 0.05  # a reading is the value rounded to tenths: 7.95 may read 8.0


class ScenarioClock:
    """The bus's clock, moved by the test: a scenario's hours pass in one line."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ScenarioClock:
    return ScenarioClock()


def running(
    tmp_path: Path, scenarios: list[Scenario], clock: ScenarioClock | CompressedClock
) -> SimulatedModbusBus:
    return Depot(ZONES, scenarios).bus(tmp_path / "rs485", clock=clock).start()


Start = Callable[..., ModbusBus]


@pytest.fixture
def start(tmp_path: Path, clock: ScenarioClock) -> Iterator[Start]:
    """start(*scenarios): the depot's bus running them on `clock`, and the driver on it."""
    buses: list[SimulatedModbusBus] = []

    def started(*scenarios: Scenario) -> ModbusBus:
        buses.append(running(tmp_path, list(scenarios), clock))
        return ModbusBus(str(buses[-1].path), PROFILE)

    yield started
    for bus in buses:
        bus.stop()


def reading(result: DepotReading | SensorFault) -> tuple[float, float]:
    assert isinstance(result, DepotReading), result
    return result.temperature_c, result.humidity_rh


def fault(result: DepotReading | SensorFault) -> SensorFault:
    assert isinstance(result, SensorFault), f"a fault was expected, got {result}"
    return result


def test_normal__a_day_and_a_night(tmp_path: Path, clock: ScenarioClock) -> None:
    with running(tmp_path, [Normal()], clock) as bus, ModbusBus(str(bus.path), PROFILE) as driver:
        day: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
        for half_hour in range(48):
            clock.now = half_hour * 1800
            for slave_id, seen in day.items():
                seen.append((clock.now, *reading(driver.poll(slave_id))))
    cold, room = day[1], day[2]
    # The cold store keeps 4-6 °C, the room 18-24 °C, each swinging through its band.
    assert min(t for _, t, _ in cold) == 4.0 and max(t for _, t, _ in cold) == 6.0
    assert min(t for _, t, _ in room) == 18.0 and max(t for _, t, _ in room) == 24.0
    # Warmest in the afternoon, coldest before dawn, and the air is wettest when coldest.
    warmest = max(room, key=lambda r: r[1])
    coldest = min(room, key=lambda r: r[1])
    assert 12 * HOUR_S <= warmest[0] <= 18 * HOUR_S and coldest[0] <= 6 * HOUR_S
    wettest, driest = max(h for _, _, h in room), min(h for _, _, h in room)
    assert {t for _, t, h in room if h == wettest} == {coldest[1]}
    assert {t for _, t, h in room if h == driest} == {warmest[1]}


def test_compressor_failure_crosses_8_c_when_expected_with_time_compressed(
    tmp_path: Path,
) -> None:
    failure = CompressorFailure(occurrence=Occurrence(start_s=HOUR_S))
    crossing = HOUR_S + failure.reaches(HEAT_C, from_c=5.0)  # about 3 h on the bus
    clock = CompressedClock(speedup=3600)  # an hour a second: 4 s in all
    below: list[tuple[float, float, float]] = []
    above: list[tuple[float, float, float]] = []
    with running(tmp_path, [failure], clock) as bus, ModbusBus(str(bus.path), PROFILE) as driver:
        while clock() < crossing + HOUR_S:
            before = clock()
            temperature, _ = reading(driver.poll(COLD_STORE.slave_id))
            after = clock()
            (above if temperature >= HEAT_C else below).append((before, after, temperature))
            # The room on the same bus is untouched by the cold store's compressor.
            assert reading(driver.poll(SHELF.slave_id))[0] == 21.0
    assert below and above  # hours of simulated time, polled through
    # Each reading was taken between the clock read before and after its poll: below 8 °C
    # only until the crossing, at or above it only after (less the tenth it is rounded to).
    assert max(before for before, _, _ in below) <= crossing
    assert min(after for _, after, _ in above) >= HOUR_S + failure.reaches(HEAT_C - STEP_C, 5.0)
    assert max(t for *_, t in above) < failure.ambient_c


def test_compressor_failure_recovers_when_the_compressor_comes_back(
    start: Start, clock: ScenarioClock
) -> None:
    failure = CompressorFailure(occurrence=Occurrence(start_s=HOUR_S, duration_s=14 * HOUR_S))
    with start(failure) as driver:
        warmest = 0.0
        for hour in range(0, 22):
            clock.now = hour * HOUR_S
            temperature, _ = reading(driver.poll(COLD_STORE.slave_id))
            warmest = max(warmest, temperature)
            if hour < 1:
                assert temperature == 5.0
        assert warmest > 12.0  # thirteen hours warming: far past the 8 °C alarm
        assert temperature < HEAT_C - 0.5  # and back inside the alarm's band on recovery


def test_door_open_spikes_within_minutes_and_recovers(start: Start, clock: ScenarioClock) -> None:
    door = DoorOpen(zone="shelf-a", occurrence=Occurrence(start_s=600, duration_s=300))
    with start(door) as driver:
        clock.now = 590
        shut, shut_rh = reading(driver.poll(SHELF.slave_id))
        clock.now = 600 + 300  # five minutes open
        opened, opened_rh = reading(driver.poll(SHELF.slave_id))
        assert opened - shut >= 5.0 and opened_rh > shut_rh
        assert reading(driver.poll(COLD_STORE.slave_id))[0] == 5.0  # the other door stayed shut
        clock.now = 900 + 40 * 60  # forty minutes after it was shut
        assert reading(driver.poll(SHELF.slave_id))[0] <= shut + 0.1


def test_dead_sensor_times_out_for_a_while_then_reads(start: Start, clock: ScenarioClock) -> None:
    dead = DeadSensor(occurrence=Occurrence(start_s=1200, duration_s=1800))
    with start(dead) as driver:
        seen = []
        for minute in (0, 19, 20, 35, 49, 50, 60):
            clock.now = minute * 60
            seen.append(driver.poll(VACCINES.slave_id))  # the last zone on the bus
            assert reading(driver.poll(COLD_STORE.slave_id)) == (5.0, 70.0)
    kinds = [r.kind if isinstance(r, SensorFault) else "ok" for r in seen]
    assert kinds == ["ok", "ok", "timeout", "timeout", "timeout", "ok", "ok"]


TRUE_VALUES = {(1, 5.0), (2, 21.0), (3, 5.0)}  # (slave id, °C) of ZONES at rest


def test_bus_noise_damages_a_share_of_answers_and_most_read(
    tmp_path: Path, clock: ScenarioClock
) -> None:
    once = PROFILE.model_copy(update={"retries": 0})  # a retry would hide each damaged answer
    with (
        running(tmp_path, [BusNoise(crc_share=0.3, noise_share=0.0, seed=7)], clock) as bus,
        ModbusBus(str(bus.path), once) as driver,
    ):
        results = [driver.poll(zone.slave_id) for _ in range(20) for zone in ZONES]
    readings = [r for r in results if isinstance(r, DepotReading)]
    assert any(isinstance(r, SensorFault) and r.kind == "crc" for r in results)
    assert len(readings) >= 0.5 * len(results)
    # A damaged answer never passes for a reading of another value or sensor.
    assert {(r.slave_id, r.temperature_c) for r in readings} <= TRUE_VALUES


def test_bus_noise_between_frames_is_read_through_with_a_retry(
    tmp_path: Path, clock: ScenarioClock
) -> None:
    with (
        running(tmp_path, [BusNoise(crc_share=0.0, noise_share=0.3, seed=7)], clock) as bus,
        ModbusBus(str(bus.path), PROFILE) as driver,
    ):
        results = [driver.poll(zone.slave_id) for _ in range(20) for zone in ZONES]
    readings = [r for r in results if isinstance(r, DepotReading)]
    assert len(readings) >= 0.9 * len(results)
    assert {(r.slave_id, r.temperature_c) for r in readings} <= TRUE_VALUES


def test_wrong_id_is_a_wrong_slave_fault_never_a_reading(
    start: Start, clock: ScenarioClock
) -> None:
    # The vaccine fridge's module answers as the cold store (slave 1).
    with start(WrongId(zone="vaccines", answer_as=1)) as driver:
        result = fault(driver.poll(VACCINES.slave_id))
        assert (result.slave_id, result.kind) == (VACCINES.slave_id, "wrong-slave")
        assert "slave id 1, not 3" in result.detail
        assert reading(driver.poll(COLD_STORE.slave_id)) == (5.0, 70.0)


def test_wrong_id_by_default_answers_as_the_next_id(start: Start) -> None:
    with start(WrongId()) as driver:
        assert "slave id 4, not 3" in fault(driver.poll(VACCINES.slave_id)).detail


def test_scenarios_combine_each_on_its_zone(start: Start, clock: ScenarioClock) -> None:
    # By their defaults: the door opens at 00:30 for 5 min, the last sensor dies 00:20-00:50.
    scenarios = parse_scenarios("door-open@shelf-a,normal,dead-sensor@vaccines")
    night = Depot(ZONES, [Normal()])  # the same night with nothing else going on
    with start(*scenarios) as driver:
        clock.now = 35 * 60
        cold, _ = reading(driver.poll(COLD_STORE.slave_id))
        shelf, _ = reading(driver.poll(SHELF.slave_id))
        assert fault(driver.poll(VACCINES.slave_id)).kind == "timeout"
    assert cold == round(night.temperature(COLD_STORE, clock.now), 1) < 5.0  # night, no door
    assert shelf >= night.temperature(SHELF, clock.now) + 5.0  # night, the door open on top


def test_cli_runs_a_bus_until_interrupted(tmp_path: Path) -> None:
    link = tmp_path / "rs485"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "sim", "depot-bus", "--scenario", "wrong-id@shelf-a",
         "--sensors", "freezer-1:4,shelf-a:9", "--speedup", "60", "--link", str(link)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(f"depot bus at {link} (9600 8N1, speedup 60)")
        assert lines[1:] == ["  slave 4: freezer-1 (cold): steady\n",
                             "  slave 9: shelf-a (room): wrong-id\n"]  # fmt: skip
        with ModbusBus(str(link), PROFILE) as driver:
            assert reading(driver.poll(4)) == (5.0, 70.0)
            assert fault(driver.poll(9)).kind == "wrong-slave"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        assert not os.path.lexists(link)  # unplugged on the way out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenario", "earthquake"], "scenario 'earthquake' is not one of normal,"),
        (["--scenario", "door-open@Shelf A"], "zone 'Shelf A' is not a valid topic segment"),
        (["--sensors", "cold-store-1"], "is not name:slave-id[:cold|room]"),
        (["--sensors", "a:248"], "slave id 248 is outside 1..247"),
        (["--sensors", "a:1:warm"], "climate 'warm' is not cold or room"),
        (["--baud", "115200"], "invalid choice: 115200"),
    ],
)
def test_cli__invalid(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "sim", "depot-bus", *argv],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and message in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sensors", "a:1,b:1"], "slave id 1 on the bus twice"),
        (["--scenario", "door-open@shelf-b"], "door-open: no zone 'shelf-b' on the bus"),
        (["--speedup", "0.5"], "--speedup 0.5 is outside 1..100000"),
        (["--link", "/nonexistent/rs485"], "no folder /nonexistent"),
    ],
)
def test_cli_refuses_a_bus_it_cannot_build(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "sim", "depot-bus", *argv],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and message in result.stderr


def test_parse_zones__valid() -> None:
    assert parse_zones("cold-store-1:1, shelf-a:2,fridge-2:3,dry:4:cold,freezer:5:room") == [
        DepotZone("cold-store-1", 1, "cold"), DepotZone("shelf-a", 2, "room"),
        DepotZone("fridge-2", 3, "cold"), DepotZone("dry", 4, "cold"),
        DepotZone("freezer", 5, "room"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "is not name:slave-id"),
        ("a:1:cold:x", "is not name:slave-id"),
        ("a:-1", "is not name:slave-id"),
        ("a:0", "slave id 0 is outside 1..247"),
        ("-a:1", "zone '-a' is not a valid topic segment"),
        ("a:1:" + "x" * 2000, "longer than 2000 characters"),
    ],
)
def test_parse_zones__invalid(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_zones(spec)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "scenario '' is not one of"),
        ("normal@", "zone '' is not a valid topic segment"),
        ("normal,door_open", "scenario 'door_open' is not one of"),
        ("normal@" + "x" * 2000, "longer than 2000 characters"),
    ],
)
def test_parse_scenarios__invalid(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_scenarios(spec)


@pytest.mark.parametrize(
    ("zones", "scenarios", "problem"),
    [
        ([], [], "a bus has 1 to 32 sensors, not 0"),
        ([DepotZone(f"z{i}", i + 1) for i in range(33)], [], "not 33"),
        ([COLD_STORE, DepotZone("cold-store-1", 9)], [], "zone cold-store-1 on the bus twice"),
        ([COLD_STORE], [Normal()] * 13, "at most 12 scenarios, not 13"),
        ([COLD_STORE], [DoorOpen(zone="shelf-a")], "door-open: no zone 'shelf-a'"),
    ],
)
def test_depot__invalid(zones: list[DepotZone], scenarios: list[Scenario], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Depot(zones, scenarios)


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: DepotZone("a", 248), "slave id 248 is outside 1..247"),
        (lambda: DepotZone("a", 1, "warm"), "climate 'warm' is not cold or room"),  # type: ignore[arg-type]
        (lambda: Occurrence(start_s=-1), "starts at 0 s or later"),
        (lambda: Occurrence(duration_s=0), "lasts more than 0 s"),
        (lambda: Occurrence(duration_s=600, every_s=300), "repeats no sooner than it ends"),
        (lambda: Occurrence(every_s=300), "repeats no sooner than it ends"),
        (lambda: BusNoise(crc_share=0.7, noise_share=0.4), "add up to 1 at most"),
        (lambda: BusNoise(crc_share=-0.1), "between 0 and 1"),
        (lambda: CompressorFailure().reaches(30.0, from_c=5.0), "30.0 °C is not between"),
        (lambda: CompressorFailure().reaches(4.0, from_c=5.0), "4.0 °C is not between"),
    ],
)
def test_scenario_parameters__invalid(build: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build()  # type: ignore[operator]


def test_repeated_event_comes_back_every_period() -> None:
    door = Occurrence(start_s=600, duration_s=300, every_s=3600)
    assert [door.active(at) for at in (599, 600, 899, 900, 4200, 4500)] == [
        False, True, True, False, True, False,
    ]  # fmt: skip
