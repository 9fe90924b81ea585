"""The console's catalogue: every word in Chinese and English, every key the page uses present."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.gate import hold_rules
from edge.gate.console import plain_words
from edge.gate.console.app import create_app
from edge.gate.console.catalogue import WORDS_FILE, page_catalogue, page_words
from edge.gate.console.routes_page import SCRIPTS, STATIC
from edge.gate.hold_rules import offered
from edge.gate.reasons import ACTION_REFUSALS, REASON_TEXT
from tests.console.double import RecordingCheckpoint

HAN = re.compile(r"[\u3400-\u9fff]")
# Keys whose Chinese entry is rightly not Chinese: the toggle names the other language.
NOT_CHINESE = {"otherLanguage"}


def catalogues() -> dict[str, dict[str, tuple[str, str]]]:
    return {
        "words.json": page_words(),
        "reasons.py": {str(code): words for code, words in REASON_TEXT.items()},
        "plain_words.FIELD_LABELS": plain_words.FIELD_LABELS,
        "plain_words.PATTERN_HINTS": plain_words.PATTERN_HINTS,
        "plain_words.TYPE_WORDS": plain_words.TYPE_WORDS,
    }


def entries() -> list[tuple[str, str, str, str]]:
    return [
        (name, key, zh, en)
        for name, table in catalogues().items()
        for key, (zh, en) in table.items()
    ]


@pytest.mark.parametrize(("catalogue", "key", "zh", "en"), entries())
def test_catalogue_entry__valid(catalogue: str, key: str, zh: str, en: str) -> None:
    if key not in NOT_CHINESE:
        assert HAN.search(zh), f"{catalogue} {key!r} has no Chinese text: {zh!r}"
    assert en.strip(), f"{catalogue} {key!r} has no English text"
    # A placeholder filled in one language is filled in the other.
    assert set(re.findall(r"\{(\w+)\}", zh)) == set(re.findall(r"\{(\w+)\}", en)), key


def test_catalogue_entry__invalid_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "words.json"
    broken.write_text(json.dumps({"title": ["卡口"]}))
    with pytest.raises(ValueError, match="'title' must be"):
        page_words(broken)


def keys_the_page_names() -> set[str]:
    """Every catalogue key written out in the page's HTML and scripts."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    found = set(re.findall(r'data-words="([^"]+)"', html))
    for script in SCRIPTS:
        text = (STATIC / script).read_text(encoding="utf-8")
        found |= set(re.findall(r"""\b(?:say|word)\(\s*["']([^"'`]+)["']""", text))
        # Keys built from a prefix and a value the node sends, e.g. `device.${name}`.
        found |= {f"{p}*" for p in re.findall(r"\b(?:say|word)\(\s*`([\w-]+\.)\$\{", text)}
    return found


def test_every_key_the_page_names_is_in_the_catalogue() -> None:
    words = page_words()
    named = keys_the_page_names()
    assert len(named) > 60, "the pattern no longer finds the page's keys"
    plain = {key for key in named if not key.endswith("*")}
    assert plain - words.keys() == set()
    for prefix in {key[:-1] for key in named if key.endswith("*")}:
        assert any(key.startswith(prefix) for key in words), f"no words under {prefix}"


# Values the node sends that the page turns into keys: each must have words.
SENT: dict[str, list[str]] = {
    "outcome.": ["allow", "hold", "deny", "none", "waiting"],
    "colour.": ["green", "yellow", "red"],
    "state.": ["ok", "fault", "unplugged", "disabled"],
    "device.": ["scanner", "thermometer", "thermal-array", "camera", "barrier", "door", "outbox"],
    "prompt.": ["scan-again", "step-closer", "step-back"],
    "resolution.": list(hold_rules.RESOLUTIONS),
    "action.": list(hold_rules.RESOLUTIONS),
    "area.": ["hut", "barrier", "observation-room", "vehicle-lane"],
    "link.": ["live", "connecting", "lost"],
}


@pytest.mark.parametrize(("prefix", "value"), [(p, v) for p, vs in SENT.items() for v in vs])
def test_every_value_sent_has_words(prefix: str, value: str) -> None:
    assert f"{prefix}{value}" in page_words()


def test_page_catalogue__is_what_the_page_reads() -> None:
    catalogue = page_catalogue()
    assert catalogue["words"]["outbox"] == ("待上传 {depth} 条", "{depth} waiting to upload")
    assert catalogue["reasons"]["too-far"]["zh"] == "请靠近测温"
    assert catalogue["holds"]["offered"]["bad-signature"] == ["referred", "turned-back"]
    assert WORDS_FILE.exists()


# --- which ways of ending a hold the console offers --------------------------------------


@pytest.mark.parametrize(
    ("reasons", "expect"),
    [
        (("fever",), ("released", "referred", "turned-back")),
        (("measure-temperature",), ("released", "turned-back")),
        (("too-far",), ("released", "turned-back")),
        (("yellow-code",), ("registered", "turned-back")),
        (("expired",), ("registered", "turned-back")),
        (("no-code",), ("registered", "turned-back")),
        (("yellow-code", "fever"), ("referred", "turned-back")),
        (("fever", "outbox-full"), ("released", "referred", "turned-back")),
        (("outbox-full",), ("released", "registered", "turned-back")),
    ],
)
def test_offered__valid(reasons: tuple[str, ...], expect: tuple[str, ...]) -> None:
    assert offered(reasons) == expect


@pytest.mark.parametrize(
    "reasons",
    [
        ("bad-signature",),
        ("unknown-kid",),
        ("revoked",),
        ("key-usage",),
        ("red-code",),
        ("yellow-code", "bad-signature"),
        ("a-reason-this-console-does-not-know",),
    ],
)
def test_offered__invalid_never_lets_a_refused_code_pass(reasons: tuple[str, ...]) -> None:
    assert not set(offered(reasons)) & hold_rules.PASSING
    assert "turned-back" in offered(reasons)


def test_offered__every_reason_a_hold_can_have_is_ruled() -> None:
    # Refusals of console actions never reach a hold; every other reason has a rule.
    ruled = set(hold_rules.OFFERED) | hold_rules.NEUTRAL
    assert {str(code) for code in REASON_TEXT} - ACTION_REFUSALS - ruled == set()


def test_site_words__replace_the_page_and_reason_words(
    tmp_path: Path, checkpoint: RecordingCheckpoint
) -> None:
    site = tmp_path / "site-words.json"
    site.write_text(
        json.dumps({"tab.shift": ["签到/签退", "Sign in/out"], "fever": ["发热：请留观", "Fever"]}),
        encoding="utf-8",
    )
    page = TestClient(create_app(checkpoint, words_file=site)).get("/").text
    assert "签到/签退" in page and "上岗/离岗" not in page
    assert "发热：请留观" in page


def test_site_words__invalid_key_is_named(tmp_path: Path, checkpoint: RecordingCheckpoint) -> None:
    site = tmp_path / "site-words.json"
    site.write_text(json.dumps({"tab.shfit": ["签到/签退", "Sign in/out"]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"'tab\.shfit'"):
        create_app(checkpoint, words_file=site)
