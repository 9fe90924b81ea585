"""Applies the gateway's schema (gateway/store/schema.py and schema_stock.py), each
migration once, in a transaction."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from datetime import UTC, datetime

from gateway.store.schema import GATEWAY_MIGRATIONS, Migration
from gateway.store.schema_stock import STOCK_MIGRATIONS

log = logging.getLogger(__name__)

# The schema's whole history in the order applied: numbered names (`0014-stock-ledger`)
# sort in the order they were released, whichever module holds them.
MIGRATIONS: tuple[Migration, ...] = tuple(
    sorted((*GATEWAY_MIGRATIONS, *STOCK_MIGRATIONS), key=lambda migration: migration.name)
)


def apply_migrations(
    conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction.

    A migration that fails is rolled back whole and stops the rest, so a database is
    always at a named step, never between two.

    Returns:
        Names of the migrations applied now, in order.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    conn.create_function("sha256_hex", 1, sha256_hex, deterministic=True)
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for migration in migrations:
        if migration.name in done:
            continue
        # executescript() would commit on its own; run each statement inside our BEGIN.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (migration.name, datetime.now(UTC).isoformat()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        log.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied


def sha256_hex(data: bytes | str | None) -> str | None:
    """SHA-256 of a payload as hex (SQL `sha256_hex()`, for migrations)."""
    if data is None:
        return None
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _statements(sql: str) -> list[str]:
    """The statements of a migration, each whole: SQLite says where one ends, so a
    trigger's body (`BEGIN …; END`) is one statement with the semicolons inside it."""
    text = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    statements, pending = [], ""
    for piece in text.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements
