"""The SQLite store's own housekeeping: connections do not outlive their threads."""

from __future__ import annotations

import threading
from pathlib import Path

from gateway.store import SqliteStore


def test_store__connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    for _ in range(50):
        thread = threading.Thread(target=store.nodes)  # each opens its own connection
        thread.start()
        thread.join()
    store.nodes()
    assert len(store._all) <= 2  # this thread's, and at most the last worker's
    store.close()
