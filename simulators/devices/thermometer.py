"""A simulated GY-MCU90614-class IR thermometer: frames every interval, people stepping up."""

from __future__ import annotations

import random
import time
from pathlib import Path

from edge.devices.thermometer.protocol import (
    AUTO_OUTPUT_AT_POWER_UP,
    BAUD_9600,
    BAUD_115200,
    CONTINUOUS_OUTPUT,
    NO_AUTO_OUTPUT_AT_POWER_UP,
    QUERY_OUTPUT,
    encode_frame,
    parse_command,
)
from simulators.devices.base import SimulatedPart

OBJECT_NOISE_RAW = 5  # ±0.05 °C on a forehead: well inside a 0.3 °C settle spread
IDLE_NOISE_RAW = 30  # nobody there: the sensor sees the room, within ±0.3 °C


class SimulatedThermometer(SimulatedPart):
    """A GY-MCU90614 behind a pty, streaming like the real module (about 14 Hz there).

    Args:
        path: where the symlink to the pty goes.
        baudrate: line speed.
        interval_s: period of the frames.
        ambient_c: room temperature; its last digit jitters from frame to frame.
        skin_offset_c: body minus forehead skin temperature, so `present(body_c)` shows
            body_c - skin_offset_c to the sensor.
        seed: for the noise, so a scenario replays the same.
        auto_output_at_power_up: the stored setting (`A5 51` / `A5 52`): false, and the
            module stays silent after power-up until told `A5 45`.
        object_error_c: the sensor's own error, added to what it sees of a person or a
            blackbody (what `object_offset_c` in the profile corrects).

    Attributes:
        streaming: sends frames every interval.
        instructions: every valid A5 instruction received, in order.
        auto_output_at_power_up, baud_at_power_up: the stored settings.
    """

    # MLX90614 datasheet: the first measurement is ready about 0.25 s after power-on.
    power_up_s = 0.3

    def __init__(
        self, path: Path, baudrate: int = 9600, interval_s: float = 0.1, *,
        ambient_c: float = 22.0, skin_offset_c: float = 0.0, seed: int = 0,
        auto_output_at_power_up: bool = True, object_error_c: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(path, baudrate, interval_s)
        self.ambient_c = ambient_c
        self.skin_offset_c = skin_offset_c
        self.auto_output_at_power_up = auto_output_at_power_up
        self.streaming = auto_output_at_power_up
        self.instructions: list[int] = []
        self.baud_at_power_up = baudrate
        self._rng = random.Random(seed)
        self._person_c: float | None = None
        self._person_until = 0.0
        self._jitter = 0
        self._last_frame: bytes | None = None
        self.object_error_c = object_error_c
        self._reference: tuple[float, float, float, float] | None = None

    def blackbody(
        self, reference_c: float | None, noise_c: float = 0.05, drift_c_per_s: float = 0.0
    ) -> None:
        """A blackbody calibrator in front of the sensor until called with None.

        Args:
            reference_c: the calibrator's set temperature; None takes it away.
            noise_c: each frame is off by up to this much (uniform): a calibrator still
                settling or a hand in the way shows as a larger value.
            drift_c_per_s: how fast the calibrator's temperature moves (not yet settled).
        """
        with self._lock:
            if reference_c is None:
                self._reference = None
            else:
                self._reference = (reference_c, noise_c, drift_c_per_s, time.monotonic())

    def present(self, body_c: float, duration_s: float = 0.6) -> None:
        """A person steps in front of the sensor, then away.

        Args:
            body_c: their body temperature; the sensor sees body_c - skin_offset_c.
            duration_s: how long they stay; then the object is the room again.
        """
        with self._lock:
            self._person_c = body_c - self.skin_offset_c
            self._person_until = time.monotonic() + duration_s

    def next_frame(self) -> bytes | None:
        return self.frame() if self.streaming else None

    def frame(self) -> bytes:
        """The frame the sensor would send now (the same bytes again while stuck)."""
        with self._lock:
            if self.faults.stuck and self._last_frame is not None:
                return self._last_frame
            # A live ambient never repeats for long: step the last digit every frame.
            self._jitter = self._rng.choice([j for j in (-1, 0, 1) if j != self._jitter])
            ambient_raw = round(self.ambient_c * 100) + self._jitter
            if self._reference is not None:
                reference_c, noise_c, drift, since = self._reference
                seen = reference_c + drift * (time.monotonic() - since) + self.object_error_c
                object_raw = round((seen + self._rng.uniform(-noise_c, noise_c)) * 100)
            elif self._person_c is not None and time.monotonic() < self._person_until:
                noise = self._rng.randint(-OBJECT_NOISE_RAW, OBJECT_NOISE_RAW)
                object_raw = round((self._person_c + self.object_error_c) * 100) + noise
            else:
                self._person_c = None
                object_raw = ambient_raw + self._rng.randint(-IDLE_NOISE_RAW, IDLE_NOISE_RAW)
            self._last_frame = encode_frame(object_raw, ambient_raw)
            return self._last_frame

    def power_up(self) -> None:
        """Streaming or silent as stored: an `A5 45` sent before the restart is forgotten."""
        self.streaming = self.auto_output_at_power_up

    def corrupt(self, frame: bytes) -> bytes:
        """Bit 6 of the object's high byte flipped: a +163.84 °C error the sum must catch."""
        return frame[:4] + bytes([frame[4] ^ 0x40]) + frame[5:]

    def reply(self, command: bytes) -> bytes | None:
        answer = b""
        while True:
            instruction, used = parse_command(command)
            if not used:
                break
            del self.received[:used]
            command = command[used:]
            if instruction is not None:
                self.instructions.append(instruction)
                answer += self._obey(instruction)
        return answer or None

    def _obey(self, instruction: int) -> bytes:
        if instruction == CONTINUOUS_OUTPUT:
            self.streaming = True
        elif instruction == QUERY_OUTPUT:
            return self.frame()
        elif instruction in (AUTO_OUTPUT_AT_POWER_UP, NO_AUTO_OUTPUT_AT_POWER_UP):
            self.auto_output_at_power_up = instruction == AUTO_OUTPUT_AT_POWER_UP
        elif instruction in (BAUD_9600, BAUD_115200):
            self.baud_at_power_up = 9600 if instruction == BAUD_9600 else 115200
        return b""
