"""COSE_Sign1 (RFC 9052) as HCERT uses it: parse, verify and sign; CWT claims (RFC 8392).

Wire: optional CWT tag 61, optional COSE_Sign1 tag 18, then
[protected: bstr(map), unprotected: map, payload: bstr, signature: bstr].
The signature covers Sig_structure = ["Signature1", protected, h'', payload].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from edge.credentials.keys import PublicKey
from edge.credentials.reasons import Reason, Refused

ES256, EDDSA, PS256 = -7, -8, -37
ALGORITHMS = {ES256: "ES256", EDDSA: "EdDSA", PS256: "PS256"}
HEADER_ALG, HEADER_KID = 1, 4
TAG_CWT, TAG_SIGN1 = 61, 18
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_CTI, CLAIM_HCERT = 1, 4, 6, 7, -260
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)  # RFC 8230: salt = hash


@dataclass(frozen=True)
class Sign1:
    """A parsed COSE_Sign1 message."""

    protected: bytes
    protected_header: dict[Any, Any]
    unprotected_header: dict[Any, Any]
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> Any:
        """The algorithm: protected header first, unprotected if absent (CO20).

        An unprotected alg cannot weaken anything: it must still fit the signer's key.
        """
        return self.protected_header.get(HEADER_ALG, self.unprotected_header.get(HEADER_ALG))

    @property
    def kid(self) -> bytes | None:
        """The kid the HCERT spec says to use: protected header first, unprotected only if absent.

        An unprotected kid is not covered by the signature, so it never overrides a
        protected one (conformance cases CO18 to CO23).
        """
        kid = self.protected_header.get(HEADER_KID, self.unprotected_header.get(HEADER_KID))
        return kid if isinstance(kid, bytes) else None

    def to_be_signed(self) -> bytes:
        return cbor2.dumps(["Signature1", self.protected, b"", self.payload])


def parse_sign1(data: bytes) -> Sign1:
    """Parse a (possibly CWT- and COSE-tagged) COSE_Sign1 message.

    Raises:
        Refused: CBOR when the bytes are not CBOR, COSE when they are not a Sign1.
    """
    try:
        item = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise Refused(Reason.CBOR, f"not CBOR: {exc}") from None
    for tag in (TAG_CWT, TAG_SIGN1):
        if isinstance(item, cbor2.CBORTag) and item.tag == tag:
            item = item.value
    if isinstance(item, cbor2.CBORTag):
        raise Refused(Reason.COSE, f"unexpected CBOR tag {item.tag}")
    if not (isinstance(item, list | tuple) and len(item) == 4):
        raise Refused(Reason.COSE, "not a COSE_Sign1 array of four items")
    protected, unprotected, payload, signature = item
    if not all(isinstance(part, bytes) for part in (protected, payload, signature)):
        raise Refused(Reason.COSE, "protected header, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping):
        raise Refused(Reason.COSE, "unprotected header must be a map")
    header = _decode_map(protected, "protected header") if protected else {}
    return Sign1(protected, header, dict(unprotected), payload, signature)


def verify_sign1(sign1: Sign1, key: PublicKey) -> None:
    """Check the signature of `sign1` with `key`.

    Raises:
        Refused: COSE for an algorithm we do not accept, BAD_SIGNATURE when the key
            does not fit the algorithm or the signature does not verify.
    """
    alg = sign1.alg
    if alg not in ALGORITHMS:
        raise Refused(Reason.COSE, f"algorithm {alg!r} is not accepted (ES256, PS256, EdDSA)")
    message, signature = sign1.to_be_signed(), sign1.signature
    try:
        if alg == ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            # ES256 fixes the hash, not the curve (RFC 9053 only suggests P-256); issued
            # codes exist with P-384 signers, so the raw r||s length follows the key.
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise InvalidSignature
            r, s = int.from_bytes(signature[:size]), int.from_bytes(signature[size:])
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        elif alg == PS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, _PSS, hashes.SHA256())
        elif alg == EDDSA and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            raise Refused(
                Reason.BAD_SIGNATURE,
                f"{ALGORITHMS[alg]} signature but the signer's key is {type(key).__name__}",
            )
    except InvalidSignature:
        raise Refused(
            Reason.BAD_SIGNATURE, f"{ALGORITHMS[alg]} signature does not verify"
        ) from None


SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def sign1(payload: bytes, key: SigningKey, kid: bytes) -> bytes:
    """A tagged COSE_Sign1 over `payload`, kid and alg in the protected header."""
    alg = _alg_for(key)
    protected = cbor2.dumps({HEADER_ALG: alg, HEADER_KID: kid})
    message = cbor2.dumps(["Signature1", protected, b"", payload])
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32) + s.to_bytes(32)
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(message, _PSS, hashes.SHA256())
    else:
        signature = key.sign(message)
    return cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, [protected, {}, payload, signature]))


def _alg_for(key: SigningKey) -> int:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name != "secp256r1":
            raise ValueError(f"ES256 needs a P-256 key, not {key.curve.name}")
        return ES256
    if isinstance(key, rsa.RSAPrivateKey):
        return PS256
    return EDDSA


@dataclass(frozen=True)
class Claims:
    """CWT claims of an HCERT: who issued it, when, until when, its nonce and its content."""

    issuer: str | None
    issued_at: datetime | None
    expires_at: datetime | None
    cti: bytes | None
    hcert: dict[Any, Any]
    raw: dict[Any, Any]


def parse_claims(payload: bytes) -> Claims:
    """Parse the CWT claims map of a Sign1 payload.

    Raises:
        Refused: CBOR when the payload is not CBOR, COSE when it is not a claims map
            with the types RFC 8392 gives.
    """
    claims = _decode_map(payload, "CWT claims")
    issuer, cti, hcert = claims.get(CLAIM_ISS), claims.get(CLAIM_CTI), claims.get(CLAIM_HCERT, {})
    if issuer is not None and not isinstance(issuer, str):
        raise Refused(Reason.COSE, "iss claim is not text")
    if cti is not None and not isinstance(cti, bytes):
        raise Refused(Reason.COSE, "cti claim is not a byte string")
    if not isinstance(hcert, Mapping):
        raise Refused(Reason.COSE, "hcert claim (-260) is not a map")
    return Claims(
        issuer, _time(claims, CLAIM_IAT, "iat"), _time(claims, CLAIM_EXP, "exp"), cti,
        dict(hcert), dict(claims),
    )  # fmt: skip


def _time(claims: dict[Any, Any], key: int, name: str) -> datetime | None:
    value = claims.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(Reason.COSE, f"{name} claim is not a number of seconds")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise Refused(Reason.COSE, f"{name} claim {value} is out of range") from None


def _decode_map(data: bytes, what: str) -> dict[Any, Any]:
    try:
        item = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise Refused(Reason.CBOR, f"{what} is not CBOR: {exc}") from None
    if not isinstance(item, Mapping):
        raise Refused(Reason.COSE, f"{what} is not a map")
    return dict(item)
