"""Gatepost's own credentials in the HCERT container: health code, household pass, volunteer badge.

They ride in one private-use CWT claim (RFC 8392: keys below -65536 are private), a
map whose `type` says which of the three it is. Field names are short words: the
whole code stays well inside a QR code a phone screen shows at arm's length.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from edge.contract.base import Colour, VolunteerId
from edge.credentials.reasons import Reason, Refused

GATEPOST_CLAIM = -65537
MaskedName = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class _Native(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class HealthCode(_Native):
    """A health code: colour, who (keyed hash), a masked name to compare with the ID card."""

    type: Literal["health-code"] = "health-code"
    colour: Colour
    subject: bytes = Field(min_length=32, max_length=32, description="HMAC-SHA256 of the ID number")
    name: MaskedName = Field(description="masked, e.g. 张*明")
    test_at: AwareDatetime | None = Field(None, description="last negative nucleic-acid test")


class HouseholdPass(_Native):
    """A household exit pass: one person per household, N exits a week."""

    type: Literal["household-pass"] = "household-pass"
    household: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    weekly_exits: int = Field(ge=1, le=21)
    name: MaskedName


class Badge(_Native):
    """A volunteer's badge, scanned to start and end a shift."""

    type: Literal["badge"] = "badge"
    volunteer: VolunteerId
    role: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")] = "volunteer"
    name: MaskedName


NativeCredential = HealthCode | HouseholdPass | Badge
_NATIVE: TypeAdapter[NativeCredential] = TypeAdapter(
    Annotated[NativeCredential, Field(discriminator="type")]
)


def parse_native(claim: Any) -> NativeCredential:
    """The native credential in the Gatepost claim.

    Raises:
        Refused: SCHEMA_INVALID naming the failing field.
    """
    if isinstance(claim, dict) and isinstance(claim.get("test_at"), int | float):
        claim = {**claim, "test_at": datetime.fromtimestamp(claim["test_at"], UTC)}
    try:
        return _NATIVE.validate_python(claim)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "claim"
        raise Refused(Reason.SCHEMA_INVALID, f"{where}: {first['msg']}") from None
    except (OverflowError, OSError, ValueError) as exc:
        raise Refused(Reason.SCHEMA_INVALID, f"test_at: {exc}") from None


def native_claim(credential: NativeCredential) -> dict[str, Any]:
    """The claim map for `credential`, times as epoch seconds like every CWT time."""
    claim = credential.model_dump(exclude_none=True)
    if isinstance(credential, HealthCode) and credential.test_at is not None:
        claim["test_at"] = int(credential.test_at.timestamp())
    return claim
