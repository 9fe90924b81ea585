"""Removes a folder once the process that made it is gone, however it went (even SIGKILL).

`python -m simulators.sweeper FOLDER` reads process ids from stdin, one a line, until
end of file: the writer's death closes the pipe. It then waits for those processes to end
(they die with their parent, see simulators/processes.py), kills any still there after
`GRACE_S`, and deletes FOLDER. The demo starts one first thing, so its folder, with the
site's private keys, never outlives it. Only the standard library: it starts in ~20 ms.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 20.0


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its parent's wait() does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[-1][:1] != "Z"


def sweep(folder: Path, pids: list[int], grace_s: float = GRACE_S) -> None:
    """Wait for `pids` to end (SIGKILL them after `grace_s`), then delete `folder`."""
    deadline = time.monotonic() + grace_s
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


def start(folder: Path) -> subprocess.Popen[bytes]:
    """A sweeper for `folder`: write each child's pid to its stdin (see `watch`).

    Its own session, so a Ctrl-C at the terminal does not reach it, and not bound to die
    with this process: outliving it is its job.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "simulators.sweeper", str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def watch(sweeper: subprocess.Popen[bytes], pid: int) -> None:
    """Tell `sweeper` to wait for `pid` before it deletes the folder."""
    assert sweeper.stdin is not None
    sweeper.stdin.write(b"%d\n" % pid)
    sweeper.stdin.flush()


def main() -> None:
    folder = Path(sys.argv[1])
    # Ignore the signals a terminal or a process group sends: the folder must go.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    pids = [int(line) for line in sys.stdin.buffer if line.strip().isdigit()]
    sweep(folder, pids)


if __name__ == "__main__":
    main()
