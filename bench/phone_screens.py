"""Seeded 640x480 USB-camera pictures of a phone showing a QR code, physically modelled.

A picture is made the way a gate camera makes one, in linear light:

1. the app screen at the phone's own resolution (720-1440 px wide): header bar, text
   lines, a button and a white card with the code (conformance `HC1:` texts, QR versions
   16-23 at level Q, some at M, as the EU DCC apps draw them) at a whole number of screen
   pixels per module, 2-4 modules of quiet zone;
2. the screen as an emissive grid: every screen pixel three RGB stripes with a black matrix
   between them, integrated analytically over each sample's footprint, in a phone body with
   a dark bezel; a specular glare spot and the ambient reflection on the glass;
3. the phone plane posed in 3D (tilt about any in-plane axis, any roll) in front of a
   pinhole camera of 60-70 deg horizontal field of view, at the distance that gives the
   drawn pixels per module, sampled 3x3 per camera pixel (perspective by the homography);
4. the optics on that fine image: defocus (disk PSF) and hand shake (line PSF), then the
   sensor's area integration (INTER_AREA to 640x480: aliasing of the pixel grid, i.e.
   moire, comes from here and nowhere else), lens vignetting (cos^4);
5. the scene around the phone: clothes texture and skin-tone blobs (the hand) under uneven
   ambient light; auto exposure on the frame's mean; an RGGB Bayer sensor with shot and
   read noise, clipping, demosaicing, gamma, and MJPEG at the camera's quality.

Difficulty ranges (`RANGES`):

    parameter                     ordinary          hard
    pixels per module (drawn)     1.95 - 4.0        1.7 - 3.0
    tilt of the phone             0 - 25 deg        10 - 35 deg
    defocus disk radius           0 - 0.6 px        0.3 - 1.3 px
    hand-shake length             0 - 1.2 px        0 - 2.5 px
    glare: chance, peak / white   35 %, 0.2 - 0.7   60 %, 0.4 - 1.3
    screen white / ambient white  1.5 - 5           0.7 - 10
    sensor full scale (e-)        3000 - 9000       1000 - 3000
    read noise (e-)               2 - 5             3 - 8
    JPEG quality                  60 - 85           50 - 75

They were tuned until the old decoder (zxing-cpp, then a sharpened pass) read about what
it reads of the independent set of 640x480 phone pictures (79 % / 30 %): a harder first
draft gave it 77 % / 13 % (100 pictures a difficulty), so blur, noise and small modules
were made milder before the decoder was changed; a last step, taken after it was changed
and measured with the old decoder only, lowered ordinary's smallest modules from 2.0 to
1.95 px (86.5 % -> 81.5 % on the bench's 200; the new decoder reads 100 % and 99 %).
Plain zxing-cpp reads 66.5 % / 17 % here, against 75.5 % / 23.8 % there: our blur costs
its unsharpened pass more than theirs did.
Roll is any angle in both. Each picture records the pixels per module it shows: the square
root of the code's area in the frame over its modules across (quiet zone excluded).

Every picture has its own generator seeded by (seed, difficulty, kind, index), so the
first 60 pictures of a set are the same whatever its size.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import segno
from numpy.typing import NDArray

from bench.camera_model import (
    HEIGHT,
    SUPERSAMPLE,
    WIDTH,
    Floats,
    background,
    lens_psf,
    scene_light,
    sensor,
    vignetting,
)

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared/conformance/dgc-testdata"
Difficulty = Literal["ordinary", "hard"]
DIFFICULTIES: tuple[Difficulty, ...] = ("ordinary", "hard")
Code = Literal["readable", "none", "scratched", "covered"]
"""What the screen shows: a readable code, no code, a code scratched beyond its error
correction, or a code half covered by a thumb and glare."""

# (low, high) per parameter; see the module docstring.
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "ordinary": {
        "ppm": (1.95, 4.0), "tilt": (0, 25), "defocus": (0, 0.6), "shake": (0, 1.2),
        "glare": (0.2, 0.7), "screen/ambient": (1.5, 5), "full scale": (3000, 9000),
        "read noise": (2, 5), "jpeg": (60, 85),
    },
    "hard": {
        "ppm": (1.7, 3.0), "tilt": (10, 35), "defocus": (0.3, 1.3), "shake": (0, 2.5),
        "glare": (0.4, 1.3), "screen/ambient": (0.7, 10), "full scale": (1000, 3000),
        "read noise": (3, 8), "jpeg": (50, 75),
    },
}  # fmt: skip
GLARE_CHANCE = {"ordinary": 0.35, "hard": 0.6}
SCREENS = ((720, 1600), (1080, 2340), (1080, 2400), (1170, 2532), (1440, 3200))


@dataclass(frozen=True)
class PhoneScreen:
    """One picture: what a camera delivers (BGR) and what it holds."""

    difficulty: str
    frame: NDArray[np.uint8]
    text: str | None
    ppm: float


def hcert_texts(root: Path = CONFORMANCE) -> list[str]:
    """The distinct `HC1:` texts of the conformance cases whose picture must decode."""
    texts: dict[str, None] = {}
    for path in sorted(root.rglob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        readable = case.get("EXPECTEDRESULTS", {}).get("EXPECTEDPICTUREDECODE") is True
        if readable and case.get("PREFIX", "").startswith("HC1:") and case.get("2DCODE"):
            texts[case["PREFIX"]] = None
    return list(texts)


def phone_screens(
    count: int, difficulty: Difficulty, seed: int, texts: list[str], code: Code = "readable"
) -> list[PhoneScreen]:
    """`count` pictures of one difficulty; picture i is the same in any set with this seed.

    Args:
        count: how many pictures.
        difficulty: "ordinary" or "hard" (the ranges in `RANGES`).
        seed: the set's seed.
        texts: the texts to encode, taken in turn (e.g. `hcert_texts()`).
        code: what the screen shows; only "readable" pictures carry their text.

    Returns:
        The pictures, in order.
    """
    level = DIFFICULTIES.index(difficulty)
    kinds = ("readable", "none", "scratched", "covered")
    return [
        picture(
            np.random.default_rng([seed, level, kinds.index(code), i]),
            difficulty, texts[i % len(texts)], code,
        )
        for i in range(count)
    ]  # fmt: skip


def picture(rng: np.random.Generator, difficulty: Difficulty, text: str, code: Code) -> PhoneScreen:
    """One picture of the phone showing `text` (see the module docstring for the steps)."""
    r = RANGES[difficulty]
    modules = qr_modules(text, "M" if rng.random() < 0.3 else "Q", int(rng.integers(8)))
    if code == "scratched":
        modules = _scratched(modules, rng)
    screen, code_box = app_screen(modules, rng, with_code=code != "none")
    pose = Pose.drawn(rng, r, code_box, screen.shape, modules.shape[0])
    ambient = scene_light(rng)
    bright = rng.uniform(*r["screen/ambient"])
    glare = (
        rng.uniform(*r["glare"]) if code == "covered" or rng.random() < GLARE_CHANCE[difficulty]
        else 0.0
    )  # fmt: skip
    fine, cover = render_phone(
        screen, pose, rng, bright=bright, glare=glare, covered=code == "covered"
    )
    psf = lens_psf(rng.uniform(*r["defocus"]), rng.uniform(*r["shake"]), rng.uniform(0, np.pi))
    fine = np.asarray(cv2.filter2D(fine, -1, psf, borderType=cv2.BORDER_REFLECT), np.float32)
    phone = cv2.resize(fine, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    # The phone's outline is blurred after sampling: only the light needs the PSF before
    # it (moire), and the outline's edge against the scene is all that changes.
    coarse = cv2.resize(cover, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    alpha = cv2.GaussianBlur(
        coarse, (0, 0), max(0.3, float(np.sqrt((psf > 0).sum() / np.pi)) / SUPERSAMPLE)
    )[..., None]
    scene = phone + (1 - alpha) * background(rng) * ambient[..., None]
    scene *= vignetting(pose.focal)[..., None]
    frame = sensor(scene, rng, r)
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(*r["jpeg"]))])
    assert ok
    decoded = np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8)
    carried = text if code == "readable" else None
    return PhoneScreen(difficulty, decoded, carried, pose.ppm)


# --- the screen --------------------------------------------------------------------


@lru_cache(maxsize=256)
def _matrix(text: str, error: str, mask: int) -> bytes:
    qr = segno.make(text, error=error, mask=mask, micro=False, boost_error=False)
    return bytes(np.array(qr.matrix, np.uint8).ravel())


def qr_modules(text: str, error: str, mask: int) -> NDArray[np.uint8]:
    """The code's modules, 1 = dark, without quiet zone (segno, as an app would draw it).

    The mask pattern is drawn, not chosen by segno's penalty scores: scoring all eight
    costs ~40 ms a code in pure Python, and encoders differ in the mask they pick anyway.
    """
    flat = np.frombuffer(_matrix(text, error, mask), np.uint8)
    side = math.isqrt(flat.size)
    return flat.reshape(side, side).copy()


def _scratched(modules: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """Flip a third of the modules outside the finders, at random: past any level's repair."""
    n = modules.shape[0]
    damaged = modules.copy()
    flip = rng.random((n, n)) < 0.35
    flip[:8, :8] = flip[:8, -8:] = flip[-8:, :8] = False  # keep the finders: it is "seen"
    damaged[flip] ^= 1
    return damaged


