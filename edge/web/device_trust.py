"""DeviceTrust: beyond this machine, only a paired device's browser reaches the app."""

# The console's kiosk is a browser on the gate itself; a tablet on the LAN is paired
# first (edge/gate/console/pairing.py). This middleware sits inside the Host check and
# outside the app: a request from this machine passes unchanged, one from elsewhere
# needs the paired device's cookie, except for the pairing page and API themselves.

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import anyio
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.web.security import is_loopback, with_security_headers

log = logging.getLogger(__name__)

NOT_PAIRED = "device-not-paired"


def from_this_machine(scope: Scope) -> bool:
    """True for a client on a loopback address: a browser on this machine (the kiosk
    opens https://localhost:PORT). A proxy on this machine would make every client
    look local: the console is served directly, never behind one."""
    client = scope.get("client")
    return client is not None and is_loopback(client[0])


def cookie_value(scope: Scope, name: str) -> str:
    """The value of cookie `name` in the request, or ""."""
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(name)
            if found:
                return found
    return ""


class DeviceTrust:
    """Lets this machine and paired devices through to `app`; answers everyone else.

    Args:
        app: the app behind (the console).
        pairing_app: answers `page` and every path under `api` (the pairing page and
            API), for every client; it checks itself which of its routes are for this
            machine only.
        is_paired: whether a cookie's token names a paired device.
        cookie: the device cookie's name.
        page: the pairing page; an unpaired device's page request is sent there.
        api: the pairing API's path prefix.
        recheck_s: how often a paired device's response still in progress (an event
            stream) asks whether the device is still paired; unpaired, it ends.
    """

    def __init__(
        self, app: ASGIApp, pairing_app: ASGIApp, is_paired: Callable[[str], bool], *,
        cookie: str, page: str = "/pair", api: str = "/api/pairing", recheck_s: float = 2.0,
    ) -> None:  # fmt: skip
        self.app = app
        self.pairing_app = pairing_app
        self.is_paired = is_paired
        self.cookie = cookie
        self.page = page
        self.api = api
        self.recheck_s = recheck_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in {self.page, self.api} or path.startswith(self.api + "/"):
            await self.pairing_app(scope, receive, send)
        elif from_this_machine(scope):
            await self.app(scope, receive, send)
        elif self.is_paired(token := cookie_value(scope, self.cookie)):
            await self._while_paired(token, scope, receive, send)
        elif scope["method"] in {"GET", "HEAD"} and not path.startswith("/api/"):
            await _answer(send, 303, b"", [(b"location", self.page.encode())])
        else:
            body = json.dumps(
                {
                    "reason": NOT_PAIRED,
                    "detail": "this device is not paired with the console: open "
                    f"{self.page} and type the code shown on the gate's own screen",
                }
            ).encode()
            await _answer(send, 401, body, [(b"content-type", b"application/json")])

    async def _while_paired(self, token: str, scope: Scope, receive: Receive, send: Send) -> None:
        """`app`, told the client went away once the device is unpaired (Starlette ends a
        streaming response on that), with the response then ended properly."""
        unpaired = False
        state = {"started": False, "complete": False}

        async def receive_while_paired() -> Message:
            nonlocal unpaired
            while not unpaired:
                with anyio.move_on_after(self.recheck_s):
                    return await receive()
                unpaired = not self.is_paired(token)
            return {"type": "http.disconnect"}

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                state["complete"] = True
            await send(message)

        await self.app(scope, receive_while_paired, send_tracked)
        if unpaired and state["started"] and not state["complete"]:
            log.info("ended a response to an unpaired device")
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", b"%d" % len(body)), (b"cache-control", b"no-store")]
    await send(
        {"type": "http.response.start", "status": status, "headers": with_security_headers(headers)}
    )
    await send({"type": "http.response.body", "body": body})
