"""The PostgreSQL baseline (gateway/store/schema_pg.py) against the SQLite schema it copies:
a fresh SqliteStore and a fresh PostgreSQL database must have the same tables and views,
columns, NOT NULLs, keys, unique indexes, foreign keys and seed rows, and refuse the same
changes to the ledger with the same words, so the shared query code finds what it expects
on either."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.store import SqliteStore
from gateway.store.migrations import MIGRATIONS
from gateway.store.schema_pg import PG_MIGRATIONS
from simulators.postgres import PrivatePostgres

# SQLite's declared types and what the baseline makes of them (information_schema names).
PG_TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision", "BLOB": "bytea"}
# Rowid keys that are not identities in PostgreSQL: the decision's key is its
# application's id, always given (schema_pg.py says why).
NOT_IDENTITY = {("stock_application_decisions", "application_id")}
# Partitioned tables (0024): PostgreSQL's key holds the partition key too (schema_pg.py).
PARTITION_KEYS = {"depot_readings": ("arrival", "at")}
AT = "2026-12-06T10:00:00.000000+00:00"
# One valid row for each table whose changes SQLite refuses by trigger, in an order the
# foreign keys accept (application 1 is the first application either database numbers).
SAMPLE_ROWS: dict[str, dict[str, Any]] = {
    "stock_entries": dict(
        kind="receipt", site="north", depot="d01", item="mask", lot="L1", designated_to="",
        steps=10, unit="box", who="keeper", at=AT, idem_key="k1", request_sha256="00",
    ),
    "stock_lots": dict(item="mask", lot="L1", expires_on="2027-06-30"),
    "stock_applications": dict(
        site="north", applicant_unit="ward 3", place_kind="hospital", urgency="urgent",
        medical=1, item="mask", steps=4, unit="box", note="", who="clerk", at=AT,
        idem_key="a1", request_sha256="00",
    ),
    "stock_application_decisions": dict(
        application_id=1, decision="approved", who="chief", at=AT, plan_sha256="ff"
    ),
    "stock_allocations": dict(
        application_id=1, site="north", depot="d01", item="mask", lot="L1",
        designated_to="", steps=4, unit="box",
    ),
    "stock_daily_reports": dict(
        site="north", depot="d01", day="2026-12-06", version=1, who="keeper", at=AT,
        deadline=AT, late=0, note="", figures="{}", idem_key="r1", request_sha256="00",
    ),
    "stock_prices": dict(
        site="north", item="mask", unit="box", price_fen=1250, observed_on="2026-12-06",
        market="east", who="clerk", at=AT, idem_key="p1", request_sha256="00",
    ),
}  # fmt: skip
# A value each CHECK of those tables refuses.
CHECKED = [
    ("stock_entries", "kind", "gift"), ("stock_entries", "steps", 0),
    ("stock_applications", "place_kind", "home"), ("stock_applications", "urgency", "soon"),
    ("stock_applications", "medical", 2), ("stock_applications", "steps", 0),
    ("stock_application_decisions", "decision", "maybe"), ("stock_allocations", "steps", -1),
    ("stock_daily_reports", "version", 0), ("stock_daily_reports", "late", 2),
    ("stock_prices", "price_fen", 0),
]  # fmt: skip


@pytest.fixture(scope="module")
def _pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(durable=False)
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def pg(_pg: PrivatePostgres) -> Iterator[psycopg.Connection[Any]]:
    """A fresh database with the baseline applied in one transaction, in autocommit after."""
    with psycopg.connect(_pg.create_database("schema_pg"), autocommit=True) as conn:
        for migration in PG_MIGRATIONS:
            with conn.transaction():
                conn.execute(migration.sql.encode())
        yield conn


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A fresh SqliteStore's file, opened as the store opens it (foreign keys on)."""
    path = Path(tmp_path_factory.mktemp("schema")) / "g.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    yield conn
    conn.close()


def lite_tables(lite: sqlite3.Connection, kind: str = "table") -> list[str]:
    """SQLite's own tables and views (not its internals, not the migrator's bookkeeping)."""
    return [
        name
        for (name,) in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite%' "
            "AND name != '_migrations' ORDER BY name",
            (kind,),
        )
    ]


