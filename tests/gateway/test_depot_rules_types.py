"""Cumulative (time per local day) and rate (change per minute) depot conditions, by reading time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.configfile import ConfigError
from edge.contract.topics import AlertKind
from gateway.alarms import words_of
from gateway.config import GatewayConfig, SiteSection, load_config
from gateway.depot_rules import (
    ExcursionRules,
    never_evaluated,
    out_by_day,
    step_cumulative,
    step_rate,
)
from gateway.depot_summary import ZoneDaySummary, day_summaries, summarise
from gateway.storage_classes import AlarmCondition
from gateway.store.excursions import Excursion, ExcursionPhase
from gateway.store.settings import StoreSection
from tests.gateway.test_depot_rules import COLD, T0, Depot, at, reading

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
MIDNIGHT = 16 * 60.0  # minutes after T0 (00:00 UTC) of Shanghai's midnight into 2026-12-07
FRIDGE = "fridge-2"

WARM = AlarmCondition.model_validate({
    "name": "warm", "direction": "above", "threshold": 8.0, "type": "cumulative", "delay_min": 60,
})  # fmt: skip
DOOR = AlarmCondition.model_validate({
    "name": "door", "direction": "above", "threshold": 0.5, "type": "rate", "hysteresis": 0.25,
    "min_gap_min": 1, "max_gap_min": 15,
})  # fmt: skip
STOPPED = AlarmCondition.model_validate({
    "name": "cooling", "direction": "below", "threshold": 0.5, "type": "rate", "hysteresis": 0.25,
})  # fmt: skip


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- cumulative: how time between two readings is credited, per local day ------------------


@pytest.mark.parametrize(
    ("zone", "before_at", "before", "now", "expected"),
    [
        (SHANGHAI, at(0), 8.5, at(10), {"2026-12-06": 600}),
        (SHANGHAI, at(0), 8.0, at(10), {"2026-12-06": 600}),  # the threshold is in the range
        (SHANGHAI, at(0), 7.9, at(10), {}),  # the earlier reading was inside: nothing
        (SHANGHAI, None, None, at(10), {}),  # no earlier reading
        (SHANGHAI, at(10), 8.5, at(10), {}),  # not later: no time
        (SHANGHAI, at(10), 8.5, at(5), {}),
        (SHANGHAI, at(0), 8.5, at(120), {"2026-12-06": 1800}),  # a gap counts 30 min at most
        # Shanghai's midnight is 16:00 UTC: the time before it goes to the 6th, after to the 7th.
        (SHANGHAI, at(MIDNIGHT - 10), 8.5, at(MIDNIGHT + 10),
         {"2026-12-06": 600, "2026-12-07": 600}),
        (SHANGHAI, at(MIDNIGHT - 10), 8.5, at(MIDNIGHT + 120),
         {"2026-12-06": 600, "2026-12-07": 1200}),  # capped at 30 min, then split
        # Berlin (CET, +1) in December: midnight at 23:00 UTC.
        (BERLIN, utc("2026-12-06T22:50"), 8.5, utc("2026-12-06T23:10"),
         {"2026-12-06": 600, "2026-12-07": 600}),
        # The night after summer time began (29 March, CEST, +2): midnight at 22:00 UTC.
        (BERLIN, utc("2026-03-29T21:50"), 8.5, utc("2026-03-29T22:10"),
         {"2026-03-29": 600, "2026-03-30": 600}),
    ],
)  # fmt: skip
def test_out_by_day__valid(
    zone: ZoneInfo, before_at: datetime | None, before: float | None, now: datetime,
    expected: dict[str, float],
) -> None:  # fmt: skip
    assert out_by_day(WARM, before_at, before, now, zone) == expected


@pytest.mark.parametrize(
    ("before", "minutes", "value", "expected"),
    [
        # before: (day, minutes out so far, phase, reference reading's minute and value)
        (None, 0, 8.5, ("2026-12-06", 0, "out", "", "")),  # nothing to credit yet
        (("2026-12-06", 0, "out", 0, 8.5), 10, 7.0, ("2026-12-06", 10, "inside", "", "")),
        (("2026-12-06", 50, "out", 100, 8.5), 110, 7.0,
         ("2026-12-06", 60, "raised", "raise", "60 on 2026-12-06")),
        (("2026-12-06", 50, "inside", 100, 7.0), 110, 8.5, ("2026-12-06", 50, "out", "", "")),
        (("2026-12-06", 30, "out", 100, 8.5), 300, 8.5,
         ("2026-12-06", 60, "raised", "raise", "60 on 2026-12-06")),  # a gap counts 30
        (("2026-12-06", 70, "raised", 200, 8.5), 210, 4.0, ("2026-12-06", 80, "raised", "", "")),
        # across Shanghai's midnight: 10 min to the 6th (raising it), 10 to the 7th
        (("2026-12-06", 55, "out", MIDNIGHT - 10, 8.5), MIDNIGHT + 10, 8.5,
         ("2026-12-07", 10, "out", "raise", "65 on 2026-12-06")),
        (("2026-12-06", 70, "raised", MIDNIGHT - 10, 7.0), MIDNIGHT + 10, 8.5,
         ("2026-12-07", 0, "out", "", "")),  # a new day: no longer raised
    ],
)  # fmt: skip
def test_step_cumulative__valid(
    before: tuple[str, float, ExcursionPhase, float, float] | None, minutes: float,
    value: float, expected: tuple[str, float, str, str, str],
) -> None:  # fmt: skip
    """expected: the day, its minutes out, the phase, the change, and a raise's total."""
    state = never_evaluated("north", "d01", COLD, "warm")
    if before is not None:
        day, out_min, phase, ref_min, ref_value = before
        state = Excursion("north", "d01", COLD, "warm", phase, None, at(ref_min), day,
                          out_min * 60, at(ref_min), ref_value)  # fmt: skip
    stepped = step_cumulative(WARM, state, reading(minutes, value), value, SHANGHAI)
    assert stepped is not None
    new, change, facts = stepped
    raised = f"{facts['lasted_min']} on {facts['day']}" if facts else ""
    assert (new.day, new.day_out_s / 60, new.phase, change, raised) == expected
    assert (new.last_at, new.ref_at, new.ref_value) == (at(minutes), at(minutes), value)


