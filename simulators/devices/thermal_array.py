"""A simulated GY-MCU90640 thermal array: wire protocol, settings, and a scene in front of it."""

# Written from the module manual's tables (hardware/protocols/gy-mcu90640-thermal-array.md),
# not from the driver: nothing here comes from edge/devices/thermal_array, so frames, replies
# and pictures are an independent emulation the driver is tested against.
#
#   frame     5A 5A 02 06 | 768 x int16 pixels °C x 100 | int16 Ta x 100 | uint16 sum of words
#   reply     5A 5A EE SS   (emissivity x 100, SS = low byte of 5A + 5A + EE)
#   command   A5 CC PP SS   (SS = low byte of A5 + CC + PP)

from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from simulators.devices.base import SimulatedPart
from simulators.devices.thermal_scene import Person, Sensor, ThermalScene

log = logging.getLogger(__name__)

Distance = Literal["ok", "far", "near"]
DISTANCE_M: dict[Distance, float] = {"ok": 0.5, "far": 1.5, "near": 0.2}
RATES_HZ = {0x00: 0.5, 0x01: 1.0, 0x02: 2.0, 0x03: 4.0, 0x04: 8.0}  # A5 25 xx
HEAD = b"\x5a\x5a"


def frame_bytes(pixels: NDArray[np.floating], ta_c: float) -> bytes:
    """The 1544 bytes the module sends for a picture (row 0 first, 32 pixels a row)."""
    values = np.append(np.asarray(pixels, dtype=np.float64).reshape(-1), ta_c)
    words = np.clip(np.rint(values * 100), -32768, 32767).astype("<i2").tobytes()
    body = HEAD + b"\x02\x06" + bytes(words)
    checked: tuple[int, ...] = struct.unpack(f"<{len(body) // 2}H", body)
    return body + (sum(checked) & 0xFFFF).to_bytes(2, "little")


def command_ok(command: bytes) -> bool:
    """A four-byte command whose check byte adds up."""
    return len(command) == 4 and command[0] == 0xA5 and sum(command[:3]) & 0xFF == command[3]


@dataclass
class Settings:
    """What the module runs with: the host sets them, a save command stores them."""

    emissivity: float = 0.95  # the factory setting
    rate_hz: float = 4.0
    streaming: bool = True  # continuous output after power-up, as shipped


class SimulatedThermalArray(SimulatedPart):
    """Streams frames like the module; `present` puts a person in front of it.

    Args:
        path: where the pty symlink goes.
        baudrate: line speed; a frame is 1544 bytes (134 ms at 115200).
        rate_hz: frames per second until the host sets another rate.
        room_c: the room's air and walls; the module reports Ta a little above it.
        seed: noise, fixed pattern and where people stand.
        person_sd_c: how much people's skin differs from the average person's (0: all
            alike, so a test can compare readings with body temperatures).
        unit_offset_c: this module's calibration error, the same on every pixel.
    """

    # The STM32 starts at once; the MLX90640 needs a few frames to settle its readings.
    power_up_s = 0.6

    def __init__(
        self, path: Path, baudrate: int = 115200, *, rate_hz: float = 4.0,
        room_c: float = 21.0, seed: int = 0, person_sd_c: float = 0.0,
        unit_offset_c: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(path, baudrate, interval_s=1 / rate_hz)
        self._rng = np.random.default_rng(seed)
        sensor = Sensor(self._rng, rate_hz=rate_hz, offset_c=unit_offset_c)
        self.scene = ThermalScene(room_c, sensor)
        self.person_sd_c = person_sd_c
        self.saved = Settings(rate_hz=rate_hz)
        self.settings = Settings(**vars(self.saved))
        self.commands: list[bytes] = []
        self._until = 0.0
        self._frozen: bytes | None = None

    @property
    def emissivity(self) -> float:
        """The emissivity the module converts with now."""
        return self.settings.emissivity

    def present(
        self, body_c: float, distance: Distance | float = "ok", duration_s: float = 3.0
    ) -> None:
        """Someone with this core temperature stands in front of the array for `duration_s`.

        Args:
            body_c: core temperature (what a clinical thermometer would say).
            distance: "ok" (0.5 m), "far" (1.5 m), "near" (0.2 m) or metres.
            duration_s: then they walk on.
        """
        metres = DISTANCE_M[distance] if isinstance(distance, str) else distance
        dx, dy = self._rng.uniform(-0.05, 0.05), self._rng.uniform(-0.03, 0.03)
        shift = self._rng.normal(0.0, self.person_sd_c) if self.person_sd_c else 0.0
        with self._lock:
            self.scene.person = Person(body_c, metres, dx, dy, shift)
            self._until = time.monotonic() + duration_s

    def leave(self) -> None:
        """The person walks on now."""
        with self._lock:
            self.scene.person = None

    def picture(self) -> NDArray[np.float64]:
        """The pixels the module would report now."""
        with self._lock:
            if self.scene.person is not None and time.monotonic() >= self._until:
                self.scene.person = None
            return self.scene.picture(self.settings.emissivity)

    def frame(self) -> bytes:
        """The frame the module would send now."""
        return frame_bytes(self.picture(), self.scene.ta_c)

    def next_frame(self) -> bytes | None:
        if not self.settings.streaming:
            return None
        if not self.faults.stuck:
            self._frozen = None
            return self.frame()
        # A stuck sensor freezes on the picture it takes as it fails, not on one it
        # already sent: the same bytes start arriving once the fault began.
        if self._frozen is None:
            self._frozen = self.frame()
        return self._frozen

    def corrupt(self, frame: bytes) -> bytes:
        """A bit error in the middle of the pixels: the checksum no longer adds up."""
        middle = len(frame) // 2
        return frame[:middle] + bytes([frame[middle] ^ 0x10]) + frame[middle + 1 :]

    def power_up(self) -> None:
        """Back to the stored settings: an emissivity set but not saved is gone."""
        self.settings = Settings(**vars(self.saved))
        self.interval_s = 1 / self.settings.rate_hz

    def reply(self, command: bytes) -> bytes | None:
        """Carry out every complete A5 command received; answer the emissivity query."""
        del command  # the same bytes as self.received, which is consumed as it is used
        answer = b""
        while len(self.received) >= 4:
            start = self.received.find(0xA5)
            if start < 0:
                self.received.clear()
                break
            del self.received[:start]
            if len(self.received) < 4:
                break
            cmd = bytes(self.received[:4])
            del self.received[:4]
            if not command_ok(cmd):
                log.info("thermal array ignores %s: bad sum", cmd.hex(" "))
                continue
            self.commands.append(cmd)
            answer += self._obey(cmd[1], cmd[2])
        return answer or None

    def _obey(self, code: int, parameter: int) -> bytes:
        settings = self.settings
        if (code, parameter) == (0x35, 0x02):
            settings.streaming = True
        elif (code, parameter) == (0x35, 0x01):
            settings.streaming = False
            return self.frame()
        elif code == 0x25 and parameter in RATES_HZ:
            settings.rate_hz = RATES_HZ[parameter]
            self.interval_s = 1 / settings.rate_hz
        elif code == 0x45 and 1 <= parameter <= 100:
            settings.emissivity = parameter / 100
        elif (code, parameter) == (0x55, 0x01):
            value = round(settings.emissivity * 100)
            return HEAD + bytes((value, (sum(HEAD) + value) & 0xFF))
        elif (code, parameter) == (0x65, 0x01):
            self.saved = Settings(**vars(settings))
        return b""
