"""Which replica runs the clock's work: the one holding PostgreSQL's leader lock.

Replicas on one PostgreSQL split ingest between them (the broker's `$share` group), but
time-based work (offline marking, cut-offs, summaries, escalation) must run once. The
database decides, not a process: the leader is whichever replica holds the session-level
advisory lock LEADER_LOCK on a connection of its own. A replica that dies (SIGKILL, a
crash, a lost host) loses its session and with it the lock, so another replica's next try
(every RETRY_S) takes over. A replica that cannot confirm its session for LEASE_S stops
leading at once, before the server (keepalives of a few seconds, set on the session)
drops it and lets another lead: two replicas never lead together.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg

from gateway.store.base import StoreUnavailable
from gateway.store.postgres import LEADER_LOCK, connect

log = logging.getLogger(__name__)

RETRY_S = 1.0  # how often a follower tries the lock and a leader confirms its session
LEASE_S = 3.0  # a leader unconfirmed this long steps down (the server drops it after ~11 s:
# `connect` sets the server's keepalives on every session, so a leader whose network is cut
# is dropped in 5 + 3 x 2 = 11 s and the lock does not stay with a session nobody can use)


class Leader(Protocol):
    """What the gateway asks: does this replica run the clock's work now?"""

    @property
    def leads(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class SoleLeader:
    """SQLite: one gateway per file, so it always leads."""

    leads = True

    def start(self) -> None:
        """Nothing to take."""

    def stop(self) -> None:
        """Nothing to give back."""


class Leadership:
    """Holds (or keeps trying for) the leader lock on a dedicated connection.

    Args:
        url: the store's PostgreSQL URL.
        name: this replica, for the log and `pg_stat_activity` (its broker client id).
        on_change: called with the new state whenever it changes (from the thread).
        retry_s: seconds between tries, and between a leader's confirmations.
        lease_s: a leader that has not confirmed its session this long does not lead.
    """

    def __init__(
        self, url: str, *, name: str = "gateway",
        on_change: Callable[[bool], object] | None = None,
        retry_s: float = RETRY_S, lease_s: float = LEASE_S,
    ) -> None:  # fmt: skip
        if lease_s <= retry_s:
            raise ValueError(f"lease_s ({lease_s}) must be longer than retry_s ({retry_s})")
        self.url = url
        self.name = name
        self._on_change = on_change
        self._retry_s = retry_s
        self._lease_s = lease_s
        self._conn: psycopg.Connection[Any] | None = None
        self._holding = False
        self._confirmed_at = float("-inf")  # monotonic time of the last confirmation
        self._unreachable = ""  # the last connect error logged, so it is logged once
        self._lapsed = False  # the watchdog ended a confirmation that outlasted the lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leads(self) -> bool:
        """True while this replica holds the lock and confirmed it within `lease_s`."""
        return self._holding and time.monotonic() - self._confirmed_at < self._lease_s

    def start(self) -> None:
        """Try for the lock now, then keep trying (or confirming) on a daemon thread."""
        self._stop.clear()
        self.step()
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop trying; a leader gives the lock back at once (its session ends)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._lease_s + 12)
            self._thread = None
        was, self._holding = self._holding, False
        self._close()
        if was:
            log.info("this replica (%s) no longer leads: stopping", self.name)
            self._changed(False)

    def _run(self) -> None:
        while not self._stop.wait(self._retry_s):
            self.step()

    def step(self) -> None:
        """One try: connect if needed, then take the lock or confirm it is still held."""
        try:
            conn = self._connected()
            if self._holding:
                self._confirm(conn)
                return
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
            if row is not None and row[0]:
                self._holding = True
                self._confirmed_at = time.monotonic()
                log.info(
                    "this replica leads (%s, PostgreSQL backend pid %d)",
                    self.name,
                    conn.info.backend_pid,
                )
                self._changed(True)
        except (psycopg.Error, StoreUnavailable) as error:
            self._lost(error)

    def _confirm(self, conn: psycopg.Connection[Any]) -> None:
        """`SELECT 1` on the lock's session, ended by a watchdog when the lease runs out.

        Without it a confirmation sent into a cut network blocks until the kernel gives
        up (tcp_user_timeout: 10 s; never, behind a middlebox that keeps acknowledging),
        and the replica, no longer leading since `lease_s`, would say so only then."""
        self._lapsed = False
        left_s = max(0.0, self._lease_s - (time.monotonic() - self._confirmed_at))
        watchdog = threading.Timer(left_s, self._sever, args=(conn,))
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.execute("SELECT 1")
        finally:
            watchdog.cancel()
        if self._lapsed:
            raise StoreUnavailable("the answer came after the lease ran out")
        self._confirmed_at = time.monotonic()

    def _sever(self, conn: psycopg.Connection[Any]) -> None:
        """The lease ran out mid-confirmation: shut the session's socket down here (a
        shutdown, not a close: the blocked call's descriptor stays valid), so the call
        fails now and the loss is logged."""
        self._lapsed = True
        with (
            contextlib.suppress(OSError, psycopg.Error),
            socket.socket(fileno=os.dup(conn.fileno())) as sock,
        ):
            sock.shutdown(socket.SHUT_RDWR)

    def _connected(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._close()
        self._conn = connect(self.url, application_name=f"gatepost-leader {self.name}"[:63])
        if self._unreachable:
            log.info("leadership: PostgreSQL reachable again (%s)", self.name)
            self._unreachable = ""
        return self._conn

    def _lost(self, error: BaseException) -> None:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if self._lapsed:
            reason = f"session not confirmed for {self._lease_s:.0f} s"
            self._lapsed = False
        was = self._holding
        self._holding = False
        self._close()
        if was:
            log.warning("leadership lost: %s (%s); trying again every %.0f s",
                        reason, self.name, self._retry_s)  # fmt: skip
            self._changed(False)
        elif reason != self._unreachable:
            log.warning("leadership: cannot try for the lock: %s (%s)", reason, self.name)
        self._unreachable = reason

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Already gone or not: the session (and the lock) ends with it.
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def _changed(self, leads: bool) -> None:
        if self._on_change is not None:
            self._on_change(leads)