def test_step_cumulative__invalid__a_reading_not_newer_is_not_evaluated() -> None:
    state = Excursion("north", "d01", COLD, "warm", "out", None, at(10), "2026-12-06", 600.0,
                      at(10), 8.5)  # fmt: skip
    assert step_cumulative(WARM, state, reading(10, 8.5), 8.5, SHANGHAI) is None


CLASSES = {
    "warm-day": {"conditions": [WARM.model_dump()]},
    "door": {"conditions": [DOOR.model_dump(), STOPPED.model_dump()]},
}


@pytest.fixture
def depot(store_section: StoreSection) -> Iterator[Depot]:
    """Site north (Asia/Shanghai): cold-store-1 kept at a 60 min per day cumulative
    condition, fridge-2 at a rising and a falling rate condition."""
    site = SiteSection.model_validate({
        "name": "north", "depots": ["d01"], "storage_classes": CLASSES,
        "zones": {"d01": {COLD: "warm-day", FRIDGE: "door"}},
    })  # fmt: skip
    made = Depot(GatewayConfig(sites=(site,), store=store_section))
    yield made
    made.store.close()


def every_10_min(depot: Depot, start: float, temperatures: list[float]) -> None:
    for i, temperature in enumerate(temperatures):
        depot.arrive(reading(start + 10 * i, temperature))


def day_sum(depot: Depot) -> tuple[str | None, float]:
    state = depot.store.excursions("north", "d01")[(COLD, "warm")]
    return state.day, state.day_out_s / 60


def test_cumulative__short_excursions_add_up_over_the_day_and_raise_at_the_delay(
    depot: Depot,
) -> None:
    # Out and back every 10 min: no excursion lasts, but each reading out stands 10 min.
    every_10_min(depot, 0, [8.5, 7.0] * 5 + [8.5])  # minutes 0 to 100: five times out
    assert day_sum(depot) == ("2026-12-06", 50)
    assert depot.states() == []
    depot.arrive(reading(110, 7.0))  # the sixth 10 min out ends: 60 min in all
    assert depot.states() == ["raised"]
    assert depot.alerts[-1].message == (
        "north/d01 zone cold-store-1 at 7.0 °C: 8.0 °C or above for 60 min in all on "
        "2026-12-06 (warm-day warm)"
    )
    alarm = depot.store.live_alarm(AlertKind.DEPOT_CLIMATE, "north", "d01", f"{COLD}/warm")
    assert alarm is not None
    assert words_of(alarm).key == "depot-climate.temperature-above-day"
    assert words_of(alarm).values["day"] == "2026-12-06"


