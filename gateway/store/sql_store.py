"""SqlStore: the Store's logic in the SQL both engines speak (gateway/store/sql.py).

SqliteStore (one file, the embedded default) and PostgresStore (a city, replicas) add only
how they connect and how a transaction is taken: `_conn`, `_transaction` for writes that
read then write, and `_ingest_transaction` for ingest's batches (see each for its locks).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from edge.contract.base import new_event_id
from edge.contract.presence import Birth, Death, Health
from gateway.stock.scales import ScaleStates
from gateway.store.alarms import AlarmsAndAccess
from gateway.store.applications import ApplicationBook
from gateway.store.base import Cases
from gateway.store.chain import EventChain
from gateway.store.daily_reports import DailyStockReports
from gateway.store.depot_months import DepotMonths
from gateway.store.depot_records import ScaleReadingRecord
from gateway.store.excursions import Excursions
from gateway.store.marks import SeqMarks, SeqState, rows_of_nodes, seq_states
from gateway.store.reads import Reads
from gateway.store.records import (
    DEFAULT_LIMITS,
    DeadLetter,
    InboundEvent,
    InboundPresence,
    IngestLimits,
    Quarantined,
    StoredMark,
    Written,
    utc_text,
)
from gateway.store.retention import Retention
from gateway.store.rollups import Rollups
from gateway.store.rows import ONE_ROW_PER_EVENT, TABLES, Row, insert_sql
from gateway.store.sql import Connection
from gateway.store.stock import StockLedger
from gateway.store.supply import SupplyRecords

# Ids asked for in one `IN (...)`: well under SQLite's default limit of 32,766 variables.
_ID_CHUNK = 900
# A topic is at most a few hundred characters in the contract, but MQTT allows 64 KiB of
# one; and a reason names every failing field, which a 64 KiB payload can make thousands.
TOPIC_KEEP_CHARS = 512
REASON_KEEP_CHARS = 2000
_EVENT_COLUMNS = (
    "event_id, site, node, kind, epoch, seq, node_time, received_at, payload, sha256, prev_hash"
)
_INSERT_EVENTS = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608


class SqlStore(
    Reads,
    AlarmsAndAccess,
    SeqMarks,
    EventChain,
    Excursions,
    Rollups,
    DepotMonths,
    StockLedger,
    ScaleStates,
    ApplicationBook,
    DailyStockReports,
    SupplyRecords,
    Retention,
):
    """Everything the gateway keeps, over a `Connection`; a backend supplies the rest."""

    # "sqlite" or "postgresql": for the rare statement that cannot be written once, and
    # for what the gateway reports about itself.
    engine: str

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction that runs alone among the store's writers."""
        raise NotImplementedError

    def _ingest_transaction(
        self, nodes: Iterable[tuple[str, str]]
    ) -> AbstractContextManager[Connection]:
        """Ingest's write transaction for a batch of these nodes: alone for each node.

        Raises StoreUnavailable when the store cannot be written now (retry the batch).
        """
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Housekeeping that must not run inside ingest's commits."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- ingest ---------------------------------------------------------------------

    def write(
        self,
        events: Sequence[InboundEvent],
        presence: Sequence[InboundPresence] = (),
        dead: Sequence[DeadLetter] = (),
        cases: Cases | None = None,
        limits: IngestLimits = DEFAULT_LIMITS,
    ) -> Written:
        now = datetime.now(UTC)
        jumped: list[Quarantined] = []
        nodes = {(i.site, i.node) for i in events} | {(u.site, u.node) for u in presence}
        with self._ingest_transaction(nodes) as conn:
            applied = [u for u in presence if self._presence(conn, u, limits, jumped)]
            fresh = self._new_only(conn, events)
            # The batch's nodes as they stand after its presence: nothing below changes
            # them before `_set_marks` (a node `_insert` adds has UNSEEN's defaults).
            states = seq_states(conn, {(i.site, i.node) for i in fresh})
            known = {key for key, s in states.items() if s.seq_max > 0 or s.epoch > 0}
            new, quarantined = self._plausible(fresh, states, known, limits.seq_jump_max)
            jumped += quarantined
            chain = self._chain_faults(conn, new)  # before the insert: reads the older ones
            self._insert(conn, new, states)
            self._mark_chain(conn, chain)
            again = {id(item) for item in fresh}
            forked, letters = self._refork(conn, [i for i in events if id(i) not in again])
            chain += forked
            by_node: dict[tuple[str, str], list[InboundEvent]] = defaultdict(list)
            for item in new:
                by_node[(item.site, item.node)].append(item)
            self._set_marks(conn, [
                self._advance_seq(key, states[key], items, first=key not in known)
                for key, items in by_node.items()
            ])  # fmt: skip
            touched = set(by_node) | {
                (i.site, i.node) for i in applied if isinstance(i.payload, Birth)
            }
            marks = self._marks(conn, touched)
            self._keep_dead_letters(conn, [*dead, *(q.letter for q in jumped), *letters], limits)
            # Alarms of new events commit with them: once acknowledged, a fever case is
            # never redelivered, so a crash between the two would lose its alarm for good.
            drafts = [
                (d, new_event_id(now)) for item in new for d in (cases(item) if cases else ())
            ]
            opened = self._open_alarms(conn, drafts, now)
        return Written(new, applied, self._alarms_by_id(opened), marks, jumped, chain)

    def _keep_dead_letters(
        self, conn: Connection, dead: Sequence[DeadLetter], limits: IngestLimits
    ) -> None:
        """Keep each letter's first bytes, size and hash; drop the oldest past the cap."""
        if not dead:
            return
        keep = limits.dead_letter_keep_bytes
        conn.executemany(
            "INSERT INTO dead_letters (received_at, topic, payload, size, sha256, reason) "
            "VALUES (?,?,?,?,?,?)",
            [
                (utc_text(d.received_at), d.topic[:TOPIC_KEEP_CHARS], d.payload[:keep],
                 len(d.payload), hashlib.sha256(d.payload).hexdigest(),
                 d.reason[:REASON_KEEP_CHARS])
                for d in dead
            ],
        )  # fmt: skip
        dropped = conn.execute(
            "DELETE FROM dead_letters WHERE id <= "
            "(SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (limits.dead_letters_max,),
        ).rowcount
        if dropped:
            conn.execute(
                "UPDATE counters SET value = value + ? WHERE name = 'dead_letters_dropped'",
                (dropped,),
            )

    def _marks(self, conn: Connection, nodes: set[tuple[str, str]]) -> list[StoredMark]:
        select = (
            "SELECT n.site, n.node, n.role, n.outbox_id, n.seq_contiguous FROM wanted w "
            "JOIN nodes n ON n.site = w.site AND n.node = w.node WHERE n.outbox_id IS NOT NULL"
        )
        return [StoredMark(*row) for row in rows_of_nodes(conn, select, sorted(nodes))]

    def _store_rows(
        self, conn: Connection, sql: str, table: str, columns: str, rows: list[Row]
    ) -> None:
        """Insert rows of one event each, none of them stored yet (their events were new by
        `_new_only`, read under the batch's node locks). `sql` inserts them one by one;
        PostgresStore copies them in instead."""
        conn.executemany(sql, rows)

    def _new_only(self, conn: Connection, events: Sequence[InboundEvent]) -> list[InboundEvent]:
        ids = list({item.event.event_id for item in events})
        known: set[str] = set()
        if ids and self.engine == "postgresql":  # one array, not a statement psycopg reparses
            sql = "SELECT event_id FROM events WHERE event_id = ANY(CAST(? AS text[]))"
            known.update(row[0] for row in conn.execute(sql, (ids,)))
            ids = []
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT event_id FROM events WHERE event_id IN ({marks})"  # noqa: S608
            known.update(row[0] for row in conn.execute(sql, chunk))
        new: list[InboundEvent] = []
        for item in events:
            if item.event.event_id not in known:
                known.add(item.event.event_id)  # a duplicate within the batch, too
                new.append(item)
        return new

    def _insert(
        self, conn: Connection, new: Sequence[InboundEvent],
        states: dict[tuple[str, str], SeqState],
    ) -> None:  # fmt: skip
        if not new:
            return
        conn.executemany(
            "INSERT INTO nodes (site, node, role, first_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                (site, node, str(role), utc_text(new[0].received_at))
                for site, node, role in {(i.site, i.node, i.role) for i in new}
            ],
        )
        self._store_rows(
            conn, _INSERT_EVENTS, "events", _EVENT_COLUMNS,
            [
                (i.event.event_id, i.site, i.node, i.event.kind, states[(i.site, i.node)].epoch,
                 i.event.seq, utc_text(i.event.node_time), utc_text(i.received_at),
                 i.raw.decode(), i.sha256, i.event.prev_hash)
                for i in new
            ],
        )  # fmt: skip
        rows: dict[type, list[Row]] = defaultdict(list)
        for item in new:
            table = TABLES.get(type(item.event))
            if table is not None:
                rows[type(item.event)].extend(table[2](item, item.event))
        for kind, kind_rows in rows.items():
            table_name, columns, _ = TABLES[kind]
            if kind in ONE_ROW_PER_EVENT:
                self._store_rows(conn, insert_sql(table_name, columns), table_name, columns,
                                 kind_rows)  # fmt: skip
            else:  # several rows of one event may share a key: the first one is kept
                conn.executemany(insert_sql(table_name, columns), kind_rows)

    def _presence(
        self, conn: Connection, item: InboundPresence, limits: IngestLimits,
        jumped: list[Quarantined],
    ) -> bool:  # fmt: skip
        """Apply a birth, death or heartbeat; False for one of a session already ended.

        A seq it claims far past the node's mark (`limits.seq_jump_max`) is not applied,
        and is added to `jumped`.
        """
        conn.execute(
            "INSERT INTO nodes (site, node, role, first_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (item.site, item.node, str(item.role), utc_text(item.received_at)),
        )
        key = (item.site, item.node)
        known_session, known_outbox = conn.execute(
            "SELECT session, outbox_id FROM nodes WHERE site=? AND node=?", key
        ).fetchone()
        payload = item.payload
        new_outbox = (
            isinstance(payload, Birth) and payload.outbox_id is not None
            and known_outbox is not None and payload.outbox_id != known_outbox
        )  # fmt: skip
        if new_outbox or (known_session is not None and payload.session < known_session):
            if not isinstance(payload, Birth):
                return False  # the will or heartbeat of a session that has already ended
            # Another outbox, or a lower session: the node lost its state and counts
            # from 1 again.
            conn.execute(
                "UPDATE nodes SET epoch = epoch + 1, seq_contiguous = 0, seq_max = 0, "
                "gap_since = NULL, last_seq = NULL, accepted_from = NULL WHERE site=? AND node=?",
                key,
            )
        if isinstance(payload, Birth) and payload.outbox_id is not None:
            first = known_outbox is None or new_outbox
            claim = self._anchor(
                conn, item, payload.outbox_id, payload.confirmed_seq or 0, first=first,
                jump_max=limits.seq_jump_max,
            )  # fmt: skip
            jumped += [claim] if claim else []
        seen = utc_text(item.received_at)
        if isinstance(payload, Death):
            conn.execute(
                "UPDATE nodes SET online=0, offline_reason=?, session=? WHERE site=? AND node=?",
                (payload.reason, payload.session, *key),
            )
            return True
        # A heartbeat is live; a birth may have waited out an outage in our session, so
        # its age is counted from the node's own time of sending.
        reported_at = seen if isinstance(payload, Health) else utc_text(payload.node_time)
        fields: dict[str, object] = {
            "online": 1, "offline_reason": None, "session": payload.session,
            "devices": json.dumps(payload.devices),
            "trust_list_age_s": payload.trust_list_age_s, "trust_list_age_at": reported_at,
        }  # fmt: skip
        if not item.retained:
            fields["last_seen"] = seen
        if item.skew_s is not None:
            fields["clock_skew_s"] = round(item.skew_s, 3)
        if payload.config_serial is not None:  # a node older than signed configs says none
            fields["config_serial"] = payload.config_serial
        if isinstance(payload, Birth):
            fields |= {
                "version": payload.version, "config_hash": payload.config_hash,
                "heartbeat_s": payload.heartbeat_s,
            }  # fmt: skip
        elif isinstance(payload, Health):
            claim = self._plausible_last_seq(conn, item, payload.last_seq, limits.seq_jump_max)
            if claim is None:
                fields |= {"outbox_depth": payload.outbox_depth, "last_seq": payload.last_seq}
            else:
                jumped.append(claim)
        assignments = ", ".join(f"{name}=?" for name in fields)
        conn.execute(
            f"UPDATE nodes SET {assignments} WHERE site=? AND node=?",  # noqa: S608
            (*fields.values(), *key),
        )
        return True

    def scale_readings(
        self, site: str, node: str, since: datetime, until: datetime, *,
        scale: str | None = None, limit: int = 10_000,
    ) -> list[ScaleReadingRecord]:  # fmt: skip
        """Settled weights of a depot's scales (or one scale) with `since <= at < until`."""
        rows = self._rows(
            "SELECT site, node, scale, item, at, basis, shown_kg, tare_kg, net_kg "
            "FROM scale_readings WHERE site = ? AND node = ? AND scale = COALESCE(?, scale) "
            "AND at >= ? AND at < ? ORDER BY at, scale LIMIT ?",
            (site, node, scale, utc_text(since), utc_text(until), max(1, min(limit, 100_000))),
        )
        return [ScaleReadingRecord(**row) for row in rows]

    def mark_offline(
        self, nodes: Sequence[tuple[str, str, datetime | None]], reason: str
    ) -> list[tuple[str, str]]:
        marked: list[tuple[str, str]] = []
        if not nodes:
            return marked  # no write transaction: each one waits for ingest's batch
        with self._transaction() as conn:
            for site, node, last_seen in nodes:
                # Only if nothing was heard since the caller looked: a heartbeat stored
                # in between keeps the node online.
                cursor = conn.execute(
                    "UPDATE nodes SET online=0, offline_reason=? "
                    "WHERE site=? AND node=? AND online=1 AND last_seen IS NOT DISTINCT FROM ?",
                    (reason, site, node, utc_text(last_seen) if last_seen else None),
                )
                if cursor.rowcount:
                    marked.append((site, node))
        return marked
