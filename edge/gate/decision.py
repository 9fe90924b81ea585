"""The gate's decision: a verified code, a temperature and local state give allow, hold or deny."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.contract.base import Colour
from edge.contract.events import Direction, Outcome
from edge.credentials.dcc import NAAT, NOT_DETECTED, dcc_type
from edge.credentials.issuer import mask_name
from edge.credentials.keys import DccType
from edge.credentials.native import Badge, HealthCode, HouseholdPass
from edge.credentials.reasons import Reason, Refused
from edge.credentials.verifier import Verdict
from edge.devices.base import TemperatureReading

CredentialKind = Literal["health-code", "dcc", "household-pass", "registration", "none"]

# Temperature reasons, in the order a decision lists them.
TEMPERATURE_ORDER = ("measure-temperature", "temperature-implausible", "re-measure")
# Why no usable reading was found, as reason codes: none at all, or the thermal array
# saw the person but too far or too close to measure.
MISSING_READING = frozenset({"measure-temperature", "too-far", "too-close"})
_PROBLEM_REASONS = {
    "too-far": "too-far",
    "too-close": "too-close",
    "out-of-range": "temperature-implausible",
}
_PASSAGE_CREDENTIAL: dict[str, CredentialKind] = {
    "health-code": "health-code",
    "dcc": "dcc",
    "household-pass": "household-pass",
}


class GatePolicy(BaseModel):
    """How this site's gates decide; every threshold is configuration, none is code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fever_c: float = Field(
        37.3, ge=35.0, le=40.0, description="a body temperature at or above this is abnormal"
    )
    remeasure_band_c: float = Field(
        0.4, ge=0.0, le=1.0,
        description="readings in [fever_c, fever_c + band) are measured again: IR readings "
        "are noisy near the line; at or above fever_c + band is a fever",
    )  # fmt: skip
    implausible_below_c: float = Field(
        34.0, ge=25.0, le=37.0, description="a reading below this is no body temperature"
    )
    implausible_above_c: float = Field(
        43.0, ge=38.0, le=45.0, description="a reading above this is a sensor fault, not a fever"
    )
    temperature_window_s: float = Field(
        10.0, gt=0.0, le=120.0,
        description="a reading taken this long before or after the scan counts for it",
    )  # fmt: skip
    test_proof_h: Literal[48, 168] | None = Field(
        None, description="negative nucleic-acid test needed within this many hours; none: no proof"
    )
    supervisor_override: bool = Field(
        False, description="a supervisor's badge may let through a person whose code the gate "
        "refused (forged, unknown signer, revoked; never a red code); each is an alarm",
    )  # fmt: skip
    household_weekly_exits: int = Field(
        3, ge=1, le=21, description="exits a week for a household pass that does not say"
    )
    reuse_window_s: float = Field(
        300.0, ge=0.0, le=86400.0,
        description="a code used at another gate this recently is held; 0 turns the check off",
    )  # fmt: skip

    @model_validator(mode="after")
    def _lines_in_order(self) -> Self:
        if self.implausible_below_c >= self.fever_c:
            raise ValueError(
                f"implausible_below_c ({self.implausible_below_c}) must be below "
                f"fever_c ({self.fever_c})"
            )
        if self.fever_c + self.remeasure_band_c > self.implausible_above_c:
            raise ValueError(
                f"fever_c + remeasure_band_c ({self.fever_c + self.remeasure_band_c:.1f}) "
                f"must not exceed implausible_above_c ({self.implausible_above_c})"
            )
        return self


@dataclass(frozen=True)
class Attempt:
    """One person at the gate: the verdict on their code (None: no code) and the readings."""

    verdict: Verdict | None
    scanned_at_wall: datetime
    scanned_at: float
    temperatures: tuple[TemperatureReading, ...]
    direction: Direction

    def __post_init__(self) -> None:
        if self.scanned_at_wall.utcoffset() is None:
            raise ValueError("scanned_at_wall must be timezone-aware")


@dataclass(frozen=True)
class LocalState:
    """What the node remembers that a decision needs, read once per decision."""

    gate: str
    household_exits: Mapping[str, int]
    recent_uses: Mapping[str, tuple[str, datetime]]


@dataclass(frozen=True)
class Decision:
    """The gate's answer, with what the Passage event and the console need from it."""

    outcome: Outcome
    colour: Colour | None
    reasons: tuple[str, ...]
    credential: CredentialKind
    temperature_c: float | None = None
    code_key: str | None = None
    household: str | None = None
    masked_name: str | None = None
    subject_ref: str | None = None


