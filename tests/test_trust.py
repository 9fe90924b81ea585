"""Signed trust and revocation lists: signing, every refusal, and the node's TrustStore."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from edge.contract.documents import (
    NodeConfigBody,
    RevocationListBody,
    SignedDocument,
    SignedNodeConfig,
    SignedRevocationList,
    SignedTrustList,
    TrustEntry,
    TrustListBody,
)
from edge.credentials.keys import DCC_USES, TrustedKey, kid_for, kid_text
from edge.credentials.store import TrustStore
from edge.credentials.trust import (
    CLOCK_TOLERANCE,
    UNSIGNED,
    DocumentRefused,
    RevocationList,
    TrustList,
    new_signed,
    revocation_entry,
    root_keys_for,
    sign_document,
    verify_document,
)
from edge.errors import CredentialError
from tests.test_mqtt_doc import DOC, examples

T0 = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
DCC_TEST_EKU = "1.3.6.1.4.1.1847.2021.1.1"
ROOT = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
ROOT_KEYS = root_keys_for([ROOT.public_key()])
# The site root key the examples in docs/mqtt.md are signed with.
EXAMPLE_ROOT = "MCowBQYDK2VwAyEAc6I85RPCXXhyi/y92kwz8RDyFJ9nFPbIh/lJKBplQFg="


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_entry(uses: tuple[Any, ...] = ("health-code",), **changes: Any) -> TrustEntry:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    fields: dict[str, Any] = {
        "kid": kid_text(kid_for(public)),
        "issuer": "Municipal health-code service",
        "uses": uses,
        "public_key": b64(spki(public)),
        "not_before": T0 - 30 * DAY,
        "not_after": T0 + 365 * DAY,
    }
    return TrustEntry(**(fields | changes))


def certificate(eku: list[str] | None) -> bytes:
    """A self-signed EC P-256 DCC signer certificate valid T0-30d..T0+300d."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DSC North 1")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - 30 * DAY)
        .not_valid_after(T0 + 300 * DAY)
    )
    if eku is not None:
        usages = [x509.ObjectIdentifier(oid) for oid in eku]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(private, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def cert_entry(der: bytes, uses: tuple[Any, ...], **changes: Any) -> TrustEntry:
    fields: dict[str, Any] = {
        "kid": kid_text(hashlib.sha256(der).digest()[:8]),
        "issuer": "North CDC",
        "uses": uses,
        "certificate": b64(der),
        "not_before": T0 - 10 * DAY,
        "not_after": T0 + 400 * DAY,
    }
    return TrustEntry(**(fields | changes))


TWICE = key_entry()


def trust_doc(
    serial: int = 1,
    entries: tuple[TrustEntry, ...] | None = None,
    key: Ed25519PrivateKey = ROOT,
    issued_at: datetime = T0,
) -> SignedTrustList:
    body = TrustListBody(entries=(key_entry(),) if entries is None else entries)
    return new_signed(SignedTrustList, body, serial, issued_at, key, expires_at=issued_at + 7 * DAY)


def revocation_doc(
    serial: int = 1, values: tuple[str, ...] = ("cti-1",), issued_at: datetime = T0
) -> SignedRevocationList:
    body = RevocationListBody(entries=tuple(revocation_entry("cti", v) for v in values))
    return new_signed(
        SignedRevocationList, body, serial, issued_at, ROOT, expires_at=issued_at + DAY
    )


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refusal(doc: SignedDocument, now: datetime = T0, held_serial: int = 0) -> str:
    with pytest.raises(DocumentRefused) as caught:
        verify_document(doc, ROOT_KEYS, now, held_serial=held_serial)
    return caught.value.reason


# --- signing and verifying -----------------------------------------------------------------

DOCUMENTS: dict[str, Callable[[], SignedDocument]] = {
    "trust": trust_doc,
    "revocations": revocation_doc,
    "config": lambda: new_signed(
        SignedNodeConfig, NodeConfigBody(node="g01", config={"heartbeat_s": 30}), 4, T0, ROOT
    ),
}


@pytest.mark.parametrize("make", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_sign_document__valid(make: Callable[[], SignedDocument]) -> None:
    doc = make()
    assert doc.signer_kid == kid_text(kid_for(ROOT.public_key()))
    assert len(doc.signature) == 86
    verify_document(doc, ROOT_KEYS, T0)
    # Re-signing replaces signer and signature; the result verifies under the new key.
    resigned = sign_document(doc, OTHER)
    assert resigned.signer_kid == kid_text(kid_for(OTHER.public_key()))
    verify_document(resigned, root_keys_for([OTHER.public_key()]), T0)
    # Through the wire format and back, the signature still holds.
    verify_document(type(doc).model_validate_json(doc.model_dump_json()), ROOT_KEYS, T0)


@pytest.mark.parametrize(
    "now",
    [T0 - CLOCK_TOLERANCE, T0, T0 + 7 * DAY - SECOND],
    ids=["issued-at-the-tolerance-edge", "issued-now", "a-second-before-expiry"],
)
def test_verify_document__valid(now: datetime) -> None:
    verify_document(trust_doc(serial=5), ROOT_KEYS, now, held_serial=4)


def test_verify_document__valid_for_the_doc_examples() -> None:
    root = serialization.load_der_public_key(base64.b64decode(EXAMPLE_ROOT))
    assert isinstance(root, Ed25519PublicKey)
    models = {m.__name__: m for m in (SignedTrustList, SignedRevocationList, SignedNodeConfig)}
    found = [(models[name], text) for name, _, text in examples(DOC.read_text()) if name in models]
    assert len(found) == 3
    for model, text in found:
        # 06:00Z: after every example was issued and before the earliest expiry.
        verify_document(model.model_validate_json(text), root_keys_for([root]), T0 + 2 * HOUR)


def _forged_by_other_key() -> SignedDocument:
    # Names the root key as signer but is signed by someone else's key.
    doc = trust_doc()
    return doc.model_copy(update={"signature": b64url(OTHER.sign(doc.signing_bytes()))})


def _tampered_body() -> SignedDocument:
    doc = trust_doc()
    return doc.model_copy(update={"body": TrustListBody(entries=(key_entry(),))})


def _tampered_expiry() -> SignedDocument:
    doc = revocation_doc()
    return doc.model_copy(update={"expires_at": T0 + 365 * DAY})


def _non_canonical_signature() -> SignedDocument:
    # The last of 86 characters carries 2 signature bits and 4 spare ones; setting a
    # spare bit spells the same 64 bytes differently.
    doc = trust_doc()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(doc.signature[-1]) | 0b0001]
    return doc.model_copy(update={"signature": doc.signature[:-1] + last})


def _never_signed() -> SignedDocument:
    return trust_doc().model_copy(update={"signature": UNSIGNED})


def _signature_missing() -> SignedDocument:
    doc = trust_doc()
    fields = doc.model_dump(exclude={"signature"})
    fields["body"] = doc.body
    return SignedTrustList.model_construct(**fields)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_never_signed, "unsigned"),
        (_signature_missing, "unsigned"),
        (lambda: trust_doc().model_copy(update={"signature": "B" * 86}), "bad-signature"),
        (_forged_by_other_key, "bad-signature"),
        (_tampered_body, "bad-signature"),
        (_tampered_expiry, "bad-signature"),
        (lambda: trust_doc().model_copy(update={"serial": 9}), "bad-signature"),
        (_non_canonical_signature, "bad-signature"),
        (lambda: trust_doc().model_copy(update={"signature": "!" * 86}), "bad-signature"),
        (lambda: trust_doc(key=OTHER), "unknown-signer"),
        (lambda: trust_doc().model_copy(update={"signer_kid": "abcde"}), "unknown-signer"),
        (lambda: trust_doc(issued_at=T0 - 7 * DAY), "expired"),
        (lambda: revocation_doc(issued_at=T0 - DAY - SECOND), "expired"),
        (lambda: trust_doc(issued_at=T0 + CLOCK_TOLERANCE + SECOND), "not-yet-valid"),
    ],
    ids=[
        "placeholder-signature",
        "signature-missing",
        "arbitrary-signature",
        "forged-by-another-key",
        "tampered-body",
        "tampered-expiry",
        "tampered-serial",
        "non-canonical-signature",
        "not-base64url",
        "unknown-signer",
        "undecodable-signer-kid",
        "expired-exactly-now",
        "expired",
        "issued-in-the-future",
    ],
)
def test_verify_document__invalid(make: Callable[[], SignedDocument], reason: str) -> None:
    assert refusal(make()) == reason


