"""A simulated RS485 bus of XY-MD02-class Modbus RTU sensors behind one pty, with faults."""

# Wire format (Modbus over Serial Line v1.02, section 2.5; register map in
# hardware/protocols/xy-md02-modbus.md):
#
#   request  host -> bus     id | fc | addr_hi addr_lo | count_hi count_lo | crc_lo crc_hi
#   answer   sensor -> host  id | fc | byte count | value_hi value_lo ... | crc_lo crc_hi
#   refusal  sensor -> host  id | fc + 0x80 | exception code | crc_lo crc_hi
#
# This is the SERVER side, written here rather than run on pymodbus's server so that every
# fault (a bad CRC, another slave id, noise between frames) is one line to switch on. Its
# CRC is computed independently of pymodbus, so a client bug cannot hide behind it.

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edge.devices.modbus.protocol import BAUD_CODES, encode
from simulators.devices.base import SimulatedPart

Signal = Callable[[float], float]  # a value at a time on the bus's clock, in seconds

REQUEST_BYTES = 8  # functions 03 and 04: id, fc, address, count, CRC
INPUT_REGISTERS = range(0x0001, 0x0003)
HOLDING_REGISTERS = range(0x0101, 0x0103)
ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
WRITE_SINGLE = 0x06  # firmware-tools' id and baud changes: the answer echoes the request
# An SHT20 module answers within a few ms of the request's end (XY-MD02 sheet: < 20 ms).
PROCESSING_S = 0.005


def crc16(data: bytes) -> bytes:
    """Modbus CRC-16 (polynomial 0xA001 reflected, start 0xFFFF), low byte first.

    Args:
        data: the frame before its CRC.

    Returns:
        The two CRC bytes as sent on the wire: crc16(01 04 00 01 00 02) == 20 0B.
    """
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


class CompressedClock:
    """Time on a bus that runs `speedup` times faster than the wall: hours in seconds.

    Args:
        speedup: simulated seconds per real second.
        start: the simulated time now.
    """

    def __init__(self, speedup: float = 1.0, start: float = 0.0) -> None:
        self.speedup = speedup
        self.start = start
        self._began = time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self._began) * self.speedup


@dataclass
class SensorFaults:
    """Faults of one sensor, switched on and off while the bus runs.

    Attributes:
        dead: it answers nothing (unpowered, broken A/B wire).
        bad_crc: its answers arrive with a damaged CRC.
        answer_as: it answers with this slave id instead of its own (a misaddressed module).
        raw_temperature, raw_humidity: register values sent instead of the measurement,
            e.g. 0x7FFF, the error code some modules send for a failed element.
        noise_after: bytes of line noise after each of its answer slots, between frames
            (also when dead: noise where an answer should be).
    """

    dead: bool = False
    bad_crc: bool = False
    answer_as: int | None = None
    raw_temperature: int | None = None
    raw_humidity: int | None = None
    noise_after: bytes = b""


@dataclass
class SimulatedSensor:
    """One XY-MD02-class module on the bus.

    Attributes:
        slave_id: its address, 1..247.
        temperature_c, humidity_rh: the true values over time (no calibration error).
        calibration_error_c: what the module adds to the true temperature (a site's
            calibration offset should remove it).
        baud_code: what it has stored in holding register 0x0102.
        answers_03_for_input: answers function 03 on registers 0x0001-0x0002 too.
        faults: its faults now, switched by a test.
        schedule: its faults at a time on the bus's clock, asked once per answer (a
            scenario's dead hour, or noise on a share of answers); overrides `faults`.
        requests: requests addressed to it so far.
        stored_id, stored_baud_code: written by function 06 to 0x0101 / 0x0102; like the
            module (per ya-modbus) it keeps running with its old id and speed until its
            power is cycled (the bus's `faults.power_cycle`); None: nothing written.
    """

    slave_id: int
    temperature_c: Signal
    humidity_rh: Signal
    calibration_error_c: float = 0.0
    baud_code: int = 0
    answers_03_for_input: bool = False
    faults: SensorFaults = field(default_factory=SensorFaults)
    schedule: Callable[[float], SensorFaults] | None = None
    requests: int = 0
    stored_id: int | None = None
    stored_baud_code: int | None = None

    @property
    def baudrate(self) -> int:
        """The speed it runs at, from its baud register read either way (code or rate)."""
        return BAUD_CODES.get(self.baud_code, self.baud_code)

    def power_up(self) -> None:
        """Run with what was written to its holding registers."""
        if self.stored_id is not None:
            self.slave_id, self.stored_id = self.stored_id, None
        if self.stored_baud_code is not None:
            self.baud_code, self.stored_baud_code = self.stored_baud_code, None

    def write(self, register: int, value: int) -> int | None:
        """A function 06 write; the Modbus exception code when refused, else None."""
        if register == 0x0101 and 1 <= value <= 247:
            self.stored_id = value
        elif register == 0x0102 and (value in BAUD_CODES or value in BAUD_CODES.values()):
            self.stored_baud_code = value
        elif register in HOLDING_REGISTERS:
            return ILLEGAL_DATA_VALUE
        else:
            return ILLEGAL_DATA_ADDRESS
        return None

    def faults_at(self, at: float) -> SensorFaults:
        """Its faults at time `at`: the schedule's if it has one, else `faults`."""
        return self.faults if self.schedule is None else self.schedule(at)

    def registers(self, at: float, faults: SensorFaults | None = None) -> dict[int, int]:
        """Every register it answers at time `at` (input 0x0001-2 and holding 0x0101-2)."""
        faults = self.faults if faults is None else faults
        temperature, humidity = encode(
            self.temperature_c(at) + self.calibration_error_c, self.humidity_rh(at)
        )
        if faults.raw_temperature is not None:
            temperature = faults.raw_temperature & 0xFFFF
        if faults.raw_humidity is not None:
            humidity = faults.raw_humidity & 0xFFFF
        return {
            0x0001: temperature,
            0x0002: humidity,
            0x0101: self.slave_id if self.stored_id is None else self.stored_id,
            0x0102: self.baud_code if self.stored_baud_code is None else self.stored_baud_code,
        }


