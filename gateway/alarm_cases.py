"""The alarms a newly stored event opens, stored in the transaction that stores it: fever,
red code, a refused signed document, a supervisor's override (gateway/rules.py raises and
clears the rest as events arrive and time passes)."""

from __future__ import annotations

import re

from edge.contract.events import DeviceFault, Hold, HoldResolved, Passage
from edge.contract.topics import AlertKind
from edge.gate.daily import FEVER_REASONS
from gateway.alarms import draft
from gateway.store.records import AlarmDraft, InboundEvent

# The signed documents a node reports refusing as a device fault, as the devices it names.
DOCUMENTS = frozenset({"trust-list", "revocations", "config"})
# The one-word reason in a node's refusal ("trust list serial 5 refused as bad-signature: …").
_REFUSED_AS = re.compile(r"refused as ([a-z-]+)")


def alarm_cases(item: InboundEvent) -> list[AlarmDraft]:
    """The alarms a newly stored event opens: fever (by passage or hold), red code, a
    signed document a node refused, and a supervisor's override of a refused code.

    The store opens them in the transaction that stores the event (see `Store.write`).
    """
    event, site, node = item.event, item.site, item.node
    if isinstance(event, Passage):  # nearly every event: looked at first
        cases = []
        if not FEVER_REASONS.isdisjoint(event.reasons):
            cases.append(_fever(site, node, event.event_id, event.temperature_c))
        if event.colour == "red":
            # Reported at once in epidemic control (紧急), as a fever is.
            cases.append(
                draft(AlertKind.RED_CODE, "red-code", site, node, "critical",
                      subject=event.event_id)
            )  # fmt: skip
        return cases
    if isinstance(event, Hold) and not FEVER_REASONS.isdisjoint(event.reasons):
        return [_fever(site, node, event.passage_id, event.temperature_c)]
    if isinstance(event, DeviceFault):
        return [_document_refused(site, node, event)] if refusal(event) == "raised" else []
    if isinstance(event, HoldResolved) and event.override:
        # A supervisor let through a code the gate refused: the site allowed it, and the
        # command center sees each one (one alarm per hold).
        return [
            draft(AlertKind.HOLD_OVERRIDE, "hold-override", site, node, "critical",
                  subject=event.hold_id, volunteer=event.volunteer_id, hold=event.hold_id)
        ]  # fmt: skip
    return []


def refusal(fault: DeviceFault) -> str:
    """ "raised" or "cleared" for a node's refusal of a signed document; "" for other faults."""
    return fault.state if fault.device in DOCUMENTS and fault.fault == "refused" else ""


def _document_refused(site: str, node: str, fault: DeviceFault) -> AlarmDraft:
    # Critical: the refused document is the retained one on the broker, so every node
    # that subscribes gets it instead of the real one, and none gets what provisioning
    # issues until it is published again: a newly revoked code keeps passing, and a stale
    # trust list ends in gates that cannot check codes. Someone wrote a topic only
    # provisioning may write (a broken ACL, a stolen key), or provisioning erred.
    found = _REFUSED_AS.search(fault.detail or "")
    return draft(
        AlertKind.DOCUMENT_REFUSED, f"document-refused.{fault.device}", site, node, "critical",
        subject=fault.device, reason=found.group(1) if found else "invalid",
    )  # fmt: skip


def _fever(site: str, node: str, passage_id: str, temperature_c: float | None) -> AlarmDraft:
    # The passage and its hold both report the case; both name it by the passage.
    if temperature_c is None:
        return draft(
            AlertKind.FEVER, "fever.unmeasured", site, node, "critical", subject=passage_id
        )
    return draft(
        AlertKind.FEVER, "fever", site, node, "critical", subject=passage_id,
        temperature=f"{temperature_c:.1f}",
    )  # fmt: skip
