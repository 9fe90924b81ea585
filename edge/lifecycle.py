"""Process lifecycle shared by every long-running command: one stop event, set by signals."""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from types import FrameType


def stop_on_signals(*signums: signal.Signals) -> threading.Event:
    """An event set on SIGINT or SIGTERM (or `signums`), so loops stop cleanly and in order."""
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in signums or (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
    return stop


class ProcessUsage:
    """This process's resident memory and CPU share since the previous sample (for health)."""

    def __init__(self) -> None:
        self._sample = (time.monotonic(), _cpu_seconds())

    def rss_bytes(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def cpu_percent(self) -> float:
        """Percent of one core used since the last call."""
        now, cpu = time.monotonic(), _cpu_seconds()
        then, cpu_then = self._sample
        self._sample = (now, cpu)
        return round(100 * (cpu - cpu_then) / max(now - then, 1e-3), 2)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
