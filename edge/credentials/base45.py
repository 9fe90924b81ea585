"""Base45 (RFC 9285): the QR-alphanumeric text encoding of HCERT codes.

Two bytes become three characters c d e with a*256 + b = c + d*45 + e*45², a trailing
single byte becomes two; characters from the 45-symbol QR alphanumeric set.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE = {char: n for n, char in enumerate(ALPHABET)}


class Base45Error(ValueError):
    """Text that is not Base45."""


def b45encode(data: bytes) -> str:
    """Encode bytes as Base45 text."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """Decode Base45 text.

    Raises:
        Base45Error: a character outside the alphabet, a length of 3k+1, or a group
            whose value does not fit its bytes.
    """
    try:
        values = [_VALUE[char] for char in text]
    except KeyError as exc:
        raise Base45Error(f"{exc.args[0]!r} is not a Base45 character") from None
    if len(values) % 3 == 1:
        raise Base45Error(f"length {len(values)} leaves a single character over")
    out = bytearray()
    for i in range(0, len(values) - 2, 3):
        n = values[i] + values[i + 1] * 45 + values[i + 2] * 2025
        if n > 0xFFFF:
            raise Base45Error(f"group {text[i : i + 3]!r} at {i} exceeds two bytes")
        out += n.to_bytes(2, "big")
    if len(values) % 3 == 2:
        n = values[-2] + values[-1] * 45
        if n > 0xFF:
            raise Base45Error(f"final group {text[-2:]!r} exceeds one byte")
        out.append(n)
    return bytes(out)
