"""Helpers for tests of the console page in chromium: find by test id, read rendered text."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page

from edge.gate.console.server import ConsoleServer

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