def decide(attempt: Attempt, policy: GatePolicy, state: LocalState, now: datetime) -> Decision:
    """Allow, hold or deny one person at the gate.

    Red is denied whatever else is true; any other reason holds the person for a
    volunteer; only a trusted green code with a normal temperature opens the barrier.

    Args:
        attempt: the verdict on the scanned code and the temperature readings around it.
        policy: this site's thresholds.
        state: household exits used this week and recent uses of codes at other gates.
        now: the decision instant (aware); nucleic-acid proofs are judged at it.

    Returns:
        The decision; reasons list deny reasons, then credential, then temperature reasons.
    """
    verdict = attempt.verdict
    trusted = verdict if verdict is not None and verdict.ok else None
    deny = ["red-code"] if trusted is not None and trusted.colour == "red" else []
    temperature_c, temperature_reasons = _temperature(attempt, policy)
    if deny:
        # A red code is stopped at once, measured or not: only what a reading found is
        # worth reporting beside it (a fever), never the missing reading.
        temperature_reasons = [r for r in temperature_reasons if r not in MISSING_READING]
    credential_reasons = _credential_reasons(attempt, policy, state, now)
    reasons = _unique([*deny, *credential_reasons, *temperature_reasons])
    outcome: Outcome = "deny" if deny else "hold" if reasons else "allow"
    credential = trusted.credential if trusted is not None else None
    # Only an exit actually taken uses up one of the household's exits this week.
    household = (
        credential.household
        if isinstance(credential, HouseholdPass) and attempt.direction == "out"
        else None
    )
    return Decision(
        outcome=outcome,
        colour=trusted.colour if trusted is not None else None,
        reasons=reasons,
        credential=_credential_kind(verdict),
        temperature_c=temperature_c,
        code_key=code_key(verdict),
        household=household if outcome == "allow" else None,
        masked_name=masked_name(trusted),
        subject_ref=credential.subject.hex() if isinstance(credential, HealthCode) else None,
    )


def decide_vehicle(
    temperatures_c: Sequence[float], policy: GatePolicy
) -> tuple[Outcome, tuple[str, ...]]:
    """Allow a vehicle when every occupant's temperature is normal, else hold it.

    Args:
        temperatures_c: one body temperature per occupant, as measured at the window.
        policy: this site's thresholds.

    Returns:
        ("allow", ()) or ("hold", reasons): "measure-temperature" when nobody was
        measured, "temperature-implausible", "re-measure", "vehicle-fever".
    """
    if not temperatures_c:
        return "hold", ("measure-temperature",)
    found = {_classify(_tenth(t), policy, "vehicle-fever") for t in temperatures_c}
    reasons = tuple(r for r in (*TEMPERATURE_ORDER, "vehicle-fever") if r in found)
    return ("hold" if reasons else "allow"), reasons


def code_key(verdict: Verdict | None) -> str | None:
    """A stable key for a trusted code, to see it used twice: its cti, else its UVCI hashed.

    The UVCI is hashed so the node's memory of recent uses holds no certificate identifier.
    """
    if verdict is None or not verdict.ok:
        return None
    if verdict.cti is not None:
        return verdict.cti.hex()
    found = _dcc_entry(verdict)
    uvci = found[1].get("ci") if found is not None else None
    return hashlib.sha256(uvci.encode()).hexdigest() if isinstance(uvci, str) else None


def _credential_reasons(
    attempt: Attempt, policy: GatePolicy, state: LocalState, now: datetime
) -> list[str]:
    verdict = attempt.verdict
    if verdict is None:
        return ["no-code"]
    if not verdict.ok:
        # The verifier puts the first failure first; the rest would only repeat it.
        return [str(verdict.reasons[0]) if verdict.reasons else str(Reason.COSE)]
    if isinstance(verdict.credential, Badge):
        return ["not-a-pass"]
    reasons = ["yellow-code"] if verdict.colour == "yellow" else []
    reasons += _test_proof(verdict, policy, now)
    reasons += _household_quota(verdict, attempt.direction, policy, state)
    reasons += _reused(verdict, attempt.scanned_at_wall, policy, state)
    return reasons


def _test_proof(verdict: Verdict, policy: GatePolicy, now: datetime) -> list[str]:
    if policy.test_proof_h is None:
        return []
    tested_at = _tested_at(verdict)
    if tested_at is None:
        return ["test-proof-missing"]
    # The last instant of the window still counts, as a code's exp does. A test time
    # after `now` is clock skew between issuer and node in a signed code: it counts.
    if now - tested_at > timedelta(hours=policy.test_proof_h):
        return ["test-proof-expired"]
    return []


def _tested_at(verdict: Verdict) -> datetime | None:
    """When the negative nucleic-acid sample the credential proves was taken, if any."""
    if isinstance(verdict.credential, HealthCode):
        return verdict.credential.test_at
    found = _dcc_entry(verdict)
    if found is None or found[0] != "dcc-test":
        return None  # vaccination and recovery certificates prove no test
    entry = found[1]
    # Only a negative NAAT (PCR) is a nucleic-acid proof; a rapid antigen test is not.
    if entry.get("tt") != NAAT or entry.get("tr") != NOT_DETECTED:
        return None
    try:
        sampled = datetime.fromisoformat(entry["sc"])
    except (KeyError, TypeError, ValueError):
        return None
    return sampled if sampled.utcoffset() is not None else None


