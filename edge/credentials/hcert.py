"""The HCERT container: `HC1:` + Base45(zlib(COSE_Sign1(CWT))), unwrapped and wrapped."""

from __future__ import annotations

import zlib

from edge.credentials.base45 import Base45Error, b45decode, b45encode
from edge.credentials.cose import Sign1, parse_sign1
from edge.credentials.reasons import Reason, Refused

PREFIX = "HC1:"
# A version 40 QR code holds 4,296 alphanumeric characters; anything longer did not
# come from a QR code.
MAX_TEXT = 4296
# Real certificates decompress to well under 2 KiB; the cap stops a zlib bomb.
MAX_DECOMPRESSED = 64 * 1024


def unprefix(text: str) -> str:
    """The Base45 part of an HCERT text.

    Raises:
        Refused: TOO_LARGE past MAX_TEXT characters, BAD_PREFIX without `HC1:`.
    """
    if len(text) > MAX_TEXT:
        raise Refused(Reason.TOO_LARGE, f"{len(text)} characters, more than a QR code holds")
    if not text.startswith(PREFIX):
        raise Refused(Reason.BAD_PREFIX, f"does not start with {PREFIX} (starts {text[:4]!r})")
    return text[len(PREFIX) :]


def decompress(data: bytes) -> bytes:
    """Inflate a zlib stream, refusing more than MAX_DECOMPRESSED bytes.

    Raises:
        Refused: ZLIB when not a complete zlib stream, TOO_LARGE past the cap.
    """
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_DECOMPRESSED + 1)
    except zlib.error as exc:
        raise Refused(Reason.ZLIB, f"not zlib-compressed: {exc}") from None
    if len(out) > MAX_DECOMPRESSED:
        raise Refused(Reason.TOO_LARGE, f"decompresses to more than {MAX_DECOMPRESSED} bytes")
    if not inflater.eof:
        raise Refused(Reason.ZLIB, "zlib stream is truncated")
    if inflater.unused_data:
        raise Refused(Reason.ZLIB, f"{len(inflater.unused_data)} bytes after the zlib stream")
    return out


def unwrap(text: str) -> Sign1:
    """Text of a scanned code to its COSE_Sign1, without checking the signature.

    Raises:
        Refused: with the reason of the first layer that fails.
    """
    try:
        compressed = b45decode(unprefix(text))
    except Base45Error as exc:
        raise Refused(Reason.BASE45, str(exc)) from None
    return parse_sign1(decompress(compressed))


def wrap(cose: bytes) -> str:
    """A signed COSE_Sign1 to the text that goes into the QR code."""
    return PREFIX + b45encode(zlib.compress(cose, 9))
