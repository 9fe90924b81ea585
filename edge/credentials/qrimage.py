"""The text of a QR code in a camera frame or an image file (HCERT codes start `HC1:`)."""

# Backend chosen by measurement, success rate first, then time per 640x480 frame
# (`.venv/bin/python -m bench.qr_decoders`, seed 20261122, x86-64 with 2 cores, OpenCV 5.0,
# zxing-cpp 3.1; bench/results/qr_decoders-20261122T073640Z.json):
#
#   backend             conformance (52)   degraded (624)   mean/p95 ms with code   no code
#   opencv                   73.1 %            5.8 %            12.1 / 25.7          9.0 / 20.0
#   opencv-aruco             76.9 %           15.2 %            12.3 / 22.4          2.5 / 5.1
#   zxing-cpp               100.0 %           95.4 %             1.3 / 2.3           0.9 / 1.9
#   zxing-cpp+sharpen       100.0 %           98.4 %             1.4 / 2.4           2.1 / 4.3
#
# Both OpenCV detectors lose most codes at 2-3 pixels per module, the size an HCERT has
# when it fills half of a 640x480 frame. The sharpened second pass lifts zxing-cpp's
# strong-blur rate from 73 % to 88 % (92-95 % -> 97-99 % overall over seeds 1-5) and costs
# ~1 ms only on frames where the first pass found nothing.
#
# Detector objects are built per call, not cached: construction costs ~0.4 µs
# (QRCodeDetector) and ~4 µs (QRCodeDetectorAruco), far below one decode, so there is no
# shared state to guard when a reader thread is added later.

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import zxingcpp
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Image = NDArray[np.uint8]
"""A 2-D grayscale uint8 image: what every backend in `DECODERS` takes."""

Decoder = Callable[[Image], str | None]

_CHANNELS = (1, 3, 4)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# QR Code model 2 only: zxing-cpp 3's `QRCode` is the family, Micro QR included, and a big
# code's finder pattern read as an M1 Micro QR (error detection only, 2 codewords) gave
# a wrong text once in 1,300 phone pictures.
_QR_CODE = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCodeModel2)
_UNSHARP_SIGMA = 1.5  # pixels: about half a module at the sizes a gate camera sees
_HCERT_PREFIX = "HC1:"
_RETRY_BUDGET_S = 0.012  # retries start only before this, so p90 stays within 15 ms
_UPSCALE = 2.0
_MAX_UPSCALED_PIXELS = 1280 * 960  # a larger frame is upscaled less (or not at all)
_CROP_SIDE = 800  # pixels: a region where a code was seen is upscaled to about this
_CROP_MARGIN = 0.15  # of the region's side: the quiet zone and a misplaced corner


def opencv(gray: Image) -> str | None:
    """Decode with OpenCV's classic `QRCodeDetector` (finder patterns, then a homography).

    Args:
        gray: a non-empty 2-D uint8 image.

    Returns:
        The text of the first code found, or None.
    """
    try:
        text, _points, _straight = cv2.QRCodeDetector().detectAndDecode(gray)
    except cv2.error:
        # OpenCV asserts on degenerate geometry it finds inside odd images; for a reader
        # that is "no code in this frame", not a crash of the gate.
        log.debug("QRCodeDetector failed on a %s frame", gray.shape, exc_info=True)
        return None
    return text or None


def opencv_aruco(gray: Image) -> str | None:
    """Decode with OpenCV's `QRCodeDetectorAruco` (finder patterns found as ArUco markers).

    Args:
        gray: a non-empty 2-D uint8 image.

    Returns:
        The text of the first code found, or None.
    """
    try:
        text, _points, _straight = cv2.QRCodeDetectorAruco().detectAndDecode(gray)
    except cv2.error:
        log.debug("QRCodeDetectorAruco failed on a %s frame", gray.shape, exc_info=True)
        return None
    return text or None


def zxing(gray: Image) -> str | None:
    """Decode with zxing-cpp, QR Code (model 2) only.

    Args:
        gray: a non-empty 2-D uint8 image.

    Returns:
        The text of the first valid code found (an HCERT first), or None.
    """
    # Plain: the decoded characters as they are; the default (HRI) may reformat content
    # it takes for GS1, and the text must reach the HCERT parser unchanged.
    found = zxingcpp.read_barcodes(gray, formats=_QR_CODE, text_mode=zxingcpp.TextMode.Plain)
    return _preferred([code.text for code in found])


def _unsharp(gray: Image, sigma: float = _UNSHARP_SIGMA, amount: float = 1.0) -> Image:
    soft = cv2.GaussianBlur(gray, (0, 0), sigma)
    return np.asarray(cv2.addWeighted(gray, 1 + amount, soft, -amount, 0), dtype=np.uint8)


