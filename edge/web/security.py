"""What every Gatepost web app sends and checks: security headers, Host names, stream limits."""

# Both apps (the volunteer console and the gateway's API and dashboard) add
# SecurityHeaders; ConsoleServer, which serves both, puts HostAllowList in front and the
# headers once more around everything (Starlette answers a 500 outside the app's middleware).
# A page's inline <script> and <style> blocks are allowed by their SHA-256 hash
# (page_policy), never with 'unsafe-inline': the pages are rendered once from files
# in this tree, so an injected script has no hash in the policy.

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated

from pydantic import Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.configfile import Section

log = logging.getLogger(__name__)

CSP = "Content-Security-Policy"
NONE = "'none'"
# Everything that is not a page (JSON, CSV, event streams, errors) loads nothing.
DEFAULT_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
# A name or address as a Host header carries it, without the port.
HostName = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$")
]
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# Executable inline scripts and styles; a JSON data block (type=application/json) runs nothing.
_BLOCK = re.compile(r"<(script|style)([^>]*)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)


class StreamLimits(Section):
    """How many event streams stay open at once; one more is answered 429."""

    per_client: int = Field(4, ge=1, le=32, description="open streams per client address")
    total: int = Field(
        32, ge=1, le=32,
        description="open streams in all; each holds one of the 40 worker threads while it "
        "waits, and plain requests need the rest",
    )  # fmt: skip


def _sha256(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return f"'sha256-{digest}'"


@lru_cache(maxsize=8)  # a few pages, each rendered once: the same strings come back
def page_policy(html: str) -> str:
    """The Content-Security-Policy for a page rendered by this tree: its own blocks only.

    Scripts and styles are allowed by the hash of each inline block; fetch and
    EventSource reach this origin only; the favicon is a data: URL; no framing.

    Args:
        html: the page as sent. Every text in it that is not from this tree must be
            escaped: an injected <script> would be hashed into the policy too. Cached,
            so a page rendered once is hashed once.
    """
    scripts: list[str] = []
    styles: list[str] = []
    for kind, attrs, body in _BLOCK.findall(html):
        if kind.lower() == "style":
            styles.append(_sha256(body))
        elif "src=" not in attrs and "application/json" not in attrs:
            scripts.append(_sha256(body))
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {' '.join(scripts) or NONE}",
            f"style-src {' '.join(styles) or NONE}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """Adds the security headers to every response; a route may set its own policy.

    A response with a Content-Security-Policy (a page's, from page_policy) keeps it;
    every other response gets DEFAULT_POLICY.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers", []))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_security_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` (raw ASGI pairs) with the security headers added where missing."""
    merged = list(headers)
    present = {name.lower() for name, _ in merged}
    for name, value in ((CSP, DEFAULT_POLICY), *HEADERS.items()):
        if name.lower().encode() not in present:
            merged.append((name.lower().encode(), value.encode()))
    return merged


def is_loopback(host: str) -> bool:
    """True for an address or name only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None]:
    """A Host header's name (lower case, IPv6 without brackets) and port, if any.

    Raises:
        ValueError: not a host[:port] (an empty name, a port that is not a number).
    """
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"not a host: {value!r}")
        port = rest[1:]
    elif value.count(":") <= 1:
        name, _, port = value.partition(":")
    else:
        raise ValueError(f"not a host (an IPv6 address needs brackets): {value!r}")
    if not name or value.endswith(":") or (port and not port.isdigit()):
        raise ValueError(f"not a host: {value!r}")
    return name, int(port) if port else None


class HostAllowList:
    """Answers 421 to a request whose Host header names neither this machine nor an
    allowed name: a page on another site that rebinds its DNS name to the gate's
    address cannot read the console, because its requests carry its own name.

    A Host with a port must name the port the server listens on; without a port (a
    browser leaves out :80, a proxy may send the bare name) only the name is checked.

    Args:
        app: the app behind.
        names: the allowed names besides the loopback ones (the configured listening
            address, the names LAN clients use).
        port: the listening port (known once the server has bound).
    """

    def __init__(self, app: ASGIApp, names: Iterable[str], port: int) -> None:
        self.app = app
        self.names = frozenset(
            n.strip("[]").lower() for n in (*LOOPBACK_NAMES, *names) if n not in WILDCARD_HOSTS
        )
        self.port = port

    def allows(self, host: str) -> bool:
        """True for a Host header value this server answers."""
        try:
            name, port = split_host(host)
        except ValueError:
            return False
        return name in self.names and port in (None, self.port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if self.allows(host):
            await self.app(scope, receive, send)
            return
        log.info("refused a request for host %r", host[:100])
        allowed = sorted(self.names)
        body = json.dumps(
            {
                "reason": "host-not-allowed",
                "detail": f"this server does not answer for host {host[:100]!r}; "
                f"it answers for {', '.join(allowed)} on port {self.port} "
                "(add a name to allowed_hosts in the config)",
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send(
            {
                "type": "http.response.start",
                "status": 421,
                "headers": with_security_headers(headers),
            }
        )
        await send({"type": "http.response.body", "body": body})


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104
