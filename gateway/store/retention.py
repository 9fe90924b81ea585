"""Retention of checkpoint events: personal fields removed first, whole rows later.

The privacy rules (docs/gateway.md "Retention and size") keep a person's data only as long
as it is needed: after `store.personal_days` every personal field (the ones the contract
marks `personal`: subject_ref, vehicle_plate, a registration's name, ID hash and last
four, phone, origin, destination, reason, a hold note) is removed from the event's row in
its table AND from the raw payload kept in `events`; after `store.passage_days` the event
and its rows are deleted.

The event chain (gateway/store/chain.py) still stands after both:
- a scrubbed event keeps `events.sha256`, the hash of the payload as received, and is
  marked `events.scrubbed_at`: the audit links the chain through that hash and checks the
  scrubbed payload against its rows with the personal columns left out. What it cannot
  check any more is the removed data itself (that is the point of removing it);
- a purge records, per node and outbox life, the highest seq it deleted
  (`retention_purged`): the audit starts that life after it instead of calling the
  stretch missing.
A depot reading batch's raw copy in `events` goes sooner: once older than
`store.depot_raw_days` and its readings are gone (rolled up, then deleted by depot
retention), with the same bookkeeping.
All run in bounded batches, one short write transaction each, so ingest waits at most
one batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, create_model

from edge.contract.base import Event, personal_fields
from edge.contract.events import DepotReadingBatch
from gateway.store.records import utc_text
from gateway.store.rows import TABLES, Row
from gateway.store.sql import Connection

# The name of the scrub's progress in retention_marks: "received_at event_id" of the last
# event done (ISO times hold no space).
_SCRUB_MARK = "scrubbed_through"
# The kind of a depot node's reading batch: its raw copy goes with its raw readings.
_DEPOT_BATCH: str = DepotReadingBatch.model_fields["kind"].default
# The depot batch purge's progress, as the scrub's: "received_at event_id" of the last done.
_DEPOT_MARK = "depot_batches_through"


class PersonalColumns(NamedTuple):
    """Where one event kind keeps personal data."""

    table: str
    fields: tuple[str, ...]  # personal keys of the payload (top level: none are nested)
    blanks: tuple[tuple[str, str | None], ...]  # table column -> what replaces it
    positions: frozenset[int]  # their places in the kind's row (TABLES), for the audit


def _personal_columns(model: type[Event], table: str, columns: str) -> PersonalColumns:
    names = [c.strip() for c in columns.split(",")]
    fields = tuple(personal_fields(model))
    if any("." in f for f in fields):
        raise ValueError(f"{model.__name__}: nested personal fields need a scrub of their own")
    # A required field's column is NOT NULL: it keeps an empty text instead.
    blanks = tuple(
        (f, "" if model.model_fields[f].is_required() else None) for f in fields if f in names
    )
    return PersonalColumns(
        table, fields, blanks, frozenset(i for i, n in enumerate(names) if n in fields)
    )


# Every event kind that carries personal data, by kind.
PERSONAL: dict[str, PersonalColumns] = {
    model.model_fields["kind"].default: _personal_columns(model, table, columns)
    for model, (table, columns, _) in TABLES.items()
    if personal_fields(model)
}

# The kinds whose events the checkpoint purge deletes, with their tables: a gate's events,
# and depot reading batches (their raw copy, and any readings still there: most batches
# went long before with their readings, by purge_depot_batches; this is the backstop).
# Scale weights stay: they are the ledger's evidence.
PURGED_TABLES: dict[str, str] = {
    model.model_fields["kind"].default: table
    for model, (table, _, _) in TABLES.items()
    if model.model_fields["kind"].default != "weight"
}


def _scrubbed_model(model: type[Event]) -> type[BaseModel]:
    optional: dict[str, Any] = {f: (Any, None) for f in personal_fields(model)}
    return create_model(f"Scrubbed{model.__name__}", __base__=model, **optional)


# Each personal kind's model with its personal fields optional: a scrubbed payload's rows
# are made again from it (gateway/store/chain.py).
SCRUBBED_MODELS: dict[str, type[BaseModel]] = {
    model.model_fields["kind"].default: _scrubbed_model(model)
    for model in TABLES
    if personal_fields(model)
}


def scrub_payload(kind: str, payload: str) -> str | None:
    """The payload with its personal fields set to null; None if it holds none (or is not
    a JSON object: nothing to read in it)."""
    personal = PERSONAL.get(kind)
    if personal is None:
        return None
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict) or all(body.get(f) is None for f in personal.fields):
        return None
    for field in personal.fields:
        if field in body:
            body[field] = None
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def mask_personal(kind: str, row: Row) -> Row:
    """A row with its personal columns set to None: what the audit compares once scrubbed."""
    personal = PERSONAL.get(kind)
    if personal is None:
        return row
    return tuple(None if i in personal.positions else v for i, v in enumerate(row))


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Retention:
    """Scrub and purge of old events (mixed into SqlStore)."""

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def scrub_personal(self, before: datetime, limit: int) -> int:
        """Remove the personal fields of up to `limit` events received before `before`,
        oldest first, in one transaction: from their payload (marked scrubbed_at, sha256
        kept) and their table's row.

        Returns:
            How many events were looked at (0: nothing older is left to scrub).
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        cut, now = utc_text(before), utc_text(datetime.now(UTC))
        with self._transaction() as conn:
            # Past the last event done, (received_at, event_id) in order: events that hold
            # nothing personal are never marked, so the mark is what moves past them.
            done_at, done_id = _read_mark(conn, _SCRUB_MARK)
            rows = conn.execute(
                "SELECT event_id, kind, payload, received_at FROM events "
                "WHERE received_at >= ? AND received_at < ? AND scrubbed_at IS NULL "
                "AND (received_at > ? OR event_id > ?) "
                "ORDER BY received_at, event_id LIMIT ?",
                (done_at, cut, done_at, done_id, limit),
            ).fetchall()
            if not rows:
                return 0
            scrubbed: dict[str, list[str]] = {}
            updates = []
            for event_id, kind, payload, _ in rows:
                clean = scrub_payload(kind, payload)
                if clean is not None:
                    updates.append((clean, now, event_id))
                    scrubbed.setdefault(kind, []).append(event_id)
            conn.executemany("UPDATE events SET payload=?, scrubbed_at=? WHERE event_id=?", updates)
            for kind, ids in scrubbed.items():
                _blank_rows(conn, PERSONAL[kind], ids)
            _write_mark(conn, _SCRUB_MARK, rows[-1][3], rows[-1][0])
        return len(rows)

    def purge_checkpoint_rows(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` events received before `before`, oldest first, with their
        rows, in one transaction; record per node and outbox life the highest seq deleted
        (the chain audit starts each life after it).

        Returns:
            How many events were deleted (0: none older is left).
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        kinds = sorted(PURGED_TABLES)
        marks = ",".join("?" * len(kinds))
        now = utc_text(datetime.now(UTC))
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT event_id, kind, site, node, epoch, seq FROM events "  # noqa: S608
                f"WHERE received_at < ? AND kind IN ({marks}) "
                "ORDER BY received_at, event_id LIMIT ?",
                (utc_text(before), *kinds, limit),
            ).fetchall()
            by_kind: dict[str, list[str]] = {}
            lives: dict[tuple[str, str, int], int] = {}
            for event_id, kind, site, node, epoch, seq in rows:
                by_kind.setdefault(kind, []).append(event_id)
                lives[(site, node, epoch)] = max(seq, lives.get((site, node, epoch), 0))
            _record_purged(conn, lives, now)
            for kind, ids in by_kind.items():
                for chunk in _chunks(ids):
                    places = ",".join("?" * len(chunk))
                    conn.execute(
                        f"DELETE FROM {PURGED_TABLES[kind]} WHERE event_id IN ({places})",  # noqa: S608
                        chunk,
                    )
                    conn.execute(
                        f"DELETE FROM events WHERE event_id IN ({places})",  # noqa: S608
                        chunk,
                    )
        return len(rows)

    def purge_depot_batches(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` depot reading batches received before `before`, oldest
        first, in one transaction, stopping at the first one whose readings are not all
        gone; record per node and outbox life the highest seq deleted (as the checkpoint
        purge does: the chain audit starts each life after it).

        A batch goes only once none of its readings is left in `depot_readings`: depot
        retention deletes a reading only once rolled up (arrival at or below the rollup
        watermark, gateway/store/rollups.py), so a batch not rolled up yet is never
        touched. Its readings are not deleted here: a rolled minute above the zone's
        `raw_before` mark is rolled again from its raw readings when a late one arrives,
        and would lose them. A batch held back holds back the ones after it (the walk
        resumes at it); one whose readings never go is deleted after `passage_days`.

        Returns:
            How many batches were deleted (0: none can go now).
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        cut, now = utc_text(before), utc_text(datetime.now(UTC))
        with self._transaction() as conn:
            # Past the last batch done, along events_by_received: passages in between are
            # stepped over once, not at every step.
            done_at, done_id = _read_mark(conn, _DEPOT_MARK)
            rows = conn.execute(
                "SELECT e.event_id, e.site, e.node, e.epoch, e.seq, e.received_at, "
                "EXISTS (SELECT 1 FROM depot_readings r WHERE r.event_id = e.event_id) "
                "FROM events e WHERE e.received_at >= ? AND e.received_at < ? "
                "AND e.kind = ? AND (e.received_at > ? OR e.event_id > ?) "
                "ORDER BY e.received_at, e.event_id LIMIT ?",
                (done_at, cut, _DEPOT_BATCH, done_at, done_id, limit),
            ).fetchall()
            gone: list[str] = []
            lives: dict[tuple[str, str, int], int] = {}
            through: tuple[str, str] | None = None
            for event_id, site, node, epoch, seq, received_at, readings_left in rows:
                if readings_left:
                    break  # the next step starts at it again
                gone.append(event_id)
                lives[(site, node, epoch)] = max(seq, lives.get((site, node, epoch), 0))
                through = (received_at, event_id)
            _record_purged(conn, lives, now)
            for chunk in _chunks(gone):
                places = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM events WHERE event_id IN ({places})", chunk)  # noqa: S608
            if through is not None:
                _write_mark(conn, _DEPOT_MARK, *through)
        return len(gone)


def _read_mark(conn: Connection, name: str) -> tuple[str, str]:
    """A walk's progress: (received_at, event_id) of the last event it did, or ("", "")."""
    row = conn.execute("SELECT value FROM retention_marks WHERE name=?", (name,)).fetchone()
    done_at, _, done_id = (row[0] if row else "").partition(" ")
    return done_at, done_id


def _write_mark(conn: Connection, name: str, received_at: str, event_id: str) -> None:
    conn.execute(
        "INSERT INTO retention_marks (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, f"{received_at} {event_id}"),
    )


def _record_purged(conn: Connection, lives: dict[tuple[str, str, int], int], now: str) -> None:
    """Per node and outbox life, the highest seq retention deleted (the audit starts after)."""
    conn.executemany(
        "INSERT INTO retention_purged (site, node, epoch, seq_through, purged_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, node, epoch) DO UPDATE SET "
        "seq_through = MAX(retention_purged.seq_through, excluded.seq_through), "
        "purged_at = excluded.purged_at",
        [(*life, seq, now) for life, seq in sorted(lives.items())],
    )


def _blank_rows(conn: Connection, personal: PersonalColumns, ids: Sequence[str]) -> None:
    sets = ", ".join(f"{column}=?" for column, _ in personal.blanks)
    values = [blank for _, blank in personal.blanks]
    for chunk in _chunks(ids):
        places = ",".join("?" * len(chunk))
        conn.execute(
            f"UPDATE {personal.table} SET {sets} WHERE event_id IN ({places})",  # noqa: S608
            [*values, *chunk],
        )
