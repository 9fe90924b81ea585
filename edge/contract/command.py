"""What the gateway publishes for the command center: alerts and retained summaries.

Neither carries personal data: the command center's own tools subscribe here.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from edge.contract.base import EventId, Payload, ShortText, Slug
from edge.contract.events import CheckpointCounts
from edge.contract.topics import AlertKind


class Alert(Payload):
    """One step in an alarm's life: raised, acknowledged, cleared; a raised alarm nobody
    acknowledged in time is sent once more, escalated (`escalated_at` set)."""

    alert_id: EventId = Field(description="stays the same through the alarm's life")
    kind: AlertKind
    state: Literal["raised", "acknowledged", "cleared"]
    severity: Literal["info", "warning", "critical"]
    site: Slug
    node: Slug | None = Field(None, description="the node concerned, if one")
    raised_at: AwareDatetime
    at: AwareDatetime = Field(description="when this state was entered")
    message: ShortText = Field(description="plain words, never a person's data")
    escalated_at: AwareDatetime | None = Field(
        None, description="when the alarm was escalated (raised and not acknowledged in "
        "time): its one second alert, and every step after it, carry it; absent before",
    )  # fmt: skip


class Summary(Payload):
    """Counts since the last daily cut-off, for a site or for one gate."""

    site: Slug
    node: Slug | None = Field(None, description="the gate; none for the site summary")
    since: AwareDatetime = Field(description="the last cut-off")
    at: AwareDatetime
    counts: CheckpointCounts
    nodes_online: int | None = Field(None, ge=0)
    nodes_total: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _online_within_total(self) -> Self:
        online, total = self.nodes_online, self.nodes_total
        if online is not None and total is not None and online > total:
            raise ValueError("nodes_online cannot exceed nodes_total")
        return self
