"""How each event kind becomes a row of its own table (beside the raw event log)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge.contract.base import Event
from edge.contract.events import (
    DailyReport,
    DepotReadingBatch,
    DeviceFault,
    Disinfection,
    Hold,
    HoldResolved,
    Passage,
    Registration,
    Shift,
    WeightBatch,
)
from edge.gate.daily import FEVER_REASONS
from gateway.store.records import InboundEvent, utc_text

Row = tuple[Any, ...]


def _codes(reasons: tuple[str, ...]) -> str:
    # Reason codes are [a-z0-9-] only (the contract's pattern): nothing to escape, and
    # joining them is several times cheaper than json.dumps on the ingest path.
    return '["' + '","'.join(reasons) + '"]' if reasons else "[]"


def _head(item: InboundEvent) -> Row:
    event = item.event
    return (event.event_id, item.site, item.node, event.seq, utc_text(event.node_time))


def _passage(item: InboundEvent, p: Passage) -> list[Row]:
    fever = not FEVER_REASONS.isdisjoint(p.reasons)
    return [
        (
            *_head(item),
            p.direction,
            p.subject,
            p.outcome,
            p.colour,
            p.credential,
            _codes(p.reasons),
            p.temperature_c,
            fever,
            p.subject_ref,
            p.vehicle_plate,
            p.occupants,
        )
    ]


def _hold(item: InboundEvent, h: Hold) -> list[Row]:
    return [
        (
            *_head(item),
            h.passage_id,
            _codes(h.reasons),
            h.colour,
            h.temperature_c,
            h.subject_ref,
        )
    ]


def _resolved(item: InboundEvent, r: HoldResolved) -> list[Row]:
    return [
        (
            *_head(item),
            r.hold_id,
            r.resolution,
            r.volunteer_id,
            r.temperature_c,
            r.registration_id,
            r.note,
        )
    ]


def _registration(item: InboundEvent, r: Registration) -> list[Row]:
    return [
        (
            *_head(item),
            r.name,
            r.id_hash,
            r.id_last4,
            r.phone,
            r.origin,
            r.destination,
            r.reason,
            r.vehicle_plate,
            r.hold_id,
            r.volunteer_id,
        )
    ]


def _shift(item: InboundEvent, s: Shift) -> list[Row]:
    return [(*_head(item), s.action, s.volunteer_id, s.role)]


def _disinfection(item: InboundEvent, d: Disinfection) -> list[Row]:
    return [(*_head(item), d.volunteer_id, d.area, d.agent)]


def _daily(item: InboundEvent, d: DailyReport) -> list[Row]:
    return [
        (
            *_head(item),
            d.day.isoformat(),
            utc_text(d.period_start),
            utc_text(d.period_end),
            d.counts.model_dump_json(),
            d.zero_report,
        )
    ]


def _fault(item: InboundEvent, f: DeviceFault) -> list[Row]:
    return [(*_head(item), f.device, f.fault, f.state, f.detail)]


def _readings(item: InboundEvent, batch: DepotReadingBatch) -> list[Row]:
    return [
        (
            batch.event_id,
            item.site,
            item.node,
            r.sensor,
            r.bus_address,
            utc_text(r.at),
            r.status,
            r.temperature_c,
            r.humidity_pct,
        )
        for r in batch.readings
    ]


def _weights(item: InboundEvent, batch: WeightBatch) -> list[Row]:
    return [
        (batch.event_id, item.site, item.node, w.scale, w.item, utc_text(w.at), w.basis,
         w.shown_kg, w.tare_kg, w.net_kg)
        for w in batch.weights
    ]  # fmt: skip


_COLUMNS = "event_id, site, node, seq, node_time"
# table, columns after the common head (or the whole row for readings), row builder.
TABLES: dict[type[Event], tuple[str, str, Callable[[InboundEvent, Any], list[Row]]]] = {
    Passage: ("passages", f"{_COLUMNS}, direction, subject, outcome, colour, credential, "
              "reasons, temperature_c, fever, subject_ref, vehicle_plate, occupants", _passage),
    Hold: ("holds", f"{_COLUMNS}, passage_id, reasons, colour, temperature_c, subject_ref", _hold),
    HoldResolved: ("hold_resolutions", f"{_COLUMNS}, hold_id, resolution, volunteer_id, "
                   "temperature_c, registration_id, note", _resolved),
    Registration: ("registrations", f"{_COLUMNS}, name, id_hash, id_last4, phone, origin, "
                   "destination, reason, vehicle_plate, hold_id, volunteer_id", _registration),
    Shift: ("shifts", f"{_COLUMNS}, action, volunteer_id, role", _shift),
    Disinfection: ("disinfections", f"{_COLUMNS}, volunteer_id, area, agent", _disinfection),
    DailyReport: ("daily_reports", f"{_COLUMNS}, day, period_start, period_end, counts, "
                  "zero_report", _daily),
    DeviceFault: ("device_faults", f"{_COLUMNS}, device, fault, state, detail", _fault),
    DepotReadingBatch: ("depot_readings", "event_id, site, node, sensor, bus_address, at, "
                        "status, temperature_c, humidity_pct", _readings),
    WeightBatch: ("scale_readings", "event_id, site, node, scale, item, at, basis, shown_kg, "
                  "tare_kg, net_kg", _weights),
}  # fmt: skip


# The kinds whose table holds one row per event, keyed by its id: an event new to the
# store has none yet (depot readings and weights are several rows of one event).
ONE_ROW_PER_EVENT = frozenset(k for k in TABLES if k not in (DepotReadingBatch, WeightBatch))


def insert_sql(table: str, columns: str) -> str:
    marks = ", ".join("?" * (columns.count(",") + 1))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608
