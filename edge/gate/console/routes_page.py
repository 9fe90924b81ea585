"""The console page itself: one HTML document with its style and script inlined."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from edge.gate.console.catalogue import page_catalogue, page_words, script_json
from edge.gate.console.context import ContextDep, Language
from edge.web.page import inline_page
from edge.web.security import CSP, page_policy

router = APIRouter(tags=["page"])

STATIC = Path(__file__).with_name("static")
# In load order: each script takes what the earlier ones put on window.gatepost.
SCRIPTS = ("words.js", "actions.js", "forms.js", "console.js")


def render_page(language: Language, words_file: Path | None = None) -> str:
    """The page with `language` as its default, its catalogue, and the CSS and JS inlined.

    Args:
        language: the page's language until a volunteer picks one on that device.
        words_file: a site's own wording, in words.json's format (see catalogue.py).
    """
    site_words = page_words(words_file) if words_file is not None else None
    catalogue = script_json(page_catalogue(site_words))
    return inline_page(STATIC, "console.css", SCRIPTS, language=language, catalogue=catalogue)


@router.get("/", response_class=HTMLResponse)
def page(context: ContextDep) -> HTMLResponse:
    """The volunteer console (Simplified Chinese and English in one page)."""
    return HTMLResponse(
        context.page, headers={"Cache-Control": "no-cache", CSP: page_policy(context.page)}
    )
