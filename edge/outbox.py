"""The durable outbox: every event is committed to SQLite before anything acts on it.

The MQTT client keeps unacknowledged messages in memory and drops them when full or
when the process dies, so a node writes each event here first (WAL, synchronous FULL:
on disk when `commit` returns). A broker's PUBACK is not enough to let go of a row: a
broker restarted without its shared subscriptions drops what it acknowledged. A row is
deleted only when the gateway's receipt says it stored it (`confirm`), so the outbox
always holds exactly the events after `confirmed`, in seq order. `seq` is assigned
here, from 1 and without gaps, and never reused: it is kept in the `meta` table, not
derived from the rows that are left. Each event carries `prev_hash`, the SHA-256 of the
payload bytes of the event before it (the chain head, kept in `meta` beside `last_seq`
and committed with the events), so the gateway and an auditor can tell an event removed,
changed or inserted; the first event of an outbox, or the first after an upgrade from a
version without the chain, has none.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from edge.contract.base import Event, chain_hash, new_event_id
from edge.contract.catalogue import encode, entry_topic
from edge.contract.topics import Node
from edge.errors import GatepostError

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value NOT NULL
);
"""
# Device faults and daily reports have this much room of their own beside the capacity,
# so the event that says "the outbox is full" can itself be recorded.
FAULT_HEADROOM = 100


class OutboxError(GatepostError):
    """The outbox could not record an event (full, or the disk refused the write)."""


class OutboxFull(OutboxError):
    """The outbox holds `capacity` unacknowledged events; nothing more is accepted."""


@dataclass(frozen=True)
class Row:
    """One event waiting for the broker's acknowledgement."""

    seq: int
    topic: str
    payload: bytes


@dataclass
class Batch:
    """Events being added in one transaction: all of them are recorded, or none.

    `ids(at)` gives the identity fields of the next event; `add(event)` queues it.
    `meta` holds key/value updates committed in the same transaction (counters the
    node keeps beside its events, such as the day's report counts). `head` is the hash
    of the newest event, the one the next event links to (None before a chain's start).
    """

    next_seq: int
    head: str | None = None
    events: list[Event] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def ids(self, at: datetime) -> dict[str, Any]:
        """`event_id`, `seq`, `node_time` and `prev_hash` for the next event created at `at`.

        Call it after adding the event before: the next event links to that one's bytes.
        """
        seq = self.next_seq + len(self.events)
        return {"event_id": new_event_id(at), "seq": seq, "node_time": at, "prev_hash": self.head}

    def add(self, event: E) -> E:
        """Queue `event`, encoded now: its bytes are what is published and what the next
        event's `prev_hash` is taken from.

        Raises:
            ValueError: the event is not the next one (its seq, or its link to the chain).
        """
        expected = self.next_seq + len(self.events)
        if event.seq != expected:
            raise ValueError(f"event seq {event.seq} is not the next one ({expected})")
        if event.prev_hash != self.head:
            raise ValueError(f"event seq {event.seq} does not link to the chain head {self.head}")
        payload = encode(event)
        self.events.append(event)
        self.payloads.append(payload)
        self.head = chain_hash(payload)
        return event


