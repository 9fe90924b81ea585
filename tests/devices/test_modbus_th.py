"""XY-MD02 sensors on one RS485 bus over a real pty: readings, calibration and each fault."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.devices.base import DeviceError
from edge.devices.modbus.driver import ModbusBus, ModuleSettings, SensorFault
from edge.devices.modbus.profile import ModbusSensorProfile
from edge.devices.modbus.protocol import (
    Calibration,
    DepotReading,
    OutOfRange,
    SensorFaultKind,
    decode,
    encode,
    signed,
)
from simulators.devices.modbus_bus import (
    CompressedClock,
    SensorFaults,
    SimulatedModbusBus,
    SimulatedSensor,
    constant,
    crc16,
    noise,
)

COLD_ROOM, FREEZER, DRY_STORE = 1, 2, 3
# Short waits keep a dead sensor's poll at 2 x 0.15 s; a real bus keeps the profile's 0.3 s.
PROFILE = ModbusSensorProfile(reply_timeout_s=0.15, retries=1)


class ScenarioClock:
    """The bus's clock, moved by the test: hours of a cold store pass in one line."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ScenarioClock:
    return ScenarioClock()


@pytest.fixture
def rs485(tmp_path: Path, clock: ScenarioClock) -> Iterator[SimulatedModbusBus]:
    sensors = [
        # The cold-room module reads 0.3 °C high; its calibration offset takes that off.
        SimulatedSensor(COLD_ROOM, constant(4.0), constant(65.0), calibration_error_c=0.3),
        # A compressor failure: the freezer warms 0.5 °C an hour from -18.5 °C.
        SimulatedSensor(FREEZER, lambda t: -18.5 + 0.5 * t / 3600, constant(40.2)),
        SimulatedSensor(DRY_STORE, constant(22.0), constant(55.5), baud_code=0),
    ]
    with SimulatedModbusBus(tmp_path / "rs485", sensors, clock=clock) as simulated:
        yield simulated


@pytest.fixture
def bus(rs485: SimulatedModbusBus) -> Iterator[ModbusBus]:
    with ModbusBus(
        str(rs485.path), PROFILE, {COLD_ROOM: Calibration(temperature_c=-0.3)}
    ) as opened:
        yield opened


def reading(result: DepotReading | SensorFault) -> tuple[int, float, float]:
    assert isinstance(result, DepotReading), result
    return result.slave_id, result.temperature_c, result.humidity_rh


def fault(result: DepotReading | ModuleSettings | SensorFault) -> SensorFault:
    assert isinstance(result, SensorFault), f"a fault was expected, got {result}"
    return result


def test_poll__valid(bus: ModbusBus) -> None:
    assert reading(bus.poll(COLD_ROOM)) == (COLD_ROOM, 4.0, 65.0)  # calibrated
    assert reading(bus.poll(FREEZER)) == (FREEZER, -18.5, 40.2)  # signed, below zero
    assert reading(bus.poll(DRY_STORE)) == (DRY_STORE, 22.0, 55.5)


def test_poll_without_calibration_reads_what_the_module_says(rs485: SimulatedModbusBus) -> None:
    with ModbusBus(str(rs485.path), PROFILE) as uncalibrated:
        assert reading(uncalibrated.poll(COLD_ROOM)) == (COLD_ROOM, 4.3, 65.0)


def test_poll_follows_the_scenario_clock(bus: ModbusBus, clock: ScenarioClock) -> None:
    first = bus.poll(FREEZER)
    clock.now = 10 * 3600  # ten hours of compressor failure
    later = bus.poll(FREEZER)
    assert reading(later) == (FREEZER, -13.5, 40.2)
    assert isinstance(first, DepotReading) and isinstance(later, DepotReading)
    assert later.at > first.at  # the node's own monotonic time, not the scenario's