def pg_rows(pg: psycopg.Connection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return pg.execute(query, params).fetchall()


def normal_sql(text: str) -> str:
    """An index predicate or expression as both databases mean it: PostgreSQL's casts,
    parentheses, `<>` and COALESCE are SQLite's bare literals, `!=` and IFNULL."""
    text = text.lower().replace("::text", "").replace("<>", "!=").replace("coalesce", "ifnull")
    return re.sub(r"[\s()\"]", "", text)


def lite_key_columns(lite: sqlite3.Connection, index: str, sql: str | None) -> tuple[str, ...]:
    """An index's key columns; an expression (no column name) as written in its SQL."""
    columns = [row[2] for row in lite.execute(f"PRAGMA index_info('{index}')")]
    if None not in columns:
        return tuple(columns)
    assert sql is not None, index
    body = sql[sql.index("(", sql.upper().index(" ON ")) + 1 :]
    parts, depth, current = [], 0, ""
    for char in body:
        if char == ")" and depth == 0:
            break
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return tuple(normal_sql(part) for part in parts)


def test_the_baseline_is_the_sqlite_schema_s_newest_step() -> None:
    # A SQLite migration after the baseline needs its PostgreSQL twin, under its name.
    pg_names = [migration.name for migration in PG_MIGRATIONS]
    assert pg_names[0] == "0022-postgresql-baseline"
    lite_after = [m.name for m in MIGRATIONS if m.name > "0022-~"]
    assert pg_names[1:] == lite_after


def test_every_table_and_view_exists_with_the_same_columns(
    lite: sqlite3.Connection, pg: psycopg.Connection[Any]
) -> None:
    for kind, pg_kind in (("table", "BASE TABLE"), ("view", "VIEW")):
        in_pg = [
            name
            for (name,) in pg_rows(
                pg,
                "SELECT table_name FROM information_schema.tables t "
                "WHERE table_schema = 'public' AND table_type = %s AND NOT EXISTS (SELECT 1 "
                "FROM pg_inherits i WHERE i.inhrelid = t.table_name::regclass) "
                "ORDER BY table_name",
                pg_kind,
            )
        ]
        assert in_pg == lite_tables(lite, kind)
        for table in in_pg:
            lite_columns = [row[1] for row in lite.execute(f"PRAGMA table_info('{table}')")]
            pg_columns = [
                name
                for (name,) in pg_rows(
                    pg,
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "ORDER BY ordinal_position",
                    table,
                )
            ]
            assert pg_columns == lite_columns, table


def test_columns_keep_their_types_not_nulls_defaults_and_byte_order(
    lite: sqlite3.Connection, pg: psycopg.Connection[Any]
) -> None:
    for table in lite_tables(lite):
        pg_columns = {
            name: (kind, nullable == "NO", default, collation)
            for name, kind, nullable, default, collation in pg_rows(
                pg,
                "SELECT column_name, data_type, is_nullable, column_default, collation_name "
                "FROM information_schema.columns WHERE table_name = %s",
                table,
            )
        }
        for _, name, declared, notnull, default, pk in lite.execute(
            f"PRAGMA table_info('{table}')"
        ):
            kind, pg_notnull, pg_default, collation = pg_columns[name]
            where = f"{table}.{name}"
            assert kind == PG_TYPES[declared], where
            # A key is never NULL in PostgreSQL; SQLite's rowid tables do not say so.
            assert pg_notnull == bool(notnull or pk), where
            assert (pg_default or "").replace("::text", "") == (default or ""), where
            assert collation == ("C" if declared == "TEXT" else None), where


def test_primary_keys_and_identities_are_the_same(
    lite: sqlite3.Connection, pg: psycopg.Connection[Any]
) -> None:
    for table in lite_tables(lite):
        info = list(lite.execute(f"PRAGMA table_info('{table}')"))
        lite_key = tuple(row[1] for row in sorted(info, key=lambda row: row[5]) if row[5])
        pg_key = pg_rows(
            pg,
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            table,
        )
        assert tuple(name for (name,) in pg_key) == PARTITION_KEYS.get(table, lite_key), table
        (without_rowid,) = lite.execute(
            "SELECT sql LIKE '%WITHOUT ROWID' FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        rowid_alias = [
            row[1]
            for row in info
            if len(lite_key) == 1 and row[5] and row[2] == "INTEGER" and not without_rowid
        ]
        expected = {(table, name) for name in rowid_alias} - NOT_IDENTITY
        identities = pg_rows(
            pg,
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_name = %s AND is_identity = 'YES'",
            table,
        )
        assert set(identities) == expected, table


def test_unique_indexes_have_the_same_columns_and_conditions(
    lite: sqlite3.Connection, pg: psycopg.Connection[Any]
) -> None:
    for table in lite_tables(lite):
        lite_unique = set()
        for _, index, unique, origin, partial in lite.execute(f"PRAGMA index_list('{table}')"):
            if not unique or origin == "pk":
                continue
            (sql,) = lite.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (index,)
            ).fetchone()
            where = normal_sql(sql[sql.upper().rindex(" WHERE ") + 7 :]) if partial else None
            lite_unique.add((lite_key_columns(lite, index, sql), where))
        pg_unique = set()
        for oid, keys, predicate in pg_rows(
            pg,
            "SELECT indexrelid, indnkeyatts, pg_get_expr(indpred, indrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass AND indisunique AND NOT indisprimary",
            table,
        ):
            columns = tuple(
                normal_sql(column)
                for k in range(1, keys + 1)
                for (column,) in pg_rows(pg, "SELECT pg_get_indexdef(%s, %s, true)", oid, k)
            )
            pg_unique.add((columns, normal_sql(predicate) if predicate else None))
        assert pg_unique == lite_unique, table


