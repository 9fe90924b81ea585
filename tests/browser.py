"""Browser fixtures: Debian's chromium driven by playwright, a fresh profile per test.

tests/conftest.py registers these fixtures for every module (`pytest_plugins`); mark
browser tests `@pytest.mark.browser`. Playwright's own browser builds are never
downloaded: the tests use /usr/bin/chromium and skip when it is not installed.

`assert_chinese_renders(page, selector)` fails a test whose Chinese text is drawn as
missing-glyph boxes ("tofu"), which is what a machine without a CJK font shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, Playwright, ViewportSize, expect, sync_playwright

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
# The same tablet held upright, and the 7-inch panel some gates have instead.
TABLET_PORTRAIT: ViewportSize = {"width": 800, "height": 1280}
PANEL_7_INCH: ViewportSize = {"width": 800, "height": 480}
# Debian's package with the fonts the pages ask for first ("Noto Sans CJK SC").
CJK_FONT_PACKAGE = "fonts-noto-cjk"


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """One playwright driver process for the whole session (it takes ~0.5 s to start)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@contextmanager
def open_page(
    driver: Playwright,
    profile: Path,
    *,
    env: Mapping[str, str] | None = None,
    viewport: ViewportSize = VIEWPORT,
    timezone_id: str | None = None,
) -> Iterator[Page]:
    """A page in a chromium with the empty profile folder `profile`.

    Args:
        driver: the session's playwright.
        profile: a folder of the test's own (no localStorage from other tests).
        env: the browser's whole environment, when a test needs another one (fonts).
        viewport: the screen size the page is laid out for.
        timezone_id: the zone the browser's clock is set to (IANA name); default the machine's.

    Fails the test if the page's script raised an uncaught exception, or if the page's
    Content-Security-Policy blocked anything.
    """
    options: dict[str, Any] = {"env": dict(env)} if env is not None else {}
    if timezone_id is not None:
        options["timezone_id"] = timezone_id
    context = driver.chromium.launch_persistent_context(
        user_data_dir=profile,
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport=viewport,
        **options,
    )
    errors: list[str] = []
    try:
        context.set_default_timeout(5_000)
        page = context.pages[0] if context.pages else context.new_page()
        # An exception in the page's own script fails the test, whatever it asserted.
        page.on("pageerror", lambda error: errors.append(str(error)))
        # So does anything the Content-Security-Policy blocked (a script, a style, a
        # connection): chromium reports it only as a console message.
        page.on(
            "console",
            lambda message: (
                errors.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        yield page
    finally:
        context.close()
    assert not errors, f"the page's script failed or was blocked: {errors}"


@pytest.fixture
def page(playwright_driver: Playwright, tmp_path: Path) -> Iterator[Page]:
    """A page in a chromium with its own empty profile, sized like the landscape tablet."""
    with open_page(playwright_driver, tmp_path / "chromium-profile") as opened:
        yield opened


# Draws each distinct Chinese character shown inside the selected elements in the font
# its element uses, and a code point that no font has (U+10FFFD, private use) in the same
# font. A character drawn exactly like that one, or not drawn at all, fell back to the
# missing-glyph box. Returns what was checked and what failed.
_TOFU_PROBE = """([selector, most]) => {
  const han = /\\p{Script=Han}/u;
  const found = new Map();  // font -> {element, characters}
  for (const root of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      const owner = text.parentElement;
      if (!owner || !owner.checkVisibility({ visibilityProperty: true })) continue;
      const style = getComputedStyle(owner);
      const font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      for (const character of text.data) {
        if (!han.test(character)) continue;
        if (!found.has(font)) found.set(font, { element: owner, characters: new Set() });
        const entry = found.get(font);
        if (entry.characters.size < most) entry.characters.add(character);
      }
    }
  }
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const draw = (font, character) => {
    const size = parseFloat(font.split(" ")[2]) || 16;
    canvas.width = canvas.height = Math.ceil(size * 2);
    context.font = font;
    context.textBaseline = "middle";
    context.fillStyle = "#000";
    context.fillText(character, size / 2, size);
    return context.getImageData(0, 0, canvas.width, canvas.height).data;
  };
  const same = (a, b) => a.length === b.length && a.every((value, i) => value === b[i]);
  const blank = (pixels) => pixels.every((value, i) => i % 4 !== 3 || value === 0);
  const checked = [];
  const boxes = [];
  let probe = 0;
  for (const [font, { element, characters }] of found) {
    const missing = draw(font, String.fromCodePoint(0x10fffd));
    const bad = [...characters].filter((c) => { const p = draw(font, c); return blank(p) || same(p, missing); });
    checked.push(...characters);
    if (bad.length) {
      element.dataset.tofuProbe = String(probe);
      boxes.push({ font, characters: bad.join(""), probe: probe++ });
    }
  }
  return { checked: checked.join(""), boxes };
}"""


def assert_chinese_renders(page: Page, selector: str = "body", *, most_per_font: int = 60) -> None:
    """Fail when Chinese text shown inside `selector` falls back to the missing-glyph box.

    The dashboard, the console and the printable report all call this after their page
    has drawn its Chinese words. The message names the characters and the font chromium
    used for them instead (found with the DevTools protocol's getPlatformFontsForNode).

    Args:
        page: a page showing Chinese text.
        selector: CSS selector of the parts to check; every visible Chinese character in
            them is checked (up to `most_per_font` distinct ones per font).
        most_per_font: bound on the characters drawn per font, to keep the check fast.
    """
    result = page.evaluate(_TOFU_PROBE, [selector, most_per_font])
    if not result["checked"]:
        pytest.fail(f"no visible Chinese text in {selector!r} to check")
    if not result["boxes"]:
        return
    problems = []
    for box in result["boxes"]:
        used = _platform_fonts(page, f'[data-tofu-probe="{box["probe"]}"]')
        size = " ".join(box["font"].split(" ")[1:3])  # weight and size; the family is long
        problems.append(f"{box['characters']!r} at {size} (drawn with {used})")
    pytest.fail(
        "Chinese text is drawn as missing-glyph boxes, so no installed font has these "
        f"characters (Debian: apt-get install {CJK_FONT_PACKAGE}): " + "; ".join(problems)
    )


def _platform_fonts(page: Page, selector: str) -> str:
    """The fonts chromium drew the element's text with, as the DevTools protocol says."""
    session = page.context.new_cdp_session(page)
    try:
        session.send("DOM.enable")
        session.send("CSS.enable")
        root = session.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})
        try:
            fonts = session.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
        except PlaywrightError:  # the page redrew it since the check: only the detail is lost
            return "fonts unknown: the element was redrawn"
        return (
            ", ".join(
                f"{font['familyName']} ({font['glyphCount']} glyphs)" for font in fonts["fonts"]
            )
            or "no font"
        )
    finally:
        session.detach()


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