def test_cumulative__stays_raised_until_a_person_clears_it_and_may_raise_again_the_next_day(
    depot: Depot,
) -> None:
    every_10_min(depot, 0, [8.5] * 7)
    assert depot.states() == ["raised"]
    every_10_min(depot, 70, [4.0] * 6)  # well back inside: the readings do not clear it
    assert depot.states() == ["raised"]
    alarm = depot.store.live_alarm(AlertKind.DEPOT_CLIMATE, "north", "d01", f"{COLD}/warm")
    assert alarm is not None
    depot.book.clear(alarm.alarm_id, "duty-officer")
    every_10_min(depot, 200, [8.5] * 12)  # two more hours out the same day: not again
    assert depot.states() == ["raised", "cleared"]
    every_10_min(depot, MIDNIGHT + 10, [8.5] * 7)  # the next local day: a new sum
    assert depot.states() == ["raised", "cleared", "raised"]
    assert "in all on 2026-12-07" in depot.alerts[-1].message
    assert depot.alerts[-1].alert_id != alarm.alarm_id


def test_cumulative__an_hour_out_across_midnight_is_half_an_hour_on_each_day(depot: Depot) -> None:
    every_10_min(depot, MIDNIGHT - 30, [8.5] * 7)  # 23:30 to 00:30 local, out all along
    assert depot.states() == []
    assert day_sum(depot) == ("2026-12-07", 30)
    every_10_min(depot, MIDNIGHT + 40, [8.5] * 3)  # 00:40 to 01:00: 60 min on the 7th
    assert depot.states() == ["raised"]
    assert "for 60 min in all on 2026-12-07" in depot.alerts[-1].message


def test_cumulative__the_days_sum_is_the_summarys_minutes_out_of_range(depot: Depot) -> None:
    # Irregular: a 45 min gap (counts 30), faults between, readings at the threshold.
    samples = [(0, 5.0), (7, 8.0), (19, 9.5), (64, 8.2), (70, None), (71, 7.99),
               (80, 8.1), (83, 8.1), (300, 8.3), (301, 4.0)]  # fmt: skip
    for minute, temperature in samples:
        if temperature is None:
            depot.arrive(reading(minute, None, status="timeout"))
        else:
            depot.arrive(reading(minute, temperature))
    head = ZoneDaySummary(site="north", node="d01", zone=COLD, day="2026-12-06")
    site = depot.config.site("north")
    assert site is not None
    summary = summarise(
        head, [(at(m), t, 50.0 if t is not None else None) for m, t in samples],
        site.storage_class("d01", COLD),
    )  # fmt: skip
    assert summary.minutes_out_of_range == 12 + 30 + 7 + 3 + 30 + 1  # 64 stands until 71
    assert day_sum(depot) == ("2026-12-06", summary.minutes_out_of_range)


def test_cumulative__across_midnight_each_days_summary_is_the_rules_sum(depot: Depot) -> None:
    # Out from 23:00 local; the 23:55 reading stands until 00:05, 5 min on each day.
    samples = [(MIDNIGHT - 60 + 10 * i, 8.5) for i in range(6)] + [
        (MIDNIGHT - 5, 8.5), (MIDNIGHT + 5, 8.5), (MIDNIGHT + 15, 8.5), (MIDNIGHT + 25, 7.0),
        (MIDNIGHT + 30, None), (MIDNIGHT + 40, 7.0),
    ]  # fmt: skip
    for minute, temperature in samples:
        if minute == MIDNIGHT + 5:
            assert depot.states() == []  # 55 min so far on the 6th
        if temperature is None:
            depot.arrive(reading(minute, None, status="timeout"))
        else:
            depot.arrive(reading(minute, temperature))
    # The 6th reached its hour with the reading after midnight, which credited its last 5 min.
    assert depot.states() == ["raised"]
    assert "for 60 min in all on 2026-12-06" in depot.alerts[-1].message
    assert day_sum(depot) == ("2026-12-07", 5 + 10 + 10)
    site = depot.config.site("north")
    assert site is not None
    # The summaries from the store, as the API's: the readings either side of each day too.
    sixth, seventh = (
        next(s for s in day_summaries(depot.store, site, "d01", day) if s.zone == COLD)
        for day in (date(2026, 12, 6), date(2026, 12, 7))
    )
    assert (sixth.minutes_out_of_range, seventh.minutes_out_of_range) == (60, 25)
    # Every zone with a class has its row, readings or none.
    rows = day_summaries(depot.store, site, "d01", date(2026, 12, 7))
    assert [(s.zone, s.readings) for s in rows] == [(COLD, 4), (FRIDGE, 0)]
    kept_at = site.storage_class("d01", COLD)
    every = [(at(m), t, 50.0 if t is not None else None) for m, t in samples]
    for summary in (sixth, seventh):
        head = ZoneDaySummary(site="north", node="d01", zone=COLD, day=summary.day)
        assert summarise(head, every, kept_at, SHANGHAI).minutes_out_of_range == (
            summary.minutes_out_of_range
        )
    # The figures are each day's own readings: those either side only credit time.
    assert (sixth.readings, sixth.faults, sixth.temperature_min_c) == (7, 0, 8.5)
    assert (seventh.readings, seventh.faults, seventh.temperature_min_c) == (4, 1, 7.0)
    # Given only the day's readings and no time zone, the time across midnight is left out.
    alone = summarise(ZoneDaySummary(site="north", node="d01", zone=COLD, day="2026-12-06"),
                      every[:7], kept_at)  # fmt: skip
    assert (alone.readings, alone.minutes_out_of_range) == (7, 55)