@pytest.mark.parametrize("held", [5, 6])
def test_verify_document__invalid_stale_serial(held: int) -> None:
    with pytest.raises(DocumentRefused, match=r"trust list serial 5 refused as stale-serial"):
        verify_document(trust_doc(serial=5), ROOT_KEYS, T0, held_serial=held)


def test_verify_document__invalid_a_forgery_is_reported_before_staleness() -> None:
    assert refusal(_forged_by_other_key(), T0 + 30 * DAY, held_serial=9) == "bad-signature"


def test_verify_document__invalid_naive_clock() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify_document(trust_doc(), ROOT_KEYS, T0.replace(tzinfo=None))


# --- trust list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eku", "entry_uses", "expected"),
    [
        ([DCC_TEST_EKU], ("dcc-test", "dcc-vaccination"), {"dcc-test"}),
        ([DCC_TEST_EKU], ("dcc-recovery",), set()),
        (None, ("dcc-vaccination", "dcc-recovery"), {"dcc-vaccination", "dcc-recovery"}),
        (None, ("dcc-test", "health-code"), {"dcc-test"}),
    ],
    ids=["eku-narrows", "eku-excludes-all", "no-eku-all-dcc", "no-eku-no-native"],
)
def test_trust_list_certificate_entry__valid(
    eku: list[str] | None, entry_uses: tuple[Any, ...], expected: set[str]
) -> None:
    der = certificate(eku)
    doc = trust_doc(entries=(cert_entry(der, entry_uses),))
    verify_document(doc, ROOT_KEYS, T0)
    keys = TrustList.from_document(doc)
    key = keys.get(hashlib.sha256(der).digest()[:8])
    assert key is not None
    assert key.uses == expected
    # The entry starts later and the certificate ends earlier: the narrower window holds.
    assert (key.not_before, key.not_after) == (T0 - 10 * DAY, T0 + 300 * DAY)
    assert expected <= DCC_USES


