"""A depot zone's day in figures: min, max, mean, mean kinetic temperature, time out of range.

Mean kinetic temperature (MKT) is the single temperature that would age stored goods as the
day's varying temperatures did (USP <1160>, the Haynes equation):

    MKT = (ΔH/R) / -ln( Σ exp(-ΔH/(R·Tᵢ)) / n )       Tᵢ in kelvin, ΔH/R = 10,000 K

It weighs warm hours more than the mean does: a cold store at 5 °C with two hours at
25 °C has a mean of 6.7 °C and an MKT of 9.8 °C.

Time out of range is credited as the excursion rules' cumulative conditions credit it
(gateway/depot_rules.py), by one function, `held_by_day`: each ok reading stands until the
next, at most `HOLDS_AT_MOST`, and the time before the site's local midnight is its day's,
after it the next day's. So a day's minutes out of range and a cumulative alarm's sum agree,
across midnight too, when the summary is given the readings either side of the day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from gateway.storage_classes import AlarmCondition, StorageClass

if TYPE_CHECKING:
    from gateway.config import SiteSection
    from gateway.store.base import DepotStore
    from gateway.store.excursions import Excursion

KELVIN = 273.15
ACTIVATION_K = 10_000.0  # ΔH/R, USP <1160>'s default for pharmaceuticals
# A reading stands for the time until the next one, but never longer than this: a sensor
# that fell silent does not keep its last value out of range for hours.
HOLDS_AT_MOST = timedelta(minutes=30)
# A day of a minute's readings of a few dozen zones; more is cut at the limit.
DAY_READINGS_MAX = 200_000


class ZoneDaySummary(BaseModel):
    """One zone of a depot on one local day (the site's time zone)."""

    site: str
    node: str
    zone: str
    day: str = Field(description="YYYY-MM-DD, the site's local day")
    storage_class: str | None = Field(None, description="the zone's class; none if unassigned")
    readings: int = Field(0, description="ok readings in the day")
    faults: int = Field(0, description="readings without values (timeout, crc, range)")
    temperature_min_c: float | None = None
    temperature_max_c: float | None = None
    temperature_mean_c: float | None = None
    mean_kinetic_c: float | None = Field(None, description="USP <1160>, ΔH/R = 10,000 K")
    humidity_max_pct: float | None = None
    minutes_out_of_range: float = Field(
        0.0, description="time the zone's class conditions' thresholds were crossed, each "
        "reading standing until the next (at most 30 min)",
    )  # fmt: skip


def mean_kinetic_temperature(temperatures_c: Sequence[float]) -> float:
    """MKT in °C of equally spaced readings (USP <1160>)."""
    if not temperatures_c:
        raise ValueError("no temperatures")
    total = sum(math.exp(-ACTIVATION_K / (t + KELVIN)) for t in temperatures_c)
    return ACTIVATION_K / -math.log(total / len(temperatures_c)) - KELVIN


Sample = tuple[datetime, float | None, float | None]  # when, °C, %RH (None: no value)


def held_by_day(at: datetime, next_at: datetime, zone: tzinfo) -> dict[str, float]:
    """Seconds per local day (YYYY-MM-DD in `zone`) that an ok reading at `at` stands for,
    the next ok one being at `next_at`: until then, at most `HOLDS_AT_MOST` (a silent sensor
    invents no time), split at the site's local midnight. Empty when `next_at` is not later.

    The one crediting of time between readings: the day's summary and the cumulative
    conditions (gateway/depot_rules.py `out_by_day`) both count with it.
    """
    start, end = at, min(next_at, at + HOLDS_AT_MOST)
    by_day: dict[str, float] = {}
    while start < end:
        local = start.astimezone(zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=zone)
        part_end = min(end, max(midnight.astimezone(UTC), start + timedelta(seconds=1)))
        day = local.date().isoformat()
        by_day[day] = by_day.get(day, 0.0) + (part_end - start).total_seconds()
        start = part_end
    return by_day


def summarise(
    head: ZoneDaySummary, samples: Sequence[Sample], storage_class: StorageClass | None,
    zone: ZoneInfo | None = None,
) -> ZoneDaySummary:  # fmt: skip
    """`head` (which zone, which day, its class) filled from the zone's samples, in time
    order; a sample without a temperature is a fault.

    Args:
        head: the zone and its local day (`head.day`).
        samples: the day's samples; with `zone`, also those around it: the ok reading
            before the day (at most `HOLDS_AT_MOST` before) stands into it, and the day's
            last one stands until the first ok reading after it.
        storage_class: the zone's class, whose level conditions say what is out of range.
        zone: the site's time zone. Given, only the samples of `head.day` make the figures
            and the time out of range is that day's share of each reading's (as the
            cumulative conditions count it); without it every sample is the day's and the
            time from the day's last reading to the next day's first is not counted.
    """
    ok_all = [(at, t, h) for at, t, h in samples if t is not None]
    if zone is not None:
        samples = [s for s in samples if s[0].astimezone(zone).date().isoformat() == head.day]
    ok = [(at, t, h) for at, t, h in samples if t is not None]
    temperatures = [t for _, t, _ in ok if t is not None]
    humidities = [h for _, _, h in ok if h is not None]
    figures: dict[str, float | None] = {}
    if temperatures:
        figures = {
            "temperature_min_c": min(temperatures),
            "temperature_max_c": max(temperatures),
            "temperature_mean_c": round(sum(temperatures) / len(temperatures), 2),
            "mean_kinetic_c": round(mean_kinetic_temperature(temperatures), 2),
        }
    return head.model_copy(
        update={
            "readings": len(ok), "faults": len(samples) - len(ok),
            "humidity_max_pct": max(humidities) if humidities else None,
            "minutes_out_of_range": _minutes_out(head.day, ok_all, storage_class, zone),
            **figures,
        }
    )  # fmt: skip


def day_summaries(
    store: DepotStore, site: SiteSection, node: str, day: date
) -> list[ZoneDaySummary]:
    """Depot `node`'s zones on `day` (the site's local day): one row per zone that sent
    readings that day or is assigned a class, by zone.

    The readings up to `HOLDS_AT_MOST` either side of the day are read too, so a zone's
    minutes out of range are what the cumulative conditions credit to that day, the
    intervals across either midnight included. A day's last ok reading followed by none
    for longer stands its `HOLDS_AT_MOST` (up to midnight) once a later ok one came, as
    the rule credits it then: the rule's newest evaluated reading of the zone says so.
    """
    since = datetime.combine(day, time(), tzinfo=site.zone)
    until = datetime.combine(day + timedelta(days=1), time(), tzinfo=site.zone)
    assigned = site.zones.get(node, {})
    by_zone: dict[str, list[Sample]] = {zone: [] for zone in assigned}
    shown = set(assigned)
    around = store.depot_readings(
        site.name, node, since - HOLDS_AT_MOST, until + HOLDS_AT_MOST, limit=DAY_READINGS_MAX
    )
    for reading in around:
        by_zone.setdefault(reading.zone, []).append(
            (reading.at, reading.temperature_c, reading.humidity_pct)
        )
        if since <= reading.at < until:
            shown.add(reading.zone)
    _after_a_silence(by_zone, store.excursions(site.name, node), until + HOLDS_AT_MOST)
    return [
        summarise(
            ZoneDaySummary(site=site.name, node=node, zone=zone, day=day.isoformat(),
                           storage_class=assigned.get(zone)),
            by_zone[zone], site.storage_class(node, zone), site.zone,
        )
        for zone in sorted(shown)
    ]  # fmt: skip


def _after_a_silence(
    by_zone: dict[str, list[Sample]], states: dict[tuple[str, str], Excursion], end: datetime
) -> None:
    """Add to each zone's samples whose last ok one is before the day's end and none
    follows by `end` the rule's newest evaluated reading of the zone, when it is later: the
    day's last
    reading stands its full time only once a later one exists, whenever it came. Only its
    time counts (the earlier reading's value decides), so its value is the earlier one's."""
    newest: dict[str, datetime] = {}
    for (zone, _), state in states.items():
        newest[zone] = max(state.last_at, newest.get(zone, state.last_at))
    for zone, samples in by_zone.items():
        ok = [sample for sample in samples if sample[1] is not None]
        later = newest.get(zone)
        if ok and later is not None and later >= end and ok[-1][0] < end - HOLDS_AT_MOST:
            samples.append((later, ok[-1][1], ok[-1][2]))


def level_conditions(storage_class: StorageClass) -> tuple[AlarmCondition, ...]:
    """The class's conditions on a reading's value: all but rate ones (a change per minute,
    whose threshold is no level a reading can be out of)."""
    return tuple(c for c in storage_class.conditions if c.type != "rate")


def _minutes_out(
    day: str, ok: Sequence[Sample], storage_class: StorageClass | None, zone: ZoneInfo | None
) -> float:
    if storage_class is None:
        return 0.0
    out_s = 0.0
    levels = level_conditions(storage_class)
    for (at, t, h), (after, _, _) in pairwise(ok):
        values = {"temperature": t, "humidity": h}
        crossed = any(
            (value := values[c.quantity]) is not None and c.outside(value) for c in levels
        )
        if crossed:
            held = held_by_day(at, after, zone or UTC)
            out_s += held.get(day, 0.0) if zone is not None else sum(held.values())
    return round(out_s / 60, 1)
