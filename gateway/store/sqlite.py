"""SqliteStore: the gateway's store in one SQLite file (WAL, synchronous FULL)."""

from __future__ import annotations

import functools
import itertools
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from gateway.store.base import StoreUnavailable
from gateway.store.migrations import apply_migrations
from gateway.store.rows import Row
from gateway.store.sql import Connection
from gateway.store.sql_store import SqlStore

# Rows in one INSERT at most: a power of two, so that a batch of any size takes a few
# statements of a few sizes, each prepared once; 256 rows of 127 columns stay under
# SQLite's 32,766 bound variables.
MOST_ROWS_A_STATEMENT = 256


class SqliteStore(SqlStore):
    """The Store on one SQLite file, shared by the ingest thread and the API's threads.

    Each thread has its own connection (sqlite3 connections are not shared across
    threads); WAL lets the API read while ingest writes. Writes take BEGIN IMMEDIATE so
    two gateway processes on one file queue for the lock instead of failing mid-way:
    SQLite runs one writer at a time, which is the whole of its concurrency contract.

    Args:
        path: the database file; created, and migrated to the newest schema, on open.
        busy_timeout_s: how long a writer waits for another writer's lock.
    """

    engine = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._busy_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()
        self._all: dict[threading.Thread, sqlite3.Connection] = {}
        self._all_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        apply_migrations(self._conn())

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self._close_orphans()
            # Autocommit mode: transactions are the explicit BEGINs below, nothing implicit.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: an event the gateway acknowledged to the broker survives a power cut.
            conn.execute("PRAGMA synchronous = FULL")
            # No checkpoint inside a commit: checkpoint() runs them from another thread,
            # off ingest's path (they cost a fifth of a commit's time otherwise).
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._all_lock:
                self._all[threading.current_thread()] = conn
        return conn

    def _close_orphans(self) -> None:
        # The API's worker threads come and go; a connection outlives its thread only
        # until the next thread opens one, so their number stays that of live threads.
        with self._all_lock:
            for thread in [t for t in self._all if not t.is_alive()]:
                self._all.pop(thread).close()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection as a sqlite-utils Database, for tools and tests to look
        inside. The store itself writes through sqlite3: its batches need their own
        BEGIN IMMEDIATE and COMMIT, and sqlite-utils' write helpers commit on their own."""
        return sqlite_utils.Database(self._conn())

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        # Threads of this process queue here: a waiting thread is woken when the lock is
        # free, where SQLite's own busy handler would only poll, and could miss every gap
        # between ingest's back-to-back commits for its whole timeout.
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT may or may not have rolled back; never leave it open.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _ingest_transaction(self, nodes: Iterable[tuple[str, str]]) -> Iterator[sqlite3.Connection]:
        try:
            with self._transaction() as conn:
                yield conn
        except sqlite3.OperationalError as error:  # a full disk, a locked or broken file
            raise StoreUnavailable(str(error)) from error

    def _store_rows(
        self, conn: Connection, sql: str, table: str, columns: str, rows: list[Row]
    ) -> None:
        """Insert new rows a few hundred to a statement, not one by one.

        Python's sqlite3 lets go of the interpreter lock for every step of a statement.
        Row by row, with another thread of the process waiting for the lock (ingest's
        reader, the publisher), each row became a hand-off between threads, and the
        writer waited to get the lock back (bench/ingest_contention.py). Like
        PostgreSQL's COPY, these rows are of events `_new_only` found unstored under
        the batch's lock.
        """
        width = columns.count(",") + 1
        at = 0
        while at < len(rows):
            count = min(MOST_ROWS_A_STATEMENT, 1 << ((len(rows) - at).bit_length() - 1))
            values = list(itertools.chain.from_iterable(rows[at : at + count]))
            conn.execute(_insert_rows(table, columns, width, count), values)
            at += count

    def checkpoint(self) -> None:
        """Copy the WAL into the database file without blocking writers (call every second).

        Call it from a thread other than ingest's writer; SQLite does the work with the
        Python lock released.
        """
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all.values():
                conn.close()
            self._all.clear()
        self._local = threading.local()


@functools.cache
def _insert_rows(table: str, columns: str, width: int, count: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return f"INSERT INTO {table} ({columns}) VALUES " + ",".join([row] * count)  # noqa: S608
