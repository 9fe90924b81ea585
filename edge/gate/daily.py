"""Daily report arithmetic: the period up to the cut-off hour, and what each event counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import NamedTuple, TypedDict
from zoneinfo import ZoneInfo

from edge.contract.base import Event
from edge.contract.events import CheckpointCounts, Disinfection, HoldResolved, Passage

FEVER_REASONS = frozenset({"fever", "vehicle-fever"})
_BY_OUTCOME = {"allow": "allowed", "hold": "held", "deny": "turned_back"}


class ReportPeriod(NamedTuple):
    """From one cut-off (included) to the next (excluded), in the site's local time."""

    start: datetime
    end: datetime


class DailyReportFields(TypedDict):
    """The DailyReport fields that come from the period and the counts."""

    day: date
    period_start: datetime
    period_end: datetime
    counts: CheckpointCounts
    zero_report: bool


def report_period(now: datetime, cutoff_hour: int, tz: ZoneInfo) -> ReportPeriod:
    """The reporting period `now` falls in: it ends at the next cut-off hour, local time.

    At the cut-off instant itself the old period has closed, so the new one begins. A
    period is 23 or 25 hours long on the days clocks change. A cut-off hour that does
    not exist that day (clocks jump over it) falls at the instant of the jump; one that
    happens twice (clocks fall back over it) is the first of the two.

    Args:
        now: the node's time, timezone-aware.
        cutoff_hour: the local hour reports close at, 0 to 23.
        tz: the site's time zone.

    Returns:
        Start and end, each on the hour in `tz`, with that instant's UTC offset.

    Raises:
        ValueError: `now` is naive or `cutoff_hour` is not an hour of the day.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not 0 <= cutoff_hour <= 23:
        raise ValueError(f"cutoff_hour must be 0 to 23, not {cutoff_hour}")
    closing_day = now.astimezone(tz).date()
    if _cutoff(closing_day, cutoff_hour, tz) <= now:
        closing_day += timedelta(days=1)
    # Step by calendar days, never by 24 hours: a DST day has 23 or 25.
    return ReportPeriod(
        _cutoff(closing_day - timedelta(days=1), cutoff_hour, tz),
        _cutoff(closing_day, cutoff_hour, tz),
    )


def _cutoff(day: date, hour: int, tz: ZoneInfo) -> datetime:
    # A round trip through UTC moves a wall time inside a DST gap to the real instant.
    instant = datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC).astimezone(tz)
    # A fixed offset, not the zone: Python subtracts and compares two datetimes of one
    # zone by wall clock, which would make a 23-hour day 24 hours long.
    return instant.astimezone(timezone(instant.utcoffset() or timedelta()))


def tally(counts: CheckpointCounts, event: Event) -> CheckpointCounts:
    """The gate's counts after `event`.

    A passage counts one person-check (人次) or one vehicle-check (车次), its outcome
    (deny is a turn-back), its colour and a fever. Temperature readings count people
    measured: one for a person with a temperature, the occupants of a measured vehicle
    (one when the number is not known). A hold resolved by turning the person back
    counts a turn-back; a disinfection round counts. Other events change nothing.

    Args:
        counts: the counts so far in this period.
        event: any node event; the caller decides which period it belongs to.

    Returns:
        New counts (CheckpointCounts is immutable).
    """
    add: dict[str, int] = {}
    if isinstance(event, Passage):
        add = _passage(event)
    elif isinstance(event, HoldResolved) and event.resolution == "turned-back":
        add = {"turned_back": 1}
    elif isinstance(event, Disinfection):
        add = {"disinfections": 1}
    if not add:
        return counts
    current = counts.model_dump()
    return CheckpointCounts(**{name: current[name] + add.get(name, 0) for name in current})


def _passage(passage: Passage) -> dict[str, int]:
    add = {_BY_OUTCOME[passage.outcome]: 1}
    measured = passage.temperature_c is not None
    if passage.subject == "vehicle":
        add["vehicle_checks"] = 1
        add["temperature_readings"] = (passage.occupants or 1) if measured else 0
    else:
        add["person_checks"] = 1
        add["temperature_readings"] = int(measured)
    if FEVER_REASONS & set(passage.reasons):
        add["fever"] = 1
    if passage.colour is not None:
        add[passage.colour] = 1
    return add


def daily_report_fields(period: ReportPeriod, counts: CheckpointCounts) -> DailyReportFields:
    """The DailyReport fields for `period`, ready for `DailyReport(**ids, **fields)`.

    Args:
        period: from `report_period`, in the site's local time.
        counts: the period's counts; all zero makes it a zero-report (零报告).

    Returns:
        day (the local date the period closes), start, end, counts and zero_report.
    """
    return DailyReportFields(
        day=period.end.date(),
        period_start=period.start,
        period_end=period.end,
        counts=counts,
        zero_report=counts.is_zero,
    )
