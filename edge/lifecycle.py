"""Process lifecycle shared by every long-running command: one stop event, set by signals."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_on_signals(*signums: signal.Signals) -> threading.Event:
    """An event set on SIGINT or SIGTERM (or `signums`), so loops stop cleanly and in order."""
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in signums or (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
    return stop
