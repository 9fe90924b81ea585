"""PostgresStore: the gateway's store on PostgreSQL, for a city and for replicas.

The same queries as the SQLite store (`SqlStore` and its mixins, written in the SQL both
engines speak: gateway/store/sql.py) run here through psycopg 3 on a connection per thread.

Concurrency contract (what makes two or three gateways on one database correct under
PostgreSQL's READ COMMITTED, where SQLite simply runs one writer at a time):
- every write transaction but ingest's takes the store's write lock (a transaction-level
  advisory lock), so their read-then-write checks (a stock issue against what is on hand,
  an alarm acknowledged once) run one at a time across replicas, as on SQLite;
- ingest's batches take that lock shared, so batches of different replicas run side by
  side, and an exclusive lock per node of the batch (in one order, so no two batches
  deadlock on them): a node's seq bookkeeping, presence and chain check are read and
  written by one batch at a time; an event delivered to two replicas is stored once (its
  key), an alarm condition is live once (the partial unique index decides, not a process);
- a connection lost or refused, a deadlock or a serialization failure is
  `StoreUnavailable`: the caller retries the whole batch (nothing half-written: it was one
  transaction), and ingest acknowledges to the broker only after a commit.
Every write transaction notifies `gatepost_changed` on commit: each replica's live feed
listens (`ChangeListener`), so every dashboard shows what any replica stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import Dumper, Loader

from gateway.store.base import StoreUnavailable
from gateway.store.rows import Row
from gateway.store.schema import Migration
from gateway.store.schema_pg import PG_MIGRATIONS
from gateway.store.sql import Connection, Cursor
from gateway.store.sql_store import SqlStore

log = logging.getLogger(__name__)

# Advisory lock keys (one 64-bit space per database): arbitrary, fixed, documented.
WRITE_LOCK = 0x6761_7465_0001  # "gate" 1: writes that read then write
MIGRATION_LOCK = 0x6761_7465_0002  # two replicas starting together migrate once
LEADER_LOCK = 0x6761_7465_0003  # gateway.leader: the one replica that runs the clock's work
NODE_LOCKS = 0x6761_7465  # the per-node locks' first key (the second: a hash of site/node)
CHANNEL = "gatepost_changed"
_NODE_LOCKS_SQL = (
    f"SELECT pg_advisory_xact_lock({NODE_LOCKS}, key) FROM "  # noqa: S608
    "(SELECT DISTINCT hashtext(name) AS key FROM unnest(%s::text[]) AS name ORDER BY key) AS keys"
)


# The server's keepalives on each session (no effect over a Unix socket), in one round trip.
_SERVER_KEEPALIVES = (
    "SELECT set_config('tcp_keepalives_idle', '5', false),"
    " set_config('tcp_keepalives_interval', '2', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)


@lru_cache(maxsize=2048)
def pg_sql(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s` (a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _NumericLoader(Loader):
    """PostgreSQL's `numeric` (what SUM and AVG of integers give) as SQLite gives it: an
    int when whole, else a float; never a Decimal the rest of the gateway does not expect."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


