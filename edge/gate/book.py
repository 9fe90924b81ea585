"""What a gate keeps beside its events: open holds, the day's counts, shifts, exits.

It lives in the outbox's meta table and is written in the same transaction as the
events that change it, so after a crash it matches the events exactly. The faults
reported are kept beside it by edge/fault_log.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from edge.contract.events import CheckpointCounts
from edge.gate.views import OpenHold
from edge.outbox import Outbox


@dataclass
class LocalBook:
    """State kept beside the events, in the outbox's meta table."""

    counts: CheckpointCounts = field(default_factory=CheckpointCounts)
    period_end: str = ""
    holds: dict[str, OpenHold] = field(default_factory=dict)
    on_duty: list[str] = field(default_factory=list)
    week: str = ""
    household_exits: dict[str, int] = field(default_factory=dict)

    def dump(self) -> dict[str, str]:
        return {
            "counts": self.counts.model_dump_json(),
            "period_end": self.period_end,
            "holds": json.dumps([h.model_dump(mode="json") for h in self.holds.values()]),
            "on_duty": json.dumps(self.on_duty),
            "household": json.dumps({"week": self.week, "exits": self.household_exits}),
        }

    @classmethod
    def load(cls, outbox: Outbox) -> LocalBook:
        book = cls()
        if counts := outbox.get_meta("counts"):
            book.counts = CheckpointCounts.model_validate_json(counts)
        book.period_end = outbox.get_meta("period_end", "")
        holds = [OpenHold.model_validate(h) for h in json.loads(outbox.get_meta("holds", "[]"))]
        book.holds = {h.hold_id: h for h in holds}
        book.on_duty = json.loads(outbox.get_meta("on_duty", "[]"))
        household = json.loads(outbox.get_meta("household", "{}"))
        book.week, book.household_exits = household.get("week", ""), household.get("exits", {})
        return book
