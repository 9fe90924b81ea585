"""Verify a scanned code offline: every failure has its own reason, and nothing raises.

The validation clock is always passed in: a gate decides with the node's time, a
conformance case with its VALIDATIONCLOCK, a test with a fixed instant.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from edge.contract.base import Colour
from edge.contract.documents import KeyUse
from edge.credentials import dcc
from edge.credentials.cose import ALGORITHMS, Claims, parse_claims, verify_sign1
from edge.credentials.hcert import unwrap
from edge.credentials.keys import TrustedKey
from edge.credentials.native import (
    GATEPOST_CLAIM,
    Badge,
    HealthCode,
    NativeCredential,
    parse_native,
)
from edge.credentials.reasons import Reason, Refused

log = logging.getLogger(__name__)

Profile = Literal["dcc", "health-code", "household-pass", "badge"]


class KeyLookup(Protocol):
    def get(self, kid: bytes) -> TrustedKey | None: ...


class RevocationCheck(Protocol):
    def is_revoked(self, by: Literal["uvci", "cti"], value: bytes | str) -> bool: ...


class TrustSource(Protocol):
    """Where the verifier finds keys and revocations; read once per verification."""

    @property
    def trust_list(self) -> KeyLookup: ...

    @property
    def revocations(self) -> RevocationCheck: ...


@dataclass(frozen=True)
class Verdict:
    """What the gate needs to know about a code.

    `ok` is false when the code cannot be trusted (the first failure is `reasons[0]`);
    a trusted code still carries a colour and, when not green, the rule reasons.
    """

    ok: bool
    colour: Colour | None
    reasons: tuple[str, ...]
    detail: str = ""
    profile: Profile | None = None
    kid: bytes | None = None
    algorithm: str | None = None
    issuer: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    cti: bytes | None = None
    credential: NativeCredential | None = None
    dcc: dict[str, Any] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The verdict as `gatepost verify` prints it: no personal data beyond the masked name."""
        credential = (
            self.credential.model_dump(mode="json", exclude={"subject"})
            if self.credential
            else None
        )
        return {
            "ok": self.ok,
            "colour": self.colour,
            "reasons": list(self.reasons),
            "detail": self.detail,
            "profile": self.profile,
            "kid": base64.b64encode(self.kid).decode() if self.kid else None,
            "algorithm": self.algorithm,
            "issuer": self.issuer,
            "iat": self.issued_at.isoformat() if self.issued_at else None,
            "exp": self.expires_at.isoformat() if self.expires_at else None,
            "cti": self.cti.hex() if self.cti else None,
            "credential": credential,
        }