def app_screen(
    modules: NDArray[np.uint8], rng: np.random.Generator, with_code: bool = True
) -> tuple[NDArray[np.uint8], tuple[float, float, float]]:
    """The app as the phone draws it: RGB at screen resolution, and the code's (u, v, side).

    The code is drawn at a whole number of screen pixels per module, centred on a white
    card; a code-free screen keeps the card with text in its place.
    """
    width, height = SCREENS[rng.integers(len(SCREENS))]
    dark = rng.random() < 0.25  # dark mode: the card stays white, the page does not
    page = (28, 28, 32) if dark else tuple(int(v) for v in rng.integers(235, 256, 3))
    screen = np.empty((height, width, 3), np.uint8)
    screen[:] = page
    accent = tuple(int(v) for v in rng.integers(0, 200, 3))
    header = int(height * rng.uniform(0.06, 0.10))
    screen[:header] = accent
    _text_line(screen, (int(width * 0.06), int(header * 0.65)), width * 0.5, (255, 255, 255), rng)

    quiet = int(rng.integers(2, 5))
    across = modules.shape[0] + 2 * quiet
    pixels = max(3, int(width * rng.uniform(0.60, 0.88)) // across)
    side = pixels * across
    u0 = (width - side) // 2
    v0 = header + int(height * rng.uniform(0.05, 0.15))
    card = int(width * 0.03)
    cv2.rectangle(screen, (u0 - card, v0 - card), (u0 + side + card, v0 + side + card),
                  (255, 255, 255), -1)  # fmt: skip
    ink = np.full(3, 255, np.uint8)
    ink_dark = np.array([int(v) for v in rng.integers(0, 30, 3)], np.uint8)
    if with_code:
        big = np.kron(modules, np.ones((pixels, pixels), np.uint8)).astype(bool)
        block = np.where(big[..., None], ink_dark, ink)
        at = u0 + quiet * pixels, v0 + quiet * pixels
        screen[at[1] : at[1] + big.shape[0], at[0] : at[0] + big.shape[1]] = block
    else:
        for k in range(int(rng.integers(3, 9))):
            y = v0 + int((k + 1) * side / 10)
            _text_line(screen, (u0 + card, y), side * rng.uniform(0.3, 0.9), (40, 40, 40), rng)
    text_colour = (230, 230, 230) if dark else (50, 50, 50)
    y = v0 + side + 2 * card
    while y < height * 0.85:
        _text_line(screen, (int(width * 0.08), y), width * rng.uniform(0.3, 0.8), text_colour, rng)
        y += int(height * rng.uniform(0.03, 0.05))
    button = (int(width * 0.1), int(height * 0.9)), (int(width * 0.9), int(height * 0.96))
    cv2.rectangle(screen, *button, accent, -1)
    code_side = pixels * modules.shape[0]
    centre = u0 + side / 2, v0 + side / 2
    return screen, (centre[0], centre[1], float(code_side))


def _text_line(
    screen: NDArray[np.uint8], at: tuple[int, int], length: float,
    colour: tuple[int, int, int], rng: np.random.Generator,
) -> None:  # fmt: skip
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 :.-"
    scale = screen.shape[1] / 900
    words = "".join(letters[i] for i in rng.integers(len(letters), size=int(length / 20 / scale)))
    cv2.putText(
        screen, words, at, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, round(2 * scale))
    )


