"""ChangeListener: every replica's live feed moves when any replica stores something.

The LiveFeed is in-process: ingest and the alarm book of this process call
`changed()`. With replicas, another process stores half the stream, so each replica
LISTENs on PostgreSQL's channel that every write transaction NOTIFYs on commit
(gateway.store.postgres.CHANNEL) and moves its own feed for each notification. The
dashboard's event stream then re-reads the store, whoever wrote.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from gateway.live import LiveFeed
from gateway.store.base import StoreUnavailable
from gateway.store.postgres import CHANNEL, connect

log = logging.getLogger(__name__)

WAIT_S = 0.5  # how long one wait for notifications lasts (so a stop is seen soon)
RETRY_S = 1.0  # between tries to reconnect


class ChangeListener:
    """LISTENs on a dedicated connection and moves `live` for each notification.

    Notifications sent while the connection was down are lost, so after reconnecting
    it moves the feed once: whoever waits reads the store again and misses nothing.

    Args:
        url: the store's PostgreSQL URL.
        live: this replica's feed.
        name: this replica, for the log and `pg_stat_activity`.
    """

    def __init__(self, url: str, live: LiveFeed, *, name: str = "gateway") -> None:
        self.url = url
        self.live = live
        self.name = name
        self.notifications = 0  # received since the start (tests, the log)
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def start(self, wait_s: float = 5.0) -> None:
        """Start the thread; wait up to `wait_s` for the first LISTEN (not an error if not)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="change-listener", daemon=True)
        self._thread.start()
        if not self._listening.wait(wait_s):
            log.warning("live feed: not listening to other replicas yet (%s)", self.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(WAIT_S + 12)
            self._thread = None

    def _run(self) -> None:
        failed = ""
        first = True
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    if not first:
                        log.info("live feed: listening to other replicas again (%s)", self.name)
                        self.live.changed()  # what was stored meanwhile was not notified
                    first, failed = False, ""
                    self._listening.set()
                    self._listen(conn)
                    return  # stopped
            except (psycopg.Error, StoreUnavailable) as error:
                self._listening.clear()
                reason = str(error).strip().splitlines()[0] if str(error).strip() else "closed"
                if reason != failed:
                    log.warning("live feed: lost PostgreSQL (%s); reconnecting (%s)",
                                reason, self.name)  # fmt: skip
                failed = reason
                first = False
                self._stop.wait(RETRY_S)

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect(self.url, application_name=f"gatepost-listen {self.name}"[:63])
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            for _ in conn.notifies(timeout=WAIT_S):
                self.notifications += 1
                self.live.changed()  # cheap: waiting readers wake and re-read the store
