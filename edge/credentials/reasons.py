"""Why a credential was refused: one reason code per failure, and the error that carries it."""

from __future__ import annotations

from enum import StrEnum

from edge.errors import CredentialError


class Reason(StrEnum):
    """Failure reasons, in the order the pipeline meets them."""

    TOO_LARGE = "too-large"
    BAD_PREFIX = "bad-prefix"
    BASE45 = "base45"
    ZLIB = "zlib"
    CBOR = "cbor"
    COSE = "cose"
    UNKNOWN_KID = "unknown-kid"
    BAD_SIGNATURE = "bad-signature"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    KEY_USAGE = "key-usage"
    SCHEMA_INVALID = "schema-invalid"
    REVOKED = "revoked"
    RULE_FAILED = "rule-failed"


class Refused(CredentialError):
    """A credential refused for `reason`; `detail` says what exactly, in plain words."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