def _dcc_entry(verdict: Verdict) -> tuple[DccType, dict[str, Any]] | None:
    """The DCC's kind and single entry, or None when the verdict carries no usable DCC."""
    if verdict.dcc is None:
        return None
    try:
        return dcc_type(verdict.dcc)
    except Refused:
        return None


def _household_quota(
    verdict: Verdict, direction: Direction, policy: GatePolicy, state: LocalState
) -> list[str]:
    household_pass = verdict.credential
    # The quota limits going out; coming home is never refused for it.
    if not isinstance(household_pass, HouseholdPass) or direction != "out":
        return []
    # The pass's own quota wins; the site's is for passes that carry none.
    quota = household_pass.weekly_exits or policy.household_weekly_exits
    used = state.household_exits.get(household_pass.household, 0)
    return ["household-quota"] if used >= quota else []


def _reused(
    verdict: Verdict, scanned_at: datetime, policy: GatePolicy, state: LocalState
) -> list[str]:
    key = code_key(verdict)
    last = state.recent_uses.get(key) if key is not None else None
    if last is None or not policy.reuse_window_s:
        return []
    gate, when = last
    # Going back through the gate one came in by is normal; the same code at two gates
    # minutes apart means two people share it. Either order counts: node clocks differ.
    recent = abs(scanned_at - when) <= timedelta(seconds=policy.reuse_window_s)
    return ["code-reused"] if gate != state.gate and recent else []


def _temperature(attempt: Attempt, policy: GatePolicy) -> tuple[float | None, list[str]]:
    """The temperature the decision uses (None when implausible or absent) and its reason."""
    window = policy.temperature_window_s
    reading = usable_reading(attempt.temperatures, attempt.scanned_at, window)
    if reading is None:
        return None, [_why_unmeasured(attempt.temperatures, attempt.scanned_at, window)]
    shown = _tenth(reading)
    reason = _classify(shown, policy, "fever")
    if reason == "temperature-implausible":
        # Not a body temperature: the Passage event must not record it as one.
        return None, [reason]
    return shown, [reason] if reason else []


def _why_unmeasured(
    readings: Iterable[TemperatureReading], scanned_at: float, window_s: float
) -> str:
    """The reason code for no usable reading: the latest refusal in the window, if any."""
    refused = [
        r for r in readings
        if r.problem in _PROBLEM_REASONS and abs(r.at - scanned_at) <= window_s
    ]  # fmt: skip
    if not refused:
        return "measure-temperature"
    latest = max(refused, key=lambda r: r.at)
    return _PROBLEM_REASONS[str(latest.problem)]


def usable_reading(
    readings: Iterable[TemperatureReading], scanned_at: float, window_s: float
) -> float | None:
    """The latest usable body temperature within `window_s` of the scan, if there is one."""
    usable = [
        r
        for r in readings
        if r.problem is None and r.body_c is not None and abs(r.at - scanned_at) <= window_s
    ]
    if not usable:
        return None
    return max(usable, key=lambda r: r.at).body_c


def classify_reading(celsius: float, policy: GatePolicy) -> tuple[float, str | None]:
    """A reading as the volunteer sees it (0.1 °C) and its temperature reason, None if normal."""
    shown = _tenth(celsius)
    return shown, _classify(shown, policy, "fever")


def _classify(shown: float, policy: GatePolicy, fever_reason: str) -> str | None:
    """The temperature reason for a reading rounded to 0.1 °C, None when it is normal."""
    if not math.isfinite(shown):
        return "temperature-implausible"  # a driver's NaN is a fault, never a person

    # Compare in hundredths, so 37.3 + 0.4 is 37.7 and not 37.699999…
    def at_least(line: float) -> bool:
        return round(shown * 100) >= round(line * 100)

    too_high = round(shown * 100) > round(policy.implausible_above_c * 100)
    if too_high or not at_least(policy.implausible_below_c):
        return "temperature-implausible"
    if at_least(policy.fever_c + policy.remeasure_band_c):
        return fever_reason
    if at_least(policy.fever_c):
        return "re-measure"
    return None


def _tenth(celsius: float) -> float:
    # Decide on the value the volunteer sees, rounded half up as people round: a shown
    # 37.3 that opened the barrier would look like a broken rule.
    if not math.isfinite(celsius):
        return celsius
    return float(Decimal(repr(celsius)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _credential_kind(verdict: Verdict | None) -> CredentialKind:
    # A badge, or a code refused before its profile was known, is no passage credential.
    profile = verdict.profile if verdict is not None else None
    return _PASSAGE_CREDENTIAL.get(profile or "", "none")


def masked_name(verdict: Verdict | None) -> str | None:
    """The name the volunteer compares with the ID card, masked (张*丰), if the code has one."""
    if verdict is None:
        return None
    if verdict.credential is not None:
        return verdict.credential.name
    names = verdict.dcc.get("nam") if verdict.dcc is not None else None
    if not isinstance(names, dict):
        return None
    # A DCC carries the full name; the console shows it masked like a native code's.
    parts = [mask_name(names[k]) for k in ("fn", "gn") if isinstance(names.get(k), str)]
    return " ".join(parts) or None


def _unique(reasons: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))
