"""Base45 against RFC 9285's examples, and its refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.credentials.base45 import Base45Error, b45decode, b45encode

RFC_9285 = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
    (b"", ""),
]


@pytest.mark.parametrize(("raw", "text"), RFC_9285)
def test_base45__valid(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("GGW", "exceeds two bytes"),  # RFC 9285 section 6: 65535 + 1
        ("ZZ", "exceeds one byte"),
        ("QED8WEX0a", "'a' is not a Base45 character"),
        ("QED8", "leaves a single character over"),
        ("A", "leaves a single character over"),
    ],
)
def test_base45__invalid(text: str, why: str) -> None:
    with pytest.raises(Base45Error, match=why):
        b45decode(text)


@given(st.binary(max_size=600))
def test_base45__round_trips_any_bytes(raw: bytes) -> None:
    assert b45decode(b45encode(raw)) == raw
