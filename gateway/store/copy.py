"""Copy a SQLite store into an empty PostgreSQL database (issue #16: the way from SQLite to
PostgreSQL), so a district that outgrows SQLite keeps its history: events, passages,
alarms, the audit log, the stock ledger, tokens.

Why it is done this way:
- both stores are opened as the gateway opens them (`SqliteStore`, `PostgresStore`), so
  both are migrated to the newest schema first and their tables are the same, column for
  column (gateway/store/schema_pg.py); a difference is refused, never guessed at;
- no merging: a target that holds any row (a non-zero counter for the seeded `counters`)
  is refused, naming the table, so two histories never mix;
- one PostgreSQL transaction for the whole copy, with the store's write lock held: a copy
  that fails half-way leaves the target as empty as it was, and no replica writes meanwhile;
- COPY (psycopg's `write_row`), fed from SQLite in chunks: memory stays bounded whatever
  the store's size. The SQLite side is read in one write-locked transaction, so the copy is
  one snapshot and a gateway still writing to the file is refused rather than half-copied;
- depot readings land in their month partitions (PostgreSQL's depot_readings is
  partitioned by month, migration 0024): each month they fall in is made before the COPY;
- ids are kept (stock entries name each other, applications their decisions), and each
  identity sequence moved past the highest id ever given (SQLite's AUTOINCREMENT counter
  included), so a new row never takes an old row's number;
- verified before the commit (row counts per table) and after it (the event chain audit
  gives the same verdicts on both stores).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from edge.errors import GatepostError
from gateway.store.depot_months import make_depot_month
from gateway.store.postgres import WRITE_LOCK, PgConnection, PostgresStore, connect
from gateway.store.sqlite import SqliteStore

CHUNK_ROWS = 5_000  # rows fetched from SQLite at a time: bounds the copy's memory
# Tables the migrations fill: an empty store has these rows, at these values, already.
SEEDED = {"counters": "value != 0"}
INTERNAL = {"_migrations"}  # each store's own migration history, not the district's data


class CopyError(GatepostError):
    """The copy was refused or did not verify; the message says which table and why."""


@dataclass(frozen=True)
class TableCopy:
    """One table copied: how many rows, in how long."""

    name: str
    rows: int
    seconds: float


@dataclass
class CopyReport:
    """What `copy_store` did: the tables in the order copied, and the chain audits compared."""

    tables: list[TableCopy] = field(default_factory=list)
    seconds: float = 0.0
    lives_audited: int = 0  # outbox lives whose chain verdicts matched on both stores

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)

    def lines(self) -> list[str]:
        """The report as printed by `gatepost gateway store-copy`."""
        width = max((len(table.name) for table in self.tables), default=5)
        out = [f"{t.name:<{width}}  {t.rows:>10} rows  {t.seconds:8.2f} s" for t in self.tables]
        out.append(
            f"copied {self.rows} rows in {len(self.tables)} tables in {self.seconds:.2f} s; "
            f"row counts match; chain audit: same verdicts for {self.lives_audited} "
            "outbox lives"
        )
        return out


def copy_store(sqlite_path: Path, pg_url: str) -> CopyReport:
    """Copy the SQLite store at `sqlite_path` into the PostgreSQL database at `pg_url`.

    The gateway must be stopped (its writes after the copy would be missing from the
    target). Raises CopyError when the file is missing or being written, the target is
    not empty, the schemas differ, a row is refused, or the copy does not verify; the
    target is left unchanged in all of those cases but a differing chain audit, which is
    found only after the commit (the message says so).
    """
    sqlite_path = Path(sqlite_path)
    if not sqlite_path.is_file():  # opening would make a new, empty store
        raise CopyError(f"{sqlite_path}: no gateway store there")
    started = time.monotonic()
    try:
        source = SqliteStore(sqlite_path, busy_timeout_s=2.0)
    except sqlite3.OperationalError as error:  # locked while migrating, or not a database
        raise CopyError(f"{sqlite_path}: {error}") from error
    target = PostgresStore(pg_url)  # creates the schema in an unmigrated database
    try:
        report = _copy(source, pg_url)
        report.lives_audited = _same_audits(source, target)
    finally:
        target.close()
        source.close()
    report.seconds = time.monotonic() - started
    return report


def _copy(source: SqliteStore, pg_url: str) -> CopyReport:
    lite = source._conn()
    try:
        # The write lock: the snapshot read is the whole store, and no writer is mid-way.
        lite.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        raise CopyError(
            f"{source.path}: {error}: a gateway is still writing to it; stop it first"
        ) from error
    try:
        with connect(pg_url, application_name="gatepost-store-copy") as raw:
            return _copy_in_one_transaction(lite, raw)
    finally:
        lite.execute("ROLLBACK")  # only read


def _copy_in_one_transaction(lite: sqlite3.Connection, raw: psycopg.Connection[Any]) -> CopyReport:
    report = CopyReport()
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        tables = _tables_in_order(lite, raw)
        _refuse_unless_empty(raw, tables)
        _make_depot_months(lite, raw)
        for table, columns in tables.items():
            began = time.monotonic()
            rows = _copy_table(lite, raw, table, columns)
            report.tables.append(TableCopy(table, rows, time.monotonic() - began))
        _advance_identities(lite, raw)
        _check_counts(lite, raw, report.tables)
    return report


def _tables_in_order(
    lite: sqlite3.Connection, raw: psycopg.Connection[Any]
) -> dict[str, list[str]]:
    """Every table to copy with its columns (the target's order), referenced tables first."""
    theirs = {
        name
        for (name,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_") and name not in INTERNAL
    }
    ours = {
        name
        for (name,) in raw.execute(  # tables, partitioned ones too, not their partitions
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
            "AND relkind IN ('r', 'p') AND NOT relispartition"
        )
        if name not in INTERNAL
    }
    if theirs != ours:
        raise CopyError(
            "the two schemas differ: only in SQLite: "
            f"{', '.join(sorted(theirs - ours)) or '-'}; only in PostgreSQL: "
            f"{', '.join(sorted(ours - theirs)) or '-'} (is one gateway newer than the other?)"
        )
    references: dict[str, set[str]] = {name: set() for name in ours}
    for child, parent in raw.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
    ):
        if child != parent:  # a table naming its own rows: checked at the end of its COPY
            references[child].add(parent)
    ordered: dict[str, list[str]] = {}
    while len(ordered) < len(references):
        ready = sorted(
            t for t, parents in references.items() if t not in ordered and parents <= set(ordered)
        )
        if not ready:
            raise CopyError("the foreign keys between the tables form a cycle")
        for table in ready:
            ordered[table] = _columns(lite, raw, table)
    return ordered


def _columns(lite: sqlite3.Connection, raw: psycopg.Connection[Any], table: str) -> list[str]:
    ours = [
        name
        for (name,) in raw.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]
    theirs = {row[1] for row in lite.execute(f'PRAGMA table_info("{table}")')}
    if set(ours) != theirs:
        raise CopyError(
            f"table {table}: the columns differ: only in SQLite: "
            f"{', '.join(sorted(theirs - set(ours))) or '-'}; only in PostgreSQL: "
            f"{', '.join(sorted(set(ours) - theirs)) or '-'}"
        )
    return ours


def _refuse_unless_empty(raw: psycopg.Connection[Any], tables: dict[str, list[str]]) -> None:
    """No merging: any row already there (beyond the migrations' seed) refuses the copy."""
    for table in tables:
        where = sql.SQL(SEEDED.get(table, "TRUE"))  # our constant, never input
        query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), where)
        row = raw.execute(query).fetchone()
        if row and row[0]:
            raise CopyError(
                f"the target database is not empty: table {table} holds {row[0]} row(s); "
                "copy into a new, empty database (no merging)"
            )
    for table in SEEDED:
        raw.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))