def test_cumulative__a_silence_across_midnight_counts_once_the_sensor_is_back(
    depot: Depot,
) -> None:
    site = depot.config.site("north")
    assert site is not None

    def minutes_out(day: date) -> float:
        rows = day_summaries(depot.store, site, "d01", day)
        return next(s.minutes_out_of_range for s in rows if s.zone == COLD)

    every_10_min(depot, MIDNIGHT - 60, [8.5] * 6)  # 23:00 to 23:50 local, out: 50 min
    assert minutes_out(date(2026, 12, 6)) == 50  # the 23:50 reading has no next one yet
    depot.arrive(reading(MIDNIGHT + 120, 8.5))  # 02:00: 23:50 stood 30 min, 10 on the 6th
    assert "for 60 min in all on 2026-12-06" in depot.alerts[-1].message
    assert day_sum(depot) == ("2026-12-07", 20)
    assert (minutes_out(date(2026, 12, 6)), minutes_out(date(2026, 12, 7))) == (60, 20)
    # A zone silent the whole day after a reading out shortly before it began.
    every_10_min(depot, MIDNIGHT + 24 * 60 - 10, [8.5])  # the 7th at 23:50, then silence
    depot.arrive(reading(MIDNIGHT + 48 * 60 + 60, 8.5))  # the 9th at 01:00
    credited = out_by_day(WARM, at(MIDNIGHT + 24 * 60 - 10), 8.5, at(MIDNIGHT + 48 * 60 + 60),
                          SHANGHAI)  # fmt: skip
    assert credited == {"2026-12-07": 600, "2026-12-08": 1200}
    assert minutes_out(date(2026, 12, 8)) == 20  # 00:00 to 00:20, as the rule credits it
    assert day_sum(depot) == ("2026-12-09", 0)


def test_cumulative__a_replay_or_a_late_batch_counts_no_time_twice(depot: Depot) -> None:
    first = depot.arrive(reading(0, 8.5), reading(10, 8.5), reading(20, 8.5))
    depot.deliver(first)  # the same event_id: the store does not hand it on
    ExcursionRules(depot.config, depot.store, depot.book).on_stored([first, first])
    assert day_sum(depot) == ("2026-12-06", 20)
    depot.deliver(depot.batch(reading(5, 8.5), reading(15, 8.5)))  # older than minute 20
    assert day_sum(depot) == ("2026-12-06", 20)
    every_10_min(depot, 30, [8.5] * 4)
    assert depot.states() == ["raised"]  # at minute 60, not earlier


def test_cumulative__a_restart_keeps_the_days_sum(depot: Depot) -> None:
    every_10_min(depot, 0, [8.5, 7.0, 8.5, 7.0])  # 20 min
    depot.restart()
    every_10_min(depot, 40, [8.5, 7.0, 8.5])  # 30 min
    depot.restart()
    assert day_sum(depot) == ("2026-12-06", 30)
    every_10_min(depot, 70, [7.0])
    assert depot.states() == []
    depot.restart()
    every_10_min(depot, 80, [8.5, 8.5, 8.5])  # 10 + 10: 60 at minute 100
    assert depot.states() == ["raised"]


