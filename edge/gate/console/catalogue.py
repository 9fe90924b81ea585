"""Every word the console page shows, in one catalogue the node puts into the page.

Three tables, each key -> (简体中文, English): the page's own words
(static/words.json, the file a site edits to change its wording), the reason codes of
decisions and refusals (edge/gate/reasons.py, shared with the dashboard), and the field
problems of a form (plain_words.py, sent with each 422). The page also gets the hold
rules (hold_rules.py), so it offers only the actions that fit a hold's reasons.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.gate import hold_rules
from edge.gate.reasons import REASON_TEXT
from edge.web.words import Words, read_words

WORDS_FILE = Path(__file__).with_name("static") / "words.json"


def page_words(path: Path = WORDS_FILE) -> dict[str, Words]:
    """The page's words from `path` (words.json, or a site's own wording).

    Raises:
        ValueError: an entry is not a pair of non-empty strings; the message names its key.
    """
    return read_words(path)


def page_catalogue(site_words: Mapping[str, Words] | None = None) -> dict[str, Any]:
    """What the page reads at start: its words, the reason words and the hold rules.

    Args:
        site_words: a site's own wording (a file like words.json, read with page_words):
            each key replaces a page word or a reason code's words.

    Raises:
        ValueError: a key of `site_words` is neither a page word nor a reason code (a
            misspelt key would otherwise change nothing, silently).
    """
    words = page_words()
    reasons = {str(code): pair for code, pair in REASON_TEXT.items()}
    for key, pair in (site_words or {}).items():
        if key in words:
            words[key] = pair
        elif key in reasons:
            reasons[key] = pair
        else:
            raise ValueError(f"the site's console words name {key!r}, which the console has not")
    return {
        "words": words,
        "reasons": {code: {"zh": zh, "en": en} for code, (zh, en) in reasons.items()},
        "holds": {
            "offered": {str(code): list(ways) for code, ways in hold_rules.OFFERED.items()},
            "neutral": sorted(hold_rules.NEUTRAL),
            "stop": sorted(str(code) for code in hold_rules.STOP),
            "overridable": sorted(str(code) for code in hold_rules.OVERRIDABLE),
            "urgent": sorted(hold_rules.URGENT),
            "passing": sorted(hold_rules.PASSING),
            "order": list(hold_rules.RESOLUTIONS),
        },
    }


def script_json(value: Any) -> str:
    """`value` as JSON safe inside an HTML <script> element (no "</" can end it early)."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")
