"""Process lifecycle shared by every long-running command: one stop event, set by signals."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
import time
from types import FrameType


def stop_on_signals(*signums: signal.Signals) -> threading.Event:
    """An event set on SIGINT or SIGTERM (or `signums`), so loops stop cleanly and in order.

    The handler only writes a byte to a pipe; a small thread reads it and sets the event.
    Setting the event in the handler itself takes the event's lock, which the main thread
    may hold at that instant (inside `Event.wait`, or inside an earlier handler when
    signals come in a burst): the process then hangs forever instead of stopping.
    """
    stop = threading.Event()
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)

    def relay() -> None:
        os.read(read_end, 1)
        stop.set()

    threading.Thread(target=relay, name="signal-relay", daemon=True).start()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        # os.write is async-signal-safe and takes no lock; a full pipe already says stop.
        with contextlib.suppress(BlockingIOError):
            os.write(write_end, b"\0")

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
