"""systemd's notify protocol: one datagram to $NOTIFY_SOCKET, nothing when it is unset."""

# Wire format (sd_notify(3)): newline-separated VAR=VALUE assignments in one datagram on a
# unix socket. A path starting with '@' names the abstract namespace (a NUL byte in its
# place). Without systemd (a bench, a test) the variable is unset and every call is a no-op.

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

ENV = "NOTIFY_SOCKET"


class Notifier:
    """Tells systemd how the service is: READY=1 once, WATCHDOG=1 while it is healthy.

    Args:
        address: the socket's path, '@name' for the abstract namespace; None reads
            $NOTIFY_SOCKET (and does nothing when it is unset).
    """

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get(ENV) if address is None else address
        self._address: str | bytes | None = None
        if address:
            self._address = b"\0" + address[1:].encode() if address.startswith("@") else address
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `assignments` (e.g. "READY=1") in one datagram; False if not sent.

        A failure is logged and swallowed: a node must keep running when the manager's
        socket is gone (systemd then restarts it for the missed watchdog, which is right).
        """
        if self._address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto("\n".join(assignments).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify %s to %r failed: %s", assignments, self._address, exc)
            return False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1", "STATUS=running")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
