"""One HTML response per page: its style and scripts inlined into the document."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# Shared by every page, inlined before the page's own scripts.
BILINGUAL = Path(__file__).with_name("bilingual.js")


def inline_page(static: Path, css: str, scripts: Sequence[str], **slots: str) -> str:
    """`static`/index.html with `css` and `scripts` (files in `static`) inlined.

    Inlined so an updated node or gateway never serves new HTML with a stale cached
    script, and the page needs nothing but this one response to come up.

    Args:
        static: the page's folder.
        css: its style sheet's file name.
        scripts: its scripts' file names, in load order (after bilingual.js).
        slots: more `/*{{name}}*/` or `{{name}}` markers to fill, by name.
    """
    html = (static / "index.html").read_text(encoding="utf-8")
    # Slots first: the style and scripts inlined after are never searched for markers.
    for name, value in slots.items():
        html = html.replace(f"/*{{{{{name}}}}}*/", value).replace(f"{{{{{name}}}}}", value)
    files = [BILINGUAL, *(static / name for name in scripts)]
    js = "\n".join(path.read_text(encoding="utf-8") for path in files)
    html = html.replace("/*{{style}}*/", (static / css).read_text(encoding="utf-8"))
    return html.replace("/*{{script}}*/", js)
