"""Word catalogues of the pages: key -> [简体中文, English], a file a site may replace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Words = tuple[str, str]


def read_words(path: Path) -> dict[str, Words]:
    """The entries of a catalogue file.

    Raises:
        ValueError: an entry is not a pair of non-empty texts; the message names its key.
        OSError: the file cannot be read.
    """
    entries: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    words: dict[str, Words] = {}
    for key, pair in entries.items():
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(p, str) and p for p in pair)
        ):
            raise ValueError(f"{path}: {key!r} must be [简体中文, English], not {pair!r}")
        words[key] = (pair[0], pair[1])
    return words