# --- the pose and the rendering ----------------------------------------------------


@dataclass(frozen=True)
class Pose:
    """The screen plane in front of the camera.

    `homography` maps screen pixels (u, v, 1) to camera pixels (pixel centres at integer
    coordinates); `pitch` is the screen's pixel pitch in mm.
    """

    homography: NDArray[np.float64]
    focal: float
    pitch: float
    ppm: float

    @staticmethod
    def drawn(
        rng: np.random.Generator, r: dict[str, tuple[float, float]],
        code_box: tuple[float, float, float], screen_shape: tuple[int, ...], across: int,
    ) -> Pose:  # fmt: skip
        """A pose that shows the whole code inside the frame at about the drawn ppm."""
        u_c, v_c, side_px = code_box
        pitch = rng.uniform(65, 75) / screen_shape[1]  # the phone is 65-75 mm wide
        focal = (WIDTH / 2) / math.tan(math.radians(rng.uniform(60, 70)) / 2)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * side_px / 2
        corners += (u_c, v_c)
        for _ in range(50):
            ppm = rng.uniform(*r["ppm"])
            distance = focal * (side_px / across) * pitch / ppm
            axis = rng.uniform(0, 2 * np.pi)
            tilt = math.radians(rng.uniform(*r["tilt"]))
            tilt_vec = np.array([math.cos(axis), math.sin(axis), 0.0]) * tilt
            rotation = (
                cv2.Rodrigues(tilt_vec)[0]
                @ cv2.Rodrigues(np.array([0.0, 0.0, rng.uniform(-np.pi, np.pi)]))[0]
            )
            centre = rng.uniform([0.2 * WIDTH, 0.2 * HEIGHT], [0.8 * WIDTH, 0.8 * HEIGHT])
            ray = np.array([(centre[0] - (WIDTH - 1) / 2) / focal,
                            (centre[1] - (HEIGHT - 1) / 2) / focal, 1.0])  # fmt: skip
            camera = np.array([[focal, 0, (WIDTH - 1) / 2], [0, focal, (HEIGHT - 1) / 2],
                               [0, 0, 1]])  # fmt: skip
            plane = np.array([[pitch, 0, -u_c * pitch], [0, pitch, -v_c * pitch], [0, 0, 1]])
            extrinsic = np.column_stack([rotation[:, 0], rotation[:, 1], ray * distance])
            homography = camera @ extrinsic @ plane
            seen = cv2.perspectiveTransform(corners[None], homography)[0]
            if (seen.min(axis=0) > 4).all() and (seen.max(axis=0) < (WIDTH - 5, HEIGHT - 5)).all():
                (ax, ay), (bx, by) = seen[2] - seen[0], seen[3] - seen[1]
                area = 0.5 * abs(ax * by - ay * bx)  # a quadrilateral's, from its diagonals
                return Pose(homography, focal, pitch, float(math.sqrt(area) / across))
        raise RuntimeError("no pose keeps the code in the frame")  # not seen in practice