class _FlagDumper(Dumper):
    """A Python bool as SQLite stores it: the integer 0 or 1 (flags are BIGINT columns)."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class PgConnection:
    """A psycopg connection that takes the store's SQL as written (gateway.store.sql)."""

    engine = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        if not parameters:  # no placeholders: psycopg sends the text as it is
            return self.raw.execute(sql)
        return self.raw.execute(pg_sql(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(pg_sql(sql), list(parameters))
        return cursor


def connect(url: str, *, application_name: str = "gatepost-gateway") -> psycopg.Connection[Any]:
    """A connection in autocommit mode (transactions are the store's explicit ones), with
    keepalives so a cut network is noticed in seconds, not hours: on this side (libpq's),
    and on the server's (5 + 3 x 2 s), so a session cut mid-transaction does not keep its
    node locks, and the other replicas' ingest waiting, for the OS default of 2 hours."""
    try:
        raw = psycopg.connect(
            url, autocommit=True, connect_timeout=5, application_name=application_name,
            keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
            tcp_user_timeout=10_000,
        )  # fmt: skip
    except psycopg.OperationalError as error:
        raise StoreUnavailable(f"PostgreSQL unreachable: {_first_line(error)}") from error
    try:
        raw.execute(_SERVER_KEEPALIVES)
    except psycopg.OperationalError as error:
        raw.close()
        raise StoreUnavailable(f"PostgreSQL: {_first_line(error)}") from error
    raw.adapters.register_loader("numeric", _NumericLoader)
    raw.adapters.register_dumper(bool, _FlagDumper)
    return raw


class PostgresStore(SqlStore):
    """The Store on PostgreSQL, shared by ingest, the rules and the API's threads.

    Args:
        url: a libpq URL (`postgresql://user@host:port/database`); the database must
            exist; it is migrated to the newest schema on open (once, whichever replica
            gets there first).
    """

    engine = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._all: dict[threading.Thread, PgConnection] = {}
        self._all_lock = threading.Lock()
        with connect(url, application_name="gatepost-migrate") as raw:
            apply_pg_migrations(raw)

    def _conn(self) -> PgConnection:
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.raw.closed:
            self._forget(threading.current_thread())
            conn = None
        if conn is None:
            self._close_orphans()
            conn = PgConnection(connect(self.url))
            self._local.conn = conn
            with self._all_lock:
                self._all[threading.current_thread()] = conn
        return conn

    def _forget(self, thread: threading.Thread) -> None:
        with self._all_lock:
            dropped = self._all.pop(thread, None)
        if dropped is not None:
            dropped.raw.close()
        self._local.conn = None

    def _close_orphans(self) -> None:
        with self._all_lock:
            for thread in [t for t in self._all if not t.is_alive()]:
                self._all.pop(thread).raw.close()

    @contextmanager
    def _transaction(self) -> Iterator[PgConnection]:
        def take(conn: PgConnection) -> None:
            conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

        with self._locked(take) as conn:
            yield conn

    @contextmanager
    def _ingest_transaction(self, nodes: Iterable[tuple[str, str]]) -> Iterator[PgConnection]:
        names = sorted({f"{site}/{node}" for site, node in nodes})

        def take(conn: PgConnection) -> None:
            conn.execute(f"SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})")
            if names:
                # One statement for all the batch's node locks (not a round trip each),
                # taken in the order of their keys: two batches never wait on each other
                # crosswise, even where two names share a key.
                conn.raw.execute(_NODE_LOCKS_SQL, (names,))

        with self._locked(take) as conn:
            yield conn

    @contextmanager
    def _locked(self, take: Callable[[PgConnection], object]) -> Iterator[PgConnection]:
        conn = self._conn()
        try:
            with conn.raw.transaction():
                take(conn)
                yield conn
                conn.execute(f"NOTIFY {CHANNEL}")
        except psycopg.OperationalError as error:
            # Lost, refused, deadlocked or a serialization failure: rolled back whole.
            if conn.raw.closed or conn.raw.broken:
                self._forget(threading.current_thread())
            raise StoreUnavailable(f"PostgreSQL: {_first_line(error)}") from error

    def _store_rows(
        self, conn: Connection, sql: str, table: str, columns: str, rows: list[Row]
    ) -> None:
        """COPY the rows in: one stream per table, not a statement per row.

        COPY cannot skip a row whose key is taken, and needs not: these rows are of
        events `_new_only` found unstored while this batch holds their nodes' locks, so no
        other batch stores them meanwhile (an id already stored fails the batch, as the
        INSERT it replaces did)."""
        if not rows:
            return
        assert isinstance(conn, PgConnection)
        with conn.raw.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints on its own."""

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all.values():
                conn.raw.close()
            self._all.clear()
        self._local = threading.local()


def apply_pg_migrations(
    raw: psycopg.Connection[Any], migrations: Sequence[Migration] = PG_MIGRATIONS
) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction.

    Replicas starting together queue on an advisory lock: one migrates, the others then
    find every step recorded and apply nothing.
    """
    raw.execute(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
    try:
        raw.execute(
            "CREATE TABLE IF NOT EXISTS _migrations "
            '(name TEXT COLLATE "C" PRIMARY KEY, applied_at TEXT NOT NULL)'
        )
        done = {row[0] for row in raw.execute("SELECT name FROM _migrations")}
        applied = []
        for migration in migrations:
            if migration.name in done:
                continue
            with raw.transaction():
                raw.execute(migration.sql)
                raw.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (%s, %s)",
                    (migration.name, datetime.now(UTC).isoformat()),
                )
            log.info("applied migration %s", migration.name)
            applied.append(migration.name)
        return applied
    finally:
        raw.execute(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
