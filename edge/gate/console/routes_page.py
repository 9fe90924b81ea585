"""The console page itself: one HTML document with its style and script inlined."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from edge.gate.console.context import ContextDep, Language

router = APIRouter(tags=["page"])

STATIC = Path(__file__).with_name("static")
# In load order: each script takes what the earlier ones put on window.gatepost.
SCRIPTS = ("words.js", "actions.js", "forms.js", "console.js")


def render_page(language: Language) -> str:
    """The page with `language` as its default and the CSS and JS inlined.

    Inlined so an updated node never serves new HTML with a stale cached script, and
    the page needs nothing but this one response to come up.
    """
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    css = (STATIC / "console.css").read_text(encoding="utf-8")
    js = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in SCRIPTS)
    return (
        html.replace("{{language}}", language)
        .replace("/*{{style}}*/", css)
        .replace("/*{{script}}*/", js)
    )


@router.get("/", response_class=HTMLResponse)
def page(context: ContextDep) -> HTMLResponse:
    """The volunteer console (Simplified Chinese and English in one page)."""
    return HTMLResponse(context.page, headers={"Cache-Control": "no-cache"})