# --- rate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "before", "seconds", "value", "expected"),
    [
        (DOOR, None, 0, 4.0, ("inside", "", 0)),  # the first reading is the reference
        (DOOR, ("inside", 0, 4.0), 60, 5.0, ("raised", "raise", 60)),  # 1.0 °C/min
        (DOOR, ("inside", 0, 4.0), 60, 4.5, ("raised", "raise", 60)),  # 0.5: the threshold counts
        (DOOR, ("inside", 0, 4.0), 60, 4.25, ("inside", "", 60)),
        (DOOR, ("inside", 0, 4.0), 120, 5.0, ("raised", "raise", 120)),  # 0.5 over two minutes
        (DOOR, ("inside", 0, 4.0), 60, 3.0, ("inside", "", 60)),  # falling: not this one's
        (DOOR, ("inside", 0, 4.0), 30, 6.0, ("inside", "", 0)),  # too close: waits, kept
        (DOOR, ("inside", 0, 4.0), 20 * 60, 14.0, ("inside", "", 20 * 60)),  # after a gap: not judged
        (DOOR, ("raised", 0, 4.0), 60, 4.5, ("raised", "", 60)),  # not 0.25 back inside yet
        (DOOR, ("raised", 0, 4.0), 60, 4.25, ("inside", "clear", 60)),  # the band's edge clears
        (DOOR, ("raised", 0, 4.0), 20 * 60, 4.0, ("raised", "", 20 * 60)),  # a gap clears nothing
        (STOPPED, ("inside", 0, 4.0), 60, 3.5, ("raised", "raise", 60)),  # falling 0.5 °C/min
        (STOPPED, ("inside", 0, 4.0), 60, 5.0, ("inside", "", 60)),
    ],
)  # fmt: skip
def test_step_rate__valid(
    condition: AlarmCondition, before: tuple[ExcursionPhase, float, float] | None,
    seconds: float, value: float, expected: tuple[str, str, float],
) -> None:  # fmt: skip
    """expected: the phase after, what it does to the alarm, the reference reading's time."""
    phase, change, reference_s = expected
    state = never_evaluated("north", "d01", FRIDGE, condition.name)
    if before is not None:
        ref_at = T0 + timedelta(seconds=before[1])
        state = Excursion("north", "d01", FRIDGE, condition.name, before[0], None, ref_at,
                          ref_at=ref_at, ref_value=before[2])  # fmt: skip
    now = T0 + timedelta(seconds=seconds)
    stepped = step_rate(condition, state, reading(seconds / 60, value, sensor=FRIDGE), value)
    assert stepped is not None
    new, made, _ = stepped
    assert (new.phase, made) == (phase, change)
    assert new.last_at == now
    assert new.ref_at == T0 + timedelta(seconds=reference_s)


def test_step_rate__invalid__a_reading_not_newer_is_not_evaluated() -> None:
    state = Excursion("north", "d01", FRIDGE, "door", "inside", None, at(5), ref_at=at(5),
                      ref_value=4.0)  # fmt: skip
    assert step_rate(DOOR, state, reading(5, 9.0, sensor=FRIDGE), 9.0) is None


def test_rate__a_door_left_open_raises_and_clears_once_the_fridge_settles(depot: Depot) -> None:
    temperatures = [4.0, 4.0, 4.0, 4.0, 4.6, 5.2, 5.6, 5.8, 5.9, 5.9, 5.9]  # every 30 s
    for i, temperature in enumerate(temperatures[:5]):
        depot.arrive(reading(i / 2, temperature, sensor=FRIDGE))
    assert depot.states() == ["raised"]
    assert depot.alerts[-1].message == (
        "north/d01 zone fridge-2 rising 0.60 °C/min to 4.6 °C over 1.0 min: 0.50 °C/min or "
        "faster (door door)"
    )
    for i, temperature in enumerate(temperatures[5:9], start=5):
        depot.arrive(reading(i / 2, temperature, sensor=FRIDGE))
    assert depot.states() == ["raised"]  # slowing down, still within the band
    for i, temperature in enumerate(temperatures[9:], start=9):
        depot.arrive(reading(i / 2, temperature, sensor=FRIDGE))
    assert depot.states() == ["raised", "cleared"]


def test_rate__a_reading_after_a_long_silence_is_not_a_door(depot: Depot) -> None:
    depot.arrive(reading(0, 4.0, sensor=FRIDGE))
    depot.arrive(reading(1, 4.1, sensor=FRIDGE))
    depot.arrive(reading(40, 14.0, sensor=FRIDGE))  # 39 min later: not known to be sudden
    depot.arrive(reading(41, 14.1, sensor=FRIDGE))
    assert depot.states() == []
    depot.arrive(reading(42, 13.0, sensor=FRIDGE))  # now it is: falling 1.1 °C/min
    assert depot.states() == ["raised"]
    assert depot.alerts[-1].message.startswith("north/d01 zone fridge-2 falling 1.10 °C/min")


