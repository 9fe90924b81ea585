"""The gateway's store: the Store interface, its records, and the SQLite and PostgreSQL
backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.store.base import Store, StoreUnavailable, UnknownAlarm
from gateway.store.sql_store import SqlStore
from gateway.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from gateway.store.settings import StoreSection

__all__ = [
    "SqlStore", "SqliteStore", "Store", "StoreUnavailable", "UnknownAlarm", "open_store",
    "store_name",
]  # fmt: skip


def open_store(section: StoreSection) -> SqlStore:
    """The store the config names: PostgreSQL when `store.url` is set, else the SQLite file."""
    if section.url:
        from gateway.store.postgres import PostgresStore

        return PostgresStore(section.url)
    return SqliteStore(section.path)


def store_name(section: StoreSection) -> str:
    """The store for a log line: the SQLite file, or the PostgreSQL URL without a password."""
    if not section.url:
        return str(section.path)
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(section.url)
    where = f"{info.get('host', '')}:{info.get('port', 5432)}"
    return f"postgresql://{info.get('user', '')}@{where}/{info.get('dbname', '')}"
