"""Helpers for tests of the console page in chromium: find by test id, read rendered text."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from http.cookies import SimpleCookie

from playwright.sync_api import Page

from edge.gate.console.server import ConsoleServer
from edge.gate.console.sessions import COOKIE

Serve = Callable[..., ConsoleServer]


# What the Chinese view may show in Latin letters: the toggle to English, and data the node
# sends as it is (node and site names, volunteer ids, plates, temperatures' °C).
DATA_IN_LATIN = re.compile(r"English|gate-01|east-village|V\d{3}|HC1:\S*|\d+(\.\d+)? °C")


def english_in_chinese_view(page: Page) -> list[str]:
    """Lines of the rendered page (innerText) with English words left in the Chinese view."""
    assert page.evaluate("document.documentElement.dataset.lang") == "zh"
    missing = page.evaluate("document.documentElement.dataset.missingWords || ''")
    assert not missing, f"keys without words: {missing}"
    text: str = page.evaluate("document.body.innerText")
    return [
        line.strip()
        for line in text.splitlines()
        if re.search(r"[A-Za-z]{2,}", DATA_IN_LATIN.sub("", line))
    ]


def session_cookie(url: str, badge_text: str = "HC1:BADGE-V001") -> str:
    """The `Cookie` value of a session opened with the badge of a volunteer on duty."""
    request = urllib.request.Request(
        f"{url}/api/session", data=json.dumps({"badge_text": badge_text}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        cookie = SimpleCookie(response.headers["Set-Cookie"])
    return f"{COOKIE}={cookie[COOKIE].value}"


def signed_in(page: Page, server: ConsoleServer, badge_text: str = "HC1:BADGE-V001") -> str:
    """The console's URL, with `page`'s browser signed in as after the badge was scanned."""
    value = session_cookie(server.url, badge_text).split("=", 1)[1]
    page.context.add_cookies([{"name": COOKIE, "value": value, "url": server.url}])
    return server.url