def test_trust_list_public_key_entry__valid() -> None:
    entries = (key_entry(), key_entry(("household-pass", "badge")))
    keys = TrustList.from_document(trust_doc(serial=12, entries=entries))
    assert (len(keys), keys.serial, keys.issued_at) == (2, 12, T0)
    for entry in entries:
        key = keys.get(base64.b64decode(entry.kid))
        assert key is not None
        assert (key.issuer, key.uses) == (entry.issuer, frozenset(entry.uses))
        assert (key.not_before, key.not_after) == (entry.not_before, entry.not_after)
    assert keys.get(b"\x00" * 8) is None
    assert set(keys) == {base64.b64decode(e.kid) for e in entries}


@pytest.mark.parametrize(
    "entries",
    [
        (key_entry(public_key=b64(b"not a key")),),
        (key_entry(kid="AAAAAAAAAAA="),),
        (cert_entry(b"not a certificate", ("dcc-test",)),),
        (cert_entry(certificate(None), ("dcc-test",), kid="AAAAAAAAAAA="),),
        (TWICE, TWICE),
    ],
    ids=["bad-public-key", "kid-mismatch", "bad-certificate", "cert-kid-mismatch", "kid-twice"],
)
def test_trust_list__invalid(entries: tuple[TrustEntry, ...]) -> None:
    doc = trust_doc(serial=3, entries=entries)
    verify_document(doc, ROOT_KEYS, T0)  # signed correctly; the content is what is wrong
    with pytest.raises(DocumentRefused, match="trust list serial 3 refused as invalid") as caught:
        TrustList.from_document(doc)
    assert caught.value.reason == "invalid"


def test_trust_list_of__valid() -> None:
    key = TrustedKey.from_public_key(
        spki(ec.generate_private_key(ec.SECP256R1()).public_key()), "x", frozenset({"badge"})
    )
    keys = TrustList.of([key])
    assert (keys.serial, keys.issued_at, len(keys), keys[key.kid]) == (0, None, 1, key)


def test_trust_list_of__invalid() -> None:
    key = TrustedKey.from_public_key(
        spki(ec.generate_private_key(ec.SECP256R1()).public_key()), "x", frozenset({"badge"})
    )
    with pytest.raises(CredentialError, match="listed twice"):
        TrustList.of([key, key])


# --- revocation list ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("by", "value"),
    [
        ("cti", bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")),
        ("cti", "0f5e9f2c-5c53-4d0e-9d7e-2b6c1a0f3e11"),
        ("uvci", "URN:UVCI:01:CN:DADFCC47C7334E45A906DB12FD859FB7#1"),
    ],
)
def test_revocation_list__valid(by: Any, value: bytes | str) -> None:
    body = RevocationListBody(entries=(revocation_entry(by, value),))
    doc = new_signed(SignedRevocationList, body, 2, T0, ROOT)
    revoked = RevocationList.from_document(doc)
    assert revoked.is_revoked(by, value)
    if isinstance(value, str):
        assert revoked.is_revoked(by, value.encode())
    assert (len(revoked), revoked.serial, revoked.issued_at) == (1, 2, T0)


