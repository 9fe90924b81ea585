"""Daily report arithmetic: periods around the cut-off and across DST, counts per event, zero-report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge.contract.base import Event, new_event_id
from edge.contract.events import (
    CheckpointCounts,
    DailyReport,
    Disinfection,
    HoldResolved,
    Passage,
    Shift,
)
from edge.gate.daily import daily_report_fields, report_period, tally

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def local(tz: ZoneInfo, *fields: int) -> datetime:
    year, month, day, hour, minute, second = (*fields, 0, 0, 0)[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        pytest.param(local(SHANGHAI, 2026, 11, 22, 7, 59, 59), (2026, 11, 21, 8), (2026, 11, 22, 8), id="just before"),
        pytest.param(local(SHANGHAI, 2026, 11, 22, 8, 0, 0), (2026, 11, 22, 8), (2026, 11, 23, 8), id="exactly at"),
        pytest.param(local(SHANGHAI, 2026, 11, 22, 8, 0, 1), (2026, 11, 22, 8), (2026, 11, 23, 8), id="just after"),
        pytest.param(datetime(2026, 11, 22, 0, 30, tzinfo=UTC), (2026, 11, 22, 8), (2026, 11, 23, 8), id="utc input, local 08:30"),
        pytest.param(local(SHANGHAI, 2026, 12, 31, 23, 0), (2026, 12, 31, 8), (2027, 1, 1, 8), id="year end"),
    ],
)  # fmt: skip
def test_report_period__around_the_cutoff(
    now: datetime, start: tuple[int, ...], end: tuple[int, ...]
) -> None:
    period = report_period(now, 8, SHANGHAI)
    assert period == (local(SHANGHAI, *start), local(SHANGHAI, *end))
    assert period.start <= now < period.end
    assert period.end - period.start == timedelta(hours=24)


@pytest.mark.parametrize(
    ("now", "cutoff", "start", "end", "hours"),
    [
        pytest.param(local(BERLIN, 2026, 3, 29, 7, 0), 8, "2026-03-28T08:00:00+01:00", "2026-03-29T08:00:00+02:00", 23, id="spring forward"),
        pytest.param(local(BERLIN, 2026, 10, 25, 7, 0), 8, "2026-10-24T08:00:00+02:00", "2026-10-25T08:00:00+01:00", 25, id="fall back"),
        pytest.param(local(BERLIN, 2026, 3, 30, 7, 0), 8, "2026-03-29T08:00:00+02:00", "2026-03-30T08:00:00+02:00", 24, id="day after spring forward"),
        pytest.param(local(BERLIN, 2026, 3, 29, 1, 30), 2, "2026-03-28T02:00:00+01:00", "2026-03-29T03:00:00+02:00", 24, id="cut-off hour skipped"),
        pytest.param(local(BERLIN, 2026, 10, 25, 1, 30), 2, "2026-10-24T02:00:00+02:00", "2026-10-25T02:00:00+02:00", 24, id="cut-off hour twice: first"),
        pytest.param(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 2, "2026-10-25T02:00:00+02:00", "2026-10-26T02:00:00+01:00", 25, id="cut-off hour twice: after first"),
        pytest.param(local(BERLIN, 2026, 6, 1, 0, 0), 0, "2026-06-01T00:00:00+02:00", "2026-06-02T00:00:00+02:00", 24, id="midnight"),
    ],
)  # fmt: skip
def test_report_period__across_dst(
    now: datetime, cutoff: int, start: str, end: str, hours: int
) -> None:
    period = report_period(now, cutoff, BERLIN)
    assert (period.start.isoformat(), period.end.isoformat()) == (start, end)
    assert period.end - period.start == timedelta(hours=hours)
    assert period.start <= now < period.end


@pytest.mark.parametrize(
    ("now", "cutoff", "message"),
    [
        pytest.param(datetime(2026, 11, 22, 9, 0), 8, "timezone-aware", id="naive now"),
        pytest.param(AT, 24, "0 to 23", id="hour 24"),
        pytest.param(AT, -1, "0 to 23", id="hour -1"),
    ],
)
def test_report_period__invalid(now: datetime, cutoff: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        report_period(now, cutoff, SHANGHAI)


_seq = iter(range(1, 1_000_000))


def event(model: type[Event], **fields: Any) -> Event:
    return model(event_id=new_event_id(AT), seq=next(_seq), node_time=AT, **fields)


def passage(**fields: Any) -> Event:
    given = {"direction": "in", "outcome": "allow", "credential": "health-code", **fields}
    return event(Passage, **given)


HOLD_ID = new_event_id(AT)


@pytest.mark.parametrize(
    ("happened", "changes"),
    [
        pytest.param(passage(colour="green", temperature_c=36.6), {"person_checks": 1, "temperature_readings": 1, "allowed": 1, "green": 1}, id="person allowed"),
        pytest.param(passage(outcome="hold", credential="none", reasons=("no-code", "measure-temperature")), {"person_checks": 1, "held": 1}, id="person held, not measured"),
        pytest.param(passage(outcome="hold", colour="yellow", reasons=("yellow-code", "fever"), temperature_c=38.2), {"person_checks": 1, "temperature_readings": 1, "held": 1, "fever": 1, "yellow": 1}, id="yellow with fever"),
        pytest.param(passage(outcome="deny", colour="red", reasons=("red-code",), temperature_c=36.9), {"person_checks": 1, "temperature_readings": 1, "turned_back": 1, "red": 1}, id="red denied"),
        pytest.param(passage(outcome="hold", colour="green", reasons=("re-measure",), temperature_c=37.4), {"person_checks": 1, "temperature_readings": 1, "held": 1, "green": 1}, id="re-measure is no fever"),
        pytest.param(passage(subject="vehicle", occupants=3, temperature_c=36.8, credential="registration"), {"vehicle_checks": 1, "temperature_readings": 3, "allowed": 1}, id="vehicle of three"),
        pytest.param(passage(subject="vehicle", outcome="hold", reasons=("vehicle-fever",), temperature_c=38.0, credential="registration"), {"vehicle_checks": 1, "temperature_readings": 1, "held": 1, "fever": 1}, id="vehicle, occupants unknown"),
        pytest.param(passage(subject="vehicle", occupants=2, outcome="hold", reasons=("measure-temperature",), credential="none"), {"vehicle_checks": 1, "held": 1}, id="vehicle not measured"),
        pytest.param(event(HoldResolved, hold_id=HOLD_ID, resolution="turned-back", volunteer_id="v017"), {"turned_back": 1}, id="hold turned back"),
        pytest.param(event(HoldResolved, hold_id=HOLD_ID, resolution="released", volunteer_id="v017", temperature_c=36.7), {}, id="hold released"),
        pytest.param(event(Disinfection, volunteer_id="v017", area="hut"), {"disinfections": 1}, id="disinfection"),
        pytest.param(event(Shift, action="start", volunteer_id="v017"), {}, id="shift changes nothing"),
    ],
)  # fmt: skip
def test_tally__each_event_kind(happened: Event, changes: dict[str, int]) -> None:
    before = CheckpointCounts(person_checks=5, held=1, green=4, disinfections=2)
    after = tally(before, happened)
    difference = {
        name: count - before.model_dump()[name]
        for name, count in after.model_dump().items()
        if count != before.model_dump()[name]
    }
    assert difference == changes


def test_daily_report__counts_of_a_day_validate_as_a_report() -> None:
    period = report_period(local(BERLIN, 2026, 10, 25, 6, 0), 8, BERLIN)
    day = [
        passage(colour="green", temperature_c=36.6),
        passage(outcome="deny", colour="red", reasons=("red-code",), temperature_c=36.5),
        event(Disinfection, volunteer_id="v017", area="hut"),
    ]
    counts = reduce(tally, day, CheckpointCounts())
    report = DailyReport(
        event_id=new_event_id(AT),
        seq=99,
        node_time=period.end,
        **daily_report_fields(period, counts),
    )
    assert report.day.isoformat() == "2026-10-25"
    assert (report.period_start, report.period_end) == period
    assert report.counts == CheckpointCounts(
        person_checks=2,
        temperature_readings=2,
        allowed=1,
        turned_back=1,
        green=1,
        red=1,
        disinfections=1,
    )
    assert report.zero_report is False


def test_daily_report__a_quiet_day_is_a_zero_report() -> None:
    period = report_period(local(SHANGHAI, 2026, 11, 22, 23, 0), 0, SHANGHAI)
    fields = daily_report_fields(
        period, reduce(tally, [event(Shift, action="end", volunteer_id="v017")], CheckpointCounts())
    )
    report = DailyReport(event_id=new_event_id(AT), seq=7, node_time=AT, **fields)
    # A midnight cut-off closes the day that ends: the report is dated the next day.
    assert (report.zero_report, report.day.isoformat()) == (True, "2026-11-23")
