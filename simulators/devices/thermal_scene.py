"""What a 32x24 MLX90640 behind a 55° lens reports for a room with, or without, a person in it."""

# Modelled from physics and stated physiological assumptions, never from the driver's model
# (edge/devices/thermal_array), so the accuracy a test measures against this scene is a
# measurement, not an echo. Nothing here imports the driver. The chain:
#
#  1. Skin: each region of the head is a steady heat balance between the body's core,
#     through tissue and blood flow (conductance K, W/m²K), and the room, by convection
#     and radiation (h ~ 8 W/m²K in still indoor air):
#         T_skin = T_core - (T_core - T_room) * h / (h + K)
#     A well-perfused forehead (K ~ 50) sits ~2.2 °C below core in a 21 °C room and
#     follows the room by 0.14 °C per °C; a nose (K ~ 12) is far cooler and colder rooms
#     cool it much more. Hair and clothes insulate: their surface lies between the skin
#     below and the room.
#  2. Radiance: a surface sends eps*T^4 and reflects (1 - eps)*T_room^4 (T in kelvin).
#     A pixel sees the mean *radiance* of everything in its 1.7° x 1.5° field of view
#     (supersampled), smeared a little into its neighbours (optical crosstalk). At 0.5 m a
#     pixel spans 1.5 cm, so the edges of the face mix with hair and the wall behind.
#  3. The module's MCU turns radiance back into a temperature with the emissivity it was
#     told and a reflected temperature of Ta - 8 °C (Melexis's default), then adds its
#     noise: ~0.1 °C rms at 1 Hz, growing with the square root of the rate; a fixed
#     pattern per pixel; and an offset per unit (the datasheet allows ±1 °C).
#  4. Ta, the module's own temperature, runs `self_heating_c` above the room.

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

ROWS, COLS = 24, 32
FOV_DEG = (55.0, 35.0)  # BAB lens: horizontal, vertical
SUPERSAMPLE = 6  # sub-samples per pixel side
KELVIN = 273.15
H_ROOM = 8.0  # W/m²K, skin to still room air: convection ~3, radiation ~5
# Tissue conductance with blood flow, W/m²K (the forehead is warm and barely vasoconstricts;
# the nose is cool and varies most with the room).
CONDUCTANCE = {"forehead": 50.0, "canthus": 80.0, "eyes": 40.0, "face": 30.0, "nose": 12.0}
NECK_CONDUCTANCE = 45.0
HAIR_SHARE = 0.35  # hair surface: this share of the way from room to scalp temperature
CLOTH_SHARE = 0.45
EMISSIVITY = {"skin": 0.98, "hair": 0.92, "cloth": 0.90, "wall": 0.93}
MCU_REFLECTED_BELOW_TA_C = 8.0
CROSSTALK = 0.044  # share a pixel gets from each side neighbour (Gaussian PSF, sigma 0.4 px)

# A head seen from the front, metres: 15 cm wide, 23 cm crown to chin.
HEAD_HALF_WIDTH, HEAD_HALF_HEIGHT = 0.075, 0.115
NECK_HALF_WIDTH, NECK_LENGTH, SHOULDER_HALF_WIDTH = 0.055, 0.09, 0.22

Pixels = NDArray[np.float64]


@dataclass(frozen=True)
class Person:
    """Someone in front of the array.

    Attributes:
        core_c: body (core) temperature, what a clinical thermometer says.
        distance_m: from the lens to the face.
        dx_m, dy_m: the face's centre beside and above the lens's axis.
        skin_shift_c: this person's skin warmer (+) or cooler than the average person's
            (sweat, a hat just taken off, make-up): physiology no reader can know.
    """

    core_c: float
    distance_m: float = 0.5
    dx_m: float = 0.0
    dy_m: float = 0.0
    skin_shift_c: float = 0.0


@dataclass
class Sensor:
    """One module: its optics' grid, its noise, its fixed pattern and its offset.

    Args:
        rng: noise source; the fixed pattern is drawn from it once.
        rate_hz: frames per second (noise grows with it).
        offset_c: this unit's error, the same on every pixel.
        pattern_c: sigma of the per-pixel fixed pattern left after factory calibration.
        self_heating_c: Ta above the room.
    """

    rng: np.random.Generator
    rate_hz: float = 4.0
    offset_c: float = 0.0
    pattern_c: float = 0.1
    self_heating_c: float = 2.0
    pattern: NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        self.pattern = self.rng.normal(0.0, self.pattern_c, (ROWS, COLS))

    @property
    def noise_c(self) -> float:
        """Per-pixel noise sigma: ~0.1 °C at 1 Hz (datasheet), growing as the rate's root."""
        return 0.1 * float(np.sqrt(self.rate_hz))

    def report(self, radiance: NDArray[np.float64], ta_c: float, emissivity: float) -> Pixels:
        """Temperatures as the module's MCU computes and sends them."""
        t_reflected = (ta_c - MCU_REFLECTED_BELOW_TA_C + KELVIN) ** 4
        seen = np.maximum(radiance - (1 - emissivity) * t_reflected, 1.0) / emissivity
        noise = self.rng.normal(0.0, self.noise_c, (ROWS, COLS))
        return np.asarray(seen**0.25 - KELVIN + self.offset_c + self.pattern + noise)