@pytest.mark.parametrize(
    ("by", "value"),
    [("uvci", "cti-1"), ("cti", "cti-2"), ("cti", "CTI-1"), ("cti", b"cti-1\x00")],
    ids=["other-kind", "other-value", "case-matters", "bytes-differ"],
)
def test_revocation_list__invalid(by: Any, value: bytes | str) -> None:
    revoked = RevocationList.from_document(revocation_doc(values=("cti-1",)))
    assert revoked.is_revoked("cti", "cti-1")
    assert not revoked.is_revoked(by, value)


@given(by=st.sampled_from(["uvci", "cti"]), value=st.one_of(st.binary(), st.text()))
def test_revocation_entry__valid(by: Any, value: bytes | str) -> None:
    entry = revocation_entry(by, value)
    assert RevocationList([entry]).is_revoked(by, value)
    assert not RevocationList().is_revoked(by, value)


# --- trust store --------------------------------------------------------------------------


def test_trust_store__valid_when_empty() -> None:
    store = TrustStore(ROOT_KEYS)
    assert (store.trust_list.serial, len(store.trust_list)) == (0, 0)
    assert (store.revocations.serial, len(store.revocations)) == (0, 0)
    assert store.trust_list_age_s(T0) is None
    assert store.revocations_age_s(T0) is None
    assert store.load(T0) == []


def test_trust_store_apply__valid() -> None:
    store = TrustStore(ROOT_KEYS)
    store.apply(trust_doc(serial=1), T0)
    store.apply(trust_doc(serial=2, issued_at=T0 + HOUR), T0 + 2 * HOUR)
    store.apply(revocation_doc(serial=7, values=("a", "b")), T0 + timedelta(hours=2))
    assert (store.trust_list.serial, store.revocations.serial) == (2, 7)
    assert store.revocations.is_revoked("cti", "b")
    assert store.trust_list_age_s(T0 + timedelta(hours=2)) == 3600.0
    assert store.revocations_age_s(T0 + timedelta(hours=2)) == 7200.0
    # Issued within the clock tolerance ahead of the node: new, not of negative age.
    store.apply(trust_doc(serial=3, issued_at=T0 + timedelta(hours=3)), T0 + timedelta(hours=2.99))
    assert store.trust_list_age_s(T0 + timedelta(hours=2.99)) == 0.0


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: trust_doc(serial=1), "stale-serial"),
        (lambda: trust_doc(serial=2), "stale-serial"),
        (lambda: _forged_by_other_key().model_copy(update={"serial": 3}), "bad-signature"),
        (lambda: trust_doc(serial=3).model_copy(update={"signature": UNSIGNED}), "unsigned"),
        (lambda: trust_doc(serial=3, key=OTHER), "unknown-signer"),
        (lambda: trust_doc(serial=3, issued_at=T0 - 8 * DAY), "expired"),
        (lambda: trust_doc(serial=3, entries=(key_entry(kid="AAAAAAAAAAA="),)), "invalid"),
    ],
    ids=["older", "same", "forged", "unsigned", "unknown-signer", "expired", "invalid-entry"],
)
def test_trust_store_apply__invalid(
    tmp_path: Path, make: Callable[[], SignedTrustList], reason: str
) -> None:
    store = TrustStore(ROOT_KEYS, tmp_path)
    store.apply(trust_doc(serial=2), T0)
    held = store.trust_list
    with pytest.raises(DocumentRefused) as caught:
        store.apply(make(), T0)
    assert caught.value.reason == reason
    assert store.trust_list is held
    assert TrustStore(ROOT_KEYS, tmp_path).load(T0) == []


def test_trust_store_apply__invalid_document_kind() -> None:
    config = DOCUMENTS["config"]()
    with pytest.raises(TypeError):
        TrustStore(ROOT_KEYS).apply(config, T0)  # type: ignore[arg-type]


def test_trust_store_swap__valid_a_reader_keeps_its_view() -> None:
    store = TrustStore(ROOT_KEYS)
    store.apply(trust_doc(serial=1), T0)
    held, applied = threading.Event(), threading.Event()
    seen: list[tuple[int, frozenset[bytes]]] = []

    def reader() -> None:
        keys = store.trust_list
        before = (keys.serial, frozenset(keys))
        held.set()
        applied.wait(timeout=10)
        seen.extend([before, (keys.serial, frozenset(keys))])

    thread = threading.Thread(target=reader)
    thread.start()
    assert held.wait(timeout=10)
    store.apply(trust_doc(serial=2), T0)
    applied.set()
    thread.join(timeout=10)
    assert seen[0] == seen[1]
    assert seen[0][0] == 1
    assert store.trust_list.serial == 2
    assert frozenset(store.trust_list) != seen[0][1]


