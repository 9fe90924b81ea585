"""The verifier: issued codes verify, and every way a code can be wrong has its own reason."""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import Any

import cbor2
import pytest

from edge.credentials import cose
from edge.credentials.base45 import b45decode, b45encode
from edge.credentials.hcert import MAX_DECOMPRESSED, PREFIX, wrap
from edge.credentials.issuer import Signer, issue, issue_dcc
from edge.credentials.native import GATEPOST_CLAIM, Badge, HealthCode, HouseholdPass
from edge.credentials.reasons import Reason
from edge.credentials.trust import RevocationList, revocation_entry
from tests.credentials import T0, green_code, health_code, signer, trusted, verifier

LATER = T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("algorithm", "bits"), [("ES256", 2048), ("PS256", 2048), ("PS256", 3072), ("EdDSA", 2048)]
)
def test_issued_codes_verify__valid(algorithm: Any, bits: int) -> None:
    site = signer(algorithm, bits)
    verdict = verifier(trusted(site)).verify(green_code(site), LATER)
    assert (verdict.ok, verdict.colour, verdict.reasons) == (True, "green", ())
    assert (verdict.profile, verdict.algorithm, verdict.kid) == ("health-code", algorithm, site.kid)
    assert verdict.issued_at == T0 and verdict.expires_at == T0 + timedelta(hours=24)


@pytest.mark.parametrize(
    ("credential", "colour", "reasons"),
    [
        (health_code("yellow"), "yellow", ("yellow-code",)),
        (health_code("red"), "red", ("red-code",)),
        (HouseholdPass(household="xc-12-3", weekly_exits=3, name="王*"), "green", ()),
        (Badge(volunteer="v017", role="volunteer", name="李*"), None, ()),
    ],
)
def test_native_profiles__valid(
    credential: Any, colour: str | None, reasons: tuple[str, ...]
) -> None:
    site = signer()
    verdict = verifier(trusted(site)).verify(issue(credential, site, T0, timedelta(days=1)), LATER)
    assert (verdict.ok, verdict.colour, verdict.reasons) == (True, colour, reasons)
    assert verdict.profile == credential.type and verdict.credential == credential


def _tamper(text: str, change: Any) -> str:
    """Re-wrap a code after `change` edits its COSE array [protected, unprotected, payload, sig]."""
    parts = list(cbor2.loads(zlib.decompress(b45decode(text[len(PREFIX) :]))).value)
    change(parts)
    return wrap(cbor2.dumps(cbor2.CBORTag(cose.TAG_SIGN1, parts)))


def _claims_edit(edit: Any) -> Any:
    def change(parts: list[Any]) -> None:
        claims = dict(cbor2.loads(parts[2]))
        edit(claims)
        parts[2] = cbor2.dumps(claims)

    return change


SITE = signer()
OTHER = signer()
CODE = green_code(SITE)


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        ("HC2:" + CODE[4:], Reason.BAD_PREFIX, "does not start with HC1:"),
        (CODE[4:], Reason.BAD_PREFIX, "does not start with HC1:"),
        ("HC1:" + "A" * 5000, Reason.TOO_LARGE, "more than a QR code holds"),
        (CODE + "a", Reason.BASE45, "'a' is not a Base45 character"),
        (CODE[: len(CODE) - len(CODE[4:]) % 3 - 2], Reason.BASE45, "leaves a single character over"),
        (PREFIX + b45encode(b"not zlib at all"), Reason.ZLIB, "not zlib-compressed"),
        (PREFIX + b45encode(zlib.compress(b"x" * 100)[:-6]), Reason.ZLIB, "truncated"),
        (PREFIX + b45encode(zlib.compress(b"\0" * (MAX_DECOMPRESSED + 1), 9)), Reason.TOO_LARGE, "decompresses to more than"),
        (wrap(b"\xff\xff"), Reason.CBOR, "not CBOR"),
        (wrap(cbor2.dumps([1, 2, 3])), Reason.COSE, "not a COSE_Sign1 array of four items"),
        (wrap(cbor2.dumps(cbor2.CBORTag(99, [b"", {}, b"", b""]))), Reason.COSE, "unexpected CBOR tag 99"),
        (_tamper(CODE, lambda p: p.__setitem__(1, [])), Reason.COSE, "unprotected header must be a map"),
        (_tamper(CODE, lambda p: p.__setitem__(0, cbor2.dumps({1: -7}))), Reason.UNKNOWN_KID, "kid none"),
        (green_code(OTHER), Reason.UNKNOWN_KID, "is not in the trust list"),
        (_tamper(CODE, lambda p: p.__setitem__(3, bytes(64))), Reason.BAD_SIGNATURE, "does not verify"),
        (_tamper(CODE, lambda p: p.__setitem__(3, p[3] + b"\0" * 10)), Reason.BAD_SIGNATURE, "does not verify"),
        (_tamper(CODE, _claims_edit(lambda c: c.__setitem__(cose.CLAIM_EXP, c[cose.CLAIM_EXP] + 86400))), Reason.BAD_SIGNATURE, "does not verify"),
        (_tamper(CODE, lambda p: p.__setitem__(0, cbor2.dumps({1: -8, 4: SITE.kid}))), Reason.BAD_SIGNATURE, "EdDSA signature but the signer's key is"),
        (_tamper(CODE, lambda p: p.__setitem__(0, cbor2.dumps({1: -35, 4: SITE.kid}))), Reason.COSE, "algorithm -35 is not accepted"),
    ],
)  # fmt: skip
def test_verify__invalid_gives_its_reason(text: str, reason: Reason, detail: str) -> None:
    verdict = verifier(trusted(SITE)).verify(text, LATER)
    assert (verdict.ok, verdict.colour) == (False, None)
    assert verdict.reasons == (reason,)
    assert detail in verdict.detail


