"""What the store's queries need of a database connection, whichever engine is behind it.

The query code (`SqlStore` and its mixins: reads.py, alarms.py, stock.py …) is written
once, in the SQL that SQLite and PostgreSQL both speak, against `Connection`: sqlite3's
connection is one as it is; PostgreSQL's is `gateway.store.postgres.PgConnection`, which
takes the same `?` placeholders. Where the engines differ, the portable form is used:
- `INSERT ... ON CONFLICT DO NOTHING` (or `DO UPDATE`), never `INSERT OR IGNORE/REPLACE`;
- `COALESCE`, never `IFNULL`; `IS NOT DISTINCT FROM ?`, never `IS ?`;
- `RETURNING` for what a statement inserted, never `lastrowid` or `total_changes`;
- `SUM(CASE WHEN ... THEN 1 ELSE 0 END)`, never a sum over a comparison;
- `CAST(? AS TEXT)` where a parameter's type is not known from its place (`? IS NULL`);
- times are UTC ISO text with microseconds (`records.utc_text`), compared as text: both
  schemas sort text by its bytes (SQLite's BINARY, PostgreSQL's `COLLATE "C"`).
The PostgreSQL schema defines SQLite's two-argument `MAX(a, b)`, `MIN(a, b)` and
`json_group_array(x)` (gateway/store/schema_pg.py), so those read the same in both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import psycopg


class Cursor(Protocol):
    """What a statement gives back: rows (tuples) and how many it changed."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside the store's transaction (or reading outside one)."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...


# A constraint or a trigger refused a write (a unique name taken, an immutable row).
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)
