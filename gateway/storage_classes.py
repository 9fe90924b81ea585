"""Storage classes of depot zones and their alarm conditions, as cold-chain loggers set them."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.configfile import Section
from edge.contract.base import Slug

Quantity = Literal["temperature", "humidity"]
# What a sensor can report (edge/contract/events.py DepotReading): a threshold outside it
# could never be reached, or would always be; either is a typo.
PLAUSIBLE: dict[str, tuple[float, float]] = {"temperature": (-60.0, 90.0), "humidity": (0.0, 100.0)}
UNITS: dict[str, str] = {"temperature": "°C", "humidity": "%RH"}
# A rate threshold in °C (or %RH) per minute: a door opened on a fridge moves it by a few
# tenths a minute; more than this is no physical change a sensor of ours reports.
RATE_MAX = 10.0
ConditionType = Literal["instant", "consecutive", "cumulative", "rate"]


class AlarmCondition(Section):
    """One alarm condition: a threshold, a direction, a type and a delay.

    As WHO PQS E006 loggers define them: the threshold is inside the alarm range (an upper
    alarm at 8.0 counts a reading of 8.0), `consecutive` is the time of one continuous
    excursion (a reading back inside ends it), `instant` raises on the first reading,
    `cumulative` sums the time in the alarm range over the site's local day. `rate` is
    ours (a door left open, a compressor that stopped): the change per minute between
    readings `min_gap_min` to `max_gap_min` apart, `threshold` in °C (or %RH) per minute.
    """

    name: Slug = Field(description="names the alarm within its zone, e.g. heat, freeze")
    quantity: Quantity = Field("temperature", description="what the threshold is of")
    direction: Literal["above", "below"] = Field(
        description="above: an upper alarm (rate: rising); below: a lower one (rate: falling)"
    )
    # Before `threshold`: its check depends on the type (a rate's threshold is per minute).
    type: ConditionType = Field(
        "consecutive", description="instant: at once; consecutive: one excursion this long; "
        "cumulative: this long in all in a local day; rate: change per minute",
    )  # fmt: skip
    threshold: float = Field(
        description="°C or %RH (rate: per minute, more than 0); a reading equal to it is an "
        "excursion"
    )
    delay_min: float = Field(
        0.0, ge=0, le=7 * 24 * 60,
        description="minutes a consecutive excursion lasts to alarm (cumulative: in a day, "
        "at most 24 h)",
    )  # fmt: skip
    hysteresis: float = Field(
        0.5, ge=0, le=20,
        description="a raised alarm clears only once a reading is this far back inside "
        "(rate: a rate this far below the threshold)",
    )  # fmt: skip
    severity: Literal["warning", "critical"] = Field("critical", description="of the alarm")
    min_gap_min: float = Field(
        1.0, gt=0, le=60,
        description="rate only: a reading is compared with the newest one at least this "
        "much older (sensor noise over seconds is no rate)",
    )  # fmt: skip
    max_gap_min: float = Field(
        15.0, gt=0, le=240,
        description="rate only: readings further apart are not compared (after a gap the "
        "change is not known to be sudden)",
    )  # fmt: skip

    @field_validator("threshold")
    @classmethod
    def _plausible(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("type") == "rate":
            if not 0 < value <= RATE_MAX:
                raise ValueError(f"a rate per minute is more than 0 and at most {RATE_MAX:g}")
            return value
        low, high = PLAUSIBLE[info.data.get("quantity", "temperature")]
        if not low <= value <= high:
            raise ValueError(f"outside what a sensor reports ({low:g} to {high:g})")
        return value

    @model_validator(mode="after")
    def _delay_fits_type(self) -> Self:
        if self.type in ("instant", "rate") and self.delay_min:
            article = "an" if self.type == "instant" else "a"
            raise ValueError(f"delay_min: {article} {self.type} condition has no delay")
        if self.type in ("consecutive", "cumulative") and not self.delay_min:
            raise ValueError(f"delay_min: a {self.type} condition needs a delay (or type instant)")
        if self.type == "cumulative" and self.delay_min > 24 * 60:
            raise ValueError("delay_min: a day holds at most 1440 minutes")
        if self.type == "rate":
            if self.hysteresis > self.threshold:
                raise ValueError("hysteresis: a rate's band is at most its threshold")
            if self.max_gap_min < self.min_gap_min:
                raise ValueError("max_gap_min: less than min_gap_min")
        return self

    def outside(self, value: float) -> bool:
        """True for a reading in the alarm range (the threshold included)."""
        return value >= self.threshold if self.direction == "above" else value <= self.threshold

    def back_inside(self, value: float) -> bool:
        """True for a reading far enough inside to clear a raised alarm (no flapping)."""
        if self.direction == "above":
            return value <= self.threshold - self.hysteresis
        return value >= self.threshold + self.hysteresis

    def rate_beyond(self, per_min: float) -> bool:
        """True for a change per minute at or beyond the threshold in the direction (rate)."""
        return (per_min if self.direction == "above" else -per_min) >= self.threshold

    def rate_back_inside(self, per_min: float) -> bool:
        """True for a change per minute `hysteresis` back inside the threshold (rate)."""
        moving = per_min if self.direction == "above" else -per_min
        return moving <= self.threshold - self.hysteresis

    @property
    def delay_s(self) -> float:
        return self.delay_min * 60

    @property
    def min_gap_s(self) -> float:
        return self.min_gap_min * 60

    @property
    def max_gap(self) -> timedelta:
        return timedelta(minutes=self.max_gap_min)


class StorageClass(Section):
    """What a zone stores at: its band (for people) and the conditions that alarm."""

    description: str = Field("", max_length=200, description="for people: what is kept")
    conditions: tuple[AlarmCondition, ...] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [c.name for c in self.conditions]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"conditions named twice: {', '.join(twice)}")
        return self


def _condition(
    name: str,
    quantity: Quantity,
    direction: str,
    threshold: float,
    *,
    delay_min: float,
    hysteresis: float,
    severity: str = "critical",
) -> AlarmCondition:
    return AlarmCondition.model_validate({
        "name": name, "quantity": quantity, "direction": direction, "threshold": threshold,
        "type": "consecutive" if delay_min else "instant", "delay_min": delay_min,
        "hysteresis": hysteresis, "severity": severity,
    })  # fmt: skip


# Humidity of dry stores (masks, disinfectant, reagents): 75 %RH or less in the source
# plans; the hour's delay and 3 %RH band are ours (a door opened on a wet day is no alarm).
_HUMID = _condition("humid", "humidity", "above", 75.0, delay_min=60, hysteresis=3.0,
                    severity="warning")  # fmt: skip

# Built in; a site may add its own (`sites[].storage_classes`) or replace one by its name.
# Sources in docs/depots.md: cold's heat and freeze alarms are the WHO PQS E006 refrigerator
# presets as issue #13 gives them; the bands are the source plans'; other delays are ours.
BUILT_IN: dict[str, StorageClass] = {
    "cold": StorageClass(
        description="2 to 8 °C (vaccines, reagents)",
        conditions=(
            _condition("heat", "temperature", "above", 8.0, delay_min=600, hysteresis=0.5),
            _condition("freeze", "temperature", "below", -0.5, delay_min=60, hysteresis=0.5),
        ),
    ),
    "cool": StorageClass(
        description="8 to 15 °C, 75 %RH or less",
        conditions=(
            _condition("heat", "temperature", "above", 15.0, delay_min=60, hysteresis=1.0),
            _HUMID,
        ),
    ),
    "room": StorageClass(
        description="25 °C or less, 75 %RH or less",
        conditions=(
            _condition("heat", "temperature", "above", 25.0, delay_min=60, hysteresis=1.0),
            _HUMID,
        ),
    ),
    "room-30": StorageClass(
        description="30 °C or less, 75 %RH or less",
        conditions=(
            _condition("heat", "temperature", "above", 30.0, delay_min=60, hysteresis=1.0),
            _HUMID,
        ),
    ),
    "humidity": StorageClass(description="75 %RH or less", conditions=(_HUMID,)),
}