def zxing_sharpened(gray: Image) -> str | None:
    """zxing-cpp, then once more on a sharpened copy when the first pass finds nothing.

    A slightly defocused code at ~2-3 pixels per module (the conformance HCERTs are QR
    versions 11-23, 61-109 modules across, most often 17 = 85) smears modules into their
    neighbours; an unsharp mask restores enough edge contrast for the binarizer. Frames
    without a code pay for both passes.

    Args:
        gray: a non-empty 2-D uint8 image.

    Returns:
        The text of the first valid code found, or None.
    """
    text = zxing(gray)
    if text is None:
        text = zxing(_unsharp(gray))
    return text


Quad = NDArray[np.float64]
"""A code's four corners as zxing-cpp saw them, (4, 2) in pixels of the image it read."""


_BINARIZERS = (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram)
_SHARPENINGS = ((1.5, 1.5), (1.0, 3.0))  # (sigma in pixels, amount) of the unsharp masks


def zxing_upscaled(
    gray: Image, *, sharpenings: Sequence[tuple[float, float]] = _SHARPENINGS,
    binarizers: Sequence[zxingcpp.Binarizer] = _BINARIZERS, regions: int = 2,
    budget_s: float = _RETRY_BUDGET_S,
) -> str | None:  # fmt: skip
    """zxing-cpp; then, within a time budget, retries made for codes of 1.5-3 px per module.

    The retries, each only while the budget lasts: the frame sharpened (unsharp mask,
    sigma 1.5 px, amount 1.5) and upscaled 2x (bicubic), read with zxing's local-average
    binarizer, then its global-histogram one (it keeps modules that glare or a dark
    corner push past the local threshold); the same with a harder mask (sigma 1.0,
    amount 3: shake and defocus); then each region where zxing saw a code but could not
    read it, cut from the frame, sharpened and upscaled to ~800 px, read with both
    binarizers. Only checked decodes count: zxing's Reed-Solomon correction and format
    check passed (`valid`, no `error`).

    Args:
        gray: a non-empty 2-D uint8 image.
        sharpenings: (sigma in pixels, amount) of each whole-frame retry, in order.
        binarizers: the binarizers each whole-frame retry is read with, in order.
        regions: how many regions where a code was seen are read on their own.
        budget_s: no retry starts later than this after the call began; tests pass
            `math.inf` so that what is read does not depend on the machine's load.

    Returns:
        The text of the first valid code found (an HCERT first), or None.
    """
    start = time.perf_counter()
    text = zxing(gray)
    if text is not None:
        return text
    deadline = start + budget_s
    factor = min(_UPSCALE, float(np.sqrt(_MAX_UPSCALED_PIXELS / gray.size)))
    seen: list[Quad] = []
    for sigma, amount in sharpenings:
        sharp = _unsharp(gray, sigma, amount)
        big = _resized(sharp, factor) if factor > 1.1 else sharp
        scale = big.shape[1] / gray.shape[1]
        for binarizer in binarizers:
            if time.perf_counter() > deadline:
                return None
            text, quads = _checked(big, binarizer)
            if text is not None:
                return text
            seen += [quad / scale for quad in quads]
    sharp = _unsharp(gray, amount=1.5)
    for quad in seen[:regions]:
        text = _read_region(sharp, quad, deadline)
        if text is not None:
            return text
    return None


def _resized(image: Image, factor: float) -> Image:
    return np.asarray(
        cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC), np.uint8
    )


def _checked(image: Image, binarizer: zxingcpp.Binarizer) -> tuple[str | None, list[Quad]]:
    """The text of a checked decode, and where zxing saw codes it could not decode."""
    found = zxingcpp.read_barcodes(
        image, formats=_QR_CODE, text_mode=zxingcpp.TextMode.Plain, binarizer=binarizer,
        return_errors=True,
        # The frame was read as it is, rotations and inversions included, in the plain
        # pass; a retry looks only for what sharpening and upscaling can add.
        try_rotate=False, try_downscale=False, try_invert=False,
    )  # fmt: skip
    text = _preferred([code.text for code in found if code.valid and code.error is None])
    return text, [_corners(code.position) for code in found if not code.valid]


def _corners(position: zxingcpp.Position) -> Quad:
    return np.array(
        [[p.x, p.y] for p in (position.top_left, position.top_right,
                              position.bottom_right, position.bottom_left)], np.float64,
    )  # fmt: skip


def _read_region(sharp: Image, quad: Quad, deadline: float) -> str | None:
    """Read the part of `sharp` around `quad`, upscaled so its modules are ~5-9 px wide."""
    low, high = quad.min(axis=0), quad.max(axis=0)
    margin = _CROP_MARGIN * float((high - low).max())
    x0, y0 = np.maximum(np.floor(low - margin), 0).astype(int)
    x1, y1 = np.ceil(high + margin).astype(int)
    region = sharp[y0:y1, x0:x1]
    if min(region.shape) < 16:
        return None  # a speck zxing took for a code
    factor = _CROP_SIDE / max(region.shape)
    if factor < 2.5:
        return None  # the whole-frame passes already read it at 2x
    big = _resized(region, min(factor, 4.0))
    for binarizer in _BINARIZERS:
        if time.perf_counter() > deadline:
            return None
        text, _quads = _checked(big, binarizer)
        if text is not None:
            return text
    return None


