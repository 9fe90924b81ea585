"""Fuzzing the decoder: truncated, bit-flipped, oversized and random input always gets a verdict."""

from __future__ import annotations

import zlib
from datetime import timedelta

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.credentials.base45 import ALPHABET, b45decode
from edge.credentials.cose import TAG_SIGN1
from edge.credentials.hcert import PREFIX, wrap
from edge.credentials.reasons import Reason
from edge.credentials.verifier import Verdict, Verifier
from tests.credentials import T0, green_code, signer, trusted, verifier

SITE = signer()
CODE = green_code(SITE)
COSE = zlib.decompress(b45decode(CODE[len(PREFIX) :]))
VERIFIER: Verifier = verifier(trusted(SITE))
AT = T0 + timedelta(hours=1)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused(verdict: Verdict) -> bool:
    """A refusal the pipeline meant: a known reason, and not the verifier's bug net."""
    assert not verdict.detail.startswith("verifier fault"), verdict.detail
    assert verdict.reasons and verdict.reasons[0] in set(Reason)
    return not verdict.ok


def test_the_fuzzed_code_itself_verifies() -> None:
    assert VERIFIER.verify(CODE, AT).ok


@FUZZ
@given(st.text(max_size=5000))
def test_random_text(text: str) -> None:
    assert refused(VERIFIER.verify(text, AT))


@FUZZ
@given(st.text(alphabet=ALPHABET, max_size=1200))
def test_random_base45_after_the_prefix(text: str) -> None:
    assert refused(VERIFIER.verify(PREFIX + text, AT))


@FUZZ
@given(st.integers(min_value=0, max_value=len(CODE) - 1))
def test_truncated_code(cut: int) -> None:
    assert refused(VERIFIER.verify(CODE[:cut], AT))


@FUZZ
@given(st.integers(min_value=0, max_value=len(COSE) * 8 - 1))
def test_bit_flipped_cose(bit: int) -> None:
    flipped = bytearray(COSE)
    flipped[bit // 8] ^= 1 << (bit % 8)
    verdict = VERIFIER.verify(wrap(bytes(flipped)), AT)
    if verdict.ok:  # only a flip that leaves every signed byte and the kid alone may pass
        original, mutated = cbor2.loads(COSE).value, cbor2.loads(bytes(flipped))
        mutated = mutated.value if isinstance(mutated, cbor2.CBORTag) else mutated
        assert (mutated[0], mutated[2], mutated[3]) == (original[0], original[2], original[3])
    else:
        assert refused(verdict)


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes_in_a_valid_container(raw: bytes) -> None:
    assert refused(VERIFIER.verify(wrap(raw), AT))


CBOR_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.integers() | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)


@FUZZ
@given(CBOR_VALUES, CBOR_VALUES, CBOR_VALUES)
def test_random_cose_shapes(protected: object, unprotected: object, payload: object) -> None:
    message = [cbor2.dumps(protected), unprotected, cbor2.dumps(payload), b"\0" * 64]
    assert refused(VERIFIER.verify(wrap(cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, message))), AT))


@pytest.mark.parametrize("size", [4296, 4297, 1_000_000])
def test_oversized_input(size: int) -> None:
    assert refused(VERIFIER.verify(PREFIX + "0" * size, AT))


def test_deeply_nested_cbor() -> None:
    nested = b"\x81" * 100_000 + b"\x00"  # an array in an array … 100,000 deep
    assert refused(VERIFIER.verify(wrap(nested), AT))
