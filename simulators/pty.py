"""Pseudo-terminal pairs: a simulated device holds one side, the node opens the other."""

from __future__ import annotations

import contextlib
import os
import select
import tty
from types import TracebackType


class PseudoTerminal:
    """A pty pair in raw mode.

    The simulated device reads and writes `self` (the master side); the driver opens
    `path` with `serial.serial_for_url(path, …)` exactly as it would `/dev/ttyUSB0`.
    We hold the slave side open too, so the pty survives the driver closing and
    reopening its port.
    """

    def __init__(self) -> None:
        self.master_fd, self._slave_fd = os.openpty()
        # Raw: no echo, no CR/NL translation, no flow-control bytes eaten.
        tty.setraw(self._slave_fd)
        self.path = os.ttyname(self._slave_fd)

    def write(self, data: bytes) -> None:
        """Send bytes to the driver, as the device would."""
        view = memoryview(data)
        while view:
            written = os.write(self.master_fd, view)
            view = view[written:]

    def read(self, size: int, timeout_s: float = 1.0) -> bytes:
        """Read up to `size` bytes the driver sent; b"" if none came within `timeout_s`."""
        ready, _, _ = select.select([self.master_fd], [], [], timeout_s)
        return os.read(self.master_fd, size) if ready else b""

    def read_exactly(self, size: int, timeout_s: float = 1.0) -> bytes:
        """Read `size` bytes, or fewer if `timeout_s` passes between two chunks."""
        data = b""
        while len(data) < size:
            chunk = self.read(size - len(data), timeout_s)
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        for fd in (self.master_fd, self._slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> PseudoTerminal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
