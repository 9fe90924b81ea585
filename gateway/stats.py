"""IngestStats: what ingest has done so far, for /metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class IngestStats:
    """Counters since the gateway started; written by ingest, read by anyone."""

    received: int = 0  # messages taken from the broker
    stored: int = 0  # events stored for the first time
    duplicates: int = 0  # redelivered events, already stored
    dead_letters: int = 0  # messages refused into the dead-letter table
    batches: int = 0
    lag_s: float = 0.0  # newest batch: oldest message's wait from receipt to commit
    queue_depth: int = 0  # messages received and not yet stored
    connected: bool = False
    store_retries: int = 0  # batches tried again because the store was unavailable
    writer_faults: int = 0  # ingest stopped by an error it does not retry (1 ends the run)
    fault: str = ""  # that error, for /metrics and the log; "" while ingest is healthy
    # Whether this replica runs the clock's work now (gateway.leader; SQLite: always), read
    # when /metrics is scraped: a tick stuck on a cut database must not hold an old value.
    leads: Callable[[], bool] = field(default=lambda: True, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def batch_done(
        self, *, received: int, stored: int, duplicates: int, dead: int, lag_s: float
    ) -> None:
        with self._lock:
            self.received += received
            self.stored += stored
            self.duplicates += duplicates
            self.dead_letters += dead
            self.batches += 1
            self.lag_s = lag_s

    @property
    def healthy(self) -> bool:
        """False once ingest has stopped on a fault: nothing more is stored until a restart."""
        return not self.writer_faults

    def retried(self) -> None:
        with self._lock:
            self.store_retries += 1

    def failed(self, fault: str) -> None:
        with self._lock:
            self.writer_faults += 1
            self.fault = fault