def constant(value: float) -> Signal:
    """A signal that stays at `value` (a sensor in a steady room)."""
    return lambda _at: value


class SimulatedModbusBus(SimulatedPart):
    """An RS485 bus of sensors behind a pty, answering Modbus RTU functions 03, 04 and 06.

    With `check_line_speed`, a sensor hears only a host at its own speed (its baud
    register; the speed the host set is read from the pty, SimulatedPart.host_speed),
    as on a bus where one module was left at another speed. Off by default: the bus's
    `baudrate` then only sets the timing, and every sensor answers.

    Args:
        path: where the symlink to the pty goes (like a udev rule's /dev/gatepost-rs485).
        sensors: the modules on the bus, with distinct slave ids.
        baudrate: bus speed; answers take as long as they would on the wire.
        parity: "N", "E" or "O" for the byte timing only: a pty carries no parity bit,
            and pyserial fails to set one on a Linux pty (EINVAL), so the node side of a
            simulated bus opens it with parity N.
        stopbits: 1 or 2 (likewise).
        clock: the time the sensors' signals are read at; a CompressedClock runs hours
            of a scenario in seconds.
    """

    def __init__(
        self, path: Path, sensors: Iterable[SimulatedSensor], baudrate: int = 9600, *,
        parity: str = "N", stopbits: int = 1, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        super().__init__(path, baudrate)
        self.sensors = {sensor.slave_id: sensor for sensor in sensors}
        self.bits_per_char = 1 + 8 + (parity != "N") + stopbits
        self.clock = clock
        self.requests: list[bytes] = []
        self.check_line_speed = False

    @property
    def char_s(self) -> float:
        """Time of one character on the wire."""
        return self.bits_per_char / self.baudrate

    def reply(self, command: bytes) -> bytes | None:
        while len(self.received) >= REQUEST_BYTES:
            request = bytes(self.received[:REQUEST_BYTES])
            if crc16(request[:-2]) != request[-2:]:
                del self.received[:1]  # not a frame start: hunt for the next one
                continue
            del self.received[:REQUEST_BYTES]
            self.requests.append(request)
            sensor = self.sensors.get(request[0])
            if sensor is not None and self.check_line_speed:
                sensor = sensor if self.host_speed() == sensor.baudrate else None
            if sensor is not None:  # a request for nobody gets no answer, as on a real bus
                self._answer(sensor, request)
        return None

    def _answer(self, sensor: SimulatedSensor, request: bytes) -> None:
        sensor.requests += 1
        at = self.clock()
        faults = sensor.faults_at(at)
        # A slave answers after the request's 3.5-character end gap and its own processing.
        time.sleep(3.5 * self.char_s + PROCESSING_S)
        if not faults.dead:
            answer_id = sensor.slave_id if faults.answer_as is None else faults.answer_as
            frame = bytes([answer_id]) + self._pdu(sensor, request, at, faults)
            check = crc16(frame)
            if faults.bad_crc:
                check = bytes([check[0] ^ 0x5A, check[1]])
            self.send(frame + check)
        if faults.noise_after:
            time.sleep(10 * self.char_s)  # well after the frame: noise between frames
            with self._lock:
                if self._pty:
                    self._write(faults.noise_after)

    def _pdu(
        self, sensor: SimulatedSensor, request: bytes, at: float, faults: SensorFaults
    ) -> bytes:
        function = request[1]
        first = int.from_bytes(request[2:4], "big")
        count = int.from_bytes(request[4:6], "big")
        if function == WRITE_SINGLE:  # count is the value written
            refused = sensor.write(first, count)
            return request[1:6] if refused is None else bytes([function | 0x80, refused])
        wanted = range(first, first + count)
        readable = {
            0x04: INPUT_REGISTERS,
            0x03: HOLDING_REGISTERS,
        }
        if function not in readable:
            return bytes([function | 0x80, ILLEGAL_FUNCTION])
        allowed = [readable[function]]
        if function == 0x03 and sensor.answers_03_for_input:
            allowed.append(INPUT_REGISTERS)
        if not count or not any(_within(wanted, area) for area in allowed):
            return bytes([function | 0x80, ILLEGAL_DATA_ADDRESS])
        values = sensor.registers(at, faults)
        data = b"".join(values[address].to_bytes(2, "big") for address in wanted)
        return bytes([function, len(data)]) + data

    def power_up(self) -> None:
        """Every sensor runs with what was written to it; the bus finds them by their new ids."""
        for sensor in self.sensors.values():
            sensor.power_up()
        self.sensors = {sensor.slave_id: sensor for sensor in self.sensors.values()}

    def _write(self, data: bytes) -> None:
        # As the base, but a character is 10 or 12 bits depending on the bus's parity and stop bits.
        assert self._pty is not None
        with contextlib.suppress(OSError):
            self._pty.write(data)
        time.sleep(len(data) * self.char_s)


def _within(wanted: range, area: range) -> bool:
    return wanted.start >= area.start and wanted.stop <= area.stop


def noise(count: int, seed: int = 0) -> bytes:
    """Line noise that holds no Modbus frame start (bytes 0x30-0x7E: no function code).

    Args:
        count: how many bytes.
        seed: the same seed gives the same noise.

    Returns:
        The bytes.
    """
    rng = random.Random(seed)
    return bytes(rng.randint(0x30, 0x7E) for _ in range(count))
