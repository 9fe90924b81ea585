"""The depot rules' cumulative, rate and stale-sensor wordings read back as their key and values,
and the dashboard has their words in both languages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.contract.topics import AlertKind
from gateway.alarms import DEPOT_MESSAGES, MESSAGES, draft, words_of
from gateway.store.records import AlarmRecord

WORDS = Path(__file__).resolve().parents[2] / "gateway" / "web" / "static" / "words.json"
CLIMATE = {"zone": "fridge-2", "value": "4.6", "storage_class": "vaccine-fridge"}
SAMPLES: dict[str, dict[str, str]] = {
    "depot-climate.temperature-above-day": CLIMATE | {
        "threshold": "8.0", "lasted_min": "61", "day": "2026-12-06", "condition": "heat-day"},
    "depot-climate.temperature-below-day": CLIMATE | {
        "threshold": "2.0", "lasted_min": "600", "day": "2026-12-07", "condition": "cold-day"},
    "depot-climate.humidity-above-day": CLIMATE | {
        "threshold": "75.0", "lasted_min": "120", "day": "2026-12-06", "condition": "humid"},
    "depot-climate.humidity-below-day": CLIMATE | {
        "threshold": "20.0", "lasted_min": "120", "day": "2026-12-06", "condition": "dry"},
    "depot-climate.temperature-rise": CLIMATE | {
        "rate": "0.60", "gap_min": "1.0", "threshold": "0.50", "condition": "door"},
    "depot-climate.temperature-fall": CLIMATE | {
        "rate": "1.10", "gap_min": "2.5", "threshold": "0.50", "condition": "door"},
    "depot-climate.humidity-rise": CLIMATE | {
        "rate": "3.00", "gap_min": "1.0", "threshold": "2.00", "condition": "door"},
    "depot-climate.humidity-fall": CLIMATE | {
        "rate": "3.00", "gap_min": "1.0", "threshold": "2.00", "condition": "dry-out"},
    "depot-sensor-stale": {"zone": "cold-store-1", "silent_min": "16"},
}  # fmt: skip


def kind_of(key: str) -> AlertKind:
    return AlertKind(key.split(".", maxsplit=1)[0])


def record_of(key: str) -> AlarmRecord:
    made = draft(kind_of(key), key, "north", "d01", "warning", subject="s", **SAMPLES[key])
    return AlarmRecord(
        alarm_id="a1", kind=made.kind, site=made.site, node=made.node, subject=made.subject,
        severity=made.severity, state="raised", message=made.message,
        raised_at=datetime(2026, 12, 6, 8, tzinfo=UTC),
    )  # fmt: skip


def test_samples__cover_every_depot_message() -> None:
    assert set(SAMPLES) == set(DEPOT_MESSAGES)
    assert not set(DEPOT_MESSAGES) & set(MESSAGES)


@pytest.mark.parametrize("key", sorted(DEPOT_MESSAGES))
def test_words__a_depot_message_reads_back_as_its_key_and_values(key: str) -> None:
    words = words_of(record_of(key))
    assert words.key == key
    assert words.values == {"site": "north", "node": "d01", "place": "d01", **SAMPLES[key]}


@pytest.mark.parametrize("key", sorted(DEPOT_MESSAGES))
def test_words__each_depot_message_has_both_languages_with_only_its_slots(key: str) -> None:
    catalogue = json.loads(WORDS.read_text(encoding="utf-8"))
    zh, en = catalogue[f"alarm.{key}"]
    offered = set(re.findall(r"\{(\w+)\}", DEPOT_MESSAGES[key])) - {"where"} | {"node", "site"}
    for text in (zh, en):
        assert set(re.findall(r"\{(\w+)\}", text)) <= offered
    assert re.search(r"[\u4e00-\u9fff]", zh), "the first entry is Chinese"
    assert catalogue[f"kind.{kind_of(key)}"]


def test_words__an_older_depot_message_is_not_read_as_a_days_sum() -> None:
    older = draft(
        AlertKind.DEPOT_CLIMATE, "depot-climate.temperature-above", "north", "d01", "critical",
        zone="z", value="8.9", threshold="8.0", lasted_min="600", storage_class="cold",
        condition="heat",
    )  # fmt: skip
    record = record_of("depot-climate.temperature-above-day").model_copy(
        update={"message": older.message}
    )
    assert words_of(record).key == "depot-climate.temperature-above"
