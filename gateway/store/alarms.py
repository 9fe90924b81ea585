"""Alarms, API tokens and the audit log in the store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from gateway.store.base import UnknownAlarm
from gateway.store.records import (
    AccessRole,
    AlarmDraft,
    AlarmRecord,
    AlarmState,
    AuditEntry,
    TokenRecord,
    utc_text,
)
from gateway.store.sql import INTEGRITY_ERRORS, Connection

# Alarm drafts inserted by one statement: 8 parameters each, well under SQLite's limit.
_DRAFTS_CHUNK = 200


class AlarmsAndAccess:
    """Alarm lifecycle, tokens and audit of SqlStore (mixed in)."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    # --- alarms -----------------------------------------------------------------------

    def raise_alarms(
        self, drafts: Sequence[tuple[AlarmDraft, str]], at: datetime
    ) -> list[AlarmRecord]:
        with self._transaction() as conn:
            opened = self._open_alarms(conn, drafts, at)
        return self._alarms_by_id(opened)

    def _open_alarms(
        self, conn: Connection, drafts: Sequence[tuple[AlarmDraft, str]], at: datetime
    ) -> list[str]:
        """Insert drafts inside the caller's transaction; the ids of those opened, in order."""
        if not drafts:
            return []
        # The partial unique index refuses a second live alarm for one condition; RETURNING
        # names those it did not refuse. One statement per chunk: a batch of fevers opens
        # many, and each statement is a round trip to PostgreSQL.
        opened: set[str] = set()
        for start in range(0, len(drafts), _DRAFTS_CHUNK):
            chunk = drafts[start : start + _DRAFTS_CHUNK]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, 'raised', ?, ?)"] * len(chunk))
            rows = conn.execute(
                "INSERT INTO alarms (alarm_id, kind, site, node, subject, severity, state, "  # noqa: S608
                f"message, raised_at) VALUES {values} ON CONFLICT DO NOTHING RETURNING alarm_id",
                [
                    field
                    for draft, alarm_id in chunk
                    for field in (alarm_id, str(draft.kind), draft.site, draft.node,
                                  draft.subject, draft.severity, draft.message, utc_text(at))
                ],
            ).fetchall()  # fmt: skip
            opened.update(row[0] for row in rows)
        return [alarm_id for _, alarm_id in drafts if alarm_id in opened]

    def _alarms_by_id(self, ids: Sequence[str]) -> list[AlarmRecord]:
        if not ids:
            return []
        rows = self._rows_in(self._conn(), "SELECT * FROM alarms", ids)
        order = {alarm_id: index for index, alarm_id in enumerate(ids)}
        return sorted((AlarmRecord(**row) for row in rows), key=lambda a: order[a.alarm_id])

    def _rows_in(self, conn: Connection, select: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), 900):  # under SQLite's limit of variables
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            cursor = conn.execute(f"{select} WHERE alarm_id IN ({marks})", chunk)
            names = [d[0] for d in cursor.description]
            rows += [dict(zip(names, row, strict=True)) for row in cursor]
        return rows

    def live_alarm(
        self, kind: str, site: str, node: str | None, subject: str
    ) -> AlarmRecord | None:
        rows = self._rows(
            "SELECT * FROM alarms WHERE kind = ? AND site = ? AND COALESCE(node, '') = ? "
            "AND subject = ? AND state != 'cleared'",
            (kind, site, node or "", subject),
        )
        return AlarmRecord(**rows[0]) if rows else None

    def live_conditions(self, kinds: Sequence[str]) -> set[tuple[str, str, str, str]]:
        return self._conditions("state != 'cleared'", (), kinds)

    def conditions_raised_since(
        self, since: datetime, kinds: Sequence[str]
    ) -> set[tuple[str, str, str, str]]:
        # Every state named: the index on (state, raised_at) serves each one's range.
        where = "state IN ('raised', 'acknowledged', 'cleared') AND raised_at >= ?"
        return self._conditions(where, (utc_text(since),), kinds)

    def _conditions(
        self, where: str, params: Sequence[str], kinds: Sequence[str]
    ) -> set[tuple[str, str, str, str]]:
        """(kind, site, node or "", subject) of the alarms of `kinds` matching `where`."""
        marks = ",".join("?" * len(kinds))
        rows = self._conn().execute(
            "SELECT kind, site, COALESCE(node, ''), subject FROM alarms "  # noqa: S608
            f"WHERE {where} AND kind IN ({marks})",
            (*params, *(str(kind) for kind in kinds)),
        )
        return {(kind, site, node, subject) for kind, site, node, subject in rows}

    def alarm(self, alarm_id: str) -> AlarmRecord:
        rows = self._rows("SELECT * FROM alarms WHERE alarm_id = ?", (alarm_id,))
        if not rows:
            raise UnknownAlarm(alarm_id)
        return AlarmRecord(**rows[0])

    def alarms(
        self, states: Sequence[AlarmState] = ("raised", "acknowledged"), limit: int = 200
    ) -> list[AlarmRecord]:
        marks = ",".join("?" * len(states))
        rows = self._rows(
            f"SELECT * FROM alarms WHERE state IN ({marks}) "  # noqa: S608
            "ORDER BY raised_at DESC, alarm_id DESC LIMIT ?",
            (*states, limit),
        )
        return [AlarmRecord(**row) for row in rows]

    def acknowledge_alarm(self, alarm_id: str, by: str, at: datetime) -> tuple[AlarmRecord, bool]:
        with self._transaction() as conn:
            # Read inside the transaction: a clear landing in between cannot be overwritten.
            row = conn.execute("SELECT state FROM alarms WHERE alarm_id = ?", (alarm_id,))
            found = row.fetchone()
            if found is None:
                raise UnknownAlarm(alarm_id)
            if found[0] == "cleared":
                raise ValueError(f"alarm {alarm_id} is already cleared")
            cursor = conn.execute(
                "UPDATE alarms SET state='acknowledged', acknowledged_at=?, acknowledged_by=? "
                "WHERE alarm_id = ? AND state = 'raised'",
                (utc_text(at), by, alarm_id),
            )
        return self.alarm(alarm_id), cursor.rowcount == 1

    def clear_alarm(self, alarm_id: str, by: str, at: datetime) -> tuple[AlarmRecord, bool]:
        self.alarm(alarm_id)
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE alarms SET state='cleared', cleared_at=?, cleared_by=? "
                "WHERE alarm_id = ? AND state != 'cleared'",
                (utc_text(at), by, alarm_id),
            )
        return self.alarm(alarm_id), cursor.rowcount == 1

    def open_alarm_count(self) -> int:
        row = self._conn().execute("SELECT COUNT(*) FROM alarms WHERE state != 'cleared'")
        return int(row.fetchone()[0])

    def alarms_to_escalate(self, raised_before: datetime) -> list[str]:
        rows = self._conn().execute(
            "SELECT alarm_id FROM alarms WHERE state = 'raised' AND escalated_at IS NULL "
            "AND raised_at <= ? ORDER BY raised_at",
            (utc_text(raised_before),),
        )
        return [alarm_id for (alarm_id,) in rows]

    def escalate_alarms(self, alarm_ids: Sequence[str], at: datetime) -> list[AlarmRecord]:
        marked: list[str] = []
        with self._transaction() as conn:
            for alarm_id in alarm_ids:
                cursor = conn.execute(
                    "UPDATE alarms SET escalated_at = ? WHERE alarm_id = ? AND state = 'raised' "
                    "AND escalated_at IS NULL",
                    (utc_text(at), alarm_id),
                )
                if cursor.rowcount == 1:
                    marked.append(alarm_id)
        return self._alarms_by_id(marked)

    # --- tokens and audit -------------------------------------------------------------

    def add_token(
        self, token_hash: str, name: str, role: AccessRole, at: datetime,
        depots: Sequence[str] = (),
    ) -> None:  # fmt: skip
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO tokens (token_hash, name, role, created_at, depots) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (token_hash, name, role, utc_text(at), json.dumps(list(depots))),
                )
        except INTEGRITY_ERRORS:
            raise ValueError(f"a token named {name!r} already exists") from None

    def token(self, token_hash: str) -> TokenRecord | None:
        rows = self._rows(
            "SELECT name, role, created_at, revoked_at, depots FROM tokens "
            "WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        return _token(rows[0]) if rows else None

    def tokens(self) -> list[TokenRecord]:
        rows = self._rows(
            "SELECT name, role, created_at, revoked_at, depots FROM tokens ORDER BY name"
        )
        return [_token(row) for row in rows]

    def revoke_token(self, name: str, at: datetime) -> bool:
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (utc_text(at), name),
            )
        return cursor.rowcount == 1

    def audit(self, entry: AuditEntry) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO audit_log (at, who, role, action, resource, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (utc_text(entry.at), entry.who, entry.role, entry.action, entry.resource,
                 entry.detail),
            )  # fmt: skip

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        rows = self._rows(
            "SELECT at, who, role, action, resource, detail FROM audit_log "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [AuditEntry(**row) for row in rows]


def _token(row: dict[str, Any]) -> TokenRecord:
    return TokenRecord(**{**row, "depots": tuple(json.loads(row["depots"]))})
