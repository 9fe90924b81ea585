"""Server-sent events of ConsoleUpdate: one on connect, one after every change, keep-alives."""

# Wire format (text/event-stream), one frame per blank-line-terminated block:
#   retry: 3000                      once, first: how long EventSource waits to reconnect
#   id: <version>\ndata: <json>      a ConsoleUpdate, on connect and after every change
#   : keep-alive                     a comment when nothing was sent for `keepalive_s`

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator

from anyio import to_thread

from edge.gate.views import Checkpoint, ConsoleUpdate

log = logging.getLogger(__name__)

RETRY_MS = 3000
KEEPALIVE = b": keep-alive\n\n"


def update_frame(update: ConsoleUpdate, version: int) -> bytes:
    """One SSE frame carrying `update`; model JSON has no raw newlines, so one data line."""
    return b"id: %d\ndata: %s\n\n" % (version, update.model_dump_json().encode())


class UpdateStream:
    """Turns the checkpoint's blocking wait_for_change into SSE streams, and ends them all.

    The wait runs in a worker thread with a short timeout, so the event loop is never
    blocked and every stream notices `close()` (server shutdown) within `poll_s`.
    uvicorn does not tell a streaming response that the server is stopping: without
    `close()` a graceful shutdown would wait for every open console to go away.
    """

    def __init__(
        self, checkpoint: Checkpoint, *, keepalive_s: float = 15.0, poll_s: float = 0.5
    ) -> None:
        self._checkpoint = checkpoint
        self._keepalive_s = keepalive_s
        self._poll_s = min(poll_s, keepalive_s)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._open = 0

    @property
    def closing(self) -> bool:
        """True between close() and reopen(): streams end and new ones end at once."""
        return self._closing.is_set()

    @property
    def open_streams(self) -> int:
        """How many consoles are connected right now."""
        with self._lock:
            return self._open

    def close(self) -> None:
        """End every open stream within `poll_s` (called from any thread)."""
        self._closing.set()

    def reopen(self) -> None:
        """Accept streams again, after a server restart."""
        self._closing.clear()

    async def frames(self) -> AsyncIterator[bytes]:
        """The frames of one console's stream, until close() or the client goes away.

        A client disconnect cancels this generator from outside (Starlette's streaming
        response listens for it); the cancellation lands when the current wait returns.
        """
        with self._lock:
            self._open += 1
        try:
            yield b"retry: %d\n\n" % RETRY_MS
            # The version is read before the state, so a change in between is sent again
            # rather than lost.
            version = await self._wait(-1, 0.0)
            yield update_frame(await to_thread.run_sync(self._checkpoint.update), version)
            last_sent = time.monotonic()
            while not self.closing:
                newer = await self._wait(version, self._poll_s)
                if self.closing:
                    break
                if newer > version:
                    version = newer
                    yield update_frame(await to_thread.run_sync(self._checkpoint.update), version)
                    last_sent = time.monotonic()
                elif time.monotonic() - last_sent >= self._keepalive_s:
                    yield KEEPALIVE
                    last_sent = time.monotonic()
        finally:
            with self._lock:
                self._open -= 1

    async def _wait(self, after: int, timeout_s: float) -> int:
        return await to_thread.run_sync(self._checkpoint.wait_for_change, after, timeout_s)
