"""Which ways of ending a hold fit its reasons (the checkpoint enforces them); which are urgent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import get_args

from edge.credentials.reasons import Reason
from edge.gate.views import Refusal, Resolution

RESOLUTIONS: tuple[Resolution, ...] = get_args(Resolution)
# These let the person through; the rest do not.
PASSING: frozenset[Resolution] = frozenset({"released", "registered"})

_TEMPERATURE: tuple[Resolution, ...] = ("released", "referred", "turned-back")
_MEASURE: tuple[Resolution, ...] = ("released", "turned-back")
_BY_HAND: tuple[Resolution, ...] = ("registered", "turned-back")
_STOPPED: tuple[Resolution, ...] = ("referred", "turned-back")

# reason code -> how a hold for that reason alone may end. "released" is the re-measure
# button: only a temperature reason is solved by measuring again. "registered" is a
# registration by hand: it stands in for a code that is missing, yellow, stale or
# unreadable, never for a forged, revoked or red one, nor for a fever.
OFFERED: dict[str, tuple[Resolution, ...]] = {
    "fever": _TEMPERATURE,
    "re-measure": _TEMPERATURE,
    "temperature-implausible": _TEMPERATURE,
    "vehicle-fever": _TEMPERATURE,
    "measure-temperature": _MEASURE,
    "too-far": _MEASURE,
    "too-close": _MEASURE,
    "yellow-code": _BY_HAND,
    "no-code": _BY_HAND,
    "not-a-pass": _BY_HAND,
    "code-reused": _BY_HAND,
    "household-quota": _BY_HAND,
    "test-proof-missing": _BY_HAND,
    "test-proof-expired": _BY_HAND,
    Reason.EXPIRED: _BY_HAND,
    Reason.NOT_YET_VALID: _BY_HAND,
    Reason.RULE_FAILED: _BY_HAND,
    Reason.TOO_LARGE: _BY_HAND,
    Reason.BAD_PREFIX: _BY_HAND,
    Reason.BASE45: _BY_HAND,
    Reason.ZLIB: _BY_HAND,
    Reason.CBOR: _BY_HAND,
    Reason.COSE: _BY_HAND,
    Reason.SCHEMA_INVALID: _BY_HAND,
    "red-code": _STOPPED,
    Reason.UNKNOWN_KID: _STOPPED,
    Reason.BAD_SIGNATURE: _STOPPED,
    Reason.KEY_USAGE: _STOPPED,
    Reason.REVOKED: _STOPPED,
}
# Reasons that say nothing about the person: they neither limit nor add a way out.
NEUTRAL = frozenset({"outbox-full"})
# A code the gate refused as not genuine: the console says "stop" although the gate holds
# the person (so a volunteer, not the barrier, deals with them).
STOP = frozenset(
    {Reason.UNKNOWN_KID, Reason.BAD_SIGNATURE, Reason.KEY_USAGE, Reason.REVOKED, "red-code"}
)
# What a supervisor may override where the site allows it (policy.supervisor_override): a
# code the gate could not trust. Never a red code: that is a case, not a doubt.
OVERRIDABLE = STOP - {"red-code"}
# Reported upward at once (a red code, an abnormal temperature): shown as 紧急, in red.
URGENT = frozenset({"red-code", "fever", "vehicle-fever"})


def offered(reasons: Iterable[str]) -> tuple[Resolution, ...]:
    """The resolutions the console offers for a hold with `reasons`, in button order.

    A passing resolution needs every reason to allow it (a fever and a yellow code: no
    re-measure, no registration); a non-passing one needs one reason to ask for it.
    Turning back is always possible. An unknown reason allows no passing resolution; a
    hold for neutral reasons alone (the outbox is full) allows every one.

    The console page applies the same rule (console.js `offeredFor`); a test compares them.
    """
    relevant = [str(code) for code in reasons if str(code) not in NEUTRAL]
    allowed = [set(OFFERED.get(code, _STOPPED)) for code in relevant]
    result: list[Resolution] = []
    for resolution in RESOLUTIONS:
        if resolution in PASSING:
            fits = all(resolution in each for each in allowed)
        else:
            fits = resolution == "turned-back" or any(resolution in each for each in allowed)
        if fits:
            result.append(resolution)
    return tuple(result)


def misfit(
    reasons: Iterable[str], resolution: Resolution, *, override: bool = False
) -> Refusal | None:
    """Why `resolution` cannot end a hold for `reasons`, or None when it may.

    A forged, unknown-signer, revoked or red code is only turned back or referred,
    whatever else the hold is for. With `override` (a supervisor, where the site allows
    it; the caller checks both) a passing way waives the OVERRIDABLE reasons, and only
    those: the hold's other reasons must still allow it (a fever is still measured).
    """
    reasons = [str(code) for code in reasons]
    if override:
        if resolution not in PASSING or not OVERRIDABLE & set(reasons):
            return Refusal(
                "nothing-to-override", "an override lets through a person whose code was refused"
            )
        reasons = [code for code in reasons if code not in OVERRIDABLE]
    if resolution in PASSING and (refused := sorted(STOP & set(reasons))):
        return Refusal("code-refused", f"{', '.join(refused)}: never let through, turn back")
    if resolution not in offered(reasons):
        # A fever is never registered, a missing code never re-measured away.
        return Refusal(
            "action-not-offered", f"{resolution} does not fit a hold for {', '.join(reasons)}"
        )
    return None