@pytest.mark.parametrize("round_", range(20))
def test_trust_store_apply__valid_concurrently(tmp_path: Path, round_: int) -> None:
    store = TrustStore(ROOT_KEYS, tmp_path)
    store.apply(trust_doc(serial=1), T0)
    documents = [trust_doc(serial=2), trust_doc(serial=3)]
    if round_ % 2:
        documents.reverse()
    start = threading.Barrier(2)
    refusals: list[str] = []

    def apply(doc: SignedTrustList) -> None:
        start.wait(timeout=10)
        try:
            store.apply(doc, T0)
        except DocumentRefused as exc:
            refusals.append(exc.reason)

    threads = [threading.Thread(target=apply, args=(doc,)) for doc in documents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert store.trust_list.serial == 3
    assert refusals in ([], ["stale-serial"])
    restarted = TrustStore(ROOT_KEYS, tmp_path)
    assert restarted.load(T0) == []
    assert restarted.trust_list.serial == 3


def test_trust_store_load__valid(tmp_path: Path) -> None:
    store = TrustStore(ROOT_KEYS, tmp_path / "state")
    store.apply(trust_doc(serial=4), T0)
    store.apply(revocation_doc(serial=9, values=("x",), issued_at=T0 + timedelta(minutes=1)), T0)
    later = T0 + timedelta(hours=6)
    restarted = TrustStore(ROOT_KEYS, tmp_path / "state")
    assert restarted.load(later) == []
    assert (restarted.trust_list.serial, restarted.revocations.serial) == (4, 9)
    assert restarted.trust_list_age_s(later) == store.trust_list_age_s(later) == 6 * 3600
    assert restarted.revocations_age_s(later) == store.revocations_age_s(later)
    assert set(restarted.trust_list) == set(store.trust_list)
    assert restarted.revocations.is_revoked("cti", "x")
    assert not list((tmp_path / "state").glob(".*.tmp"))


@pytest.mark.parametrize(
    ("damage", "file", "reason"),
    [
        (lambda text: "\x00\xff garbage", "trust.json", "invalid"),
        (lambda text: text[: len(text) // 2], "trust.json", "invalid"),
        (
            lambda text: text.replace('"document":"trust"', '"document":"revocations"'),
            "trust.json",
            "invalid",
        ),
        (lambda text: text.replace('"serial":1,', '"serial":2,'), "trust.json", "bad-signature"),
        (
            lambda text: text.replace('"serial":1,', '"serial":2,'),
            "revocations.json",
            "bad-signature",
        ),
    ],
    ids=["garbage", "truncated", "wrong-kind", "forged-trust", "forged-revocations"],
)
def test_trust_store_load__invalid(
    tmp_path: Path, damage: Callable[[str], str], file: str, reason: str
) -> None:
    TrustStore(ROOT_KEYS, tmp_path).apply(trust_doc(serial=1), T0)
    TrustStore(ROOT_KEYS, tmp_path).apply(revocation_doc(serial=1), T0)
    path = tmp_path / file
    damaged = damage(path.read_text())
    assert damaged != path.read_text()
    path.write_text(damaged)
    restarted = TrustStore(ROOT_KEYS, tmp_path)
    refused = restarted.load(T0)
    assert [(r.kind, r.reason) for r in refused] == [(file.removesuffix(".json"), reason)]
    damaged_kind: dict[str, TrustList | RevocationList] = {
        "trust.json": restarted.trust_list,
        "revocations.json": restarted.revocations,
    }
    assert damaged_kind[file].serial == 0
    assert len(damaged_kind[file]) == 0
    intact = restarted.revocations if file == "trust.json" else restarted.trust_list
    assert intact.serial == 1


def test_trust_store_load__invalid_expired_while_down(tmp_path: Path) -> None:
    TrustStore(ROOT_KEYS, tmp_path).apply(revocation_doc(serial=1), T0)
    restarted = TrustStore(ROOT_KEYS, tmp_path)
    assert [r.reason for r in restarted.load(T0 + 2 * DAY)] == ["expired"]
    assert restarted.revocations_age_s(T0 + 2 * DAY) is None


def test_trust_store_apply__valid_when_the_state_cannot_be_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "state"
    blocked.write_text("a file where the state directory should be")
    store = TrustStore(ROOT_KEYS, blocked)
    store.apply(trust_doc(serial=1), T0)
    assert store.trust_list.serial == 1
    assert "could not persist trust list" in caplog.text
