"""The camera's side of bench/phone_screens.py: lens blur, the scene's light, the sensor.

Everything here works on the 640x480 frame (or SUPERSAMPLE x it, for the lens), in linear
light, as bench/phone_screens.py's module docstring describes steps 4 and 5.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

WIDTH, HEIGHT = 640, 480
SUPERSAMPLE = 3  # optical samples per camera pixel along each axis

Floats = NDArray[np.float32]


def lens_psf(defocus: float, shake: float, angle: float) -> Floats:
    """Defocus disk (radius in camera px) convolved with a hand-shake line, at fine scale."""
    s = SUPERSAMPLE
    reach = math.ceil((defocus + shake / 2) * s) + 1
    size = 2 * reach + 1
    disk = np.zeros((size, size), np.float32)
    cv2.circle(disk, (reach, reach), max(0, round(defocus * s)), 1.0, -1, lineType=cv2.LINE_AA)
    line = np.zeros((size, size), np.float32)
    dx, dy = math.cos(angle) * shake * s / 2, math.sin(angle) * shake * s / 2
    cv2.line(line, (round(reach - dx), round(reach - dy)), (round(reach + dx), round(reach + dy)),
             1.0, 1, lineType=cv2.LINE_AA)  # fmt: skip
    kernel = cv2.filter2D(disk, -1, line, borderType=cv2.BORDER_CONSTANT)
    return np.asarray(kernel / kernel.sum(), np.float32)


def scene_light(rng: np.random.Generator) -> Floats:
    """Illuminance over the frame: 1.0 at the centre, a window or lamp to one side."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xs - WIDTH / 2) + np.sin(angle) * (ys - HEIGHT / 2)) / WIDTH
    return np.asarray(np.clip(1 + rng.uniform(0.2, 1.2) * ramp, 0.2, None), np.float32)


def background(rng: np.random.Generator) -> Floats:
    """Reflectance of what is behind the phone: clothes (a weave), skin blobs (the hand)."""
    low = rng.uniform(0.05, 0.5, (6, 8, 3)).astype(np.float32)
    base = cv2.resize(low, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(3, 14)
    weave = np.sin((np.cos(angle) * xs + np.sin(angle) * ys) * 2 * np.pi / period)
    base *= (1 + rng.uniform(0.1, 0.4) * weave)[..., None]
    skin = np.array([0.25, 0.35, 0.55], np.float32) * rng.uniform(0.5, 1.2)
    blobs = np.zeros((HEIGHT, WIDTH), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        centre = (int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT)))
        axes = (int(rng.integers(30, 140)), int(rng.integers(15, 50)))
        cv2.ellipse(blobs, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    soft = np.asarray(cv2.GaussianBlur(blobs, (0, 0), 4), np.float32)[..., None]
    return np.asarray(np.clip(base * (1 - soft) + skin * soft, 0, 1), np.float32)


def vignetting(focal: float) -> Floats:
    """The lens's fall-off: cos^4 of the field angle."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    r2 = ((xs - WIDTH / 2) ** 2 + (ys - HEIGHT / 2) ** 2) / focal**2
    return np.asarray(1 / (1 + r2) ** 2, np.float32)


def sensor(
    scene: Floats, rng: np.random.Generator, r: dict[str, tuple[float, float]]
) -> NDArray[np.uint8]:
    """Auto exposure, RGGB mosaic, shot and read noise, demosaic, gamma: 8-bit BGR."""
    exposure = rng.uniform(0.14, 0.24) / max(float(scene.mean()), 1e-4)
    bayer = np.empty((HEIGHT, WIDTH), np.float32)
    bayer[0::2, 0::2] = scene[0::2, 0::2, 2]  # R
    bayer[0::2, 1::2] = scene[0::2, 1::2, 1]  # G
    bayer[1::2, 0::2] = scene[1::2, 0::2, 1]  # G
    bayer[1::2, 1::2] = scene[1::2, 1::2, 0]  # B
    bayer *= exposure
    full_scale = rng.uniform(*r["full scale"])
    electrons = rng.poisson(np.clip(bayer, 0, 1.5) * full_scale).astype(np.float32)
    electrons += rng.normal(0, rng.uniform(*r["read noise"]), bayer.shape).astype(np.float32)
    raw = np.clip(electrons / full_scale, 0, 1)
    raw16 = np.asarray(np.rint(raw * 65535), np.uint16)
    # OpenCV names this RGGB layout 'BG' (after the second row's pair).
    linear = cv2.cvtColor(raw16, cv2.COLOR_BayerBG2BGR).astype(np.float32) / 65535
    return np.asarray(np.rint(255 * np.power(linear, 1 / 2.2)), np.uint8)
