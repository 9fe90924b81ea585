"""Signed trust and revocation lists: signing, verifying, and the store a node holds them in."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from edge.contract.documents import (
    RefusalReason,
    Revocation,
    SignedDocument,
    SignedRevocationList,
    SignedTrustList,
    TrustEntry,
)
from edge.credentials.keys import TrustedKey, kid_for, kid_text
from edge.errors import CredentialError

logger = logging.getLogger(__name__)

SignedT = TypeVar("SignedT", bound=SignedDocument)
RevokedBy = Literal["uvci", "cti"]

# A gate node's clock drifts between NTP syncs (or runs without one); a document
# issued a little "in the future" is that drift, not a forgery.
CLOCK_TOLERANCE = timedelta(minutes=5)
# What a draft carries before it is signed: the models require a signature of the
# right shape, so "unsigned" is 64 zero bytes rather than an absent field.
UNSIGNED = "A" * 86

DOCUMENT_NAMES = {"trust": "trust list", "revocations": "revocation list", "config": "node config"}


class DocumentRefused(CredentialError):
    """A signed document the node will not use; `reason` says why in one word.

    Reasons: `unsigned` (empty signature or the `UNSIGNED` placeholder), `unknown-signer`,
    `bad-signature`, `stale-serial` (not newer than the one held), `expired`,
    `not-yet-valid` (issued more than `CLOCK_TOLERANCE` ahead of the node's clock) and
    `invalid` (a trust entry whose key or certificate cannot be used, or a persisted
    file that is not a document at all).
    """

    def __init__(
        self, kind: str, serial: int | None, reason: RefusalReason, detail: str = ""
    ) -> None:
        name = DOCUMENT_NAMES.get(kind, kind)
        number = "of unknown serial" if serial is None else f"serial {serial}"
        because = f": {detail}" if detail else ""
        super().__init__(f"{name} {number} refused as {reason}{because}.")
        self.kind = kind
        self.serial = serial
        self.reason: RefusalReason = reason
        self.detail = detail


def root_keys_for(keys: Iterable[Ed25519PublicKey]) -> dict[bytes, Ed25519PublicKey]:
    """Site root keys indexed by kid, as `verify_document` and `TrustStore` take them."""
    return {kid_for(key): key for key in keys}


def sign_document(document: SignedT, key: Ed25519PrivateKey) -> SignedT:
    """A copy of `document` signed by `key`, with `signer_kid` naming it.

    Args:
        document: the document to sign; its current signature and signer are replaced.
        key: the site root key.

    Returns:
        The signed copy.
    """
    # signer_kid is inside the signed bytes, so it is set before signing.
    named = document.model_copy(update={"signer_kid": kid_text(kid_for(key.public_key()))})
    signature = _b64url(key.sign(named.signing_bytes()))
    return named.model_copy(update={"signature": signature})


def new_signed(
    cls: type[SignedT],
    body: BaseModel,
    serial: int,
    issued_at: datetime,
    key: Ed25519PrivateKey,
    *,
    expires_at: datetime | None = None,
) -> SignedT:
    """A new document of type `cls` around `body`, signed by `key`.

    Args:
        cls: SignedTrustList, SignedRevocationList or SignedNodeConfig.
        body: the body model that `cls` carries.
        serial: must be greater than the serial of the document it replaces.
        issued_at: aware time of issue.
        key: the site root key.
        expires_at: when nodes stop accepting it; None for never.

    Returns:
        The signed document.

    Raises:
        pydantic.ValidationError: `body` is not the body `cls` carries, or a field is out
            of bounds.
    """
    draft = cls.model_validate(
        {
            "serial": serial,
            "issued_at": issued_at,
            "expires_at": expires_at,
            "signer_kid": kid_text(kid_for(key.public_key())),
            "signature": UNSIGNED,
            "body": body,
        }
    )
    return sign_document(draft, key)


def verify_document(
    document: SignedDocument,
    root_keys: Mapping[bytes, Ed25519PublicKey],
    now: datetime,
    *,
    held_serial: int = 0,
) -> None:
    """Check that a node may use `document`: signed by a root key, newer, in date.

    Args:
        document: the received document.
        root_keys: site root public keys by kid.
        now: the node's clock (aware); passed in so tests and replays fix it.
        held_serial: the serial of the document of this kind the node holds; 0 for none.

    Raises:
        DocumentRefused: with the first reason that applies, signature reasons first so
            a forgery is reported as one even when it is also stale or expired.
        ValueError: `now` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    kind, serial = document.document, document.serial
    # model_construct can leave the field out; a validated model always has one.
    signature: str = getattr(document, "signature", "")
    if signature in ("", UNSIGNED):
        raise DocumentRefused(kind, serial, "unsigned")
    kid = _kid_bytes(document.signer_kid)
    root_key = None if kid is None else root_keys.get(kid)
    if root_key is None:
        raise DocumentRefused(kind, serial, "unknown-signer", f"no root key {document.signer_kid}")
    try:
        raw = base64.urlsafe_b64decode(signature + "==")
    except ValueError:  # only reachable through model_construct, which skips the pattern
        raw = b""
    # Base64url text has spare bits in its last character; only the canonical text of
    # the signature is accepted, so one signature has one spelling.
    if _b64url(raw) != signature:
        raise DocumentRefused(kind, serial, "bad-signature", "signature is not canonical base64url")
    try:
        root_key.verify(raw, document.signing_bytes())
    except InvalidSignature:
        raise DocumentRefused(
            kind, serial, "bad-signature", f"does not verify with root key {document.signer_kid}"
        ) from None
    check_serial(document, held_serial)
    if document.issued_at > now + CLOCK_TOLERANCE:
        raise DocumentRefused(
            kind, serial, "not-yet-valid", f"issued at {document.issued_at.isoformat()}"
        )
    if document.expires_at is not None and document.expires_at <= now:
        raise DocumentRefused(
            kind, serial, "expired", f"expired at {document.expires_at.isoformat()}"
        )


class TrustList(Mapping[bytes, TrustedKey]):
    """The signer keys a node accepts, by kid; immutable, so readers may hold it."""

    __slots__ = ("_issued_at", "_keys", "_serial")

    def __init__(
        self, keys: Mapping[bytes, TrustedKey], serial: int = 0, issued_at: datetime | None = None
    ) -> None:
        self._keys: Mapping[bytes, TrustedKey] = MappingProxyType(dict(keys))
        self._serial = serial
        self._issued_at = issued_at

    @classmethod
    def from_document(cls, document: SignedTrustList) -> TrustList:
        """The keys of a trust list whose signature has been verified.

        Raises:
            DocumentRefused: reason `invalid`: an entry whose key or certificate cannot be
                loaded, whose kid does not match its key, or whose kid is listed twice.
        """
        keys: dict[bytes, TrustedKey] = {}
        for entry in document.body.entries:
            try:
                key = _entry_key(entry)
            except (CredentialError, ValueError) as exc:
                raise DocumentRefused(
                    "trust", document.serial, "invalid", f"entry {entry.kid}: {exc}"
                ) from None
            if key.kid in keys:
                raise DocumentRefused(
                    "trust", document.serial, "invalid", f"kid {entry.kid} is listed twice"
                )
            keys[key.kid] = key
        return cls(keys, document.serial, document.issued_at)

    @classmethod
    def of(cls, keys: Iterable[TrustedKey]) -> TrustList:
        """An unsigned list of `keys` (serial 0), for tests and the conformance runner.

        Raises:
            CredentialError: two keys share a kid.
        """
        by_kid: dict[bytes, TrustedKey] = {}
        for key in keys:
            if key.kid in by_kid:
                raise CredentialError(f"kid {kid_text(key.kid)} is listed twice")
            by_kid[key.kid] = key
        return cls(by_kid)

    @property
    def serial(self) -> int:
        """Serial of the document it came from; 0 when it came from none."""
        return self._serial

    @property
    def issued_at(self) -> datetime | None:
        """When its document was issued; None when it came from none."""
        return self._issued_at

    def __getitem__(self, kid: bytes) -> TrustedKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"TrustList(serial={self._serial}, keys={len(self._keys)})"


class RevocationList:
    """Revoked credentials as (by, SHA-256 hex) pairs; immutable, so readers may hold it."""

    __slots__ = ("_hashes", "_issued_at", "_serial")

    def __init__(
        self,
        entries: Iterable[Revocation] = (),
        serial: int = 0,
        issued_at: datetime | None = None,
    ) -> None:
        self._hashes = frozenset((entry.by, entry.sha256) for entry in entries)
        self._serial = serial
        self._issued_at = issued_at

    @classmethod
    def from_document(cls, document: SignedRevocationList) -> RevocationList:
        """The entries of a revocation list whose signature has been verified."""
        return cls(document.body.entries, document.serial, document.issued_at)

    @property
    def serial(self) -> int:
        """Serial of the document it came from; 0 when it came from none."""
        return self._serial

    @property
    def issued_at(self) -> datetime | None:
        """When its document was issued; None when it came from none."""
        return self._issued_at

    def is_revoked(self, by: RevokedBy, value: bytes | str) -> bool:
        """Whether the credential with this UVCI or `cti` is revoked.

        Args:
            by: "uvci" for an EU DCC, "cti" for a native code.
            value: the UVCI or cti as it appears in the credential; text is hashed as UTF-8.

        Returns:
            True if the list names it.
        """
        return (by, _sha256_hex(value)) in self._hashes

    def __len__(self) -> int:
        return len(self._hashes)

    def __repr__(self) -> str:
        return f"RevocationList(serial={self._serial}, entries={len(self._hashes)})"


def revocation_entry(by: RevokedBy, value: bytes | str) -> Revocation:
    """The revocation-list entry an issuer publishes to revoke one credential.

    Args:
        by: "uvci" for an EU DCC, "cti" for a native code.
        value: the UVCI or cti; text is hashed as UTF-8.

    Returns:
        The entry, carrying only the hash.
    """
    return Revocation(by=by, sha256=_sha256_hex(value))


def _entry_key(entry: TrustEntry) -> TrustedKey:
    """The key of one trust-list entry, narrowed by what the entry allows."""
    uses = frozenset(entry.uses)
    if entry.public_key is not None:
        key = TrustedKey.from_public_key(
            base64.b64decode(entry.public_key, validate=True),
            entry.issuer,
            uses,
            entry.not_before,
            entry.not_after,
        )
    else:
        assert entry.certificate is not None  # the model requires exactly one of the two
        from_cert = TrustedKey.from_certificate(
            base64.b64decode(entry.certificate, validate=True), entry.issuer
        )
        # The signed list and the certificate each limit the key; both limits hold.
        key = replace(
            from_cert,
            uses=uses & from_cert.uses,
            not_before=max(entry.not_before, from_cert.not_before or entry.not_before),
            not_after=min(entry.not_after, from_cert.not_after or entry.not_after),
        )
        if not key.uses:
            logger.warning("trust entry %s may sign nothing its certificate allows", entry.kid)
    if key.kid != base64.b64decode(entry.kid, validate=True):
        # A credential names its signer by the kid derived from the key; a list that
        # says otherwise would send every such credential to "unknown signer".
        raise CredentialError(f"kid does not match its key, which has {kid_text(key.kid)}")
    return key


def check_serial(document: SignedDocument, held_serial: int) -> None:
    if document.serial <= held_serial:
        raise DocumentRefused(
            document.document, document.serial, "stale-serial", f"holding serial {held_serial}"
        )


def _kid_bytes(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sha256_hex(value: bytes | str) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()