def _preferred(texts: Sequence[str]) -> str | None:
    """An HCERT if one is among `texts` (the gate's reason to look), else the first text."""
    for text in texts:
        if text.startswith(_HCERT_PREFIX):
            return text
    return texts[0] if texts else None


DECODERS: dict[str, Decoder] = {
    "opencv": opencv,
    "opencv-aruco": opencv_aruco,
    "zxing-cpp": zxing,
    "zxing-cpp+sharpen": zxing_sharpened,
    "zxing-cpp+upscale": zxing_upscaled,
}
"""Every backend by name; `bench.qr_decoders` measures each of them."""

DEFAULT_DECODER = "zxing-cpp+upscale"
_decode = DECODERS[DEFAULT_DECODER]


def grayscale(image: NDArray[np.uint8]) -> Image:
    """One contiguous 2-D uint8 image from a grayscale, BGR or BGRA one.

    Transparent pixels become white, as a code with a transparent background is shown on
    a white page or screen.

    Args:
        image: shape (h, w), (h, w, 1), (h, w, 3) in BGR order or (h, w, 4) in BGRA order.

    Returns:
        The grayscale image (the input itself when it is already 2-D and contiguous).

    Raises:
        TypeError: `image` is not a numpy array of dtype uint8.
        ValueError: `image` is not 2-D or 3-D with 1, 3 or 4 channels.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must have dtype uint8 (as OpenCV gives), not {image.dtype}")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be 2-D (gray) or 3-D (h, w, channels), not {image.shape}")
    if image.ndim == 3 and image.shape[2] not in _CHANNELS:
        raise ValueError(f"image must have 1, 3 (BGR) or 4 (BGRA) channels, not {image.shape}")
    if image.ndim == 2 or image.shape[2] == 1 or image.size == 0:
        return np.ascontiguousarray(image.reshape(image.shape[:2]))
    if image.shape[2] == 3:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    gray = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY).astype(np.uint16)
    alpha = image[:, :, 3].astype(np.uint16)
    return ((gray * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def decode_qr(image: NDArray[np.uint8]) -> str | None:
    """The text of a QR code in an image, exactly as encoded.

    Args:
        image: a grayscale, BGR or BGRA uint8 array, as OpenCV gives from a camera.

    Returns:
        The text of the code, or None when the image holds no readable QR code (including
        an empty, tiny, blank or noisy image).

    Raises:
        TypeError: `image` is not a uint8 numpy array.
        ValueError: `image` is not 2-D or 3-D with 1, 3 or 4 channels.
    """
    gray = grayscale(image)
    if gray.size == 0:
        return None
    return _decode(gray)


def read_image(data: bytes) -> Image | None:
    """Decode image file bytes (PNG, JPEG, … whatever cv2.imdecode reads) to grayscale.

    Args:
        data: the bytes of an image file.

    Returns:
        The image as 2-D uint8, or None when the bytes are not an image OpenCV can read.
    """
    if not data:
        return None  # imdecode asserts on an empty buffer
    if data.startswith(_PNG_SIGNATURE) and not _png_chunks_fit(data):
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        # UNCHANGED keeps the alpha channel, which `grayscale` turns into white paper.
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        if image is not None and (image.dtype != np.uint8 or image.ndim not in (2, 3)):
            # 16-bit or float files: let OpenCV scale them to 8 bits (alpha is lost).
            image = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    except cv2.error:
        log.debug("cv2.imdecode refused %d bytes", len(data), exc_info=True)
        return None
    if image is None:
        return None
    try:
        return grayscale(np.asarray(image, dtype=np.uint8))
    except ValueError:
        return None  # e.g. a two-channel (gray + alpha) layout OpenCV passed through


def _png_chunks_fit(data: bytes) -> bool:
    """Whether each PNG chunk up to IEND lies within `data` (length, type, body, CRC).

    OpenCV 5.0's PNG reader spends seconds on a chunk that claims gigabytes (measured:
    2-7 s for a 209-byte file with one corrupted IDAT length byte), so such files are
    refused before they reach it.
    """
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IEND":
            return pos + 12 + length <= len(data)
        pos += 12 + length
    return pos <= len(data)


def decode_qr_png(data: bytes) -> str | None:
    """The text of a QR code in a PNG (or any image file cv2.imdecode reads).

    Args:
        data: the bytes of the image file.

    Returns:
        The text of the code, or None when the bytes are not an image or hold no readable
        QR code.
    """
    gray = read_image(data)
    if gray is None or gray.size == 0:
        return None
    return _decode(gray)