def test_rate__a_restart_keeps_the_reference_reading(depot: Depot) -> None:
    depot.arrive(reading(0, 4.0, sensor=FRIDGE))
    depot.restart()
    depot.arrive(reading(0.5, 9.0, sensor=FRIDGE))  # too close: compared later with minute 0
    depot.restart()
    depot.arrive(reading(1, 4.8, sensor=FRIDGE))
    assert depot.states() == ["raised"]


# --- config --------------------------------------------------------------------------------

CLASS = "sites: [{name: n, depots: [d01], storage_classes: {v: {conditions: [%s]}}}]"
SITE = "sites: [{name: n, depots: [d01], %s}]"
ALARMS = "sites: [{name: n}]\nalarms: {escalate_after_min: %s}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CLASS % "{name: w, direction: above, threshold: 8, type: cumulative}",
         "delay_min: a cumulative condition needs a delay"),
        (CLASS % "{name: w, direction: above, threshold: 8, type: cumulative, delay_min: 1441}",
         "delay_min: a day holds at most 1440 minutes"),
        (CLASS % "{name: w, direction: above, threshold: 120, type: cumulative, delay_min: 60}",
         "conditions.0.threshold: Value error, outside what a sensor reports"),
        (CLASS % "{name: d, direction: above, threshold: 0, type: rate, hysteresis: 0}",
         "conditions.0.threshold: Value error, a rate per minute is more than 0"),
        (CLASS % "{name: d, direction: above, threshold: 11, type: rate}",
         "conditions.0.threshold: Value error, a rate per minute is more than 0 and at most 10"),
        (CLASS % "{name: d, direction: above, threshold: 1, type: rate, delay_min: 5}",
         "delay_min: a rate condition has no delay"),
        (CLASS % "{name: d, direction: above, threshold: 0.4, type: rate}",
         "hysteresis: a rate's band is at most its threshold"),
        (CLASS % "{name: d, direction: above, threshold: 1, type: rate, min_gap_min: 0}",
         "conditions.0.min_gap_min"),
        (CLASS % "{name: d, direction: above, threshold: 1, type: rate, max_gap_min: 241}",
         "conditions.0.max_gap_min"),
        (CLASS % "{name: d, direction: above, threshold: 1, type: rate, min_gap_min: 10, "
                 "max_gap_min: 5}", "max_gap_min: less than min_gap_min"),
        (CLASS % "{name: d, direction: above, threshold: 1, type: daily, delay_min: 5}",
         "conditions.0.type: Input should be"),
        (SITE % "depot_stale_after_min: -1", "sites.0.depot_stale_after_min"),
        (SITE % "depot_stale_after_min: 1441", "sites.0.depot_stale_after_min"),
        (SITE % "depot_stale_after_min: often", "sites.0.depot_stale_after_min"),
        (ALARMS % "-1", "alarms.escalate_after_min"),
        (ALARMS % "20000", "alarms.escalate_after_min"),
        (ALARMS % "soon", "alarms.escalate_after_min"),
    ],
)  # fmt: skip
def test_load_config__cumulative_rate_stale_escalation__invalid(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)


def test_load_config__cumulative_rate_stale_escalation__valid(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "sites: [{name: n, depots: [d01], depot_stale_after_min: 30, zones: {d01: {f: v}},\n"
        "  storage_classes: {v: {conditions: [\n"
        "    {name: warm, direction: above, threshold: 8, type: cumulative, delay_min: 600},\n"
        "    {name: door, direction: above, threshold: 0.5, type: rate, hysteresis: 0.2}]}}}]\n"
        "alarms: {escalate_after_min: 15}\n"
    )
    config = load_config(path)
    site = config.site("n")
    assert site is not None
    kept = site.storage_class("d01", "f")
    assert kept is not None
    assert [(c.type, c.delay_min, c.min_gap_min, c.max_gap_min) for c in kept.conditions] == [
        ("cumulative", 600.0, 1.0, 15.0), ("rate", 0.0, 1.0, 15.0),
    ]  # fmt: skip
    assert (site.depot_stale_after_min, config.alarms.escalate_after_min) == (30.0, 15.0)
    # Unless set: a zone is stale after 15 min, and nothing escalates.
    assert SiteSection(name="m").depot_stale_after_min == 15.0
    assert GatewayConfig(sites=(site,)).alarms.escalate_after_min == 0.0
