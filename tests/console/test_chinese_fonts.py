"""The tofu check of tests/browser.py: it fails without a CJK font and passes with one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, Playwright

from tests.browser import assert_chinese_renders, open_page

pytestmark = pytest.mark.browser

WORDS = '<p lang="zh-CN" style="font: 24px sans-serif">体温异常：留观或劝返 <b>Fever</b></p>'
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def fontconfig(folder: Path, font_dirs: list[Path]) -> dict[str, str]:
    """The environment of a chromium that sees only the fonts in `font_dirs`."""
    folder.mkdir()
    dirs = "".join(f"<dir>{path}</dir>" for path in font_dirs)
    config = folder / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">'
        f"<fontconfig>{dirs}<cachedir>{folder / 'cache'}</cachedir></fontconfig>"
    )
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


@pytest.mark.parametrize("fonts", ["latin-only", "none"])
def test_assert_chinese_renders__invalid_without_a_cjk_font(
    playwright_driver: Playwright, tmp_path: Path, fonts: str
) -> None:
    # What a fresh Debian has (DejaVu, no CJK font), and a machine with no font at all.
    env = fontconfig(tmp_path / "fontconfig", [DEJAVU] if fonts == "latin-only" else [])
    with open_page(playwright_driver, tmp_path / "profile", env=env) as page:
        page.set_content(WORDS)
        with pytest.raises(pytest.fail.Exception, match="missing-glyph boxes") as failed:
            assert_chinese_renders(page, "p")
    assert "体" in str(failed.value)


def test_assert_chinese_renders__valid_with_the_system_fonts(page: Page) -> None:
    # Fails on a machine without Debian's fonts-noto-cjk (`make deps` installs it).
    page.set_content(WORDS)
    assert_chinese_renders(page, "p")


def test_assert_chinese_renders__invalid_with_no_chinese_shown(page: Page) -> None:
    page.set_content("<p>Fever</p><p hidden>体温</p>")
    with pytest.raises(pytest.fail.Exception, match="no visible Chinese text"):
        assert_chinese_renders(page, "p")
