"""A simulated GY-MCU90640 thermal array: a room at ambient, and people stepping in front of it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.devices.thermal_array import protocol
from edge.devices.thermal_array.forehead import skin_temperature
from edge.devices.thermal_array.profile import RATE_CODES, ThermalArrayProfile
from edge.devices.thermal_array.protocol import COLS, HEADER, ROWS, encode_frame
from simulators.devices.base import SimulatedPart

log = logging.getLogger(__name__)

Distance = Literal["ok", "far", "near"]
SUPERSAMPLE = 8  # sub-pixels per pixel side: a pixel sees the mean of its field of view
# Head half-width and half-height in pixels (55° lens): ~0.5 m, ~1.5 m and ~0.2 m away.
HEAD_AXES: dict[Distance, tuple[float, float]] = {
    "ok": (4.6, 6.2),
    "far": (2.5, 3.3),
    "near": (13.0, 17.5),
}
HAIRLINE = 0.18  # share of the head's height covered by hair, from the top
FOREHEAD_END = 0.42  # the forehead runs from the hairline to here; the face below is cooler
FACE_BELOW_FOREHEAD_C = 0.8
NECK_BELOW_FOREHEAD_C = 1.2
SELF_HEATING_C = 2.0  # the sensor's own temperature runs this much above the room's walls


@dataclass(frozen=True)
class Person:
    """Someone in front of the array until `until` (monotonic seconds)."""

    body_c: float
    distance: Distance
    until: float
    dx: float = 0.0
    dy: float = 0.0


def head_scene(
    ambient_c: float, person: Person | None, rng: np.random.Generator, *,
    profile: ThermalArrayProfile | None = None, noise_c: float = 0.1,
) -> NDArray[np.float32]:  # fmt: skip
    """One 24x32 picture: walls just below the sensor's temperature, a head if someone is there.

    The forehead is drawn at the skin temperature that `profile`'s compensation model
    maps to `person.body_c`, so a correct reader gets the body temperature back.

    Args:
        ambient_c: the sensor's own temperature (Ta), as the frame reports it.
        person: who stands there, or None for an empty scene.
        rng: noise source.
        profile: the compensation model (defaults: ThermalArrayProfile()).
        noise_c: per-pixel noise sigma (the MLX90640 gives ~0.1 °C at low rates).

    Returns:
        Temperatures in °C, row 0 at the top.
    """
    wall_c = ambient_c - SELF_HEATING_C
    size = (ROWS * SUPERSAMPLE, COLS * SUPERSAMPLE)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    yy, xx = (yy + 0.5) / SUPERSAMPLE, (xx + 0.5) / SUPERSAMPLE  # in pixel units
    fine = wall_c + np.float32(0.5) * yy / ROWS  # walls are not one flat value: a 0.5 °C slope
    if person is not None:
        skin_c = skin_temperature(person.body_c, ambient_c, profile or ThermalArrayProfile())
        fine = _draw_head(fine, (xx, yy), person, skin_c=skin_c, wall_c=wall_c)
    picture = cv2.resize(fine.astype(np.float32), (COLS, ROWS), interpolation=cv2.INTER_AREA)
    noise = rng.normal(0.0, noise_c, picture.shape).astype(np.float32)
    return np.asarray(picture + noise, dtype=np.float32)


def _draw_head(
    fine: NDArray[np.float32], grid: tuple[NDArray[np.float32], NDArray[np.float32]],
    person: Person, *, skin_c: float, wall_c: float,
) -> NDArray[np.float32]:  # fmt: skip
    xx, yy = grid
    a, b = HEAD_AXES[person.distance]
    cx, cy = COLS / 2 + person.dx, (ROWS / 2 if person.distance == "near" else b + 1.8)
    cy += person.dy
    inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1
    v = (yy - (cy - b)) / (2 * b)  # 0 at the top of the head, 1 at the chin
    face = np.where(v < FOREHEAD_END, skin_c, skin_c - FACE_BELOW_FOREHEAD_C)
    head = np.where(v < HAIRLINE, wall_c + 0.4 * (skin_c - wall_c), face)
    out = np.where(inside, head, fine)
    if person.distance == "ok":
        # A neck down to the frame's bottom edge: a real head is not an island.
        neck = (np.abs(xx - cx) <= a * 0.55) & (yy >= cy + 0.8 * b)
        out = np.where(neck & ~inside, skin_c - NECK_BELOW_FOREHEAD_C, out)
    return np.asarray(out, dtype=np.float32)


class SimulatedThermalArray(SimulatedPart):
    """Streams frames like the module (continuous output at 4 Hz after power-up).

    Args:
        path: where the pty symlink goes.
        baudrate: line speed; a frame is 1544 bytes (134 ms at 115200).
        rate_hz: frames per second until the host sets another rate.
        ambient_c: the sensor temperature reported in every frame.
        seed: noise seed.
        profile: the compensation model `present` draws foreheads with.
    """

    def __init__(
        self, path: Path, baudrate: int = 115200, *, rate_hz: float = 4.0,
        ambient_c: float = 23.0, seed: int = 0, profile: ThermalArrayProfile | None = None,
    ) -> None:  # fmt: skip
        super().__init__(path, baudrate, interval_s=1 / rate_hz)
        self.ambient_c = ambient_c
        self.profile = profile or ThermalArrayProfile()
        self.emissivity = 0.95  # the module's factory setting
        self.streaming = True
        self.commands: list[bytes] = []
        self._rng = np.random.default_rng(seed)
        self._person: Person | None = None
        self._frozen: bytes | None = None

    def present(self, body_c: float, distance: Distance = "ok", duration_s: float = 3.0) -> None:
        """Someone at `body_c` stands in front of the array for `duration_s`."""
        dx, dy = self._rng.uniform(-2.5, 2.5), self._rng.uniform(-0.5, 0.5)
        self._person = Person(body_c, distance, time.monotonic() + duration_s, dx, dy)

    def leave(self) -> None:
        """The person walks on now."""
        self._person = None

    def picture(self) -> NDArray[np.float32]:
        """The scene as it is now."""
        person = self._person
        if person is not None and time.monotonic() >= person.until:
            person = self._person = None
        return head_scene(self.ambient_c, person, self._rng, profile=self.profile)

    def next_frame(self) -> bytes | None:
        if not self.streaming:
            return None
        if not self.faults.stuck:
            self._frozen = None
            return encode_frame(self.picture(), self.ambient_c)
        # A stuck sensor freezes on the picture it takes as it fails, not on one it
        # already sent: the same bytes start arriving once the fault began.
        if self._frozen is None:
            self._frozen = encode_frame(self.picture(), self.ambient_c)
        return self._frozen

    def corrupt(self, frame: bytes) -> bytes:
        """A bit error in the middle of the pixels: the checksum no longer adds up."""
        middle = len(frame) // 2
        return frame[:middle] + bytes([frame[middle] ^ 0x10]) + frame[middle + 1 :]

    def reply(self, command: bytes) -> bytes | None:
        """Carry out every complete A5 command received; answer the emissivity query."""
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
            if protocol.command(cmd[1], cmd[2]) != cmd:
                log.info("thermal array ignores %s: bad sum", cmd.hex(" "))
                continue
            self.commands.append(cmd)
            answer += self._obey(cmd)
        del command  # the same bytes as self.received, which is consumed as it is used
        return answer or None

    def _obey(self, cmd: bytes) -> bytes:
        code, parameter = cmd[1], cmd[2]
        if cmd == protocol.STREAM_COMMAND:
            self.streaming = True
        elif cmd == protocol.QUERY_MODE_COMMAND:
            self.streaming = False
            return encode_frame(self.picture(), self.ambient_c)
        elif code == 0x25 and parameter in RATE_CODES.values():
            rate = next(hz for hz, p in RATE_CODES.items() if p == parameter)
            self.interval_s = 1 / rate
        elif code == 0x45 and parameter <= 100:
            self.emissivity = parameter / 100
        elif cmd == protocol.EMISSIVITY_QUERY:
            value = round(self.emissivity * 100)
            return HEADER + bytes((value, (sum(HEADER) + value) & 0xFF))
        return b""
