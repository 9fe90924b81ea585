"""Forehead temperature from 32x24 pictures, and one reading per person from a frame sequence."""

from __future__ import annotations

import numpy as np
import pytest

from edge.devices.base import TemperatureReading
from edge.devices.thermal_array.driver import PersonEpisode
from edge.devices.thermal_array.forehead import (
    FaceMeasure,
    body_temperature,
    measure,
    skin_temperature,
)
from edge.devices.thermal_array.profile import ThermalArrayProfile
from simulators.devices.thermal_array import Distance, Person, head_scene

PROFILE = ThermalArrayProfile()


def picture(
    ambient_c: float, body_c: float | None = None, distance: Distance = "ok", *,
    dx: float = 0.0, seed: int = 1,
) -> np.ndarray:  # fmt: skip
    """A room at `ambient_c`, with a person at `body_c` if given (drawn by the simulator)."""
    person = None if body_c is None else Person(body_c, distance, 0.0, dx, 0.0)
    return head_scene(ambient_c, person, np.random.default_rng(seed))


def with_object(pixels: np.ndarray, rows: slice, cols: slice, celsius: float) -> np.ndarray:
    out = pixels.copy()
    out[rows, cols] = celsius
    return out


@pytest.mark.parametrize(
    ("skin_c", "ambient_c", "body_c"),
    [(34.5, 23.0, 36.7), (34.0, 20.0, 36.95), (35.5, 25.0, 37.2), (34.5, 31.0, 34.7)],
)
def test_body_temperature__valid(skin_c: float, ambient_c: float, body_c: float) -> None:
    # The documented defaults: body = skin + 2.2 + 0.25 * (23 - ambient).
    assert body_temperature(skin_c, ambient_c, PROFILE) == pytest.approx(body_c)
    assert skin_temperature(body_c, ambient_c, PROFILE) == pytest.approx(skin_c)


@pytest.mark.parametrize(
    ("ambient_c", "body_c"),
    [(18.0, 36.4), (20.0, 36.9), (23.0, 36.6), (23.0, 38.4), (25.0, 37.2), (28.0, 36.2)],
)
def test_measure__valid(ambient_c: float, body_c: float) -> None:
    for seed, dx in enumerate((-3.0, 0.0, 2.5)):
        face = measure(picture(ambient_c, body_c, dx=dx, seed=seed), ambient_c, PROFILE)
        assert face.problem is None, (dx, face)
        assert face.body_c == pytest.approx(body_c, abs=0.2), (dx, face)
        assert face.skin_c == pytest.approx(skin_temperature(body_c, ambient_c, PROFILE), abs=0.2)


def test_measure_upside_down__valid() -> None:
    flipped = picture(23.0, 37.0)[::-1, ::-1]
    face = measure(flipped, 23.0, PROFILE.model_copy(update={"upside_down": True}))
    assert face.body_c == pytest.approx(37.0, abs=0.2)
    # Read the wrong way up, the neck is the top of the blob and the reading is wrong.
    assert measure(flipped, 23.0, PROFILE).body_c != pytest.approx(37.0, abs=0.2)


