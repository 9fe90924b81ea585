"""ConsoleServer: the console app under uvicorn in a background thread of the node."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from edge.gate.console.stream import attached_streams
from edge.web.security import HostAllowList, SecurityHeaders, is_loopback
from edge.web.tls import ServerCertificate

log = logging.getLogger(__name__)

WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


class ConsoleServer:
    """Serves a FastAPI app on host:port until stop(); port 0 picks a free port.

    Made for the volunteer console; the gateway's API and dashboard run under it too.

    Only requests whose Host header names this machine's loopback names, `host` or one
    of `allowed_hosts` are answered (HostAllowList: no DNS rebinding).

    With `tls` it serves HTTPS only (TLS 1.2 at least) and sets `app.state.https` to
    True before serving (False without), so the app can mark its cookies Secure.
    `guard` wraps the app once more, inside the Host check (the console's device
    pairing, edge/gate/console/pairing.py).

    The node runs it beside its other threads: start() returns once connections are
    accepted and stop() ends open event streams first (every UpdateStream attached to the
    app with `attach_stream`), so a shutdown never waits for a tablet left open at the gate.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        allowed_hosts: tuple[str, ...] = (),
        tls: ServerCertificate | None = None,
        guard: Callable[[ASGIApp], ASGIApp] | None = None,
        grace_s: int = 3,
    ) -> None:
        self._app = app
        self._tls = tls
        self._guard = guard
        self._host = host
        self._allowed_hosts = allowed_hosts
        self._port = port
        self._grace_s = grace_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port in use (the one picked, when constructed with port 0 and started)."""
        return self._port

    @property
    def https(self) -> bool:
        """True when it serves HTTPS (constructed with a certificate)."""
        return self._tls is not None

    @property
    def url(self) -> str:
        """Where a browser on this machine reaches the console."""
        host = WILDCARDS.get(self._host, self._host)
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.https else 'http'}://{host}:{self._port}"

    @property
    def running(self) -> bool:
        """True from start() until stop() has finished."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind, serve in a daemon thread, and return once connections are accepted.

        Raises:
            GatepostError: the HTTPS certificate or key cannot be used (the file is named).
            OSError: the address is in use or cannot be bound.
            RuntimeError: already running, or uvicorn did not come up within `timeout_s`.
        """
        if self.running:
            raise RuntimeError("console server already running")
        # Loaded here, before binding: a wrong file stops the start with its name.
        context = self._tls.context() if self._tls is not None else None
        self._app.state.https = context is not None
        # Binding here, not in uvicorn, makes a busy port an OSError in the caller's
        # thread and tells us the picked port before the server thread starts.
        sock = self._bind()
        self._port = sock.getsockname()[1]
        for stream in attached_streams(self._app):
            stream.reopen()
        # Wrapped here, where the port is known: a Host must name the port listened on.
        # The headers again outermost: an app's 500 is answered outside its middleware.
        names = (self._host, *self._allowed_hosts)
        inner = self._guard(self._app) if self._guard is not None else self._app
        config = uvicorn.Config(
            SecurityHeaders(HostAllowList(inner, names, self._port)),
            ssl_context_factory=_given(context) if context is not None else None,
            loop="asyncio",
            ws="none",
            lifespan="auto",
            # The node's logging setup stays in charge; passages are events, not access logs.
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=self._grace_s,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="console-server", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"console server did not start on {self.url}")
            time.sleep(0.01)
        log.info("serving %s at %s", self._app.title, self.url)
        if not self.https and (self._host in WILDCARDS or not is_loopback(self._host)):
            log.warning(
                "%s listens on %s, not only on this machine, over plain HTTP: what it "
                "sends and receives crosses that network in clear; give it a certificate "
                "(tls_cert, tls_key; docs/security.md)",
                self._app.title,
                self._host or "*",
            )

    def stop(self, timeout_s: float = 5.0) -> None:
        """End event streams, let requests in progress finish, and join the thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        # Looked up again: an app may attach a stream on its first request, after start().
        for stream in attached_streams(self._app):
            stream.close()
        server.should_exit = True
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning("console server slow to stop; closing connections")
            server.force_exit = True
            thread.join(timeout_s)
        self._server = self._thread = None

    def _bind(self) -> socket.socket:
        family, kind, proto, _, address = socket.getaddrinfo(
            self._host or None, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            # A restarted node must not wait out TIME_WAIT of its previous console.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError:
            sock.close()
            raise
        return sock

    def __enter__(self) -> ConsoleServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


ContextFactory = Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]


def _given(context: ssl.SSLContext) -> ContextFactory:
    """uvicorn's context factory, answering the context already loaded and checked."""
    return lambda config, default: context
