"""Storage classes of depot zones and their alarm conditions, as cold-chain loggers set them."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.configfile import Section
from edge.contract.base import Slug

Quantity = Literal["temperature", "humidity"]
# What a sensor can report (edge/contract/events.py DepotReading): a threshold outside it
# could never be reached, or would always be; either is a typo.
PLAUSIBLE: dict[str, tuple[float, float]] = {"temperature": (-60.0, 90.0), "humidity": (0.0, 100.0)}
UNITS: dict[str, str] = {"temperature": "°C", "humidity": "%RH"}


class AlarmCondition(Section):
    """One alarm condition: a threshold, a direction, a type and a delay.

    As WHO PQS E006 loggers define them: the threshold is inside the alarm range (an upper
    alarm at 8.0 counts a reading of 8.0), `consecutive` is the time of one continuous
    excursion (a reading back inside ends it), `instant` raises on the first reading.
    """

    name: Slug = Field(description="names the alarm within its zone, e.g. heat, freeze")
    quantity: Quantity = Field("temperature", description="what the threshold is of")
    direction: Literal["above", "below"] = Field(description="above: an upper alarm")
    threshold: float = Field(description="°C or %RH; a reading equal to it is an excursion")
    type: Literal["instant", "consecutive"] = Field(
        "consecutive", description="instant: at once; consecutive: one excursion this long"
    )
    delay_min: float = Field(
        0.0, ge=0, le=7 * 24 * 60, description="minutes a consecutive excursion lasts to alarm"
    )
    hysteresis: float = Field(
        0.5, ge=0, le=20,
        description="a raised alarm clears only once a reading is this far back inside",
    )  # fmt: skip
    severity: Literal["warning", "critical"] = Field("critical", description="of the alarm")

    @field_validator("threshold")
    @classmethod
    def _plausible(cls, value: float, info: ValidationInfo) -> float:
        low, high = PLAUSIBLE[info.data.get("quantity", "temperature")]
        if not low <= value <= high:
            raise ValueError(f"outside what a sensor reports ({low:g} to {high:g})")
        return value

    @model_validator(mode="after")
    def _delay_fits_type(self) -> Self:
        if self.type == "instant" and self.delay_min:
            raise ValueError("delay_min: an instant condition has no delay")
        if self.type == "consecutive" and not self.delay_min:
            raise ValueError("delay_min: a consecutive condition needs a delay (or type instant)")
        return self

    def outside(self, value: float) -> bool:
        """True for a reading in the alarm range (the threshold included)."""
        return value >= self.threshold if self.direction == "above" else value <= self.threshold

    def back_inside(self, value: float) -> bool:
        """True for a reading far enough inside to clear a raised alarm (no flapping)."""
        if self.direction == "above":
            return value <= self.threshold - self.hysteresis
        return value >= self.threshold + self.hysteresis

    @property
    def delay_s(self) -> float:
        return self.delay_min * 60


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
