"""The gate decision: every rule and every reason in one table, then real codes end to end."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import cbor2
import pytest
from pydantic import ValidationError

from edge.credentials import cose
from edge.credentials.base45 import b45decode
from edge.credentials.dcc import DccRules
from edge.credentials.hcert import PREFIX, wrap
from edge.credentials.issuer import issue, issue_dcc, subject_ref
from edge.credentials.native import Badge, HealthCode, HouseholdPass
from edge.credentials.reasons import Reason
from edge.credentials.trust import RevocationList, TrustList, revocation_entry
from edge.credentials.verifier import FixedTrust, Verdict, Verifier
from edge.devices.base import TemperatureProblem, TemperatureReading
from edge.gate.decision import (
    Attempt,
    Decision,
    GatePolicy,
    LocalState,
    decide,
    decide_vehicle,
)
from edge.gate.reasons import ACTION_REFUSALS, REASON_TEXT
from tests.credentials import SECRET, T0, green_code, signer, trusted

NOW = T0 + timedelta(hours=1)
SCAN = 500.0  # monotonic seconds of the scan
GATE = "north-1"
UVCI = "URN:UVCI:01DE/LAB/1#X"
UVCI_KEY = hashlib.sha256(UVCI.encode()).hexdigest()
CTI = b"\x01" * 16
POLICY = GatePolicy()
PROOF_48 = GatePolicy(test_proof_h=48)
PROOF_7D = GatePolicy(test_proof_h=168)


def reading(
    body_c: float | None, dt: float = 0.0, problem: TemperatureProblem | None = None
) -> TemperatureReading:
    return TemperatureReading("ir", SCAN + dt, body_c, problem=problem)


NORMAL = (reading(36.6),)


def state(
    exits: dict[str, int] | None = None, uses: dict[str, tuple[str, datetime]] | None = None
) -> LocalState:
    return LocalState(GATE, exits or {}, uses or {})


def native(colour: Any = "green", test_hours_ago: float | None = None) -> Verdict:
    tested = NOW - timedelta(hours=test_hours_ago) if test_hours_ago is not None else None
    code = HealthCode(colour=colour, subject=b"\x11" * 32, name="张*丰", test_at=tested)
    reasons = () if colour == "green" else (f"{colour}-code",)
    return Verdict(True, colour, reasons, profile="health-code", cti=CTI, credential=code)


def household(weekly_exits: int = 3) -> Verdict:
    card = HouseholdPass(household="xc-12-3", weekly_exits=weekly_exits, name="王*")
    return Verdict(True, "green", (), profile="household-pass", cti=CTI, credential=card)


def badge() -> Verdict:
    card = Badge(volunteer="v017", name="李*")
    return Verdict(True, None, (), profile="badge", cti=CTI, credential=card)


def dcc_entry(kind: str = "t", hours_ago: float = 20, **entry: str) -> dict[str, Any]:
    sampled = (NOW - timedelta(hours=hours_ago)).isoformat()
    entries: dict[str, dict[str, Any]] = {
        "t": {"tt": "LP6464-4", "tr": "260415000", "sc": sampled, "ci": UVCI},
        "v": {"dn": 2, "sd": 2, "dt": "2026-06-01", "ci": UVCI},
        "r": {"fr": "2026-10-01", "df": "2026-10-12", "du": "2027-03-01", "ci": UVCI},
    }
    return {
        "ver": "1.3.0",
        "nam": {"fn": "Musterfrau", "gn": "Erika"},
        kind: [{**entries[kind], **entry}],
    }


def dcc(kind: str = "t", hours_ago: float = 20, **entry: str) -> Verdict:
    return Verdict(True, "green", (), profile="dcc", dcc=dcc_entry(kind, hours_ago, **entry))


def refused(reason: Reason) -> Verdict:
    return Verdict(False, None, (reason,), "why", profile="health-code")


@dataclass(frozen=True)
class Row:
    """One person at the gate, and the outcome, colour and reasons the volunteer should see."""

    verdict: Verdict | None
    expect: tuple[str, str | None, tuple[str, ...]]
    temps: tuple[TemperatureReading, ...] = NORMAL
    direction: Any = "in"
    policy: GatePolicy = POLICY
    local: LocalState = field(default_factory=state)


def case(name: str, verdict: Verdict | None, expect: Any, **given: Any) -> Any:
    return pytest.param(Row(verdict, expect, **given), id=name)


ALLOW = ("allow", "green", ())
AGO_1M, AGO_6M = NOW - timedelta(minutes=1), NOW - timedelta(minutes=6)

DECIDE_CASES = [
    case("green code, normal temperature", native(), ALLOW),
    case("no code", None, ("hold", None, ("no-code",))),
    case("no code, no temperature", None, ("hold", None, ("no-code", "measure-temperature")), temps=()),
    *[case(f"refused: {r}", refused(r), ("hold", None, (r,))) for r in Reason if r != Reason.RULE_FAILED],
    case("refused without a reason", Verdict(False, None, ()), ("hold", None, ("cose",))),
    case("refused and feverish", refused(Reason.EXPIRED), ("hold", None, ("expired", "fever")), temps=(reading(38.4),)),
    case("badge is no pass", badge(), ("hold", None, ("not-a-pass",))),
    case("red code", native("red"), ("deny", "red", ("red-code",))),
    case("red stays deny with more reasons", native("red"), ("deny", "red", ("red-code", "code-reused", "fever")), temps=(reading(38.0),), local=state(uses={CTI.hex(): ("south-2", AGO_1M)})),
    case("yellow code", native("yellow"), ("hold", "yellow", ("yellow-code",))),
    case("yellow, no proof, re-measure", native("yellow"), ("hold", "yellow", ("yellow-code", "test-proof-missing", "re-measure")), temps=(reading(37.4),), policy=PROOF_48),
    case("site needs no proof", native(), ALLOW),
    case("proof needed, none on code", native(), ("hold", "green", ("test-proof-missing",)), policy=PROOF_48),
    case("proof 47 h old, 48 h site", native(test_hours_ago=47), ALLOW, policy=PROOF_48),
    case("proof exactly 48 h old", native(test_hours_ago=48), ALLOW, policy=PROOF_48),
    case("proof 49 h old, 48 h site", native(test_hours_ago=49), ("hold", "green", ("test-proof-expired",)), policy=PROOF_48),
    case("proof 100 h old, 7 day site", native(test_hours_ago=100), ALLOW, policy=PROOF_7D),
    case("proof 8 days old, 7 day site", native(test_hours_ago=192), ("hold", "green", ("test-proof-expired",)), policy=PROOF_7D),
    case("dcc pcr test 20 h old", dcc(), ("allow", "green", ()), policy=PROOF_48),
    case("dcc pcr test 50 h old", dcc(hours_ago=50), ("hold", "green", ("test-proof-expired",)), policy=PROOF_48),
    case("dcc antigen test is no nucleic-acid proof", dcc(tt="LP217198-3"), ("hold", "green", ("test-proof-missing",)), policy=PROOF_48),
    case("dcc vaccination has no test proof", dcc("v"), ("hold", "green", ("test-proof-missing",)), policy=PROOF_48),
    case("dcc recovery has no test proof", dcc("r"), ("hold", "green", ("test-proof-missing",)), policy=PROOF_48),
    case("dcc vaccination, site needs no proof", dcc("v"), ALLOW),
    case("household out, 2 of 3 used", household(), ALLOW, direction="out", local=state({"xc-12-3": 2})),
    case("household out, 3 of 3 used", household(), ("hold", "green", ("household-quota",)), direction="out", local=state({"xc-12-3": 3})),
    case("household in, 3 of 3 used", household(), ALLOW, direction="in", local=state({"xc-12-3": 3})),
    case("household pass quota wins over site", household(5), ALLOW, direction="out", local=state({"xc-12-3": 3})),
    case("other household's exits", household(), ALLOW, direction="out", local=state({"xc-9-1": 3})),
    case("used at another gate 1 min ago", native(), ("hold", "green", ("code-reused",)), local=state(uses={CTI.hex(): ("south-2", AGO_1M)})),
    case("used at another gate 6 min ago", native(), ALLOW, local=state(uses={CTI.hex(): ("south-2", AGO_6M)})),
    case("used at this gate 1 min ago", native(), ALLOW, local=state(uses={CTI.hex(): (GATE, AGO_1M)})),
    case("reuse check off", native(), ALLOW, policy=GatePolicy(reuse_window_s=0), local=state(uses={CTI.hex(): ("south-2", AGO_1M)})),
    case("dcc used at another gate", dcc(), ("hold", "green", ("code-reused",)), local=state(uses={UVCI_KEY: ("south-2", AGO_1M)})),
    case("no temperature", native(), ("hold", "green", ("measure-temperature",)), temps=()),
    case("reading 11 s before the scan", native(), ("hold", "green", ("measure-temperature",)), temps=(reading(36.6, -11),)),
    case("reading 10 s before the scan", native(), ALLOW, temps=(reading(36.6, -10),)),
    case("reading 5 s after the scan", native(), ALLOW, temps=(reading(36.6, 5),)),
    case("only a too-far reading", native(), ("hold", "green", ("too-far",)), temps=(reading(None, problem="too-far"),)),
    case("too close, then too far", native(), ("hold", "green", ("too-far",)), temps=(reading(None, -2, "too-close"), reading(None, -1, "too-far"))),
    case("only a too-close reading", native(), ("hold", "green", ("too-close",)), temps=(reading(None, problem="too-close"),)),
    case("an out-of-range settle", native(), ("hold", "green", ("temperature-implausible",)), temps=(reading(None, problem="out-of-range"),)),
    case("red, unmeasured: red-code alone", native("red"), ("deny", "red", ("red-code",)), temps=()),
    case("red, too far: red-code alone", native("red"), ("deny", "red", ("red-code",)), temps=(reading(None, problem="too-far"),)),
    case("later problem, earlier good", native(), ALLOW, temps=(reading(36.6, -2), reading(None, 1, "no-face"))),
    case("later normal beats earlier high", native(), ALLOW, temps=(reading(38.5, -3), reading(36.6, -1))),
    case("later high beats earlier normal", native(), ("hold", "green", ("fever",)), temps=(reading(36.6, -3), reading(38.5, -1))),
    case("33.9 is implausible", native(), ("hold", "green", ("temperature-implausible",)), temps=(reading(33.9),)),
    case("34.0 is plausible", native(), ALLOW, temps=(reading(34.0),)),
    case("NaN is a sensor fault", native(), ("hold", "green", ("temperature-implausible",)), temps=(reading(float("nan")),)),
    case("43.5 is a sensor fault", native(), ("hold", "green", ("temperature-implausible",)), temps=(reading(43.5),)),
    case("37.2 is normal", native(), ALLOW, temps=(reading(37.2),)),
    case("37.24 rounds to 37.2", native(), ALLOW, temps=(reading(37.24),)),
    case("37.25 rounds to 37.3", native(), ("hold", "green", ("re-measure",)), temps=(reading(37.25),)),
    case("37.3 re-measure", native(), ("hold", "green", ("re-measure",)), temps=(reading(37.3),)),
    case("37.6 re-measure", native(), ("hold", "green", ("re-measure",)), temps=(reading(37.6),)),
    case("37.7 fever", native(), ("hold", "green", ("fever",)), temps=(reading(37.7),)),
    case("no band: 37.3 fever", native(), ("hold", "green", ("fever",)), temps=(reading(37.3),), policy=GatePolicy(remeasure_band_c=0)),
]  # fmt: skip


@pytest.mark.parametrize("row", DECIDE_CASES)
def test_decide(row: Row) -> None:
    attempt = Attempt(row.verdict, NOW, SCAN, row.temps, row.direction)
    decision = decide(attempt, row.policy, row.local, NOW)
    assert (decision.outcome, decision.colour, decision.reasons) == row.expect


VEHICLE_CASES: list[Any] = [
    pytest.param([], ("hold", ("measure-temperature",)), id="nobody measured"),
    pytest.param([36.5, 36.8, 37.2], ("allow", ()), id="all normal"),
    pytest.param([36.5, 37.4], ("hold", ("re-measure",)), id="one near the line"),
    pytest.param([36.5, 38.0], ("hold", ("vehicle-fever",)), id="one fever"),
    pytest.param([38.2, 37.4], ("hold", ("re-measure", "vehicle-fever")), id="fever and near"),
    pytest.param([30.0, 36.6], ("hold", ("temperature-implausible",)), id="implausible"),
    pytest.param([float("inf")], ("hold", ("temperature-implausible",)), id="sensor fault"),
    pytest.param([37.29], ("hold", ("re-measure",)), id="37.29 shows as 37.3"),
]


@pytest.mark.parametrize(("temperatures", "expect"), VEHICLE_CASES)
def test_decide_vehicle(temperatures: list[float], expect: tuple[str, tuple[str, ...]]) -> None:
    assert decide_vehicle(temperatures, POLICY) == expect


def test_every_reason_decided_has_words_and_every_word_is_decided() -> None:
    decided = {r for row in DECIDE_CASES for r in row.values[0].expect[2]}
    decided |= {r for row in VEHICLE_CASES for r in row.values[-1][1]}
    assert decided - REASON_TEXT.keys() == set(), "reasons the console cannot show"
    # rule-failed is a DCC colour rule, never a refusal: the gate says yellow-code instead.
    # The others are the checkpoint's own refusals of a console action or a recording.
    not_decisions = {Reason.RULE_FAILED, "outbox-full", *ACTION_REFUSALS}
    assert REASON_TEXT.keys() - decided == not_decisions, "rules without a table row"


@pytest.mark.parametrize(
    ("body_c", "shown", "reasons"),
    [(36.65, 36.7, ()), (37.25, 37.3, ("re-measure",)), (38.04, 38.0, ("fever",)), (33.0, None, ("temperature-implausible",))],
)  # fmt: skip
def test_temperature_recorded_is_the_reading_rounded(
    body_c: float, shown: float | None, reasons: tuple[str, ...]
) -> None:
    attempt = Attempt(native(), NOW, SCAN, (reading(body_c),), "in")
    decision = decide(attempt, POLICY, state(), NOW)
    assert (decision.temperature_c, decision.reasons) == (shown, reasons)


# Real codes from the issuer, verified by the real verifier.

SITE = signer()
CODE = green_code(SITE, cti=CTI)


def real(text: str, *, at: datetime = NOW, revoked: RevocationList | None = None) -> Verdict:
    key = trusted(SITE, ("health-code", "household-pass", "badge", "dcc-test"))
    trust = FixedTrust(TrustList.of([key]), revoked or RevocationList())
    return Verifier(trust, DccRules(naat_max_age_h=72)).verify(text, at)


def gate(
    verdict: Verdict,
    policy: GatePolicy = POLICY,
    direction: Any = "in",
    local: LocalState | None = None,
    temps: tuple[TemperatureReading, ...] = NORMAL,
) -> Decision:
    return decide(Attempt(verdict, NOW, SCAN, temps, direction), policy, local or state(), NOW)


def _flip_signature_byte(text: str) -> str:
    parts = list(cbor2.loads(zlib.decompress(b45decode(text[len(PREFIX) :]))).value)
    parts[3] = bytes([parts[3][0] ^ 0x01]) + parts[3][1:]
    return wrap(cbor2.dumps(cbor2.CBORTag(cose.TAG_SIGN1, parts)))


def test_real_green_health_code__allowed_with_what_the_passage_records() -> None:
    assert gate(real(CODE)) == Decision(
        outcome="allow",
        colour="green",
        reasons=(),
        credential="health-code",
        temperature_c=36.6,
        code_key=CTI.hex(),
        masked_name="张*丰",
        subject_ref=subject_ref("110101199001011234", SECRET).hex(),
    )


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        pytest.param(real(_flip_signature_byte(CODE)), "bad-signature", id="forged"),
        pytest.param(real(CODE, at=T0 + timedelta(hours=25)), "expired", id="expired"),
        pytest.param(real(CODE, revoked=RevocationList([revocation_entry("cti", CTI)])), "revoked", id="revoked"),
    ],
)  # fmt: skip
def test_real_untrusted_code__held_with_its_reason(verdict: Verdict, reason: str) -> None:
    decision = gate(verdict)
    assert (decision.outcome, decision.colour, decision.reasons) == ("hold", None, (reason,))
    assert decision.code_key is None and decision.masked_name is None


def test_real_household_pass__outbound_exit_counts_until_the_quota() -> None:
    card = HouseholdPass(household="xc-12-3", weekly_exits=3, name="王*")
    verdict = real(issue(card, SITE, T0, timedelta(days=7)))
    allowed = gate(verdict, direction="out", local=state({"xc-12-3": 2}))
    assert (allowed.outcome, allowed.credential, allowed.household) == (
        "allow",
        "household-pass",
        "xc-12-3",
    )
    held = gate(verdict, direction="out", local=state({"xc-12-3": 3}))
    assert (held.outcome, held.reasons, held.household) == ("hold", ("household-quota",), None)
    inbound = gate(verdict, direction="in", local=state({"xc-12-3": 3}))
    assert (inbound.outcome, inbound.household) == ("allow", None)


def _real_dcc(hours_ago: float) -> Verdict:
    sampled = (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = {
        "ver": "1.3.0",
        "nam": {"fn": "Musterfrau", "fnt": "MUSTERFRAU", "gn": "Erika", "gnt": "ERIKA"},
        "dob": "1964-08-12",
        "t": [{
            "tg": "840539006", "tt": "LP6464-4", "nm": "PCR", "sc": sampled,
            "tr": "260415000", "tc": "Lab", "co": "DE", "is": "RKI", "ci": UVCI,
        }],
    }  # fmt: skip
    return real(issue_dcc(payload, SITE, NOW - timedelta(hours=1), NOW + timedelta(days=2)))


def test_real_dcc_test__proof_window_is_the_sites_not_the_dcc_rules() -> None:
    fresh = gate(_real_dcc(20), PROOF_48)
    assert (fresh.outcome, fresh.credential, fresh.code_key) == ("allow", "dcc", UVCI_KEY)
    assert fresh.masked_name == "M********u E***a"
    # Green under DCC rules that accept 72 h, but this site wants 48 h.
    stale = gate(_real_dcc(50), PROOF_48)
    assert (stale.outcome, stale.colour, stale.reasons) == (
        "hold",
        "green",
        ("test-proof-expired",),
    )


def test_real_badge__is_not_a_pass() -> None:
    verdict = real(issue(Badge(volunteer="v017", name="李*"), SITE, T0, timedelta(days=30)))
    decision = gate(verdict)
    assert (decision.outcome, decision.reasons, decision.credential) == (
        "hold",
        ("not-a-pass",),
        "none",
    )


@pytest.mark.parametrize(
    "fields",
    [{}, {"test_proof_h": 48}, {"test_proof_h": 168}, {"remeasure_band_c": 0.0},
     {"fever_c": 37.5, "implausible_below_c": 35.0}, {"reuse_window_s": 0}],
)  # fmt: skip
def test_gate_policy__valid(fields: dict[str, Any]) -> None:
    policy = GatePolicy(**fields)
    assert policy.model_dump(include=set(fields)) == fields


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"test_proof_h": 72}, "test_proof_h"),
        ({"fever_c": 50}, "less than or equal to 40"),
        ({"temperature_window_s": 0}, "greater than 0"),
        ({"household_weekly_exits": 0}, "greater than or equal to 1"),
        ({"fever_c": 36.0, "implausible_below_c": 36.0}, "must be below fever_c"),
        (
            {"fever_c": 39.0, "remeasure_band_c": 0.5, "implausible_above_c": 39.2},
            "must not exceed",
        ),
        ({"fever": 37.5}, "Extra inputs are not permitted"),
    ],
)
def test_gate_policy__invalid(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GatePolicy(**fields)


def test_attempt__needs_an_aware_scan_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Attempt(None, datetime(2026, 11, 22, 9, 0), SCAN, NORMAL, "in")
