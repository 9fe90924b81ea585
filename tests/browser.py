"""Browser fixtures: Debian's chromium driven by playwright, a fresh profile per test.

tests/conftest.py registers these fixtures for every module (`pytest_plugins`); mark
browser tests `@pytest.mark.browser`. Playwright's own browser builds are never
downloaded: the tests use /usr/bin/chromium and skip when it is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Playwright, ViewportSize, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A 10-inch tablet in landscape, the usual console at a gate.
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """One playwright driver process for the whole session (it takes ~0.5 s to start)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def page(playwright_driver: Playwright, tmp_path: Path) -> Iterator[Page]:
    """A page in a chromium with its own empty profile (no localStorage from other tests).

    Teardown fails the test if the page's script raised an uncaught exception.
    """
    context = playwright_driver.chromium.launch_persistent_context(
        user_data_dir=tmp_path / "chromium-profile",
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport=VIEWPORT,
    )
    errors: list[str] = []
    try:
        context.set_default_timeout(5_000)
        page = context.pages[0] if context.pages else context.new_page()
        # An exception in the page's own script fails the test, whatever it asserted.
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
    finally:
        context.close()
    assert not errors, f"the page's script failed: {errors}"
