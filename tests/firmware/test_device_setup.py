"""`gatepost fw device …` against the pty simulators: scanner, thermometer, Modbus sensors."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
import yaml

from edge.cli import main
from edge.devices.base import CodeScan, DeviceTimeout
from edge.devices.modbus.driver import ModbusBus
from edge.devices.modbus.profile import ModbusSensorProfile
from edge.devices.modbus.protocol import DepotReading
from edge.devices.scanner.driver import ScannerDriver
from edge.devices.scanner.profile import ScannerProfile
from edge.devices.scanner.protocol import BAUD_DIVISORS, ZONE_MODE, ZONE_OUTPUT, baud_of_zones
from edge.devices.thermometer.driver import PersonEpisode
from edge.devices.thermometer.profile import ThermometerProfile
from edge.devices.thermometer.protocol import TemperatureFrame
from edge.gate.config import DeviceSection
from firmware_tools.device.common import DeviceSetupError, Progress
from firmware_tools.device.modbus_setup import Line, modbus_address, modbus_scan
from firmware_tools.device.scanner_setup import (
    ScannerPort,
    ScannerSettings,
    baud_command,
    scanner_setup,
)
from firmware_tools.device.thermo_calibrate import thermo_calibrate, write_offset
from simulators.devices.modbus_bus import SimulatedModbusBus, SimulatedSensor, constant
from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermometer import SimulatedThermometer

EXAMPLE_GATE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "gate.yaml"


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def power_cycle(part: SimulatedScanner | SimulatedModbusBus) -> None:
    """Switch the module off and on with the port open, and wait until it is up."""
    part.faults.power_cycle = True
    wait_until(lambda: not part.powered)
    wait_until(lambda: part.powered)


# The GM65 scanner.
@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[SimulatedScanner]:
    # As shipped but for its suffix and read mode: CRLF and manual (reads nothing).
    with SimulatedScanner(tmp_path / "scanner", 9600, suffix="crlf", read_mode="manual") as sim:
        yield sim


def test_scanner_setup__found_at_9600_left_at_115200(scanner: SimulatedScanner) -> None:
    out = io.StringIO()
    after = scanner_setup(str(scanner.path), ScannerProfile(), Progress(out))
    assert after == ScannerSettings(115200, 0xD7, 0x01)
    assert "9600 baud: answered" in out.getvalue()
    assert "[6] reopen at 115200" in out.getvalue()
    power_cycle(scanner)  # saved to flash: a restart keeps it
    assert (scanner.baudrate, scanner.suffix, scanner.read_mode) == (115200, "cr", "sensing")
    with serial.serial_for_url(str(scanner.path), baudrate=115200, timeout=0.5) as port:
        scanner.scan("HC1:ABC")  # sensing mode reads a code held up, ends it with CR
        assert port.read(8) == b"HC1:ABC\r"


def test_scanner_setup__node_reads_at_the_profiles_new_baud(scanner: SimulatedScanner) -> None:
    # What the guide tells the technician: after setup the gate's profile says 115200.
    scanner_setup(str(scanner.path), ScannerProfile(), Progress(io.StringIO()))
    stale = ScannerProfile(reply_timeout_s=0.2)
    with (
        serial.serial_for_url(str(scanner.path), baudrate=stale.baudrate, timeout=0.02) as port,
        pytest.raises(DeviceTimeout),
    ):
        ScannerDriver(port, stale).setup()  # 9600: the module hears noise
    fresh = ScannerProfile(baudrate=115200, configure_on_start=False)
    with serial.serial_for_url(str(scanner.path), baudrate=115200, timeout=0.02) as port:
        driver = ScannerDriver(port, fresh)
        driver.setup()
        scanner.scan("HC1:XYZ")
        deadline = time.monotonic() + 1.0
        items: list[object] = []
        while not items and time.monotonic() < deadline:
            items += driver.poll()
    assert [i.text for i in items if isinstance(i, CodeScan)] == ["HC1:XYZ"]


def test_scanner_setup__unsaved_settings_lost_at_power_cycle(scanner: SimulatedScanner) -> None:
    # What the save step is for: the simulator forgets zones written without it.
    port = ScannerPort(str(scanner.path))
    port.open(9600)
    port.write("suffix", bytes.fromhex("7E 00 08 01 00 60 01 6F 92"))
    port.close()
    assert scanner.zones[ZONE_OUTPUT] == 0x01  # CR, written
    power_cycle(scanner)
    assert scanner.zones[ZONE_OUTPUT] == 0x21  # CRLF, as saved


def test_scanner_setup__no_answer_at_any_baud(scanner: SimulatedScanner) -> None:
    scanner.faults.silent = True
    with pytest.raises(DeviceSetupError) as error:
        scanner_setup(str(scanner.path), ScannerProfile(), Progress(io.StringIO()))
    assert error.value.step == "find"
    assert "no GM65 answered" in error.value.reason and "1200" in error.value.reason
    assert [c.kind for c in scanner.commands] == [0x07]  # one settings read, at 9600
    assert (scanner.baudrate, scanner.suffix) == (9600, "crlf")


@pytest.mark.parametrize(
    ("step", "fail"),
    [
        ("mode", lambda sim: sim.refuse.add(ZONE_MODE)),
        ("save", lambda sim: setattr(sim, "refuse_save", True)),
    ],
)
def test_scanner_setup__failed_step_rolled_back(
    tmp_path: Path, step: str, fail: Callable[[SimulatedScanner], None]
) -> None:
    with SimulatedScanner(tmp_path / "s", 4800, suffix="crlf", read_mode="manual") as sim:
        flash = dict(sim.saved)
        fail(sim)
        with pytest.raises(DeviceSetupError) as error:
            scanner_setup(str(sim.path), ScannerProfile(), Progress(io.StringIO()))
        assert error.value.step == step
        assert "refused" in error.value.reason and "rolled back to 4800 baud" in error.value.reason
        assert (sim.baudrate, sim.suffix, sim.read_mode) == (4800, "crlf", "manual")
        assert sim.saved == flash
        power_cycle(sim)
        assert (sim.baudrate, sim.suffix, sim.read_mode) == (4800, "crlf", "manual")


@pytest.mark.parametrize("rate", sorted(BAUD_DIVISORS))
def test_scanner_baud_zone_round_trip(rate: int) -> None:
    low, high = BAUD_DIVISORS[rate].to_bytes(2, "little")
    assert baud_of_zones(low, high) == rate


def test_scannerbaud_command_is_the_manuals() -> None:
    # GM65 manual, "Serial command": set 9600 baud.
    assert baud_command(9600) == bytes.fromhex("7E 00 08 02 00 2A 39 01 A7 EA")


# The IR thermometer against a blackbody.
@pytest.fixture
def thermometer(tmp_path: Path) -> Iterator[SimulatedThermometer]:
    # A sensor that reads 0.6 °C low, at the frame rate of the real module (~14 Hz).
    with SimulatedThermometer(tmp_path / "thermo", interval_s=0.07, object_error_c=-0.6) as sim:
        yield sim


@pytest.fixture
def gate_config(tmp_path: Path) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(EXAMPLE_GATE.read_text(encoding="utf-8"), encoding="utf-8")
    path.chmod(0o640)
    return path


def test_thermo_calibrate__stable_reference(
    thermometer: SimulatedThermometer, gate_config: Path
) -> None:
    before = yaml.safe_load(gate_config.read_text(encoding="utf-8"))
    thermometer.blackbody(37.0, noise_c=0.05)
    out = io.StringIO()
    result = thermo_calibrate(str(thermometer.path), 37.0, 20, Progress(out), config=gate_config)
    assert result.offset_c == pytest.approx(0.6, abs=0.05)
    assert "mean 36." in out.getvalue() and "stdev" in out.getvalue()
    after = yaml.safe_load(gate_config.read_text(encoding="utf-8"))
    settings = after["devices"]["thermometer"].pop("settings")
    assert settings == {
        **before["devices"]["thermometer"]["settings"],
        "object_offset_c": result.offset_c,
    }
    before["devices"]["thermometer"].pop("settings")
    assert after == before  # every other key as it was
    assert gate_config.stat().st_mode & 0o777 == 0o640
    profile = DeviceSection.model_validate(
        {**after["devices"]["thermometer"], "settings": settings}
    ).load()
    assert isinstance(profile, ThermometerProfile) and profile.object_offset_c == result.offset_c


@pytest.mark.parametrize(
    ("noise_c", "drift_c_per_s", "max_spread_c", "why"),
    [(0.5, 0.0, 0.3, "spread"), (0.0, 0.4, 2.0, "drifted")],
)
def test_thermo_calibrate__unstable_reference_refused(
    thermometer: SimulatedThermometer, gate_config: Path, *, noise_c: float,
    drift_c_per_s: float, max_spread_c: float, why: str,
) -> None:  # fmt: skip
    written = gate_config.read_bytes()
    thermometer.blackbody(37.0, noise_c=noise_c, drift_c_per_s=drift_c_per_s)
    with pytest.raises(DeviceSetupError) as error:
        thermo_calibrate(
            str(thermometer.path), 37.0, 20, Progress(io.StringIO()), config=gate_config,
            max_spread_c=max_spread_c,
        )  # fmt: skip
    assert error.value.step == "stability" and why in error.value.reason
    assert gate_config.read_bytes() == written


@pytest.mark.parametrize("blackbody_c", [None, 37.6])
def test_thermo_calibrate__offset_beyond_bound_refused(
    thermometer: SimulatedThermometer, gate_config: Path, blackbody_c: float | None
) -> None:
    # Reference 45 °C read as 37 (a wrong setting), or no blackbody at all (the room, 22 °C):
    # a wrong setup, not a sensor error.
    written = gate_config.read_bytes()
    thermometer.blackbody(blackbody_c)
    with pytest.raises(DeviceSetupError) as error:
        thermo_calibrate(
            str(thermometer.path), 45.0, 10, Progress(io.StringIO()), config=gate_config
        )
    assert error.value.step == "stability" and "is the blackbody in front" in error.value.reason
    assert gate_config.read_bytes() == written


def test_write_offset__beyond_the_profile_refused(gate_config: Path) -> None:
    written = gate_config.read_bytes()
    with pytest.raises(DeviceSetupError) as error:
        write_offset(gate_config, 3.5)
    assert "devices.thermometer.settings.object_offset_c" in error.value.reason
    assert "less than or equal to 3" in error.value.reason
    assert gate_config.read_bytes() == written


def test_thermo_calibrate__config_without_thermometer_refused(
    thermometer: SimulatedThermometer, tmp_path: Path
) -> None:
    config = tmp_path / "depot.yaml"
    config.write_text("node: {role: depot}\n", encoding="utf-8")
    thermometer.blackbody(37.0)
    with pytest.raises(DeviceSetupError, match=r"devices\.thermometer: missing"):
        thermo_calibrate(str(thermometer.path), 37.0, 10, Progress(io.StringIO()), config=config)
    assert config.read_text(encoding="utf-8") == "node: {role: depot}\n"


def test_thermometer_driver_applies_object_offset() -> None:
    episode = PersonEpisode(ThermometerProfile(object_offset_c=0.6, settle_frames=3))
    readings = [episode.frame(TemperatureFrame(3600, 2200), at=float(i)) for i in range(3)]
    assert readings[-1] is not None and readings[-1].object_c == 36.6


# XY-MD02 sensors on an RS485 bus.
def sensor(slave_id: int, baud_code: int = 0) -> SimulatedSensor:
    return SimulatedSensor(slave_id, constant(4.0), constant(60.0), baud_code=baud_code)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[SimulatedModbusBus]:
    # Id 1 as shipped (9600); id 5 left at 19200 (code 2) by someone before.
    with SimulatedModbusBus(tmp_path / "rs485", [sensor(1), sensor(5, baud_code=2)]) as sim:
        sim.check_line_speed = True
        yield sim


def test_modbus_scan__finds_sensors_at_their_ids_and_speeds(bus: SimulatedModbusBus) -> None:
    out = io.StringIO()
    found = modbus_scan(str(bus.path), [9600, 19200], ["N", "E"], range(1, 9), Progress(out))
    assert [(f.slave_id, f.line.baudrate, f.line.parity) for f in found] == [
        (1, 9600, "N"), (5, 19200, "N"),
    ]  # fmt: skip
    assert [f.settings.slave_id for f in found if f.settings] == [1, 5]
    assert "parity E did not stick" in out.getvalue()  # a pty carries no parity


def test_modbus_address__moves_1_to_7(bus: SimulatedModbusBus) -> None:
    out = io.StringIO()
    threading.Timer(0.5, lambda: setattr(bus.faults, "power_cycle", True)).start()
    after = modbus_address(str(bus.path), 1, 7, Line(9600), Progress(out), wait_s=10)
    assert after.slave_id == 7
    assert "断电重启" in out.getvalue()
    profile = ModbusSensorProfile(reply_timeout_s=0.2, retries=0)
    with ModbusBus(str(bus.path), profile) as client:
        assert isinstance(client.poll(7), DepotReading)
        assert not isinstance(client.poll(1), DepotReading)


def test_modbus_address__new_id_and_speed(bus: SimulatedModbusBus) -> None:
    threading.Timer(0.5, lambda: setattr(bus.faults, "power_cycle", True)).start()
    after = modbus_address(
        str(bus.path), 1, 7, Line(9600), Progress(io.StringIO()), new_baud=19200, wait_s=10
    )
    assert (after.slave_id, after.baudrate) == (7, 19200)
    assert bus.sensors[7].baudrate == 19200  # stored as the code it held (0 -> 2)
    assert bus.sensors[7].baud_code == 2


def test_modbus_address__taken_id_refused(tmp_path: Path) -> None:
    with SimulatedModbusBus(tmp_path / "rs485", [sensor(1), sensor(7)]) as sim:
        with pytest.raises(DeviceSetupError, match="id 7 is taken"):
            modbus_address(str(sim.path), 1, 7, Line(9600), Progress(io.StringIO()), wait_s=1)
        assert not [r for r in sim.requests if r[1] == 0x06]  # nothing written
        assert {s.slave_id: s.stored_id for s in sim.sensors.values()} == {1: None, 7: None}


def test_modbus_address__no_answer_at_new_id_rolled_back(bus: SimulatedModbusBus) -> None:
    # Nobody cycles the power: id 7 never answers, and id 1 is told to keep id 1.
    with pytest.raises(DeviceSetupError) as error:
        modbus_address(str(bus.path), 1, 7, Line(9600), Progress(io.StringIO()), wait_s=0.5)
    assert error.value.step == "verify" and "rolled back" in error.value.reason
    power_cycle(bus)
    assert sorted(bus.sensors) == [1, 5]


# The command line.
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["modbus-scan", "P", "--ids", "0-5"], "slave id: 0 is outside 1-247"),
        (["modbus-scan", "P", "--ids", "9-2"], "runs backwards"),
        (["modbus-scan", "P", "--bauds", "9600,1234"], "'1234' is not one of"),
        (["modbus-scan", "P", "--parities", "N,X"], "X: give N, E or O"),
        (["modbus-address", "P", "--from", "1", "--to", "248"], "248 is outside 1-247"),
        (["thermo-calibrate", "P", "--reference", "80"], "--reference: 80.0 is outside 20-50"),
        (["thermo-calibrate", "P", "--reference", "37", "--samples", "2"], "outside 5-500"),
    ],
)
def test_cli__invalid(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["fw", "device", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_cli__scanner_setup_valid(
    scanner: SimulatedScanner, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fw", "device", "scanner-setup", str(scanner.path)]) == 0
    assert "done: 115200 baud, suffix cr" in capsys.readouterr().out


def test_cli__scanner_setup_error_exits_1(
    scanner: SimulatedScanner, capsys: pytest.CaptureFixture[str]
) -> None:
    scanner.refuse_save = True
    assert main(["fw", "device", "scanner-setup", str(scanner.path)]) == 1
    assert capsys.readouterr().err.startswith("error: save: the module refused it")
