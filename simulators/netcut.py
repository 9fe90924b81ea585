"""A TCP forwarder whose cable a test can pull: the network to PostgreSQL cut (#16).

`TcpProxy` listens on 127.0.0.1 and forwards each connection to a target. `cut()` is a
blackhole: nothing is forwarded either way and new connections are taken but go nowhere,
yet no socket is closed, so neither end hears a FIN or a reset; packets just vanish, as
with a pulled cable. `mend()` forwards again: connections that were cut stay dead, new ones
work, as after a real outage (TCP state on both ends has moved on).

What a userspace forwarder cannot do: stop its own kernel from acknowledging. On a real
pulled cable each end's kernel gives up by its own timers (the client's tcp_user_timeout
or keepalives, the server's keepalives); here the forwarder's kernel answers their probes,
so they would wait for ever. A test that wants those verdicts plays them by `cut()`'s
`client_gives_up_s` (the client's side is reset, as its ETIMEDOUT would end it) and
`server_gives_up_s` (the server's side is closed, so the server ends the session). Left
None, a cut connection is held open until `close()`: what a client behind a middlebox
that keeps answering would face.

Bounded: at most `max_connections` at once (more are refused by closing them), and at
most `buffer_bytes` waiting in each direction of each connection (reading stops until the
other side takes it). One thread, non-blocking sockets, a selector.
"""

from __future__ import annotations

import logging
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often the loop looks at cut timers and stop requests


@dataclass
class _Link:
    """One forwarded connection: the client's socket, the target's, what waits for each."""

    client: socket.socket
    server: socket.socket
    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    dead_since: float | None = None  # monotonic time it was cut; dead links never forward
    client_open: bool = True
    server_open: bool = True


class TcpProxy:
    """Forwards 127.0.0.1:`listen_port` to `target_host`:`target_port` until `close()`.

    Args:
        listen_port: the port clients connect to (0: a free one; see `port`).
        target_host, target_port: where connections are forwarded.
        max_connections: connections held at once, cut ones included.
        buffer_bytes: bytes waiting per direction per connection before reading pauses.
    """

    def __init__(
        self, listen_port: int, target_host: str, target_port: int, *,
        max_connections: int = 64, buffer_bytes: int = 256 * 1024,
    ) -> None:  # fmt: skip
        if max_connections < 1 or buffer_bytes < 1024:
            raise ValueError("max_connections must be >= 1 and buffer_bytes >= 1024")
        self.target = (target_host, target_port)
        self.max_connections = max_connections
        self.buffer_bytes = buffer_bytes
        self._listener = socket.create_server(("127.0.0.1", listen_port), backlog=16)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._cut = False
        self._client_gives_up_s: float | None = None
        self._server_gives_up_s: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"netcut:{self.port}", daemon=True)
        self._thread.start()

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def connections(self) -> int:
        """Connections held now (forwarding or cut)."""
        with self._lock:
            return len(self._links)

    def cut(
        self, *, client_gives_up_s: float | None = None, server_gives_up_s: float | None = None
    ) -> None:
        """Pull the cable: every connection dead, new ones taken and left hanging.

        Args:
            client_gives_up_s: after this long, reset each cut connection's client side
                (the client's own kernel timers would have ended it on a real cable).
            server_gives_up_s: after this long, close each cut connection's target side
                (the server's keepalives would have ended the session).
        """
        with self._lock:
            self._cut = True
            self._client_gives_up_s = client_gives_up_s
            self._server_gives_up_s = server_gives_up_s
            now = time.monotonic()
            for link in self._links:
                if link.dead_since is None:
                    link.dead_since = now
        log.info("netcut %d: cut", self.port)

    def mend(self) -> None:
        """Plug the cable back: new connections are forwarded; cut ones stay dead."""
        with self._lock:
            self._cut = False
        log.info("netcut %d: mended", self.port)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread and close every socket (cut ones too)."""
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            for link in self._links:
                self._close_client(link, reset=False)
                self._close_server(link)
            self._links.clear()
        self._listener.close()

    # --- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            while not self._stop.is_set():
                self._accept()
                with self._lock:
                    self._expire()
                    live = [link for link in self._links if link.dead_since is None]
                    self._register(selector, live)
                if selector.get_map():
                    events = selector.select(POLL_S)
                else:  # nothing to forward (none held, or all cut): just wait a little
                    events = []
                    time.sleep(POLL_S)
                with self._lock:
                    for key, mask in events:
                        self._serve(key.data, key.fileobj, mask)
                    self._links = [x for x in self._links if x.client_open or x.server_open]
        finally:
            selector.close()

    def _register(self, selector: selectors.BaseSelector, live: list[_Link]) -> None:
        for key in list(selector.get_map().values()):
            selector.unregister(key.fileobj)
        for link in live:
            for sock, waiting_in, waiting_out, is_open in (
                (link.client, link.to_server, link.to_client, link.client_open),
                (link.server, link.to_client, link.to_server, link.server_open),
            ):
                if not is_open:
                    continue
                mask = selectors.EVENT_WRITE if waiting_out else 0
                if len(waiting_in) < self.buffer_bytes:
                    mask |= selectors.EVENT_READ
                if mask:
                    selector.register(sock, mask, link)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, OSError):
                return
            with self._lock:
                if len(self._links) >= self.max_connections:
                    client.close()
                    log.warning("netcut %d: connection refused, %d held", self.port,
                                len(self._links))  # fmt: skip
                    continue
                cut = self._cut
            if cut:  # taken, then nothing: the client waits for an answer that never comes
                server = socket.socket()
                link = _Link(client, server, dead_since=time.monotonic(), server_open=False)
                server.close()
            else:
                try:
                    server = socket.create_connection(self.target, timeout=2)
                except OSError:
                    client.close()
                    continue
                server.setblocking(False)
                client.setblocking(False)
                link = _Link(client, server)
            with self._lock:
                self._links.append(link)

    def _serve(self, link: _Link, sock: object, mask: int) -> None:
        if link.dead_since is not None:
            return
        from_client = sock is link.client
        inbox = link.to_server if from_client else link.to_client
        outbox = link.to_client if from_client else link.to_server
        if mask & selectors.EVENT_WRITE and outbox:
            try:
                sent = link.client.send(outbox) if from_client else link.server.send(outbox)
                del outbox[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._end(link)
                return
        if mask & selectors.EVENT_READ:
            try:
                data = (link.client if from_client else link.server).recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # one side closed (not cut): close the other, as TCP would
                self._end(link)
                return
            inbox += data

    def _end(self, link: _Link) -> None:
        self._close_client(link, reset=False)
        self._close_server(link)

    def _expire(self) -> None:
        """Play each end's kernel timers on cut connections, if the test asked for them."""
        now = time.monotonic()
        for link in self._links:
            if link.dead_since is None:
                continue
            dead_s = now - link.dead_since
            if self._client_gives_up_s is not None and dead_s >= self._client_gives_up_s:
                self._close_client(link, reset=True)
            if self._server_gives_up_s is not None and dead_s >= self._server_gives_up_s:
                self._close_server(link)

    def _close_client(self, link: _Link, *, reset: bool) -> None:
        if not link.client_open:
            return
        link.client_open = False
        if reset:  # a reset, not an orderly close: the client's call fails at once
            link.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        link.client.close()

    def _close_server(self, link: _Link) -> None:
        if not link.server_open:
            return
        link.server_open = False
        link.server.close()
