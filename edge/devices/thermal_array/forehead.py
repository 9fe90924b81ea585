"""Forehead skin temperature in a 32x24 thermal picture, and the body temperature it implies."""

# Method (hardware/protocols/gy-mcu90640-thermal-array.md, "Forehead"):
#  1. pixels >= skin_min_c, and at least skin_above_background_c above the background (the
#     lower of the frame's 20th percentile and Ta: in a warm room hair and walls pass 30 °C),
#     grouped into 8-connected blobs (cv2.connectedComponentsWithStats);
#  2. blobs that cannot be a head are dropped: fewer than min_blob_px pixels (a lamp, a
#     match, a hot pixel), hotter than skin_max_c (a cup of tea, a heater) or wider than
#     max_aspect x their height while wholly in view (a forearm on the counter, a radiator);
#  3. the largest remaining blob is the face; no blob: no-face; fewer than min_face_px
#     pixels: too-far; more than max_face_px, or spanning the whole height with
#     edge_touch_px pixels on both the top and bottom rows: too-close;
#  4. the forehead is the blob's top forehead_fraction of the head's height (the head is
#     at most 1.4x as tall as wide, so a neck below it does not stretch the band), and
#     its skin temperature is the forehead_percentile of those pixels: a high one, since
#     the hairline and the head's curved edges read cool, yet not the maximum, which one
#     noisy pixel would set;
#  5. body_c = skin_c + offset_c + ambient_k * (reference_ambient_c - ambient_c): a cooler
#     room cools the forehead, so more is added to reach body temperature.

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.devices.base import TemperatureProblem
from edge.devices.thermal_array.profile import ThermalArrayProfile
from edge.devices.thermal_array.protocol import Pixels

HEAD_HEIGHT_PER_WIDTH = 1.4


@dataclass(frozen=True)
class FaceMeasure:
    """What one picture says: a skin and body temperature, or why there is none."""

    problem: TemperatureProblem | None
    skin_c: float | None = None
    body_c: float | None = None
    area_px: int = 0


def body_temperature(skin_c: float, ambient_c: float, profile: ThermalArrayProfile) -> float:
    """The body temperature a forehead at `skin_c` implies at `ambient_c` (linear model)."""
    return skin_c + profile.offset_c + profile.ambient_k * (profile.reference_ambient_c - ambient_c)


def skin_temperature(body_c: float, ambient_c: float, profile: ThermalArrayProfile) -> float:
    """The forehead temperature of a person at `body_c`: the inverse of `body_temperature`."""
    return body_c - profile.offset_c - profile.ambient_k * (profile.reference_ambient_c - ambient_c)


def measure(pixels: Pixels, ambient_c: float, profile: ThermalArrayProfile) -> FaceMeasure:
    """Find the face in one picture and read its forehead.

    Args:
        pixels: temperatures in °C, shape (24, 32), row 0 at the top of the picture.
        ambient_c: the module's own temperature (Ta) of the same frame.
        profile: thresholds and the compensation model.

    Returns:
        The measure, with `problem` set when the picture cannot give a temperature.
    """
    if profile.upside_down:
        pixels = pixels[::-1, ::-1]
    face = _face_mask(pixels, ambient_c, profile)
    if face is None:
        return FaceMeasure("no-face")
    area = int(face.sum())
    rows = np.flatnonzero(face.any(axis=1))
    cols = np.flatnonzero(face.any(axis=0))
    if area < profile.min_face_px:
        return FaceMeasure("too-far", area_px=area)
    fills_height = (
        face[0].sum() >= profile.edge_touch_px and face[-1].sum() >= profile.edge_touch_px
    )
    if area > profile.max_face_px or fills_height:
        return FaceMeasure("too-close", area_px=area)
    top, height = int(rows[0]), int(rows[-1] - rows[0] + 1)
    head_height = min(height, HEAD_HEIGHT_PER_WIDTH * (cols[-1] - cols[0] + 1))
    band = max(1, round(profile.forehead_fraction * head_height))
    forehead = pixels[top : top + band][face[top : top + band]]
    skin_c = float(np.percentile(forehead, profile.forehead_percentile))
    body_c = body_temperature(skin_c, ambient_c, profile)
    if not profile.body_min_c <= body_c <= profile.body_max_c:
        return FaceMeasure("out-of-range", skin_c=skin_c, area_px=area)
    return FaceMeasure(None, skin_c=skin_c, body_c=body_c, area_px=area)


def skin_threshold(pixels: Pixels, ambient_c: float, profile: ThermalArrayProfile) -> float:
    """The coolest pixel that may be skin in this picture.

    In a room of 27 °C or more, hair (a layer between scalp and room) and then the walls
    pass a fixed 30 °C and would join the face, making the "forehead" band hair. The
    background is the lower of the picture's 20th percentile (mostly room, unless a face
    fills the frame) and Ta (a little above the room).
    """
    background = min(float(np.percentile(pixels, 20)), ambient_c)
    return max(profile.skin_min_c, background + profile.skin_above_background_c)


def _face_mask(pixels: Pixels, ambient_c: float, profile: ThermalArrayProfile) -> np.ndarray | None:
    """Boolean mask of the largest warm blob that could be a head, or None."""
    # OpenCV costs a node ~30 MB: loaded when a thermal array first sends a frame, not
    # by every node that imports the device registry.
    import cv2

    warm = np.asarray(pixels >= skin_threshold(pixels, ambient_c, profile), dtype=np.uint8)
    count, labels, stats, _centroids = cv2.connectedComponentsWithStats(warm, connectivity=8)
    best, best_area = 0, 0
    for label in range(1, count):
        width = int(stats[label, cv2.CC_STAT_WIDTH])
        height = int(stats[label, cv2.CC_STAT_HEIGHT])
        area = int(stats[label, cv2.CC_STAT_AREA])
        if area < profile.min_blob_px or area <= best_area:
            continue
        top = int(stats[label, cv2.CC_STAT_TOP])
        cut = top == 0 or top + height == pixels.shape[0]  # its height is not all in view
        if width > profile.max_aspect * height and not cut:
            continue
        if np.percentile(pixels[labels == label], profile.forehead_percentile) > profile.skin_max_c:
            continue
        best, best_area = label, area
    return np.asarray(labels == best) if best else None