def test_foreign_keys_are_the_same(lite: sqlite3.Connection, pg: psycopg.Connection[Any]) -> None:
    lite_keys = {
        (table, row[3], row[2], row[4])
        for table in lite_tables(lite)
        for row in lite.execute(f"PRAGMA foreign_key_list('{table}')")
    }
    pg_keys = pg_rows(
        pg,
        "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, r.attname "
        "FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = c.confkey[1] "
        "WHERE c.contype = 'f'",
    )
    assert set(pg_keys) == lite_keys


def test_seed_rows_are_the_same(lite: sqlite3.Connection, pg: psycopg.Connection[Any]) -> None:
    query = "SELECT name, value FROM counters ORDER BY name"
    assert pg_rows(pg, query) == list(lite.execute(query))


def insert(conn: Any, table: str, row: dict[str, Any], mark: str) -> None:
    marks = ", ".join([mark] * len(row))
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))


def test_the_same_changes_are_refused_with_the_same_words(
    lite: sqlite3.Connection, pg: psycopg.Connection[Any]
) -> None:
    triggers = list(
        lite.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
    )
    pg_triggers = pg_rows(
        pg,
        "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal",
    )
    assert set(pg_triggers) == {(name, table) for name, table, _ in triggers}
    for table in sorted({table for _, table, _ in triggers} - set(SAMPLE_ROWS)):
        pytest.fail(f"{table} refuses changes by trigger: give it a row in SAMPLE_ROWS")
    for table, row in SAMPLE_ROWS.items():
        insert(lite, table, row, "?")
        insert(pg, table, row, "%s")
    for name, table, sql in triggers:
        event = re.search(r"BEFORE (UPDATE|DELETE)", sql)
        message = re.search(r"RAISE\(ABORT, '([^']*)'\)", sql)
        assert event and message, name
        column = next(iter(SAMPLE_ROWS[table]))
        statement = (
            f"UPDATE {table} SET {column} = {column}"
            if event[1] == "UPDATE"
            else f"DELETE FROM {table}"
        )
        with pytest.raises(sqlite3.IntegrityError, match=re.escape(message[1])):
            lite.execute(statement)
        with pytest.raises(psycopg.errors.IntegrityError) as refused:
            pg.execute(statement)
        assert refused.value.sqlstate == "23000", name
        assert refused.value.diag.message_primary == message[1], name
    # The view that reads the ledger answers alike, its sum an integer as in SQLite.
    query = "SELECT * FROM stock_on_hand ORDER BY site, depot, item, lot"
    on_hand = list(lite.execute(query))
    assert pg_rows(pg, query) == on_hand
    assert [tuple(map(type, row)) for row in pg_rows(pg, query)] == [
        tuple(map(type, row)) for row in on_hand
    ]


def test_the_same_values_fail_their_checks(
    lite: sqlite3.Connection, pg: psycopg.Connection[Any]
) -> None:
    checks_in_lite = {
        table: sql.upper().count("CHECK (")
        for table, sql in lite.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    }
    checks_in_pg = dict(
        pg_rows(
            pg,
            "SELECT conrelid::regclass::text, count(*) FROM pg_constraint WHERE contype = 'c' "
            "AND conrelid != 0 GROUP BY conrelid",
        )
    )
    assert checks_in_pg == {table: n for table, n in checks_in_lite.items() if n}
    for table, row in [
        *((table, {**SAMPLE_ROWS[table], column: bad}) for table, column, bad in CHECKED),
        ("scale_discrepancies", dict(site="n", node="d", scale="s1", phase="off", last_at=AT)),
        ("supply_levels", dict(site="north", level="V", at=AT)),
    ]:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            insert(lite, table, row, "?")
        with pytest.raises(psycopg.errors.CheckViolation):
            insert(pg, table, row, "%s")


def test_one_live_alarm_per_condition_even_without_a_node(
    lite: sqlite3.Connection, pg: psycopg.Connection[Any]
) -> None:
    # alarms_live keys on COALESCE(node, ''): two open alarms of a site-wide condition
    # collide; once the first is cleared the condition may be raised again.
    def raise_alarm(conn: Any, mark: str, alarm_id: str, state: str = "open") -> None:
        row = dict(
            alarm_id=alarm_id, kind="supply", site="north", node=None, subject="level",
            severity="warning", state=state, message="tight", raised_at=AT,
        )  # fmt: skip
        insert(conn, "alarms", row, mark)

    for conn, mark, duplicate in (
        (lite, "?", sqlite3.IntegrityError),
        (pg, "%s", psycopg.errors.UniqueViolation),
    ):
        raise_alarm(conn, mark, "a1")
        with pytest.raises(duplicate):
            raise_alarm(conn, mark, "a2")
        raise_alarm(conn, mark, "a0", state="cleared")
        conn.execute(f"UPDATE alarms SET state = 'cleared' WHERE alarm_id = {mark}", ("a1",))
        raise_alarm(conn, mark, "a3")
