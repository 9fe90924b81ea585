"""Signers, trust and codes for credential tests: made here with the real issuer, never stubbed."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from edge.contract.documents import KeyUse
from edge.credentials.issuer import Algorithm, Signer, issue, subject_ref
from edge.credentials.keys import TrustedKey
from edge.credentials.native import HealthCode
from edge.credentials.trust import RevocationList, TrustList
from edge.credentials.verifier import FixedTrust, Verifier

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SECRET = b"north-district-subject-secret-32"
NATIVE_USES: tuple[KeyUse, ...] = ("health-code", "household-pass", "badge")


def trusted(
    signer: Signer,
    uses: tuple[KeyUse, ...] = NATIVE_USES,
    valid: tuple[datetime, datetime] = (T0 - timedelta(days=30), T0 + timedelta(days=365)),
) -> TrustedKey:
    entry = signer.trust_entry(uses, *valid)
    assert entry.public_key is not None
    return TrustedKey.from_public_key(
        base64.b64decode(entry.public_key), entry.issuer, frozenset(entry.uses), *valid
    )


def verifier(*keys: TrustedKey, revocations: RevocationList | None = None) -> Verifier:
    return Verifier(FixedTrust(TrustList.of(keys), revocations or RevocationList()))


def health_code(colour: str = "green", name: str = "张*丰") -> HealthCode:
    return HealthCode(colour=colour, subject=subject_ref("110101199001011234", SECRET), name=name)  # type: ignore[arg-type]


def green_code(signer: Signer, cti: bytes = b"\x01" * 16) -> str:
    return issue(health_code(), signer, T0, timedelta(hours=24), cti=cti)


def signer(algorithm: Algorithm = "ES256", rsa_bits: int = 2048) -> Signer:
    return Signer.generate(algorithm, "north", rsa_bits)
