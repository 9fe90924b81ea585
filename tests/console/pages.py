"""Helpers for tests of the console page in chromium: find by test id, read rendered text."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from edge.gate.console.server import ConsoleServer

Serve = Callable[..., ConsoleServer]


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def by_id(on: Page | Locator, testid: str) -> Locator:
    return on.locator(f'[data-testid="{testid}"]')


def shows(locator: Locator, text: str) -> None:
    """The text as rendered (innerText): the other language's hidden spans do not count."""
    expect(locator).to_contain_text(text, use_inner_text=True)


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
