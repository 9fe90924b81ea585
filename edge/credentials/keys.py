"""Signer keys as the verifier uses them: kid, public key, issuer, what the key may sign."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from edge.contract.documents import KeyUse
from edge.credentials import der
from edge.errors import CredentialError

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
DccType = Literal["dcc-test", "dcc-vaccination", "dcc-recovery"]
DCC_USES: frozenset[KeyUse] = frozenset({"dcc-test", "dcc-vaccination", "dcc-recovery"})

# Extended key usage OIDs of DCC signer certificates (eHealth Network, "DCC
# technical specifications" vol. 1): a certificate carrying any of them may sign
# only the types they name; one carrying none may sign every type.
DCC_EKU: dict[str, DccType] = {
    "1.3.6.1.4.1.1847.2021.1.1": "dcc-test",
    "1.3.6.1.4.1.1847.2021.1.2": "dcc-vaccination",
    "1.3.6.1.4.1.1847.2021.1.3": "dcc-recovery",
    "1.3.6.1.4.1.0.1847.2021.1.1": "dcc-test",
    "1.3.6.1.4.1.0.1847.2021.1.2": "dcc-vaccination",
    "1.3.6.1.4.1.0.1847.2021.1.3": "dcc-recovery",
}


EKU_OID = "2.5.29.37"


def write_private_key(path: Path, key: PrivateKey, *, replace: bool = False) -> None:
    """Write `key` as unencrypted PKCS#8 PEM, created mode 0600: never readable by others,
    not even for a moment. Without `replace`, an existing file is an error (FileExistsError).
    """
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    with os.fdopen(os.open(path, flags, 0o600), "wb") as out:
        out.write(pem)


def kid_for(public_key: PublicKey) -> bytes:
    """The DCC key id: first 8 bytes of SHA-256 of the DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()[:8]


def kid_text(kid: bytes) -> str:
    """A kid as people and trust lists write it: standard base64."""
    return base64.b64encode(kid).decode()


@dataclass(frozen=True)
class TrustedKey:
    """A key the verifier accepts signatures from, and what it may sign."""

    kid: bytes
    issuer: str
    public_key: PublicKey
    uses: frozenset[KeyUse]
    not_before: datetime | None = None
    not_after: datetime | None = None

    @classmethod
    def from_certificate(cls, der: bytes, issuer: str | None = None) -> TrustedKey:
        """A DCC signer certificate; its EKU OIDs restrict what it may sign.

        The kid is the DCC one: first 8 bytes of SHA-256 of the certificate's DER.

        Raises:
            CredentialError: not a DER X.509 certificate with a supported key type.
        """
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CredentialError(f"not a DER X.509 certificate: {exc}") from None
        key = cert.public_key()
        if not isinstance(key, PublicKey):
            raise CredentialError(f"unsupported key type {type(key).__name__} in certificate")
        return cls(
            kid=hashlib.sha256(der).digest()[:8],
            issuer=issuer or cert.subject.rfc4514_string(),
            public_key=key,
            uses=_dcc_uses(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )

    @classmethod
    def from_public_key(
        cls,
        der: bytes,
        issuer: str,
        uses: frozenset[KeyUse],
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> TrustedKey:
        """A bare key (DER SubjectPublicKeyInfo), as our own site keys are listed.

        Raises:
            CredentialError: not a DER public key of a supported type.
        """
        try:
            key = serialization.load_der_public_key(der)
        except ValueError as exc:
            raise CredentialError(f"not a DER public key: {exc}") from None
        if not isinstance(key, PublicKey):
            raise CredentialError(f"unsupported key type {type(key).__name__}")
        return cls(kid_for(key), issuer, key, uses, not_before, not_after)


def _dcc_uses(cert: x509.Certificate) -> frozenset[KeyUse]:
    """What a DCC signer certificate may sign, from its extended key usage."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        oids = [oid.dotted_string for oid in eku]
    except x509.ExtensionNotFound:
        oids = []
    except ValueError:
        # Issued certificates exist whose EKU is an empty SEQUENCE, which RFC 5280
        # forbids and cryptography refuses; read the OIDs from the DER ourselves.
        oids = der.extension_oids(cert.tbs_certificate_bytes, EKU_OID)
    named = frozenset(DCC_EKU[oid] for oid in oids if oid in DCC_EKU)
    return named or DCC_USES