@pytest.mark.parametrize(
    ("faults", "kind", "detail"),
    [
        (SensorFaults(dead=True), "timeout", "no answer"),
        (SensorFaults(bad_crc=True), "crc", "bad CRC"),
        (SensorFaults(answer_as=7), "wrong-slave", "slave id 7, not 2"),
        (SensorFaults(raw_temperature=0x7FFF), "out-of-range", "module error code"),
        (SensorFaults(raw_temperature=-0x8000), "out-of-range", "module error code"),
        (SensorFaults(raw_temperature=1300), "out-of-range", "130.0 °C outside -40.0..125.0"),
        (SensorFaults(raw_humidity=1005), "out-of-range", "100.5 %RH outside 0.0..100.0"),
        (SensorFaults(dead=True, noise_after=noise(12)), "bus", "noise"),
    ],
)
def test_poll__invalid(
    rs485: SimulatedModbusBus, bus: ModbusBus, faults: SensorFaults, kind: SensorFaultKind,
    detail: str,
) -> None:  # fmt: skip
    rs485.sensors[FREEZER].faults = faults
    result = fault(bus.poll(FREEZER))
    assert (result.slave_id, result.kind) == (FREEZER, kind)
    assert detail in result.detail
    # One faulty sensor does not take the bus down: its neighbours read right after it.
    assert reading(bus.poll(DRY_STORE)) == (DRY_STORE, 22.0, 55.5)
    assert reading(bus.poll(COLD_ROOM)) == (COLD_ROOM, 4.0, 65.0)
    # And once the fault is gone, the sensor reads again.
    rs485.sensors[FREEZER].faults = SensorFaults()
    assert reading(bus.poll(FREEZER)) == (FREEZER, -18.5, 40.2)


def test_dead_sensor_is_asked_once_plus_the_retries(
    rs485: SimulatedModbusBus, bus: ModbusBus
) -> None:
    rs485.sensors[FREEZER].faults = SensorFaults(dead=True)
    assert fault(bus.poll(FREEZER)).kind == "timeout"
    assert rs485.sensors[FREEZER].requests == 1 + PROFILE.retries


def test_wrong_slave_answer_is_never_taken_as_the_asked_sensors_reading(
    rs485: SimulatedModbusBus, bus: ModbusBus
) -> None:
    # The cold-room module answers with the freezer's id: its +4 °C must never be
    # recorded as the freezer's (nor as the cold room's: the answer does not say so).
    rs485.sensors[COLD_ROOM].faults = SensorFaults(answer_as=FREEZER)
    for _ in range(3):
        result = fault(bus.poll(COLD_ROOM))
        assert (result.slave_id, result.kind) == (COLD_ROOM, "wrong-slave")
        assert reading(bus.poll(FREEZER)) == (FREEZER, -18.5, 40.2)


def test_bus_recovers_after_noise_between_frames(rs485: SimulatedModbusBus, bus: ModbusBus) -> None:
    rs485.sensors[FREEZER].faults = SensorFaults(noise_after=noise(24, seed=3))
    expected = {
        COLD_ROOM: (COLD_ROOM, 4.0, 65.0),
        FREEZER: (FREEZER, -18.5, 40.2),
        DRY_STORE: (DRY_STORE, 22.0, 55.5),
    }
    for _ in range(3):
        for slave_id, values in expected.items():
            assert reading(bus.poll(slave_id)) == values


def test_unplugged_bus_is_a_bus_fault_and_recovers(
    rs485: SimulatedModbusBus, bus: ModbusBus
) -> None:
    assert reading(bus.poll(DRY_STORE)) == (DRY_STORE, 22.0, 55.5)
    rs485.unplug()
    assert fault(bus.poll(DRY_STORE)).kind == "bus"  # the adapter went away under the port
    assert fault(bus.poll(DRY_STORE)).kind == "bus"  # and its path is gone: cannot reopen
    rs485.plug()
    assert reading(bus.poll(DRY_STORE)) == (DRY_STORE, 22.0, 55.5)


def test_compressed_clock_runs_hours_in_a_fraction_of_a_second(tmp_path: Path) -> None:
    clock = CompressedClock(speedup=36_000)  # ten hours a second
    freezer = SimulatedSensor(FREEZER, lambda t: -18.5 + 0.5 * t / 3600, constant(40.2))
    with (
        SimulatedModbusBus(tmp_path / "rs485", [freezer], clock=clock) as simulated,
        ModbusBus(str(simulated.path), PROFILE) as bus,
    ):
        first = bus.poll(FREEZER)
        time.sleep(0.3)  # three hours of compressor failure
        later = bus.poll(FREEZER)
    assert isinstance(first, DepotReading) and isinstance(later, DepotReading)
    assert later.temperature_c - first.temperature_c >= 1.5


def test_bus_with_other_line_settings(tmp_path: Path) -> None:
    # 2400 8N2: every module on that bus set so, and the profile says so too. (A Linux pty
    # cannot hold a parity setting: pyserial's reconfiguring fails there with EINVAL, so
    # an 8E1 bus is left to a real adapter.)
    slow = ModbusSensorProfile(baudrate=2400, stopbits=2, reply_timeout_s=0.3)
    sensors = [SimulatedSensor(5, constant(-25.0), constant(30.0))]
    with (
        SimulatedModbusBus(tmp_path / "rs485", sensors, 2400, stopbits=2) as simulated,
        ModbusBus(str(simulated.path), slow) as bus,
    ):
        started = time.monotonic()
        assert reading(bus.poll(5)) == (5, -25.0, 30.0)
        # An answer of 9 characters of 11 bits at 2400 bit/s cannot come sooner.
        assert time.monotonic() - started >= 9 * 11 / 2400