def _make_depot_months(lite: sqlite3.Connection, raw: psycopg.Connection[Any]) -> None:
    """The month partitions of the readings to copy: made first, the readings land in them
    (not all in DEFAULT, where retention could only delete them row by row)."""
    months = lite.execute(
        "SELECT DISTINCT substr(at, 1, 7) FROM depot_readings "
        "WHERE at GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-*'"
    )
    for (month,) in months.fetchall():
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError:  # not a month: such a reading waits in DEFAULT
            continue
        make_depot_month(PgConnection(raw), first)


def _copy_table(
    lite: sqlite3.Connection, raw: psycopg.Connection[Any], table: str, columns: list[str]
) -> int:
    names = ", ".join(f'"{name}"' for name in columns)
    copied = 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    try:
        with raw.cursor().copy(statement) as copy:
            for chunk in _chunks(lite.execute(f'SELECT {names} FROM "{table}"')):  # noqa: S608
                for row in chunk:
                    copy.write_row(row)
                copied += len(chunk)
    except psycopg.Error as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CopyError(
            f"table {table}: the target refused a row: {detail}; nothing was copied"
        ) from error
    return copied


def _chunks(cursor: sqlite3.Cursor) -> Iterator[list[Any]]:
    while chunk := cursor.fetchmany(CHUNK_ROWS):
        yield chunk


def _advance_identities(lite: sqlite3.Connection, raw: psycopg.Connection[Any]) -> None:
    """Each identity sequence past the highest id SQLite ever gave (AUTOINCREMENT remembers
    deleted ones in sqlite_sequence): a new row never takes an old row's number."""
    given: dict[str, int] = {}
    if lite.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        given = dict(lite.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    for table, column in raw.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall():
        row = raw.execute(
            sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table))
        ).fetchone()
        highest = max((row[0] if row else None) or 0, given.get(table) or 0)
        if highest:
            raw.execute(
                "SELECT setval(pg_get_serial_sequence(%s, %s), %s)",
                (table, column, highest),
            )


def _check_counts(
    lite: sqlite3.Connection, raw: psycopg.Connection[Any], tables: list[TableCopy]
) -> None:
    for table in tables:
        (theirs,) = lite.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()  # noqa: S608
        row = raw.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))
        ).fetchone()
        ours = row[0] if row else 0
        if not theirs == ours == table.rows:
            raise CopyError(
                f"table {table.name}: {theirs} rows in SQLite, {ours} in PostgreSQL after "
                f"copying {table.rows}; nothing was copied"
            )


def _same_audits(source: SqliteStore, target: PostgresStore) -> int:
    """The event chain audit's verdicts, compared life by life (after the commit: the audit
    reads through the store's own connection)."""
    before, after = source.audit_chain(), target.audit_chain()
    if before != after:
        differing = [
            f"{a.summary() if a else '-'} / {b.summary() if b else '-'}"
            for a, b in _pairs(before, after)
            if a != b
        ]
        raise CopyError(
            "the chain audit differs between SQLite and PostgreSQL (the copy is committed: "
            f"drop the target database before trying again): {'; '.join(differing[:5])}"
        )
    return len(after)


def _pairs(before: list[Any], after: list[Any]) -> Iterator[tuple[Any, Any]]:
    for index in range(max(len(before), len(after))):
        yield (
            before[index] if index < len(before) else None,
            after[index] if index < len(after) else None,
        )
