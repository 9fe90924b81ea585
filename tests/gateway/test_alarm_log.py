"""The alarm log: one line per batch of alarms, with counts by kind and every alarm's id."""

from __future__ import annotations

import logging

import pytest

from edge.contract.command import Alert
from edge.contract.topics import AlertKind
from gateway.alarms import AlarmBook
from gateway.live import LiveFeed
from gateway.store import SqliteStore
from gateway.store.records import AlarmDraft


def fever(node: str) -> AlarmDraft:
    return AlarmDraft(AlertKind.FEVER, "north", node, f"h-{node}", "critical", f"fever at {node}")


def test_a_batch_of_alarms_is_one_info_line_naming_each_id(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    alerts: list[Alert] = []
    book = AlarmBook(store, alerts.append, LiveFeed())
    drafts = [fever(f"g{i:02d}") for i in range(30)]
    drafts.append(AlarmDraft(AlertKind.RED_CODE, "north", "g01", "r1", "warning", "red code"))
    with caplog.at_level(logging.INFO, logger="gateway.alarms"):
        raised = book.raise_alarms(drafts)
    assert len(raised) == len(alerts) == 31  # every alarm still published, one by one
    [line] = [r for r in caplog.records if r.name == "gateway.alarms"]
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith("31 alarms raised (fever 30, red-code 1): ")
    assert all(alarm.alarm_id in line.getMessage() for alarm in raised)


def test_a_single_alarm_stays_a_warning_with_its_id_and_message(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    book = AlarmBook(store, lambda _alert: None, LiveFeed())
    with caplog.at_level(logging.INFO, logger="gateway.alarms"):
        alarm = book.raise_alarm(fever("g01"))
    assert alarm is not None
    [line] = [r for r in caplog.records if r.name == "gateway.alarms"]
    assert line.levelno == logging.WARNING
    assert line.getMessage() == f"alarm fever raised ({alarm.alarm_id}): fever at g01"
