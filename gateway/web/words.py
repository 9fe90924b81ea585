"""The words of the dashboard and the printable report: one catalogue, static/words.json.

Wording is configuration: a site may change any text there without touching code. Each
entry is `key: [简体中文, English]`; `{name}` marks a value filled in when shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Literal

from edge.web.words import read_words

CATALOGUE = Path(__file__).with_name("static") / "words.json"
Language = Literal["zh", "en"]
_INDEX: dict[Language, int] = {"zh": 0, "en": 1}
_SLOT = re.compile(r"\{(\w+)\}")


@cache
def catalogue() -> Mapping[str, tuple[str, str]]:
    """Every key with its Chinese and English text, read once."""
    return read_words(CATALOGUE)


def slots(text: str) -> set[str]:
    """The `{name}` slots a text has."""
    return set(_SLOT.findall(text))


def fill(text: str, values: Mapping[str, object]) -> str:
    """`text` with each `{name}` replaced by its value (empty when there is none)."""
    return _SLOT.sub(lambda match: str(values.get(match.group(1), "")), text)


def say(key: str, lang: Language, **values: object) -> str:
    """The text of `key` in `lang`, filled.

    Raises:
        KeyError: the catalogue has no such key (a test keeps every key used there).
    """
    return fill(catalogue()[key][_INDEX[lang]], values)


def date_parts(at: datetime) -> dict[str, object]:
    """The values the `format.*` entries use, of `at` as it is (convert it first)."""
    return {
        "y": at.year, "m": at.month, "d": at.day, "h": at.hour,
        "mm": f"{at.month:02d}", "dd": f"{at.day:02d}", "hh": f"{at.hour:02d}",
        "mi": f"{at.minute:02d}", "ss": f"{at.second:02d}",
    }  # fmt: skip


def zone_name(zone: str, at: datetime, lang: Language) -> str:
    """The site's zone as people there call it ("北京时间"), else its UTC offset at `at`."""
    if f"zone.{zone}" in catalogue():
        return say(f"zone.{zone}", lang)
    offset = at.strftime("%z")  # "+0800"
    return say("zone.other", lang, offset=f"{offset[:3]}:{offset[3:]}" if offset else "")
