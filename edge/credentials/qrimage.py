"""The text of a QR code in a camera frame or an image file (HCERT codes start `HC1:`)."""

# Backend chosen by measurement, success rate first, then time per 640x480 frame
# (`.venv/bin/python -m bench.qr_decoders`: the degraded set's seed 20261122, the phone
# set's 20261206 with 200 pictures a difficulty and 50 without a readable code (see
# bench/phone_screens.py); AMD EPYC, 2 cores, load average 1.3 with the bench's own
# process; OpenCV 5.0, zxing-cpp 3.1.1; bench/results/qr_decoders-20261206T181205Z.json):
#
#                        conform. degraded    phone    phone  p50/p90 ms on phone frames
#   backend                  (52)    (624) ordinary     hard   ordinary     hard  no code
#   opencv                 73.1 %    5.8 %    6.0 %    0.0 %   6.4/12.1 5.4/11.2  5.1/7.0
#   opencv-aruco           76.9 %   15.2 %    6.0 %    0.0 %  10.8/12.1 3.1/10.8  2.0/3.1
#   zxing-cpp             100.0 %   95.4 %   66.5 %   17.0 %    0.9/1.0  0.6/1.0  0.5/0.6
#   zxing-cpp+sharpen     100.0 %   98.4 %   81.5 %   26.5 %    0.9/2.3  1.5/2.4  1.4/1.9
#   zxing-cpp+upscale, step by step (each with the steps above it):
#     2x, local average   100.0 %   99.4 %   97.0 %   49.0 %    0.9/3.1  2.9/3.5  2.6/3.1
#     + global histogram  100.0 %   99.4 %   99.0 %   59.5 %    0.9/3.3  3.0/3.8  2.7/3.8
#     + harder mask       100.0 %   99.5 %   99.0 %   65.5 %    1.0/3.4  3.5/6.4  4.8/6.2
#     + regions (all)     100.0 %   99.5 %   99.0 %   66.5 %    0.9/3.1  3.4/6.7  4.4/5.7
#
# No backend gave a wrong text. Per pixels per module (phone pictures, zxing-cpp+sharpen ->
# zxing-cpp+upscale): ordinary < 2: 11 -> 89 % (9 pictures), 2-2.5: 66 -> 99 % (85),
# 2.5-4: 100 % (106); hard < 2: 0 -> 34 % (74), 2-2.5: 25 -> 81 % (88), 2.5-3: 82 -> 97 %
# (38). Frames with no code pay for every retry: p90 9.6 ms on the degraded set's blank
# pages, 5.7 ms on phone screens without a readable code.
#
# Both OpenCV detectors lose most codes at 2-3 pixels per module, the size an HCERT has
# when it fills half of a 640x480 frame. zxing-cpp's binarizer needs ~3 px per module;
# upscaling 2x (bicubic) after an unsharp mask gives it that for codes down to ~1.8 px.
# Tried and dropped (phone set, seed 7, 150 pictures a difficulty): CLAHE (+2 of the 50
# hard pictures the decoder misses, 8 ms), a 3x whole frame (+4, 10 ms), adaptive
# threshold (+3, 15 ms), a Gaussian denoise (0), a 0.5x downscale against moire (0).
# Deconvolution (Wiener, Richardson-Lucy) was not tried.
#
# Never a wrong text: only QR model 2 is read (a finder pattern decoded as an M1 Micro QR
# code gave one), and a retry takes only zxing's checked decodes (Reed-Solomon and format
# information valid). No wrong text in 1,050 frames of another seed, readable, code-free,
# scratched and covered, without the budget, and none in 360 frames with 1-14 % of their
# modules flipped (each either read right or not at all).
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
# Retries start only before this: one begun just before may end ~4 ms later (this
# machine), so p90 stays within 15 ms.
_RETRY_BUDGET_S = 0.012
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
    sharp = _unsharp(gray, amount=1.5) if seen and regions else gray
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
