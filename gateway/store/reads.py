"""What the API and the alarm rules read from the store."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from edge.contract.events import CheckpointCounts
from gateway.store.depot_records import DepotReadingRecord
from gateway.store.records import (
    DailyReportRecord,
    DeadLetterRecord,
    DisinfectionRecord,
    EventQuery,
    HoldRecord,
    NodeFaultRecord,
    NodeRecord,
    PassageFilter,
    PassageRecord,
    RegistrationRecord,
    StoredMark,
    utc_text,
)
from gateway.store.sql import Connection

# Volunteers on duty: each one whose newest shift event at the node is a start. Two can
# be on shift together; one ending theirs leaves the other on duty.
_ON_DUTY = """
    (SELECT json_group_array(volunteer_id) FROM (
       SELECT s.volunteer_id FROM shifts s
       WHERE s.site = n.site AND s.node = n.node AND s.action = 'start'
       AND NOT EXISTS (
         SELECT 1 FROM shifts later
         WHERE later.site = s.site AND later.node = s.node
         AND later.volunteer_id = s.volunteer_id
         AND (later.node_time > s.node_time
              OR (later.node_time = s.node_time AND later.seq > s.seq)))
       ORDER BY s.volunteer_id) AS on_duty)
"""

# Each (device, fault) whose newest event in the node's current epoch is a raise: a node
# that lost its state (a new epoch) lost the faults it had raised, and raises again what
# is still wrong. Within an epoch seq gives the order (node clocks can step).
_OPEN_FAULTS = """
SELECT f.site, f.node, f.device, f.fault, f.detail, f.node_time AS raised_at, f.seq
FROM device_faults f
JOIN events e ON e.event_id = f.event_id
JOIN nodes n ON n.site = e.site AND n.node = e.node AND n.epoch = e.epoch
WHERE f.state = 'raised'{where}
AND NOT EXISTS (
  SELECT 1 FROM device_faults later JOIN events le ON le.event_id = later.event_id
  WHERE later.site = f.site AND later.node = f.node AND later.device = f.device
  AND later.fault = f.fault AND le.epoch = e.epoch AND later.seq > f.seq)
