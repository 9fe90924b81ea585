"""QR decoder backends: success rate and time per frame on conformance, degraded and phone pictures.

The gate must read every readable conformance picture, >= 95 % of a degraded set, >= 90 %
of ordinary and >= 50 % of hard phone-screen pictures (`bench.phone_screens`), never a
wrong text, and spend <= 15 ms (p90) per 640x480 frame; `decode_qr` uses the winner.
Phone pictures are also reported per pixels-per-module bucket.

    .venv/bin/python -m bench.qr_decoders [--conformance DIR] [--seed N] [--phones N]
        [--phone-seed N] [--backends NAME ...]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import time
from collections.abc import Sequence
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zxingcpp

from bench.common import record
from bench.phone_screens import DIFFICULTIES, RANGES, Code, hcert_texts, phone_screens
from edge.credentials.qrimage import (
    DECODERS,
    Decoder,
    Image,
    grayscale,
    read_image,
    zxing_upscaled,
)  # fmt: skip

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared/conformance/dgc-testdata"
WIDTH, HEIGHT = 640, 480
_LOCAL = zxingcpp.Binarizer.LocalAverage
STEPS: dict[str, dict[str, Any]] = {
    "upscale: 2x local only": {"sharpenings": ((1.5, 1.5),), "binarizers": (_LOCAL,), "regions": 0},
    "upscale: 2x local+global": {"sharpenings": ((1.5, 1.5),), "regions": 0},
    "upscale: + harder mask": {"regions": 0},
}
"""`zxing-cpp+upscale` cut short after a step: what each later step adds is measured."""


def backends(budget: bool = True) -> dict[str, Decoder]:
    """Every decoder and every step of `zxing-cpp+upscale`, with or without its budget."""
    unbounded: dict[str, Any] = {} if budget else {"budget_s": math.inf}
    upscaled = {"zxing-cpp+upscale": partial(zxing_upscaled, **unbounded)}
    steps = {name: partial(zxing_upscaled, **o, **unbounded) for name, o in STEPS.items()}
    return {**DECODERS, **upscaled, **steps}


Picture = tuple[str, Image, str]
"""(name, grayscale picture, expected text)."""

# Strengths per degradation, chosen before measuring. tilt: corner jitter as a fraction of
# the code's side; blur: Gaussian sigma in pixels; glare: peak brightness added; noise:
# sensor noise sigma in grey levels.
DEGRADATIONS: dict[str, dict[str, float]] = {
    "clean": {},
    "perspective mild": {"tilt": 0.06},
    "perspective strong": {"tilt": 0.12},
    "blur mild": {"blur": 0.7},
    "blur strong": {"blur": 1.2},
    "glare mild": {"glare": 90},
    "glare strong": {"glare": 170},
    "noise mild": {"noise": 6},
    "noise strong": {"noise": 14},
    "tilt+blur+noise": {"tilt": 0.06, "blur": 0.7, "noise": 6},
    "tilt+glare+noise": {"tilt": 0.06, "glare": 90, "noise": 6},
    "all mild": {"tilt": 0.06, "blur": 0.7, "glare": 90, "noise": 6},
}


def conformance_pictures(root: Path) -> tuple[list[Picture], list[str]]:
    """Pictures whose EXPECTEDPICTUREDECODE is true, and the names of such cases without one.

    Args:
        root: the dgc-testdata folder; JSON files are found at any depth.

    Returns:
        (name, picture, PREFIX) per readable picture, and the cases whose `2DCODE` is
        missing or not an image.
    """
    pictures, missing = [], []
    for path in sorted(root.rglob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        if case.get("EXPECTEDRESULTS", {}).get("EXPECTEDPICTUREDECODE") is not True:
            continue
        name = path.relative_to(root).as_posix()
        image = read_image(base64.b64decode(case["2DCODE"])) if case.get("2DCODE") else None
        if image is None:
            missing.append(name)
        else:
            pictures.append((name, image, case["PREFIX"]))
    return pictures, missing


def degraded_frames(pictures: Sequence[Picture], seed: int) -> list[tuple[str, Image, str]]:
    """Each picture in a 640x480 camera frame once per entry of `DEGRADATIONS`.

    The code covers 40-60 % of the frame height at a random place on a grey background,
    with the contrast a camera sees (black is not 0, paper is not 255).

    Args:
        pictures: (name, grayscale picture, expected text), e.g. from `conformance_pictures`.
        seed: the same seed gives the same frames.

    Returns:
        (degradation, frame, expected text) per frame.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for _name, picture, text in pictures:
        for degradation, strength in DEGRADATIONS.items():
            frames.append((degradation, _frame(picture, strength, rng), text))
    return frames