class Outbox:
    """A node's outbox in one SQLite file.

    Args:
        path: the database file; created with its folder if missing.
        node: the node whose events these are (their topics are built from it).
        capacity: most unconfirmed events held; beyond it `transaction` raises
            OutboxFull. Device faults and daily reports (`reserved=True`) have
            FAULT_HEADROOM rows of their own and do not use the capacity. `depth`
            says how full it is; the node raises its faults from that.
    """

    def __init__(
        self, path: Path, node: Node, capacity: int = 100_000
    ) -> None:  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.node = node
        self.capacity = capacity
        self._lock = threading.Lock()
        self._db = _connect(path)
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "reserved" not in columns:  # an outbox from before reserved rows were counted
            self._db.execute("ALTER TABLE outbox ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0")
        # Checkpoints (WAL back into the database file, fsynced) take tens of ms on an
        # SD card: they run on their own connection, off the decision path.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = _connect(path)
        self._last_seq = int(self.get_meta("last_seq", 0))
        self._confirmed = int(self.get_meta("confirmed_seq", 0))
        # Absent in a new outbox, and in one written before the chain: the next event
        # starts a chain (no prev_hash).
        self._head: str | None = self.get_meta("chain_head")
        self.outbox_id = str(self.get_meta("outbox_id", ""))
        if not self.outbox_id:
            self.outbox_id = secrets.token_hex(16)
            self.set_meta("outbox_id", self.outbox_id)
        self.depth, self._reserved = self._db.execute(
            "SELECT COUNT(*), IFNULL(SUM(reserved), 0) FROM outbox"
        ).fetchone()

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def chain_head(self) -> str | None:
        """Hash of the newest event's payload (`last_seq`), or None before the chain starts."""
        return self._head

    @property
    def confirmed(self) -> int:
        """The gateway stored every event up to this seq; the outbox holds those after it."""
        return self._confirmed

    def close(self) -> None:
        self.checkpoint()
        with self._lock:
            self._db.close()
            self._checkpointer.close()

    def checkpoint(self) -> None:
        """Move committed events from the WAL into the database file (call every few seconds).

        PASSIVE: it never waits for, or blocks, a commit.
        """
        try:
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("outbox checkpoint failed: %s", exc)

    @contextmanager
    def transaction(self, *, reserved: bool = False) -> Iterator[Batch]:
        """Add events atomically; they are on disk when the `with` block ends.

        Args:
            reserved: the events are device faults or reports, which use the
                FAULT_HEADROOM rows kept for them rather than the capacity.

        Raises:
            OutboxFull: no room.
            OutboxError: the database refused the write (disk full, I/O error).
        """
        with self._lock:
            used, limit = self._room(reserved)
            if used >= limit:
                raise OutboxFull(f"outbox holds {used} unsent events (capacity {limit})")
            batch = Batch(next_seq=self._last_seq + 1, head=self._head)
            yield batch
            if not batch.events:
                return
            if used + len(batch.events) > limit:
                raise OutboxFull(f"outbox has room for {limit - used} more events")
            self._commit(batch, reserved)

    def _room(self, reserved: bool) -> tuple[int, int]:
        if reserved:
            return self._reserved, FAULT_HEADROOM
        return self.depth - self._reserved, self.capacity

    def _commit(self, batch: Batch, reserved: bool) -> None:
        rows = [
            (e.seq, entry_topic(self.node, e), payload, int(reserved))
            for e, payload in zip(batch.events, batch.payloads, strict=True)
        ]
        last = batch.events[-1].seq
        try:
            with self._db:
                self._db.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?)", rows)
                # The head commits with its events: a restart links to exactly the last one.
                updates = {**batch.meta, "last_seq": last, "chain_head": batch.head}
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", list(updates.items())
                )
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: cannot record events: {exc}") from exc
        self._last_seq = last
        self._head = batch.head
        self.depth += len(rows)
        self._reserved += len(rows) if reserved else 0

    def add(self, build: Callable[[dict[str, Any]], Event], at: datetime) -> Event:
        """Record one event; `build` gets the identity fields and returns the event."""
        with self.transaction() as batch:
            event = batch.add(build(batch.ids(at)))
        return event

    def after(self, seq: int, limit: int) -> list[Row]:
        """Up to `limit` unconfirmed events with a seq above `seq`, oldest first."""
        with self._lock:
            found = self._db.execute(
                "SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [Row(*r) for r in found]

    def confirm(self, seq: int) -> int:
        """The gateway stored every event up to `seq`: delete them. Returns how many went.

        A `seq` at or below what is already confirmed changes nothing (receipts may come
        out of order); one beyond `last_seq` is not for this outbox and is refused.

        Raises:
            ValueError: `seq` is beyond the newest event this outbox ever held.
        """
        with self._lock:
            if seq > self._last_seq:
                raise ValueError(f"seq {seq} was never written here (last is {self._last_seq})")
            if seq <= self._confirmed:
                return 0
            with self._db:
                deleted, reserved = self._db.execute(
                    "SELECT COUNT(*), IFNULL(SUM(reserved), 0) FROM outbox WHERE seq <= ?", (seq,)
                ).fetchone()
                self._db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('confirmed_seq', ?)", (seq,))
            self._confirmed = seq
            self.depth -= deleted
            self._reserved -= reserved
            return int(deleted)

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread off: every use goes through the outbox's lock.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on the disk (WAL fsynced) before it returns, so an event
    # survives power loss once the barrier has acted on it.
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=5000")
    return db
