"""A depot zone's day in figures: min, max, mean, mean kinetic temperature, time out of range.

Mean kinetic temperature (MKT) is the single temperature that would age stored goods as the
day's varying temperatures did (USP <1160>, the Haynes equation):

    MKT = (ΔH/R) / -ln( Σ exp(-ΔH/(R·Tᵢ)) / n )       Tᵢ in kelvin, ΔH/R = 10,000 K

It weighs warm hours more than the mean does: a cold store at 5 °C with two hours at
25 °C has a mean of 6.7 °C and an MKT of 9.8 °C.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise

from pydantic import BaseModel, Field

from gateway.storage_classes import AlarmCondition, StorageClass

KELVIN = 273.15
ACTIVATION_K = 10_000.0  # ΔH/R, USP <1160>'s default for pharmaceuticals
# A reading stands for the time until the next one, but never longer than this: a sensor
# that fell silent does not keep its last value out of range for hours.
HOLDS_AT_MOST = timedelta(minutes=30)


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


def summarise(
    head: ZoneDaySummary, samples: Sequence[Sample], storage_class: StorageClass | None
) -> ZoneDaySummary:
    """`head` (which zone, which day, its class) filled from the zone's samples of that day,
    in time order; a sample without a temperature is a fault."""
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
            "minutes_out_of_range": _minutes_out(ok, storage_class), **figures,
        }
    )  # fmt: skip


def level_conditions(storage_class: StorageClass) -> tuple[AlarmCondition, ...]:
    """The class's conditions on a reading's value: all but rate ones (a change per minute,
    whose threshold is no level a reading can be out of)."""
    return tuple(c for c in storage_class.conditions if c.type != "rate")


def _minutes_out(ok: Sequence[Sample], storage_class: StorageClass | None) -> float:
    if storage_class is None:
        return 0.0
    out = timedelta()
    levels = level_conditions(storage_class)
    for (at, t, h), (after, _, _) in pairwise(ok):
        values = {"temperature": t, "humidity": h}
        crossed = any(
            (value := values[c.quantity]) is not None and c.outside(value) for c in levels
        )
        if crossed:
            out += min(after - at, HOLDS_AT_MOST)
    return round(out.total_seconds() / 60, 1)