def blank_frames(count: int, seed: int) -> list[tuple[str, Image, None]]:
    """Frames with a blank page and no code, each with a random entry of `DEGRADATIONS`.

    Most frames a gate camera sees hold no code, so their cost bounds the reader's loop.

    Args:
        count: how many frames.
        seed: the same seed gives the same frames.

    Returns:
        ("no code", frame, None) per frame.
    """
    rng = np.random.default_rng(seed)
    page = np.full((300, 300), 255, np.uint8)
    strengths = list(DEGRADATIONS.values())
    return [
        ("no code", _frame(page, strengths[rng.integers(len(strengths))], rng), None)
        for _ in range(count)
    ]


def _frame(picture: Image, strength: dict[str, float], rng: np.random.Generator) -> Image:
    dark_rows = np.flatnonzero((picture < 128).any(axis=1))
    code_side = dark_rows[-1] - dark_rows[0] + 1 if dark_rows.size else picture.shape[0]
    scale = rng.uniform(0.40, 0.60) * HEIGHT / code_side
    # Shrink with area averaging first: a perspective warp alone would alias the modules.
    side = round(picture.shape[0] * scale)
    small = cv2.resize(picture, (side, side), interpolation=cv2.INTER_AREA)
    black, white = rng.uniform(20, 50), rng.uniform(190, 235)
    paper = small.astype(np.float32) * np.float32((white - black) / 255) + np.float32(black)

    x0 = rng.uniform(0, max(WIDTH - side, 0))
    y0 = rng.uniform(0, max(HEIGHT - side, 0))
    quad = np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])
    quad += rng.uniform(-1, 1, size=(4, 2)) * strength.get("tilt", 0.0) * side
    source = np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float32)
    warp = cv2.getPerspectiveTransform(source, quad.astype(np.float32))
    warped = cv2.warpPerspective(paper, warp, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.ones_like(paper), warp, (WIDTH, HEIGHT))
    frame = np.asarray(warped * inside + rng.uniform(90, 150) * (1 - inside), np.float32)

    # Glare is light on the phone's screen and blur is the lens, so glare goes in first;
    # sensor noise is added last, after the optics.
    if "glare" in strength:
        frame += strength["glare"] * _glare(quad, rng)
    if "blur" in strength:
        frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), strength["blur"]), np.float32)
    if "noise" in strength:
        frame += rng.normal(0, strength["noise"], (HEIGHT, WIDTH)).astype(np.float32)
    return np.asarray(np.clip(np.rint(frame), 0, 255), dtype=np.uint8)


