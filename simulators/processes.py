"""Child processes that end with their parent, so a demo or a test run leaves none behind."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGTERM to the child
    # when the thread that started it exits, even if the parent was SIGKILLed.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group, bound to die with this process.

    Its own group keeps a terminal's Ctrl-C from reaching it directly, so the parent
    decides the order in which things stop.
    """
    return subprocess.Popen(
        list(argv),
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        **kwargs,
    )


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args…` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def stop(process: subprocess.Popen[bytes], name: str, grace_s: float = 10.0) -> int:
    """Ask `process` to stop with SIGTERM; SIGKILL it after `grace_s`. Returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s (pid %d) ignored SIGTERM for %.0f s; killing it", name, process.pid, grace_s
            )
            process.kill()
            process.wait()
    return process.returncode


def wait_for_http(url: str, timeout_s: float = 30.0) -> bool:
    """True once `url` (a local http:// address) answers, False after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            # Our own children's http:// URLs, never a file: or other scheme.
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310
                return True
        except OSError:
            time.sleep(0.1)
    return False