def _signed_claims(site: Signer, claims: dict[int, Any]) -> str:
    return wrap(cose.sign1(cbor2.dumps(claims), site.key, site.kid))


def _native(overrides: dict[int, Any] | None = None) -> dict[int, Any]:
    claims: dict[int, Any] = {
        cose.CLAIM_ISS: "north", cose.CLAIM_IAT: int(T0.timestamp()),
        cose.CLAIM_EXP: int((T0 + timedelta(days=1)).timestamp()), cose.CLAIM_CTI: b"\x07" * 16,
        GATEPOST_CLAIM: {"type": "health-code", "colour": "green", "subject": b"\x01" * 32, "name": "张*"},
    }  # fmt: skip
    claims.update(overrides or {})
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("claims", "at", "reason", "detail"),
    [
        (_native(), T0 - timedelta(seconds=1), Reason.NOT_YET_VALID, "issued at"),
        (_native(), T0 + timedelta(days=1, seconds=1), Reason.EXPIRED, "expired at"),
        (_native({cose.CLAIM_EXP: None}), LATER, Reason.COSE, "no exp claim"),
        (_native({cose.CLAIM_EXP: "tomorrow"}), LATER, Reason.COSE, "exp claim is not a number"),
        (_native({cose.CLAIM_ISS: 7}), LATER, Reason.COSE, "iss claim is not text"),
        (_native({cose.CLAIM_CTI: None}), LATER, Reason.SCHEMA_INVALID, "needs a cti nonce"),
        (_native({GATEPOST_CLAIM: {"type": "health-code", "colour": "blue", "subject": b"\x01" * 32, "name": "x"}}), LATER, Reason.SCHEMA_INVALID, "colour"),
        (_native({GATEPOST_CLAIM: {"type": "passport"}}), LATER, Reason.SCHEMA_INVALID, "does not match any of the expected tags"),
        (_native({GATEPOST_CLAIM: None}), LATER, Reason.COSE, "no EU DCC and no Gatepost credential"),
    ],
)  # fmt: skip
def test_claims__invalid(claims: dict[int, Any], at: Any, reason: Reason, detail: str) -> None:
    verdict = verifier(trusted(SITE)).verify(_signed_claims(SITE, claims), at)
    assert verdict.reasons == (reason,), verdict.detail
    assert detail in verdict.detail


def test_the_instant_of_exp_is_still_valid() -> None:
    verdict = verifier(trusted(SITE)).verify(CODE, T0 + timedelta(hours=24))
    assert verdict.ok


def test_key_usage__a_badge_key_cannot_sign_health_codes() -> None:
    verdict = verifier(trusted(SITE, ("badge",))).verify(CODE, LATER)
    assert verdict.reasons == (Reason.KEY_USAGE,)
    assert verdict.detail == "key may sign badge, not health-code"


@pytest.mark.parametrize(
    ("valid", "detail"),
    [
        ((T0 + timedelta(minutes=1), T0 + timedelta(days=9)), "signed before its key was valid"),
        ((T0 - timedelta(days=9), T0 - timedelta(minutes=1)), "signed after its key was retired"),
    ],
)
def test_key_validity__codes_signed_outside_it_are_refused(valid: Any, detail: str) -> None:
    verdict = verifier(trusted(SITE, valid=valid)).verify(CODE, LATER)
    assert verdict.reasons == (Reason.UNKNOWN_KID,)
    assert detail in verdict.detail


def test_verdict_json_shows_the_masked_name_never_the_subject_hash() -> None:
    shown = verifier(trusted(SITE)).verify(CODE, LATER).to_json()
    assert shown["credential"] == {
        "type": "health-code",
        "colour": "green",
        "name": "张*丰",
        "test_at": None,
    }
    assert shown["kid"] and shown["algorithm"] == "ES256"
    assert shown["cti"] == "01" * 16


