"""Signed documents going down to nodes: node config, trust list, revocation list.

Each is an envelope around a typed body. The signature (Ed25519 by the site root
key) covers `signing_bytes()`: the envelope without `signature`, as JSON with sorted
keys and no whitespace. Checking it is the node's job (the credential verifier);
the contract fixes what is signed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, model_validator

from edge.contract.base import (
    STRICT,
    CertificateText,
    KeyId,
    Payload,
    PublicKeyText,
    ShortText,
    Slug,
)

# An Ed25519 signature is 64 bytes: 86 base64url characters without padding, the last
# one with its spare bits zero, so one signature has one spelling.
Ed25519Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{85}[AQgw]$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
KeyUse = Literal[
    "health-code", "dcc-test", "dcc-vaccination", "dcc-recovery", "household-pass", "badge"
]
# Why a node refused a signed document (edge.credentials.trust.DocumentRefused): `invalid`
# also covers a config the node's own model refuses (another node's, a section that
# cannot change live, a value out of range).
RefusalReason = Literal[
    "unsigned", "unknown-signer", "bad-signature", "stale-serial", "expired", "not-yet-valid",
    "invalid",
]  # fmt: skip
# A site trusts its health-code service's keys and, for EU DCCs, the document signers of
# the countries it accepts (the EU gateway listed well under 2,000 in all).
TRUST_ENTRIES_MAX = 2_000
# One site's revoked codes, each a 64-character hash: 100,000 is about 9 MB of JSON, as
# much as a node should parse and hold at once.
REVOCATIONS_MAX = 100_000
# A node config's sections and its JSON size; the node checks each section against its own
# config model, which bounds every value in it.
CONFIG_SECTIONS_MAX = 32
CONFIG_MAX_BYTES = 64 * 1024


class _Body(BaseModel):
    model_config = STRICT


class TrustEntry(_Body):
    """A signer the nodes accept: its kid, key (or certificate) and what it may sign."""

    kid: KeyId = Field(description="key id as it appears in the COSE header, base64")
    issuer: ShortText
    uses: tuple[KeyUse, ...] = Field(min_length=1, max_length=len(get_args(KeyUse)))
    public_key: PublicKeyText | None = Field(None, description="DER SubjectPublicKeyInfo, base64")
    certificate: CertificateText | None = Field(None, description="DER X.509 certificate, base64")
    not_before: AwareDatetime
    not_after: AwareDatetime

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if (self.public_key is None) == (self.certificate is None):
            raise ValueError("give exactly one of public_key and certificate")
        if self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        return self


class TrustListBody(_Body):
    entries: tuple[TrustEntry, ...] = Field(max_length=TRUST_ENTRIES_MAX)


class Revocation(_Body):
    """A revoked credential, by SHA-256 of its UVCI (EU DCC) or its `cti` (native codes)."""

    by: Literal["uvci", "cti"]
    sha256: Sha256Hex


class RevocationListBody(_Body):
    entries: tuple[Revocation, ...] = Field(max_length=REVOCATIONS_MAX)


class NodeConfigBody(_Body):
    """A node's configuration; the node validates `config` against its own config model."""

    node: Slug
    config: dict[str, Any] = Field(max_length=CONFIG_SECTIONS_MAX)

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        text = json.dumps(self.config, ensure_ascii=False, separators=(",", ":"), default=str)
        size = len(text.encode())
        if size > CONFIG_MAX_BYTES:
            raise ValueError(f"config is {size} bytes of JSON, at most {CONFIG_MAX_BYTES}")
        return self


class SignedDocument(Payload):
    """Envelope shared by the three documents."""

    document: str = Field(description="config, trust or revocations; fixed by the subclass")
    serial: int = Field(ge=1, description="grows with every issue; a node refuses an older one")
    issued_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    signer_kid: KeyId
    alg: Literal["Ed25519"] = "Ed25519"
    signature: Ed25519Signature = Field(description="over signing_bytes(), base64url")

    @model_validator(mode="after")
    def _expires_after_issue(self) -> Self:
        if self.expires_at is not None and self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self

    def signing_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        data = self.model_dump(mode="json", exclude={"signature"}, exclude_none=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class SignedTrustList(SignedDocument):
    document: Literal["trust"] = "trust"
    body: TrustListBody


class SignedRevocationList(SignedDocument):
    document: Literal["revocations"] = "revocations"
    body: RevocationListBody


class SignedNodeConfig(SignedDocument):
    document: Literal["config"] = "config"
    body: NodeConfigBody
