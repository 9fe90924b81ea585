"""Server-sent events of a live view: one frame on connect, one after every change, keep-alives."""

# Wire format (text/event-stream), one frame per blank-line-terminated block:
#   retry: 3000                      once, first: how long EventSource waits to reconnect
#   id: <version>\ndata: <json>      the view as JSON, on connect and after every change
#   : keep-alive                     a comment when nothing was sent for `keepalive_s`
#
# Open streams are limited per client address and in total (StreamLimits): each waiting
# stream holds a worker thread of anyio's pool (40), which plain requests need too.
# A stream opened with a `still_allowed` check (the gateway's: its token is not revoked)
# asks it every `recheck_s` and ends with a `: access ended` comment once it says no.
#
# Used by the volunteer console (a ConsoleUpdate of the Checkpoint) and by the gateway's
# dashboard (a snapshot of the store after every LiveFeed change).

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import anyio
from anyio import to_thread
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from edge.web.security import StreamLimits

log = logging.getLogger(__name__)

RETRY_MS = 3000
KEEPALIVE = b": keep-alive\n\n"
ACCESS_ENDED = b": access ended\n\n"
_APP_STREAMS = "update_streams"  # the app.state attribute servers look for


class EventStreamResponse(StreamingResponse):
    """A text/event-stream response that gives its stream's slot back when it ends.

    Released in __call__, not in the frames' generator: a client gone before the first
    frame never starts the generator, and its slot must come back all the same.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        release: Callable[[], None] | None = None,
        status_code: int = 200,  # FastAPI reads the route's status from this signature
    ) -> None:
        # Proxies and browsers must neither cache nor buffer a live stream.
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, status_code, headers)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._release is not None:
                self._release()


class LiveView(Protocol):
    """Something that can show itself now and wait for its next change, from any thread."""

    def update(self) -> BaseModel:
        """The view as it is now."""
        ...

    def wait_for_change(self, after: int, timeout_s: float) -> int:
        """Block until the version exceeds `after` or the timeout passes; the version."""
        ...


def update_frame(update: BaseModel, version: int) -> bytes:
    """One SSE frame carrying `update`; model JSON has no raw newlines, so one data line."""
    return b"id: %d\ndata: %s\n\n" % (version, update.model_dump_json().encode())


class UpdateStream:
    """Turns a view's blocking wait_for_change into SSE streams, and ends them all.

    The wait runs in a worker thread with a short timeout, so the event loop is never
    blocked and every stream notices `close()` (server shutdown) within `poll_s`.
    uvicorn does not tell a streaming response that the server is stopping: without
    `close()` a graceful shutdown would wait for every open page to go away.

    Args:
        view: what the frames show.
        keepalive_s: silence after which a comment is sent, so proxies keep the connection.
        poll_s: how often a waiting stream checks for close().
        min_interval_s: frames of one stream are at least this far apart; changes that
            come faster are folded into one frame (a burst of ingest must not flood a
            browser). 0 sends a frame for every change.
        limits: how many streams `response` opens per client address and in total.
        recheck_s: how often a stream opened with `still_allowed` asks it again.
    """

    def __init__(
        self,
        view: LiveView,
        *,
        keepalive_s: float = 15.0,
        poll_s: float = 0.5,
        min_interval_s: float = 0.0,
        limits: StreamLimits | None = None,
        recheck_s: float = 2.0,
    ) -> None:
        self._view = view
        self._keepalive_s = keepalive_s
        self._poll_s = min(poll_s, keepalive_s)
        self._min_interval_s = min_interval_s
        self._recheck_s = recheck_s
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._limits = limits or StreamLimits()
        self._open: dict[str, int] = {}

    @property
    def closing(self) -> bool:
        """True between close() and reopen(): streams end and new ones end at once."""
        return self._closing.is_set()

    @property
    def open_streams(self) -> int:
        """How many pages are connected right now."""
        with self._lock:
            return sum(self._open.values())

    def close(self) -> None:
        """End every open stream within `poll_s` (called from any thread)."""
        self._closing.set()

    def reopen(self) -> None:
        """Accept streams again, after a server restart."""
        self._closing.clear()

    def response(
        self, client: str, still_allowed: Callable[[], bool] | None = None
    ) -> EventStreamResponse:
        """The stream for one page at `client` (its address), if a slot is free.

        Args:
            client: the page's address, for the per-client limit.
            still_allowed: asked from a worker thread every `recheck_s`; the stream ends
                once it answers False (its token was revoked). None: never asked.

        Raises:
            HTTPException: 429, that client or all clients together have as many
                streams open as the limits allow.
        """
        per_client, total = self._limits.per_client, self._limits.total
        with self._lock:
            if self._open.get(client, 0) >= per_client:
                refusal = f"{client} has {per_client} event streams open, the most one client may"
            elif sum(self._open.values()) >= total:
                refusal = f"{total} event streams are open, the most this server keeps"
            else:
                self._open[client] = self._open.get(client, 0) + 1
                frames = self.frames(still_allowed)
                return EventStreamResponse(frames, release=lambda: self._release(client))
        log.info("event stream refused: %s", refusal)
        raise HTTPException(429, f"{refusal}; close a page or try again later")

    def _release(self, client: str) -> None:
        with self._lock:
            left = self._open.pop(client, 0) - 1
            if left > 0:
                self._open[client] = left

    async def frames(self, still_allowed: Callable[[], bool] | None = None) -> AsyncIterator[bytes]:
        """The frames of one page's stream, until close(), the client goes away or
        `still_allowed` answers False.

        A client disconnect cancels this generator from outside (Starlette's streaming
        response listens for it); the cancellation lands when the current wait returns.
        """
        yield b"retry: %d\n\n" % RETRY_MS
        version = -1
        last_frame = last_sent = 0.0
        checked = time.monotonic()
        while not self.closing:
            newer = await self._next_version(version, last_frame)
            if self.closing:
                break
            if still_allowed is not None and time.monotonic() - checked >= self._recheck_s:
                if not await to_thread.run_sync(still_allowed):
                    log.info("event stream ended: its access was withdrawn")
                    yield ACCESS_ENDED
                    break
                checked = time.monotonic()
            if newer > version:
                # The version is read before the view, so a change in between is sent
                # again rather than lost.
                version = newer
                update = await to_thread.run_sync(self._view.update)
                yield update_frame(update, version)
                last_frame = last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= self._keepalive_s:
                yield KEEPALIVE
                last_sent = time.monotonic()

    async def _next_version(self, version: int, last_frame: float) -> int:
        """A version above `version` once the view changes, or `version` after `poll_s`.

        A change within `min_interval_s` of the last frame waits out the rest of it, and
        the changes made meanwhile fold into the same frame.
        """
        newer = await self._wait(version, 0.0 if version < 0 else self._poll_s)
        if newer <= version:
            return version
        hold_back = last_frame + self._min_interval_s - time.monotonic()
        if hold_back > 0:
            await anyio.sleep(hold_back)
            newer = await self._wait(newer, 0.0)
        return newer

    async def _wait(self, after: int, timeout_s: float) -> int:
        return await to_thread.run_sync(self._view.wait_for_change, after, timeout_s)


def attach_stream(app: FastAPI, stream: UpdateStream) -> UpdateStream:
    """Register `stream` with `app`, so the server serving it ends the stream on stop."""
    streams: list[UpdateStream] = getattr(app.state, _APP_STREAMS, [])
    setattr(app.state, _APP_STREAMS, [*streams, stream])
    return stream


def attached_streams(app: FastAPI) -> tuple[UpdateStream, ...]:
    """The streams registered with `app` (none for an app without event streams)."""
    return tuple(getattr(app.state, _APP_STREAMS, ()))
