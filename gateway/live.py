"""LiveFeed: a version that grows with every change the dashboard shows, and a wait for it."""

from __future__ import annotations

import threading


class LiveFeed:
    """Ingest and the alarm book call changed(); event streams wait for a newer version."""

    def __init__(self) -> None:
        self._version = 0
        self._changed = threading.Condition()

    @property
    def version(self) -> int:
        with self._changed:
            return self._version

    def changed(self) -> None:
        """Something shown on the dashboard changed (call from any thread)."""
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def wait_for_change(self, after: int, timeout_s: float) -> int:
        """The version once it is above `after`, or the current one after `timeout_s`."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > after, timeout_s)
            return self._version