class Verifier:
    """Verifies HCERT codes against a trust source and site rules.

    Args:
        trust: current trust list and revocation list (a TrustStore, or fixed lists).
        rules: when an EU DCC is green at this site.
    """

    def __init__(self, trust: TrustSource, rules: dcc.DccRules | None = None) -> None:
        self.trust = trust
        self.rules = rules or dcc.DccRules()

    def verify(self, text: str, at: datetime) -> Verdict:
        """The verdict on the scanned `text` at time `at`. Never raises."""
        partial: dict[str, Any] = {}
        try:
            return self._verify(text, at, partial)
        except Refused as refused:
            return Verdict(False, None, (refused.reason,), refused.detail, **partial)
        except Exception as exc:  # a bug must not open or jam the gate: refuse, and say so
            log.exception("verifier failed on a code of %d characters", len(text))
            return Verdict(
                False, None, (Reason.COSE,), f"verifier fault: {type(exc).__name__}", **partial
            )

    def _verify(self, text: str, at: datetime, partial: dict[str, Any]) -> Verdict:
        sign1 = unwrap(text)
        kid = sign1.kid
        partial["kid"] = kid
        partial["algorithm"] = ALGORITHMS.get(sign1.alg)
        key = self.trust.trust_list.get(kid) if kid else None
        if key is None:
            shown = base64.b64encode(kid).decode() if kid else "none"
            raise Refused(Reason.UNKNOWN_KID, f"kid {shown} is not in the trust list")
        verify_sign1(sign1, key.public_key)
        claims = parse_claims(sign1.payload)
        partial.update(
            issuer=key.issuer,
            issued_at=claims.issued_at,
            expires_at=claims.expires_at,
            cti=claims.cti,
        )
        check_time(claims, at)
        check_key_validity(key, claims.issued_at or at)
        if dcc.DCC_KEY in claims.hcert:
            return self._dcc(claims, key, at, partial)
        if GATEPOST_CLAIM in claims.raw:
            return self._native(claims, key, partial)
        raise Refused(Reason.COSE, "no EU DCC and no Gatepost credential in the claims")

    def _dcc(
        self, claims: Claims, key: TrustedKey, at: datetime, partial: dict[str, Any]
    ) -> Verdict:
        partial["profile"] = "dcc"
        payload = claims.hcert[dcc.DCC_KEY]
        dcc.validate(payload)
        # What the signer may sign depends on the kind alone; the entry count is shape.
        check_key_usage(key, dcc.dcc_kind(payload))
        kind, entry = dcc.dcc_type(payload)
        if self.trust.revocations.is_revoked("uvci", entry["ci"]):
            raise Refused(Reason.REVOKED, "the certificate identifier (UVCI) is revoked")
        result = dcc.apply_rules(kind, entry, self.rules, at)
        reasons = () if result.colour == "green" else (Reason.RULE_FAILED, *result.reasons)
        return Verdict(
            True, result.colour, reasons, ", ".join(result.reasons), dcc=payload, **partial
        )

    def _native(self, claims: Claims, key: TrustedKey, partial: dict[str, Any]) -> Verdict:
        credential = parse_native(claims.raw[GATEPOST_CLAIM])
        partial["profile"] = credential.type
        check_key_usage(key, credential.type)
        if claims.cti is None:
            raise Refused(Reason.SCHEMA_INVALID, "a Gatepost credential needs a cti nonce")
        if self.trust.revocations.is_revoked("cti", claims.cti):
            raise Refused(Reason.REVOKED, "the credential (cti) is revoked")
        colour: Colour | None = None if isinstance(credential, Badge) else "green"
        if isinstance(credential, HealthCode):
            colour = credential.colour
        reasons = () if colour in ("green", None) else (f"{colour}-code",)
        return Verdict(True, colour, reasons, credential=credential, **partial)


def check_time(claims: Claims, at: datetime) -> None:
    """A code is valid from its iat up to and including its exp.

    The HCERT specification has verifiers reject a payload *after* expiration, so the
    instant of exp itself is still valid (conformance case ES/1501 checks exactly it).

    Raises:
        Refused: COSE without exp, NOT_YET_VALID before iat, EXPIRED after exp.
    """
    if claims.expires_at is None:
        raise Refused(Reason.COSE, "no exp claim")
    if claims.issued_at is not None and at < claims.issued_at:
        raise Refused(Reason.NOT_YET_VALID, f"issued at {claims.issued_at:%Y-%m-%d %H:%M} UTC")
    if at > claims.expires_at:
        raise Refused(Reason.EXPIRED, f"expired at {claims.expires_at:%Y-%m-%d %H:%M} UTC")


def check_key_validity(key: TrustedKey, signed_at: datetime) -> None:
    """The signer's key must have been valid when it signed (the code's iat).

    A retired key's codes stop at its not_after; a key listed ahead of its use signs
    nothing before its not_before.

    Raises:
        Refused: UNKNOWN_KID, since the trust list does not vouch for the key at that time.
    """
    if key.not_before is not None and signed_at < key.not_before:
        raise Refused(
            Reason.UNKNOWN_KID, f"signed before its key was valid ({key.not_before:%Y-%m-%d})"
        )
    if key.not_after is not None and signed_at > key.not_after:
        raise Refused(
            Reason.UNKNOWN_KID, f"signed after its key was retired ({key.not_after:%Y-%m-%d})"
        )


def check_key_usage(key: TrustedKey, use: KeyUse) -> None:
    """The signer must be allowed to sign this kind of credential.

    Raises:
        Refused: KEY_USAGE naming what the key may sign.
    """
    if use not in key.uses:
        allowed = ", ".join(sorted(key.uses)) or "nothing"
        raise Refused(Reason.KEY_USAGE, f"key may sign {allowed}, not {use}")


@dataclass(frozen=True)
class FixedTrust:
    """A trust source that never changes: for the command line, tests and benchmarks."""

    trust_list: KeyLookup
    revocations: RevocationCheck
