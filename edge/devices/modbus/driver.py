"""Polls XY-MD02-class sensors on one RS485 bus through pymodbus's serial client."""

# pymodbus does the Modbus RTU framing, CRC-16, answer matching and retries; it reports
# every answer it could not use (no answer, a bad CRC, an answer from another slave id,
# line noise) as the same ModbusIOException "No response received". To tell a depot
# keeper which of them it was, the bus keeps the bytes pymodbus received for the request
# (its `trace_packet` hook) and asks pymodbus's own RTU framer what they were.

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU

from edge.devices.base import DeviceError
from edge.devices.modbus.profile import ModbusSensorProfile
from edge.devices.modbus.protocol import (
    BAUD_CODES,
    SLAVE_ID_REGISTER,
    Calibration,
    DepotReading,
    OutOfRange,
    SensorFaultKind,
    decode,
)

log = logging.getLogger(__name__)

SLAVE_IDS = range(1, 248)  # Modbus RTU unicast addresses


@dataclass(frozen=True)
class SensorFault:
    """Why a poll gave no reading; the next poll of any sensor starts afresh."""

    slave_id: int
    kind: SensorFaultKind
    detail: str
    at: float


@dataclass(frozen=True)
class ModuleSettings:
    """What a module has stored in holding registers 0x0101-0x0102.

    `baud_code` is the register as read: the XY-MD02 sheet lists codes (0: 9600,
    1: 14400, 2: 19200), but some firmware keeps the rate itself (9600) there.
    """

    slave_id: int
    baud_code: int

    @property
    def baudrate(self) -> int | None:
        """The bus speed the module keeps, read either way; None for a value neither way."""
        if self.baud_code in BAUD_CODES:
            return BAUD_CODES[self.baud_code]
        return self.baud_code if self.baud_code in BAUD_CODES.values() else None


class ModbusBus:
    """One RS485 bus: one serial port, several sensors with distinct slave ids.

    An RS485 pair carries one request at a time: a lock makes calls from several
    threads wait their turn, though a node normally polls its sensors from one thread.

    Args:
        port: anything `serial.serial_for_url` opens: `/dev/ttyUSB0`, a pty path,
            `socket://host:port`, `spy:///dev/ttyUSB0`. pymodbus opens it itself.
        profile: the bus's line settings, register map, timeout and retries.
        calibrations: offsets per slave id; sensors not named read uncorrected.
        clock: monotonic time of each reading (a test may pass its own).
    """

    def __init__(
        self, port: str, profile: ModbusSensorProfile,
        calibrations: Mapping[int, Calibration] | None = None, *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.port = port
        self.profile = profile
        self.calibrations = dict(calibrations or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._received: list[bytes] = []
        self._framer = FramerRTU(DecodePDU(False))
        self._client = ModbusSerialClient(
            port,
            baudrate=profile.baudrate,
            parity=profile.parity,
            stopbits=profile.stopbits,
            timeout=profile.reply_timeout_s,
            retries=profile.retries,
            trace_packet=self._trace,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    def close(self) -> None:
        """Close the port; the next poll opens it again."""
        with self._lock:
            self._client.close()  # type: ignore[no-untyped-call]  # pymodbus: untyped

    def poll(self, slave_id: int) -> DepotReading | SensorFault:
        """Ask one sensor for temperature and humidity.

        Args:
            slave_id: the sensor's Modbus address, 1..247.

        Returns:
            Its calibrated reading, or a SensorFault: `timeout` (no answer: dead or
            unpowered), `crc` (answers damaged on the line), `wrong-slave` (only another
            id answered; never taken as this sensor's values), `out-of-range` (an error
            code or values no sensor gives), `refused` (a Modbus exception answer, e.g.
            a register map the module does not have) or `bus` (the port failed, or
            noise that was no frame).

        Raises:
            DeviceError: a slave id outside 1..247 (a config error, not a sensor fault).
        """
        first = self.profile.temperature_register
        read = (
            self._client.read_input_registers
            if self.profile.input_function == 4
            else self._client.read_holding_registers
        )
        answer = self._ask(slave_id, lambda: read(first, count=2, device_id=slave_id))
        if isinstance(answer, SensorFault):
            return answer
        calibration = self.calibrations.get(slave_id, Calibration())
        reading = decode(slave_id, list(answer.registers), calibration, self._clock())
        if isinstance(reading, OutOfRange):
            return self._fault(slave_id, "out-of-range", reading.detail)
        return reading

    def read_settings(self, slave_id: int) -> ModuleSettings | SensorFault:
        """Read a module's stored slave id and baud code (holding registers 0x0101-0x0102).

        Args:
            slave_id: the address to ask, 1..247.

        Returns:
            The stored settings, or a SensorFault as for `poll`.
        """
        answer = self._ask(
            slave_id,
            lambda: self._client.read_holding_registers(
                SLAVE_ID_REGISTER, count=2, device_id=slave_id
            ),
        )
        if isinstance(answer, SensorFault):
            return answer
        stored_id, baud_code = answer.registers[:2]
        return ModuleSettings(slave_id=stored_id, baud_code=baud_code)

    def _ask(self, slave_id: int, request: Callable[[], ModbusPDU]) -> ModbusPDU | SensorFault:
        if slave_id not in SLAVE_IDS:
            raise DeviceError(f"slave id {slave_id} is outside 1..247")
        with self._lock:
            self._received.clear()
            try:
                answer = request()
            except ModbusIOException as exc:
                kind, detail = self._diagnose(slave_id)
                return self._fault(slave_id, kind, f"{detail} ({exc.string})")
            except ModbusException as exc:
                # ConnectionException and the like: the port is gone or cannot open.
                self._client.close()  # type: ignore[no-untyped-call]  # pymodbus: untyped
                return self._fault(slave_id, "bus", f"{self.port}: {exc}")
        if answer.isError():
            return self._fault(slave_id, "refused", f"exception code {answer.exception_code}")
        if len(answer.registers) < 2:
            return self._fault(slave_id, "bus", f"{len(answer.registers)} registers answered")
        return answer

    def _trace(self, sending: bool, data: bytes) -> bytes:
        # pymodbus passes everything it has buffered so far, and each retry anew.
        if not sending:
            self._received.append(bytes(data))
        return data

    def _diagnose(self, slave_id: int) -> tuple[SensorFaultKind, str]:
        """What pymodbus received but did not accept: another id's frame, a bad CRC, or noise."""
        if not any(self._received):
            return "timeout", "no answer"
        crc_failed = False
        for chunk in self._received:
            for start in range(len(chunk)):
                used, dev_id, _, frame = self._framer.decode(chunk[start:])
                if frame and dev_id != slave_id:
                    return "wrong-slave", f"answer from slave id {dev_id}, not {slave_id}"
                crc_failed |= bool(used and not frame)
        seen = " ".join(chunk.hex(" ") for chunk in self._received)[:200]
        if crc_failed:
            return "crc", f"answer with a bad CRC: {seen}"
        return "bus", f"noise that is no Modbus frame: {seen}"

    def _fault(self, slave_id: int, kind: SensorFaultKind, detail: str) -> SensorFault:
        log.debug("slave %s on %s: %s: %s", slave_id, self.port, kind, detail)
        return SensorFault(slave_id=slave_id, kind=kind, detail=detail, at=self._clock())