ORDER BY f.site, f.node, f.device, f.fault
"""

_COUNTS = """
SELECT
  COALESCE(SUM(CASE WHEN subject = 'person' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN subject = 'vehicle' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN temperature_c IS NULL THEN 0
                    WHEN subject = 'vehicle' THEN COALESCE(occupants, 1) ELSE 1 END), 0),
  COALESCE(SUM(CASE WHEN outcome = 'allow' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN outcome = 'hold' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN outcome = 'deny' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(fever), 0),
  COALESCE(SUM(CASE WHEN colour = 'green' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN colour = 'yellow' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN colour = 'red' THEN 1 ELSE 0 END), 0)
FROM passages WHERE {where}
"""


class Reads:
    """Queries of SqlStore (mixed in; `_conn` comes from the store)."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cursor = self._conn().execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    # --- nodes ------------------------------------------------------------------------

    def nodes(self, site: str | None = None) -> list[NodeRecord]:
        where, params = ("WHERE n.site = ?", (site,)) if site else ("", ())
        rows = self._rows(
            f"SELECT n.*, {_ON_DUTY} AS volunteers_on_duty FROM nodes n {where} "  # noqa: S608
            "ORDER BY n.site, n.node",
            params,
        )
        return [_node(row) for row in rows]

    def node(self, site: str, node: str) -> NodeRecord | None:
        rows = self._rows(
            f"SELECT n.*, {_ON_DUTY} AS volunteers_on_duty FROM nodes n "  # noqa: S608
            "WHERE n.site = ? AND n.node = ?",
            (site, node),
        )
        return _node(rows[0]) if rows else None

    def open_holds(self, site: str) -> dict[str, int]:
        rows = self._conn().execute(
            "SELECT t.node, COUNT(*) FROM holds t "
            "LEFT JOIN hold_resolutions r ON r.hold_id = t.event_id "
            "WHERE t.site = ? AND r.event_id IS NULL GROUP BY t.node",
            (site,),
        )
        return {node: count for node, count in rows}

    def event_seqs(self, site: str, node: str) -> list[int]:
        return [
            row[0]
            for row in self._conn().execute(
                "SELECT e.seq FROM events e JOIN nodes n ON n.site = e.site AND n.node = e.node "
                "AND n.epoch = e.epoch WHERE e.site = ? AND e.node = ? ORDER BY e.seq",
                (site, node),
            )
        ]

    def depot_readings(
        self, site: str, node: str, since: datetime, until: datetime, *,
        zone: str | None = None, limit: int = 10_000,
    ) -> list[DepotReadingRecord]:  # fmt: skip
        rows = self._rows(
            "SELECT site, node, sensor AS zone, bus_address, at, status, temperature_c, "
            "humidity_pct FROM depot_readings WHERE site = ? AND node = ? "
            "AND sensor = COALESCE(?, sensor) AND at >= ? AND at < ? ORDER BY at, sensor LIMIT ?",
            (site, node, zone, utc_text(since), utc_text(until), limit),
        )
        return [DepotReadingRecord(**row) for row in rows]

    def node_faults(
        self, site: str | None = None, node: str | None = None
    ) -> list[NodeFaultRecord]:
        where, params = "", []
        for column, value in (("site", site), ("node", node)):
            if value is not None:
                where += f" AND f.{column} = ?"
                params.append(value)
        rows = self._rows(_OPEN_FAULTS.format(where=where), params)
        return [NodeFaultRecord(**row) for row in rows]

    # --- event lists ----------------------------------------------------------------

    def lagging(self) -> list[tuple[StoredMark, int]]:
        """Nodes known to have sent more than the store holds: (mark, newest seq known).

        The newest seq is the highest stored or the one the node's heartbeat reported,
        whichever is higher; below it and above the mark, events are missing.
        """
        rows = (
            self._conn()
            .execute(
                "SELECT site, node, role, outbox_id, seq_contiguous, "
                "MAX(seq_max, COALESCE(last_seq, 0)) AS newest FROM nodes "
                "WHERE outbox_id IS NOT NULL "
                "AND seq_contiguous < MAX(seq_max, COALESCE(last_seq, 0))"
            )
            .fetchall()
        )
        return [(StoredMark(*row[:5]), row[5]) for row in rows]

    def marks(self) -> list[StoredMark]:
        """Every node with a known outbox and how far the store holds it."""
        rows = (
            self._conn()
            .execute(
                "SELECT site, node, role, outbox_id, seq_contiguous FROM nodes "
                "WHERE outbox_id IS NOT NULL"
            )
            .fetchall()
        )
        return [StoredMark(*row) for row in rows]

    def passages(self, query: EventQuery, only: PassageFilter | None = None) -> list[PassageRecord]:
        only = only or PassageFilter()
        extra = {"outcome": only.outcome, "colour": only.colour, "subject": only.subject}
        rows = self._select("passages", query, extra)
        for row in rows:
            row["reasons"] = json.loads(row["reasons"])
        return [PassageRecord(**row) for row in rows]

    def holds(self, query: EventQuery, open_only: bool = False) -> list[HoldRecord]:
        return self._holds(query, "r.event_id IS NULL" if open_only else None)

    def hold(self, event_id: str) -> HoldRecord | None:
        found = self._holds(EventQuery(limit=1), "t.event_id = ?", (event_id,))
        return found[0] if found else None

    def _holds(
        self, query: EventQuery, condition: str | None, params: tuple[Any, ...] = ()
    ) -> list[HoldRecord]:
        sql = (
            "SELECT t.*, r.resolution, r.node_time AS resolved_at, r.volunteer_id AS resolved_by,"
            " r.temperature_c AS resolved_temperature_c, r.registration_id, r.note"
            " FROM holds t LEFT JOIN hold_resolutions r ON r.hold_id = t.event_id"
        )
        rows = self._select(
            "holds", query, {}, sql=sql, condition=condition, condition_params=params
        )
        for row in rows:
            row["reasons"] = json.loads(row["reasons"])
        return [HoldRecord(**row) for row in rows]

    def registrations(self, query: EventQuery) -> list[RegistrationRecord]:
        return [RegistrationRecord(**row) for row in self._select("registrations", query, {})]

    def disinfections(self, query: EventQuery) -> list[DisinfectionRecord]:
        return [DisinfectionRecord(**row) for row in self._select("disinfections", query, {})]

    def _select(
        self,
        table: str,
        query: EventQuery,
        extra: dict[str, Any],
        *,
        sql: str | None = None,
        condition: str | None = None,
        condition_params: tuple[Any, ...] = (),
    ) -> list[dict[str, Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("site", query.site), ("node", query.node), *extra.items()):
            if value is not None:
                # `|| ''` keeps SQLite from picking the per-node index for a site alone
                # (and then sorting the whole site): newest-first walks the time index
                # instead. (Portable: PostgreSQL's planner weighs it on its statistics.)
                plain = " || ''" if column == "site" and query.node is None else ""
                clauses.append(f"t.{column}{plain} = ?")
                params.append(value)
        if query.since is not None:
            clauses.append("t.node_time >= ?")
            params.append(utc_text(query.since))
        if query.until is not None:
            clauses.append("t.node_time < ?")
            params.append(utc_text(query.until))
        if condition:
            clauses.append(condition)
            params.extend(condition_params)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if query.newest_first else "ASC"
        base = sql or f"SELECT t.* FROM {table} t"  # noqa: S608
        return self._rows(
            f"{base} {where} ORDER BY t.node_time {order}, t.node {order}, t.seq {order} "
            "LIMIT ? OFFSET ?",
            (*params, query.limit, query.offset),
        )

    # --- reports ----------------------------------------------------------------------

    def daily_reports(self, site: str, day: date) -> list[DailyReportRecord]:
        # A gate that sent its report twice (a retry with a new id) counts once: the newest.
        rows = self._rows(
            "SELECT d.*, e.received_at, e.prev_hash FROM daily_reports d "
            "JOIN events e USING (event_id) "
            "WHERE d.site = ? AND d.day = ? ORDER BY d.node, d.node_time",
            (site, day.isoformat()),
        )
        newest = {row["node"]: row for row in rows}
        return [
            DailyReportRecord(
                **{**row, "counts": CheckpointCounts.model_validate_json(row["counts"])}
            )
            for row in newest.values()
        ]

    def counts(
        self, site: str, node: str | None, since: datetime, until: datetime | None = None
    ) -> CheckpointCounts:
        clauses = ["site = ?", "node_time >= ?"]
        params: list[Any] = [site, utc_text(since)]
        if node is not None:
            clauses.append("node = ?")
            params.append(node)
        if until is not None:
            clauses.append("node_time < ?")
            params.append(utc_text(until))
        where = " AND ".join(clauses)
        conn = self._conn()
        values = conn.execute(_COUNTS.format(where=where), params).fetchone()
        turned_back_on_hold = conn.execute(
            f"SELECT COUNT(*) FROM hold_resolutions WHERE {where} "  # noqa: S608
            "AND resolution = 'turned-back'",
            params,
        ).fetchone()[0]
        disinfections = conn.execute(
            f"SELECT COUNT(*) FROM disinfections WHERE {where}",  # noqa: S608
            params,
        ).fetchone()[0]
        names = [n for n in CheckpointCounts.model_fields if n != "disinfections"]
        counts = dict(zip(names, values, strict=True))
        counts["turned_back"] += turned_back_on_hold
        return CheckpointCounts(**counts, disinfections=disinfections)

    # --- dead letters -------------------------------------------------------------------

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRecord]:
        rows = self._rows("SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,))
        return [
            DeadLetterRecord(**{**row, "payload": bytes(row["payload"]).decode(errors="replace")})
            for row in rows
        ]

    def dead_letter_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def dead_letters_dropped(self) -> int:
        row = (
            self._conn()
            .execute("SELECT value FROM counters WHERE name = 'dead_letters_dropped'")
            .fetchone()
        )
        return int(row[0]) if row else 0


_NODE_FIELDS = frozenset(NodeRecord.model_fields)


def _node(row: dict[str, Any]) -> NodeRecord:
    devices = json.loads(row.pop("devices") or "{}")
    on_duty = json.loads(row.pop("volunteers_on_duty") or "[]")
    return NodeRecord(
        **{k: v for k, v in row.items() if k in _NODE_FIELDS},
        devices=devices,
        volunteers_on_duty=on_duty,
    )
