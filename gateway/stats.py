"""IngestStats: what ingest has done so far, for /metrics."""

from __future__ import annotations

import threading
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
    queue_depth: int = 0  # reads (of up to 256 KiB) received and waiting to be stored
    connected: bool = False
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