def test_read_settings(bus: ModbusBus) -> None:
    assert bus.read_settings(DRY_STORE) == ModuleSettings(slave_id=DRY_STORE, baud_code=0)
    assert fault(bus.read_settings(9)).kind == "timeout"  # nobody at id 9


@pytest.mark.parametrize(
    ("register", "baudrate"), [(0, 9600), (1, 14400), (2, 19200), (9600, 9600), (4800, None)]
)
def test_module_baudrate_from_code_or_rate(register: int, baudrate: int | None) -> None:
    assert ModuleSettings(slave_id=1, baud_code=register).baudrate == baudrate


def test_register_map_the_module_lacks_is_refused(rs485: SimulatedModbusBus) -> None:
    elsewhere = PROFILE.model_copy(update={"temperature_register": 0x10, "humidity_register": 0x11})
    with ModbusBus(str(rs485.path), elsewhere) as bus:
        result = fault(bus.poll(DRY_STORE))
    assert (result.kind, result.detail) == ("refused", "exception code 2")


def test_module_that_answers_function_03(rs485: SimulatedModbusBus) -> None:
    rs485.sensors[DRY_STORE].answers_03_for_input = True
    with ModbusBus(str(rs485.path), PROFILE.model_copy(update={"input_function": 3})) as bus:
        assert reading(bus.poll(DRY_STORE)) == (DRY_STORE, 22.0, 55.5)
        assert fault(bus.poll(FREEZER)).kind == "refused"  # that one knows 04 only


def test_slave_id_outside_modbus_range_is_a_config_error(bus: ModbusBus) -> None:
    with pytest.raises(DeviceError, match="slave id 248"):
        bus.poll(248)


def test_requests_on_the_wire(rs485: SimulatedModbusBus, bus: ModbusBus) -> None:
    bus.poll(COLD_ROOM)
    # Function 04, registers 0x0001-0x0002 of slave 1: the frame every XY-MD02 sheet shows.
    assert rs485.requests[-1] == bytes.fromhex("01 04 00 01 00 02 20 0B")
    assert crc16(bytes.fromhex("01 04 00 01 00 02")) == b"\x20\x0b"


@pytest.mark.parametrize(
    ("registers", "offset", "expected"),
    [
        ([0x00DC, 0x022B], 0.0, (22.0, 55.5)),
        ([0xFF47, 0x0192], 0.0, (-18.5, 40.2)),  # 0xFF47 = -185
        ([0xFE70, 0x0000], 0.0, (-40.0, 0.0)),  # the sensor's lower ends are readings
        ([0x04E2, 0x03E8], 0.0, (125.0, 100.0)),  # and so are its upper ends
        ([0x002B, 0x03E0], -0.3, (4.0, 99.2)),
    ],
)
def test_decode__valid(registers: list[int], offset: float, expected: tuple[float, float]) -> None:
    result = decode(5, registers, Calibration(temperature_c=offset), at=1.0)
    assert result == DepotReading(5, *expected, at=1.0)


@pytest.mark.parametrize(
    "registers",
    [[0x7FFF, 0x0200], [0x8000, 0x0200], [0x0100, 0xFFFF], [0xFE6F, 0x0200], [0x04E3, 0x0200],
     [0x0100, 0x03E9], [0x0100]],
)  # fmt: skip
def test_decode__invalid(registers: list[int]) -> None:
    assert isinstance(decode(5, registers, Calibration(temperature_c=1.0), at=1.0), OutOfRange)


def test_humidity_offset_keeps_humidity_within_0_to_100() -> None:
    result = decode(1, encode(20.0, 99.5), Calibration(humidity_rh=2.0), at=0.0)
    assert isinstance(result, DepotReading) and result.humidity_rh == 100.0


def test_signed() -> None:
    assert [signed(v) for v in (0x0000, 0x7FFF, 0x8000, 0xFF47)] == [0, 32767, -32768, -185]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"baudrate": 1200, "reply_timeout_s": 0.2}, "too short for baudrate 1200"),
        ({"humidity_register": 0x0005}, "must follow temperature_register"),
        ({"parity": "M"}, "Input should be 'N', 'E' or 'O'"),
        ({"retries": 5}, "less than or equal to 3"),
    ],
)
def test_profile__invalid(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ModbusSensorProfile.model_validate(fields)
