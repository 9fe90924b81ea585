"""Process lifecycle: a burst of stop signals stops a process, it never hangs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

WAITER = """
from edge.lifecycle import stop_on_signals
stop = stop_on_signals()
print("ready", flush=True)
while not stop.wait(3600):
    pass
print("stopped", flush=True)
"""


def test_stop_on_signals__a_burst_of_sigterm_stops_every_process() -> None:
    # Setting the event inside the handler deadlocked about one process in ten here:
    # a signal arriving while the main thread (or an earlier handler) held its lock.
    children = [
        subprocess.Popen([sys.executable, "-c", WAITER], stdout=subprocess.PIPE, text=True)
        for _ in range(20)
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        for _ in range(300):
            os.kill(child.pid, signal.SIGTERM)
    hung = []
    for child in children:
        try:
            output, _ = child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            hung.append(child.pid)
            child.kill()
            child.communicate()
            continue
        assert output.strip() == "stopped"
    assert hung == []
