"""EU DCC payloads: which schema, which type, and the business rules that give a colour.

Rules are configuration, never code: a site sets how long a test counts (48 h or 7
days in the source plans), days after the last dose, and the recovery window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field

from edge.contract.base import Colour
from edge.credentials.keys import DccType
from edge.credentials.reasons import Reason, Refused

SCHEMAS = Path(__file__).parent / "schemas" / "dcc"
DCC_KEY = 1  # eu_DCC_v1 inside the hcert claim
NAAT, RAT = "LP6464-4", "LP217198-3"
DETECTED, NOT_DETECTED = "260373001", "260415000"  # SNOMED CT test results
_TYPES: dict[str, DccType] = {"v": "dcc-vaccination", "t": "dcc-test", "r": "dcc-recovery"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@cache
def _validator(version: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{version}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def schema_versions() -> list[str]:
    """The DCC schema versions shipped, oldest first."""
    return sorted((p.stem for p in SCHEMAS.glob("*.json")), key=_version)


def schema_for(ver: object) -> str:
    """The schema to validate a payload of version `ver` with.

    The exact version if shipped, else the newest shipped one of the same major version
    that is not newer (schemas only add within a major version).

    Raises:
        Refused: SCHEMA_INVALID when `ver` is missing, malformed or has no schema.
    """
    if not isinstance(ver, str):
        raise Refused(Reason.SCHEMA_INVALID, "payload has no ver")
    try:
        wanted = _version(ver)
    except ValueError:
        raise Refused(Reason.SCHEMA_INVALID, f"ver {ver!r} is not major.minor.patch") from None
    fitting = [
        v for v in schema_versions() if _version(v)[0] == wanted[0] and _version(v) <= wanted
    ]
    if not fitting:
        raise Refused(Reason.SCHEMA_INVALID, f"no schema for ver {ver}")
    return fitting[-1]


def validate(dcc: Any) -> None:
    """Validate a DCC payload against the schema of its `ver`.

    Raises:
        Refused: SCHEMA_INVALID naming the first failing path.
    """
    if not isinstance(dcc, dict):
        raise Refused(Reason.SCHEMA_INVALID, "DCC payload is not a map")
    validator = _validator(schema_for(dcc.get("ver")))
    error = next(iter(sorted(validator.iter_errors(dcc), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise Refused(Reason.SCHEMA_INVALID, f"{where}: {error.message[:160]}")


def dcc_kind(dcc: object) -> DccType:
    """Which kind of statement the DCC is, from which of v, t, r it holds.

    Key usage is judged on this alone: how many entries the group holds is the
    schema's business, not the signer certificate's.

    Raises:
        Refused: SCHEMA_INVALID unless the DCC is a map holding exactly one of v, t, r.
    """
    return _TYPES[_group(dcc)]


def dcc_type(dcc: dict[str, Any]) -> tuple[DccType, dict[str, Any]]:
    """Which kind of statement the DCC is, and its single entry.

    Raises:
        Refused: SCHEMA_INVALID unless exactly one of v, t, r holds exactly one entry.
    """
    key = _group(dcc)
    entries = dcc[key]
    if not (isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], dict)):
        raise Refused(Reason.SCHEMA_INVALID, f"{key} must hold exactly one entry")
    return _TYPES[key], entries[0]


def _group(dcc: object) -> str:
    groups = [key for key in _TYPES if isinstance(dcc, dict) and key in dcc]
    if len(groups) != 1:
        raise Refused(Reason.SCHEMA_INVALID, "a DCC holds exactly one of v, t, r")
    return groups[0]


class DccRules(BaseModel):
    """When an EU DCC counts as green at this site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days_after_last_dose: int = Field(14, ge=0, le=365, description="wait after completing")
    vaccination_valid_days: int | None = Field(
        None, ge=1, description="how long a completed series counts; none: no limit"
    )
    naat_max_age_h: int = Field(48, ge=1, le=24 * 14, description="nucleic-acid test window")
    rat_max_age_h: int | None = Field(
        24, ge=1, le=24 * 14, description="rapid antigen test window; none: not accepted"
    )
    recovery_max_days: int = Field(180, ge=1, le=3650)


@dataclass(frozen=True)
class RuleResult:
    """A colour and, when not green, why."""

    colour: Colour
    reasons: tuple[str, ...] = ()


def apply_rules(kind: DccType, entry: dict[str, Any], rules: DccRules, at: datetime) -> RuleResult:
    """The colour of a schema-valid DCC entry at time `at` under `rules`.

    Red for a positive test; yellow with a reason when the entry does not meet the
    site's windows; green otherwise.

    Raises:
        Refused: SCHEMA_INVALID for a date the schema let through but that is no date.
    """
    try:
        if kind == "dcc-vaccination":
            return _vaccination(entry, rules, at.date())
        if kind == "dcc-test":
            return _test(entry, rules, at)
        return _recovery(entry, rules, at.date())
    except (ValueError, TypeError, KeyError) as exc:
        raise Refused(Reason.SCHEMA_INVALID, f"{kind} entry: {exc}") from None


def _yellow(*reasons: str) -> RuleResult:
    return RuleResult("yellow", reasons)


def _vaccination(entry: dict[str, Any], rules: DccRules, today: date) -> RuleResult:
    if entry["dn"] < entry["sd"]:
        return _yellow("vaccination-incomplete")
    last_dose = date.fromisoformat(entry["dt"])
    if today < last_dose + timedelta(days=rules.days_after_last_dose):
        return _yellow("vaccination-too-recent")
    if rules.vaccination_valid_days and today > last_dose + timedelta(
        days=rules.vaccination_valid_days
    ):
        return _yellow("vaccination-too-old")
    return RuleResult("green")


def _test(entry: dict[str, Any], rules: DccRules, at: datetime) -> RuleResult:
    if entry["tr"] == DETECTED:
        return RuleResult("red", ("test-positive",))
    if entry["tr"] != NOT_DETECTED:
        # The schema lets any text through; only a negative result counts.
        return _yellow("test-result-unknown")
    window = {NAAT: rules.naat_max_age_h, RAT: rules.rat_max_age_h}.get(entry["tt"])
    if window is None:
        return _yellow("test-type-not-accepted")
    sampled = datetime.fromisoformat(entry["sc"])
    if sampled.tzinfo is None:
        return _yellow("test-time-without-zone")
    if sampled > at:
        return _yellow("test-in-future")
    if at - sampled > timedelta(hours=window):
        return _yellow("test-too-old")
    return RuleResult("green")


def _recovery(entry: dict[str, Any], rules: DccRules, today: date) -> RuleResult:
    valid_from, valid_until = date.fromisoformat(entry["df"]), date.fromisoformat(entry["du"])
    first_positive = date.fromisoformat(entry["fr"])
    if today < valid_from:
        return _yellow("recovery-not-yet-valid")
    if today > valid_until or today > first_positive + timedelta(days=rules.recovery_max_days):
        return _yellow("recovery-expired")
    return RuleResult("green")