def test_revoked_code__refused_by_cti() -> None:
    revoked = RevocationList([revocation_entry("cti", b"\x01" * 16)])
    verdict = verifier(trusted(SITE), revocations=revoked).verify(CODE, LATER)
    assert verdict.reasons == (Reason.REVOKED,)
    other = green_code(SITE, cti=b"\x02" * 16)
    assert verifier(trusted(SITE), revocations=revoked).verify(other, LATER).ok


DCC_TEST: dict[str, Any] = {
    "ver": "1.3.0",
    "nam": {"fn": "Musterfrau", "fnt": "MUSTERFRAU", "gn": "Erika", "gnt": "ERIKA"},
    "dob": "1964-08-12",
    "t": [{
        "tg": "840539006", "tt": "LP6464-4", "nm": "PCR", "sc": "2026-11-21T10:00:00Z",
        "tr": "260415000", "tc": "Lab", "co": "DE", "is": "RKI", "ci": "URN:UVCI:01DE/LAB/1#X",
    }],
}  # fmt: skip


def _dcc_code(site: Signer, **entry: Any) -> str:
    dcc = {**DCC_TEST, "t": [{**DCC_TEST["t"][0], **entry}]}
    return issue_dcc(dcc, site, T0 - timedelta(hours=20), T0 + timedelta(days=2))


@pytest.mark.parametrize(
    ("entry", "at", "colour", "reasons"),
    [
        ({}, LATER, "green", ()),
        ({}, T0 + timedelta(hours=23), "green", ()),
        ({}, T0 + timedelta(hours=27), "yellow", (Reason.RULE_FAILED, "test-too-old")),
        ({"tr": "260373001"}, LATER, "red", (Reason.RULE_FAILED, "test-positive")),
        ({"sc": "2026-11-23T10:00:00Z"}, LATER, "yellow", (Reason.RULE_FAILED, "test-in-future")),
        (
            {"tt": "LP217198-3"},
            T0 + timedelta(hours=6),
            "yellow",
            (Reason.RULE_FAILED, "test-too-old"),
        ),
    ],
)
def test_dcc_rules__colour(
    entry: dict[str, str], at: Any, colour: str, reasons: tuple[str, ...]
) -> None:
    site = signer()
    verdict = verifier(trusted(site, ("dcc-test",))).verify(_dcc_code(site, **entry), at)
    assert (verdict.ok, verdict.colour, verdict.reasons, verdict.profile) == (
        True,
        colour,
        reasons,
        "dcc",
    )


def test_dcc__schema_invalid_and_key_usage_and_revocation() -> None:
    site = signer()
    test_only = verifier(trusted(site, ("dcc-test",)))
    assert test_only.verify(_dcc_code(site, co=5), LATER).reasons == (Reason.SCHEMA_INVALID,)
    unknown = test_only.verify(_dcc_code(site, tr="maybe"), LATER)
    assert (unknown.colour, unknown.reasons) == (
        "yellow",
        (Reason.RULE_FAILED, "test-result-unknown"),
    )
    vaccination_key = verifier(trusted(site, ("dcc-vaccination",)))
    assert vaccination_key.verify(_dcc_code(site), LATER).reasons == (Reason.KEY_USAGE,)
    revoked = RevocationList([revocation_entry("uvci", "URN:UVCI:01DE/LAB/1#X")])
    with_revocations = verifier(trusted(site, ("dcc-test",)), revocations=revoked)
    assert with_revocations.verify(_dcc_code(site), LATER).reasons == (Reason.REVOKED,)


def test_health_code_carries_no_id_number() -> None:
    text = green_code(SITE)
    raw = zlib.decompress(b45decode(text[len(PREFIX) :]))
    assert b"110101199001011234" not in raw
    assert isinstance(verifier(trusted(SITE)).verify(text, LATER).credential, HealthCode)


def test_dcc_key_usage__judged_on_the_kind_alone() -> None:
    # Schema 1.0.0 allows two test entries; the one-entry rule is shape, not key usage.
    two_tests = {**DCC_TEST, "ver": "1.0.0", "t": [DCC_TEST["t"][0]] * 2}
    site = signer()
    code = issue_dcc(two_tests, site, T0 - timedelta(hours=20), T0 + timedelta(days=2))
    vaccination_key = verifier(trusted(site, ("dcc-vaccination",))).verify(code, LATER)
    assert (vaccination_key.reasons, vaccination_key.detail) == (
        (Reason.KEY_USAGE,),
        "key may sign dcc-vaccination, not dcc-test",
    )
    test_key = verifier(trusted(site, ("dcc-test",))).verify(code, LATER)
    assert (test_key.reasons, test_key.detail) == (
        (Reason.SCHEMA_INVALID,),
        "t must hold exactly one entry",
    )