def skin_c(core_c: float, room_c: float, conductance: float) -> float:
    """Skin temperature of a region with this tissue conductance (the heat balance above)."""
    return core_c - (core_c - room_c) * H_ROOM / (H_ROOM + conductance)


def view_grid(distance_m: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Where each sub-sample's line of sight meets the plane of the face (x right, y up)."""
    rows, cols = ROWS * SUPERSAMPLE, COLS * SUPERSAMPLE
    azimuth = ((np.arange(cols) + 0.5) / cols - 0.5) * np.radians(FOV_DEG[0])
    elevation = (0.5 - (np.arange(rows) + 0.5) / rows) * np.radians(FOV_DEG[1])
    x = distance_m * np.tan(azimuth)[np.newaxis, :]
    y = distance_m * np.tan(elevation)[:, np.newaxis]
    return np.broadcast_to(x, (rows, cols)), np.broadcast_to(y, (rows, cols))


def person_layers(person: Person, room_c: float) -> list[tuple[NDArray[np.bool_], float, float]]:
    """The person as (mask, surface °C, emissivity) layers on the sub-sample grid, back first."""
    x, y = view_grid(person.distance_m)
    u = (x - person.dx_m) / HEAD_HALF_WIDTH  # -1..1 across the head
    v = (person.dy_m + HEAD_HALF_HEIGHT - y) / (2 * HEAD_HALF_HEIGHT)  # 0 crown .. 1 chin
    head = u**2 + (2 * v - 1) ** 2 <= 1

    def skin(conductance: float) -> float:
        return skin_c(person.core_c, room_c, conductance) + person.skin_shift_c

    chin_y = person.dy_m - HEAD_HALF_HEIGHT
    neck = (abs(x - person.dx_m) <= NECK_HALF_WIDTH) & (y <= chin_y + 0.02)
    body = (abs(x - person.dx_m) <= SHOULDER_HALF_WIDTH) & (y <= chin_y - NECK_LENGTH)
    neck_c = skin(NECK_CONDUCTANCE)
    hairline = 0.26 + 0.06 * u**2
    hair = head & ((v < hairline) | ((abs(u) > 0.85) & (v < 0.55)))
    eyes = head & (v >= 0.40) & (v < 0.50)
    # The inner corners of the eyes, beside the bridge of the nose: ~0.8 x 1.4 cm each.
    canthus = eyes & (abs(abs(u) - 0.19) < 0.05) & (v >= 0.42) & (v < 0.48)
    nose = head & (abs(u) < 0.15) & (v >= 0.45) & (v < 0.68)
    forehead_c = skin(CONDUCTANCE["forehead"])
    return [
        (neck, neck_c, EMISSIVITY["skin"]),
        (body, room_c + CLOTH_SHARE * (neck_c - room_c), EMISSIVITY["cloth"]),
        (head, skin(CONDUCTANCE["face"]), EMISSIVITY["skin"]),
        (head & (v < 0.40), forehead_c, EMISSIVITY["skin"]),
        (eyes, skin(CONDUCTANCE["eyes"]), EMISSIVITY["skin"]),
        (canthus, skin(CONDUCTANCE["canthus"]), EMISSIVITY["skin"]),
        (nose, skin(CONDUCTANCE["nose"]), EMISSIVITY["skin"]),
        (hair, room_c + HAIR_SHARE * (forehead_c - room_c), EMISSIVITY["hair"]),
    ]


def radiance(room_c: float, person: Person | None) -> NDArray[np.float64]:
    """Mean radiance (eps*T^4 + reflected room, kelvin^4) in each pixel's field of view."""
    rows, cols = ROWS * SUPERSAMPLE, COLS * SUPERSAMPLE
    room_k4 = (room_c + KELVIN) ** 4
    # Walls are not one flat value: warm air rises, so the top is 0.4 °C warmer.
    wall_c = room_c - 0.2 + 0.4 * (1 - (np.arange(rows) + 0.5) / rows)[:, np.newaxis]
    eps = EMISSIVITY["wall"]
    fine = np.broadcast_to(eps * (wall_c + KELVIN) ** 4 + (1 - eps) * room_k4, (rows, cols))
    if person is not None:
        fine = fine.copy()
        for mask, surface_c, eps in person_layers(person, room_c):
            fine[mask] = eps * (surface_c + KELVIN) ** 4 + (1 - eps) * room_k4
    pixels = fine.reshape(ROWS, SUPERSAMPLE, COLS, SUPERSAMPLE).mean(axis=(1, 3))
    return crosstalk(pixels)


def crosstalk(pixels: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each pixel also sees a little of its four neighbours (edges repeat themselves)."""
    padded = np.pad(pixels, 1, mode="edge")
    sides = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    return np.asarray((pixels + CROSSTALK * sides) / (1 + 4 * CROSSTALK))


@dataclass
class ThermalScene:
    """A room at `room_c` seen by `sensor`, with `person` in it or not.

    Args:
        room_c: air and wall temperature.
        sensor: the module looking at it.
        person: who stands there, if anyone.
    """

    room_c: float
    sensor: Sensor
    person: Person | None = None

    @property
    def ta_c(self) -> float:
        """The module's own temperature, which it reports as Ta."""
        return self.room_c + self.sensor.self_heating_c

    def picture(self, emissivity: float) -> Pixels:
        """One frame's pixels as the module reports them, set to `emissivity`."""
        return self.sensor.report(radiance(self.room_c, self.person), self.ta_c, emissivity)
