"""Issue codes in the HCERT container: native health codes, household passes, badges, and test DCCs.

Sites issue their own codes with these; simulators and drills use the same functions,
so what the gate scans in a drill is exactly what it would scan on the day.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from edge.contract.documents import KeyUse, TrustEntry
from edge.credentials import cose
from edge.credentials.dcc import DCC_KEY
from edge.credentials.hcert import wrap
from edge.credentials.keys import kid_for, kid_text, write_private_key
from edge.credentials.native import GATEPOST_CLAIM, NativeCredential, native_claim
from edge.errors import CredentialError

Algorithm = Literal["ES256", "PS256", "EdDSA"]


@dataclass(frozen=True)
class Signer:
    """A signing key and the issuer name its codes carry in the `iss` claim."""

    key: cose.SigningKey
    issuer: str

    @property
    def kid(self) -> bytes:
        return kid_for(self.key.public_key())

    @classmethod
    def generate(cls, algorithm: Algorithm, issuer: str, rsa_bits: int = 2048) -> Signer:
        """A new key: ES256 (P-256), PS256 (RSA, 2048 or 3072 bits) or EdDSA (Ed25519)."""
        key: cose.SigningKey
        if algorithm == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "PS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        else:
            key = ed25519.Ed25519PrivateKey.generate()
        return cls(key, issuer)

    @classmethod
    def load(cls, path: Path, issuer: str) -> Signer:
        """A signer from a PEM private key file.

        Raises:
            CredentialError: unreadable, or not an EC P-256, RSA or Ed25519 private key.
        """
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise CredentialError(f"{path}: not a PEM private key: {exc}") from None
        if not isinstance(
            key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise CredentialError(f"{path}: {type(key).__name__} keys cannot sign codes")
        return cls(key, issuer)

    def save(self, path: Path) -> None:
        """Write the private key as PEM, readable by the owner only."""
        write_private_key(path, self.key, replace=True)

    def trust_entry(
        self, uses: tuple[KeyUse, ...], not_before: datetime, not_after: datetime
    ) -> TrustEntry:
        """This signer as a trust-list entry (its public key, never the private one)."""
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return TrustEntry(
            kid=kid_text(self.kid), issuer=self.issuer, uses=uses,
            public_key=base64.b64encode(spki).decode(), not_before=not_before, not_after=not_after,
        )  # fmt: skip


def issue(
    credential: NativeCredential,
    signer: Signer,
    issued_at: datetime,
    valid_for: timedelta,
    cti: bytes | None = None,
) -> str:
    """The text of a QR code carrying `credential`, signed by `signer`.

    Args:
        credential: health code, household pass or badge.
        signer: key and issuer name.
        issued_at: the iat claim (the clock is the caller's).
        valid_for: exp - iat; health codes are short-lived (hours), badges longer.
        cti: the nonce revocations name; 16 random bytes when not given.
    """
    claims = _claims(signer, issued_at, issued_at + valid_for, cti or os.urandom(16))
    claims[GATEPOST_CLAIM] = native_claim(credential)
    return _sign(claims, signer)


def issue_dcc(
    dcc: dict[str, Any], signer: Signer, issued_at: datetime, expires_at: datetime
) -> str:
    """An EU DCC payload in the HCERT container, for tests and drills with site keys."""
    claims = _claims(signer, issued_at, expires_at, None)
    claims[cose.CLAIM_HCERT] = {DCC_KEY: dcc}
    return _sign(claims, signer)


def _claims(
    signer: Signer, issued_at: datetime, expires_at: datetime, cti: bytes | None
) -> dict[int, Any]:
    claims: dict[int, Any] = {
        cose.CLAIM_ISS: signer.issuer,
        cose.CLAIM_IAT: int(issued_at.timestamp()),
        cose.CLAIM_EXP: int(expires_at.timestamp()),
    }
    if cti is not None:
        claims[cose.CLAIM_CTI] = cti
    return claims


def _sign(claims: dict[int, Any], signer: Signer) -> str:
    return wrap(cose.sign1(cbor2.dumps(claims), signer.key, signer.kid))


def qr_png(text: str, scale: int = 6) -> bytes:
    """A PNG of the QR code for `text`, error correction Q (a quarter of it may be lost)."""
    import segno  # only the tools draw codes; a node never does

    qr = segno.make(text, error="q", micro=False, boost_error=False)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def subject_ref(id_number: str, site_secret: bytes) -> bytes:
    """Keyed hash (HMAC-SHA256) of an ID number: a code carries this, never the number.

    The same person gets the same reference at every gate of the site, so passes can be
    counted, while a lost code or log gives the number to nobody without the secret.
    """
    if len(site_secret) < 16:
        raise CredentialError("the site secret for subject references needs at least 16 bytes")
    return hmac.new(site_secret, id_number.strip().upper().encode(), hashlib.sha256).digest()


def mask_name(name: str) -> str:
    """A name as the code shows it to the volunteer: first and last character kept (张*丰)."""
    name = name.strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