def render_phone(
    screen: NDArray[np.uint8], pose: Pose, rng: np.random.Generator, *,
    bright: float, glare: float, covered: bool = False,
) -> tuple[Floats, Floats]:  # fmt: skip
    """The phone's light at SUPERSAMPLE x the frame's size (linear RGB), and its coverage.

    Brightness 1.0 is white paper under the ambient light at the frame's centre.
    """
    s = SUPERSAMPLE
    to_fine = np.array([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]]) @ pose.homography
    height, width = screen.shape[:2]
    bezel = rng.uniform(1.5, 4) / pose.pitch, rng.uniform(3, 9) / pose.pitch  # screen px
    left, top, right, bottom = -bezel[0], -bezel[1], width + bezel[0], height + bezel[1]
    body = np.array([[left, top], [right, top], [right, bottom], [left, bottom]])
    seen = cv2.perspectiveTransform(body[None], to_fine)[0]
    x0, y0 = np.clip(np.floor(seen.min(axis=0)).astype(int), 0, None)
    x1 = min(int(np.ceil(seen[:, 0].max())) + 1, WIDTH * s)
    y1 = min(int(np.ceil(seen[:, 1].max())) + 1, HEIGHT * s)
    light = np.zeros((HEIGHT * s, WIDTH * s, 3), np.float32)
    cover = np.zeros((HEIGHT * s, WIDTH * s), np.float32)
    if x1 <= x0 or y1 <= y0:
        return light, cover
    back = np.linalg.inv(to_fine).astype(np.float32)
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    w = back[2, 0] * xs + back[2, 1] * ys + back[2, 2]
    u = (back[0, 0] * xs + back[0, 1] * ys + back[0, 2]) / w
    v = (back[1, 0] * xs + back[1, 1] * ys + back[1, 2]) / w
    # A sample's footprint in screen pixels, from the homography near the screen's middle.
    mid = cv2.perspectiveTransform(np.array([[[width / 2, height / 2]]]), to_fine)[0, 0]
    steps = cv2.perspectiveTransform(
        np.array([[mid, mid + np.array([1, 0]), mid + np.array([0, 1])]]), back
    )[0]
    foot_u = float(np.abs(steps[1:, 0] - steps[0, 0]).max())
    foot_v = float(np.abs(steps[1:, 1] - steps[0, 1]).max())

    in_body = (u > -bezel[0]) & (u < width + bezel[0]) & (v > -bezel[1]) & (v < height + bezel[1])
    in_screen = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    # Screen pixel i covers [i, i + 1); remap's nearest neighbour rounds, hence the 0.5.
    shown = cv2.remap(screen, u - 0.5, v - 0.5, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    emitted = np.asarray(cv2.LUT(shown, _LINEAR), np.float32)
    # R, G, B stripes left to right (BGR planes), a black matrix around each.
    stripes_u = [(c / 3 + 0.02, (c + 1) / 3 - 0.02) for c in (2, 1, 0)]
    fill_v = _stripe_fill(v, foot_v, [(0.06, 0.94)])[..., 0] * np.float32(3 * bright)
    emitted *= _stripe_fill(u, foot_u, stripes_u) * fill_v[..., None]
    emitted += np.float32(0.04)  # the glass reflects a little of the room
    if glare:
        emitted += (glare * _glare_spot(u, v, screen.shape, rng, covered))[..., None]
    emitted[~in_screen] = rng.uniform(0.02, 0.06)  # the bezel
    if covered:
        emitted = _thumb(emitted, u, v, screen.shape, rng)
    emitted[~in_body] = 0
    light[y0:y1, x0:x1] = emitted
    cover[y0:y1, x0:x1] = in_body
    return light, cover


_LINEAR = ((np.arange(256, dtype=np.float32) / 255) ** 2.2).astype(np.float32)


def _stripe_fill(x: Floats, footprint: float, stripes: list[tuple[float, float]]) -> Floats:
    """Share of [x - f/2, x + f/2] lit by each stripe [a, b) of a unit period, (..., stripes).

    The exact box integral of the periodic stripes: the sensor's sample sees the grid
    averaged over its footprint, so the grid aliases only as much as a real sensor lets it.
    It depends on x's phase only, so it is tabulated over 1024 phases.
    """
    f = max(footprint, 1e-3)
    phase = np.arange(_PHASES, dtype=np.float64)[:, None] / _PHASES
    a = np.array([s[0] for s in stripes])
    b = np.array([s[1] for s in stripes])

    def lit_up_to(t: NDArray[np.float64]) -> NDArray[np.float64]:
        whole = np.floor(t)
        return np.asarray(whole * (b - a) + np.clip(t - whole - a, 0, b - a))

    table = ((lit_up_to(phase + f / 2) - lit_up_to(phase - f / 2)) / f).astype(np.float32)
    # Truncation toward zero instead of floor moves a negative phase by one bin of 1024.
    index = (x * _PHASES).astype(np.int32) & (_PHASES - 1)
    return np.asarray(table[index], np.float32)


_PHASES = 1024


def _glare_spot(
    u: Floats, v: Floats, shape: tuple[int, ...], rng: np.random.Generator, covered: bool
) -> Floats:
    """A lamp's reflection on the glass: an ellipse with a soft edge, peak 1."""
    height, width = shape[:2]
    if covered:  # over the code's upper half, wide enough to wash it out
        cu, cv_, au, av = width / 2, height * 0.3, width * 0.6, height * 0.12
    else:
        cu, cv_ = rng.uniform(0.1, 0.9) * width, rng.uniform(0.15, 0.6) * height
        au, av = rng.uniform(0.08, 0.3) * width, rng.uniform(0.04, 0.15) * height
    angle = rng.uniform(0, np.pi)
    du, dv = u - cu, v - cv_
    p = (du * math.cos(angle) + dv * math.sin(angle)) / au
    q = (-du * math.sin(angle) + dv * math.cos(angle)) / av
    radius = np.sqrt(p * p + q * q)
    return np.asarray(np.clip((1.3 - radius) / 0.6, 0, 1) ** 2, np.float32)


def _thumb(
    region: Floats, u: Floats, v: Floats, shape: tuple[int, ...], rng: np.random.Generator
) -> Floats:
    """A thumb over the lower half of the code (it is in focus only as much as the phone)."""
    height, width = shape[:2]
    centre = width * rng.uniform(0.35, 0.65), height * 0.42
    inside = ((u - centre[0]) / (width * 0.45)) ** 2 + ((v - centre[1]) / (height * 0.1)) ** 2 < 1
    skin = np.array([0.25, 0.35, 0.55], np.float32) * rng.uniform(0.6, 1.2)  # BGR
    return np.where(inside[..., None], skin, region)