@pytest.mark.parametrize(
    ("pixels", "ambient_c", "problem"),
    [
        pytest.param(picture(23.0), 23.0, "no-face", id="empty room"),
        pytest.param(picture(23.0, 36.8, "far"), 23.0, "too-far", id="person far away"),
        pytest.param(picture(23.0, 36.8, "near"), 23.0, "too-close", id="face fills the frame"),
        pytest.param(
            with_object(picture(23.0), slice(5, 6), slice(10, 12), 45.0), 23.0, "no-face",
            id="a lamp: two hot pixels",
        ),
        pytest.param(
            with_object(picture(23.0), slice(5, 7), slice(10, 11), 34.5), 23.0, "no-face",
            id="warm spot of skin temperature, too small for a person",
        ),
        pytest.param(
            with_object(picture(23.0), slice(14, 20), slice(12, 17), 60.0), 23.0, "no-face",
            id="a cup of tea: head-sized but too hot for skin",
        ),
        pytest.param(
            with_object(picture(23.0), slice(17, 21), slice(8, 24), 33.0), 23.0, "no-face",
            id="a forearm on the counter: skin warm but wider than tall",
        ),
        pytest.param(picture(23.0, 33.5), 23.0, "out-of-range", id="forehead chilled outdoors"),
        pytest.param(picture(16.0, 43.5), 16.0, "out-of-range", id="estimate above 43 °C"),
    ],
)  # fmt: skip
def test_measure__invalid(pixels: np.ndarray, ambient_c: float, problem: str) -> None:
    face = measure(pixels, ambient_c, PROFILE)
    assert face.problem == problem, face
    assert face.body_c is None


@pytest.mark.parametrize(
    ("rows", "cols", "celsius"),
    [
        pytest.param(slice(14, 20), slice(24, 29), 60.0, id="a cup of tea beside the head"),
        pytest.param(slice(2, 3), slice(28, 30), 48.0, id="a lamp in a corner"),
        pytest.param(slice(20, 23), slice(0, 2), 35.0, id="a small warm spot"),
    ],
)
def test_measure_beside_hot_objects__valid(rows: slice, cols: slice, celsius: float) -> None:
    pixels = with_object(picture(23.0, 37.4, dx=-4.0), rows, cols, celsius)
    face = measure(pixels, 23.0, PROFILE)
    assert face.problem is None
    assert face.body_c == pytest.approx(37.4, abs=0.2)


OK = FaceMeasure(None, skin_c=34.6, body_c=36.8, area_px=110)
WARM = FaceMeasure(None, skin_c=35.0, body_c=37.2, area_px=110)
FAR = FaceMeasure("too-far", area_px=15)
NEAR = FaceMeasure("too-close", area_px=400)
EMPTY = FaceMeasure("no-face")


def outcome(reading: TemperatureReading) -> object:
    return reading.problem or reading.body_c


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        pytest.param([EMPTY] * 10, [], id="nothing while the scene is empty"),
        pytest.param([EMPTY, *[OK] * 12, EMPTY], [36.8], id="one reading however long one stays"),
        pytest.param([*[OK] * 5, EMPTY, EMPTY, *[OK] * 5], [36.8, 36.8], id="two people"),
        pytest.param([*[OK] * 2, EMPTY, *[OK] * 6], [36.8], id="one empty frame is no new person"),
        pytest.param([*[FAR] * 3, *[OK] * 4], [36.8], id="walking up is not too far"),
        pytest.param([*[FAR] * 9], ["too-far"], id="a problem is said once"),
        pytest.param([*[NEAR] * 4, *[OK] * 4], ["too-close", 36.8], id="too close, then steps back"),
        pytest.param([*[OK] * 4, *[NEAR] * 4], [36.8], id="no problem after the reading"),
        pytest.param([OK, WARM] * 4 + [WARM] * 4, [37.2], id="waits until steady"),
    ],
)  # fmt: skip
def test_episode__valid(frames: list[FaceMeasure], expected: list[object]) -> None:
    episode = PersonEpisode(PROFILE)
    readings = [episode.update(face, 23.0, float(i)) for i, face in enumerate(frames)]
    assert [outcome(r) for r in readings if r is not None] == expected


def test_episode_reading__valid() -> None:
    episode = PersonEpisode(PROFILE)
    frames = [OK, OK, FaceMeasure(None, skin_c=34.7, body_c=36.9, area_px=112), OK]
    [reading] = [r for i, f in enumerate(frames) if (r := episode.update(f, 22.5, float(i)))]
    assert reading == TemperatureReading(
        "thermal-array", 3.0, body_c=36.8, object_c=34.6, ambient_c=22.5
    )
