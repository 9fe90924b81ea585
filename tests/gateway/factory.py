"""Events as a gate would send them, numbered per node, for gateway tests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.contract.base import Event, new_event_id
from edge.contract.catalogue import encode
from edge.contract.events import (
    DailyReport,
    Disinfection,
    Hold,
    HoldResolved,
    Passage,
    Registration,
    Shift,
)
from edge.contract.topics import Role
from gateway.store.records import InboundEvent
from gateway.store.sql_store import SqlStore

ID_HASH = "ab" * 32


def look_inside(store: SqlStore, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """The rows of `sql` (in the store's SQL: `?` placeholders) run on the store's own
    connection, whichever engine: for tests that check what is stored, or that the schema
    refuses a write (expect gateway.store.sql.INTEGRITY_ERRORS)."""
    cursor = store._conn().execute(sql, params)
    return cursor.fetchall() if cursor.description is not None else []


class Gates:
    """Makes InboundEvents for the gates of one site, with seq counting from 1 per node."""

    def __init__(self, site: str = "north", now: datetime | None = None) -> None:
        self.site = site
        self.now = now or datetime.now(UTC)
        self._seq: dict[str, int] = defaultdict(int)

    def inbound(self, node: str, event_type: type[Event], **fields: Any) -> InboundEvent:
        at = fields.pop("node_time", self.now)
        seq = fields.pop("seq", None)
        if seq is None:
            self._seq[node] += 1
            seq = self._seq[node]
        event = event_type(event_id=new_event_id(at), seq=seq, node_time=at, **fields)
        role = Role.DEPOT if node.startswith("d") else Role.GATE
        return InboundEvent(self.site, node, role, event, encode(event), self.now)

    def passage(self, node: str = "g01", **fields: Any) -> InboundEvent:
        values: dict[str, Any] = {
            "direction": "in", "outcome": "allow", "colour": "green",
            "credential": "health-code", "temperature_c": 36.5,
        }  # fmt: skip
        values.update(fields)
        if values["outcome"] != "allow":
            values.setdefault("reasons", ("fever",) if values["outcome"] == "hold" else ("red",))
        return self.inbound(node, Passage, **values)

    def hold(self, passage: InboundEvent, **fields: Any) -> InboundEvent:
        p = passage.event
        assert isinstance(p, Passage)
        values: dict[str, Any] = {
            "passage_id": p.event_id, "reasons": p.reasons or ("fever",),
            "colour": p.colour, "temperature_c": p.temperature_c, "subject_ref": ID_HASH,
        }  # fmt: skip
        values.update(fields)
        return self.inbound(passage.node, Hold, **values)

    def resolved(self, hold: InboundEvent, resolution: str = "released") -> InboundEvent:
        return self.inbound(
            hold.node, HoldResolved, hold_id=hold.event.event_id, resolution=resolution,
            volunteer_id="v017", temperature_c=36.6,
        )  # fmt: skip

    def registration(self, node: str = "g01", **fields: Any) -> InboundEvent:
        values: dict[str, Any] = {
            "name": "张三", "id_hash": ID_HASH, "id_last4": "123X", "phone": "13800138000",
            "volunteer_id": "v017",
        }  # fmt: skip
        values.update(fields)
        return self.inbound(node, Registration, **values)

    def shift(self, node: str = "g01", action: str = "start", **fields: Any) -> InboundEvent:
        return self.inbound(node, Shift, action=action, **{"volunteer_id": "v017", **fields})

    def disinfection(self, node: str = "g01", **fields: Any) -> InboundEvent:
        return self.inbound(node, Disinfection, volunteer_id="v017", area="hut", **fields)

    def daily_report(self, node: str, report: dict[str, Any]) -> InboundEvent:
        return self.inbound(node, DailyReport, **report)

    def later(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
