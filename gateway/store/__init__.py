"""The gateway's store: the Store interface, its records, and the SQLite backend."""

from gateway.store.base import Store, UnknownAlarm
from gateway.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "UnknownAlarm"]