def _glare(quad: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft bright ellipse (peak 1.0) somewhere over the code, as a lamp on a phone screen."""
    side = float(np.linalg.norm(quad[1] - quad[0]))
    weights = rng.dirichlet(np.ones(4))
    centre = (weights @ quad).round().astype(int)
    axes = (round(side * rng.uniform(0.12, 0.25)), round(side * rng.uniform(0.06, 0.15)))
    blob = np.zeros((HEIGHT, WIDTH), np.float32)
    cv2.ellipse(blob, (int(centre[0]), int(centre[1])), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    return np.asarray(cv2.GaussianBlur(blob, (0, 0), max(axes) / 3), dtype=np.float32)


def measure(
    decoder: Decoder, frames: Sequence[tuple[str, Image, str | None]]
) -> list[tuple[str, bool, bool, float]]:
    """(label, right answer, wrong text, ms) per frame; None is the right answer for no code."""
    decoder(frames[0][1])  # warm-up: first-call set-up is not a per-frame cost
    results = []
    for label, frame, expected in frames:
        start = time.perf_counter()
        text = decoder(frame)
        elapsed = (time.perf_counter() - start) * 1000
        results.append((label, text == expected, text is not None and text != expected, elapsed))
    return results


PPM_BUCKETS = ((0.0, 2.0), (2.0, 2.5), (2.5, 3.0), (3.0, 4.0), (4.0, float("inf")))


def ppm_bucket(ppm: float) -> str:
    """The pixels-per-module bucket a phone picture is reported in, e.g. "2-2.5 ppm"."""
    for low, high in PPM_BUCKETS:
        if low <= ppm < high:
            if high == float("inf"):
                return f">={low:g} ppm"
            return f"<{high:g} ppm" if low == 0 else f"{low:g}-{high:g} ppm"
    raise ValueError(f"pixels per module must be >= 0, not {ppm}")


NO_CODE = "no code"
BLANK_CODES: tuple[Code, ...] = ("none", "covered")


def phone_frames(count: int, seed: int) -> list[tuple[str, Image, str | None, str]]:
    """(difficulty, grayscale frame, text, ppm bucket) for `count` pictures per difficulty.

    Then, per difficulty, count // 8 pictures of the app without a code and as many of a
    code half under a thumb and glare, in the bucket `NO_CODE`: most frames a gate camera
    sees hold no readable code, and each pays for every retry.
    """
    texts = hcert_texts()
    frames: list[tuple[str, Image, str | None, str]] = []
    for difficulty in DIFFICULTIES:
        for shot in phone_screens(count, difficulty, seed, texts):
            frames.append((difficulty, grayscale(shot.frame), shot.text, ppm_bucket(shot.ppm)))
    for difficulty in DIFFICULTIES:
        for code in BLANK_CODES:
            for shot in phone_screens(count // 8, difficulty, seed, texts, code):
                frames.append((difficulty, grayscale(shot.frame), None, NO_CODE))
    return frames


def row(backend: str, label: str, results: list[tuple[str, bool, bool, float]]) -> dict[str, Any]:
    ms = np.array([r[3] for r in results]) if results else np.zeros(1)
    right = sum(r[1] for r in results)
    return {
        "set": label, "backend": backend, "frames": len(results), "right": right,
        "wrong text": sum(r[2] for r in results),
        "success %": 100 * right / len(results) if results else float("nan"),
        "p50 ms": float(np.percentile(ms, 50)), "p90 ms": float(np.percentile(ms, 90)),
        "p95 ms": float(np.percentile(ms, 95)),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conformance", type=Path, default=CONFORMANCE, help="dgc-testdata dir")
    parser.add_argument("--seed", type=int, default=20261122, help="seed of the degraded set")
    parser.add_argument("--phones", type=int, default=200, help="phone pictures per difficulty")
    parser.add_argument("--phone-seed", type=int, default=20261206, help="seed of the phone set")
    names = list(backends())
    parser.add_argument("--backends", nargs="+", choices=names, default=names)
    parser.add_argument(
        "--no-budget", action="store_true",
        help="zxing-cpp+upscale and its steps without the time budget: what a busy machine "
        "cannot change (tests/test_qrimage.py asserts these rates); its times mean little",
    )  # fmt: skip
    args = parser.parse_args()
    chosen = backends(budget=not args.no_budget)
    pictures, missing = conformance_pictures(args.conformance)
    if not pictures:
        parser.error(f"no readable conformance pictures under {args.conformance}")
    conformance = [("conformance", image, text) for _name, image, text in pictures]
    frames = degraded_frames(pictures, args.seed)
    blanks = blank_frames(len(pictures), args.seed + 1)
    phones = phone_frames(args.phones, args.phone_seed)

    rows, unread = [], {}
    for backend in args.backends:
        decoder = chosen[backend]
        on_pictures = measure(decoder, conformance)
        on_frames = measure(decoder, frames)
        on_blanks = measure(decoder, blanks)
        unread[backend] = [p[0] for p, r in zip(pictures, on_pictures, strict=True) if not r[1]]
        rows.append(row(backend, "conformance", on_pictures))
        rows.append(row(backend, "degraded (all)", on_frames))
        for degradation in DEGRADATIONS:
            rows.append(row(backend, degradation, [r for r in on_frames if r[0] == degradation]))
        rows.append(row(backend, "no code", on_blanks))
        rows += phone_rows(backend, decoder, phones)
    order = {label: n for n, label in enumerate(dict.fromkeys(r["set"] for r in rows))}
    rows.sort(key=lambda r: (order[r["set"]], r["backend"]))
    record(
        "qr_decoders", rows, seed=args.seed, frames=len(frames), pictures=len(pictures),
        frame_size=[WIDTH, HEIGHT], degradations=DEGRADATIONS,
        conformance_dir=str(args.conformance), cases_without_picture=missing,
        conformance_unread=unread, opencv=cv2.__version__, zxing_cpp=version("zxing-cpp"),
        opencv_threads=cv2.getNumThreads(), phone_seed=args.phone_seed,
        phones_per_difficulty=args.phones, phone_ranges=RANGES, load_average=os.getloadavg(),
        budget=not args.no_budget,
    )  # fmt: skip


def phone_rows(
    backend: str, decoder: Decoder, phones: list[tuple[str, Image, str | None, str]]
) -> list[dict[str, Any]]:
    """Rows per difficulty, then per difficulty and pixels-per-module bucket, then no code."""
    results = measure(decoder, [(f"{d}|{b}", frame, text) for d, frame, text, b in phones])
    rows = []
    for difficulty in DIFFICULTIES:
        mine = [r for r in results if r[0].startswith(difficulty + "|") and NO_CODE not in r[0]]
        rows.append(row(backend, f"phone {difficulty}", mine))
    for difficulty in DIFFICULTIES:
        for low, _high in PPM_BUCKETS:
            bucket = ppm_bucket(low)
            mine = [r for r in results if r[0] == f"{difficulty}|{bucket}"]
            if mine:
                rows.append(row(backend, f"phone {difficulty} {bucket}", mine))
    blanks = [r for r in results if r[0].endswith("|" + NO_CODE)]
    if blanks:
        rows.append(row(backend, f"phone {NO_CODE}", blanks))
    return rows


if __name__ == "__main__":
    main()
