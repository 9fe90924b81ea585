"""Node events: what happened at a gate or a depot, one model per event kind."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, model_validator

from edge.contract.base import (
    STRICT,
    BodyTemperature,
    Colour,
    Event,
    EventId,
    IdLast4,
    KeyedHash,
    PersonName,
    Phone,
    ReasonCodes,
    ShortText,
    Slug,
    VolunteerId,
    personal,
)
from edge.contract.topics import EventKind

Outcome = Literal["allow", "hold", "deny"]
Direction = Literal["in", "out"]
PlateNumber = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z\u4e00-\u9fff·-]{2,12}$")]
# One sample per sensor on a depot's Modbus RTU bus, whose slave ids run from 1 to 247.
READINGS_MAX = 247
# Weights in one batch: a depot node's scales (edge/depot/config.py SCALES_MAX) over a
# few reports each; 128 of the longest weights are 34 KB, inside the gateway's 64 KiB.
WEIGHTS_MAX = 128
# A platform scale's range in kg: a pallet scale weighs up to a few tonnes; a shown
# weight slightly below zero (a drifting zero) is a weight.
WEIGHT_KG_MIN = -1000.0
WEIGHT_KG_MAX = 100_000.0


class Passage(Event):
    """One check at a gate: a person or a vehicle, and the gate's decision."""

    kind: Literal["passage"] = "passage"
    direction: Direction
    subject: Literal["person", "vehicle"] = "person"
    outcome: Outcome
    colour: Colour | None = Field(None, description="health colour; none when no code was read")
    credential: Literal["health-code", "dcc", "household-pass", "registration", "none"]
    reasons: ReasonCodes = Field((), description="why, as reason codes")
    temperature_c: BodyTemperature | None = None
    subject_ref: KeyedHash | None = personal(default=None)
    vehicle_plate: PlateNumber | None = personal(default=None)
    occupants: int | None = Field(None, ge=1, le=60)
    volunteer_id: VolunteerId | None = Field(
        None, description="the volunteer who checked a vehicle at the console; none for a person"
    )

    @model_validator(mode="after")
    def _outcome_has_reasons(self) -> Self:
        if self.outcome != "allow" and not self.reasons:
            raise ValueError(f"a {self.outcome} outcome needs at least one reason")
        if self.subject == "person" and (self.vehicle_plate or self.occupants or self.volunteer_id):
            raise ValueError("vehicle_plate, occupants and volunteer_id belong to vehicle passages")
        return self


class Hold(Event):
    """A person stopped at the gate until a volunteer resolves the case."""

    kind: Literal["hold"] = "hold"
    passage_id: EventId = Field(description="event_id of the passage that was held")
    reasons: ReasonCodes = Field(min_length=1)
    colour: Colour | None = None
    temperature_c: BodyTemperature | None = None
    subject_ref: KeyedHash | None = personal(default=None)


class HoldResolved(Event):
    """How a volunteer ended a hold."""

    kind: Literal["hold-resolved"] = "hold-resolved"
    hold_id: EventId = Field(description="event_id of the hold")
    resolution: Literal["released", "registered", "referred", "turned-back"] = Field(
        description="released after a normal re-measure; registered by a volunteer; "
        "referred to the observation room; turned back"
    )
    volunteer_id: VolunteerId
    temperature_c: BodyTemperature | None = Field(None, description="re-measured temperature")
    temperature_source: Literal["sensor", "manual"] | None = Field(
        None,
        description="where temperature_c came from: the gate's thermometer, or typed by the "
        "volunteer (allowed only while the thermometer is faulty); none from older nodes",
    )
    registration_id: EventId | None = None
    note: ShortText | None = personal(default=None)
    override: bool = Field(
        False, description="a supervisor let through a person whose code the gate refused, "
        "where the site's policy allows it (volunteer_id is the supervisor); an alarm",
    )  # fmt: skip


class Registration(Event):
    """A person registered by hand at the gate (no smartphone, or a yellow code)."""

    kind: Literal["registration"] = "registration"
    name: PersonName = personal()
    id_hash: KeyedHash = personal(description="keyed hash of the ID number, never the number")
    id_last4: IdLast4 = personal(description="last four characters of the ID number")
    phone: Phone | None = personal(default=None)
    origin: ShortText | None = personal(default=None)
    destination: ShortText | None = personal(default=None)
    reason: ShortText | None = personal(default=None)
    vehicle_plate: PlateNumber | None = personal(default=None)
    hold_id: EventId | None = None
    volunteer_id: VolunteerId


class Shift(Event):
    """A volunteer starting or ending duty at a gate (by badge scan)."""

    kind: Literal["shift"] = "shift"
    action: Literal["start", "end"]
    volunteer_id: VolunteerId
    role: Slug = Field("volunteer", description="role from the badge")


class Disinfection(Event):
    """One disinfection round of the checkpoint (at least four a day)."""

    kind: Literal["disinfection"] = "disinfection"
    volunteer_id: VolunteerId
    area: Slug = Field(description="e.g. hut, barrier, observation-room, vehicle-lane")
    agent: ShortText | None = Field(None, description="disinfectant and strength")


class CheckpointCounts(BaseModel):
    """Counts a gate reports and the gateway sums (人次, 车次, readings, outcomes)."""

    model_config = STRICT

    person_checks: int = Field(0, ge=0)
    vehicle_checks: int = Field(0, ge=0)
    temperature_readings: int = Field(0, ge=0)
    allowed: int = Field(0, ge=0)
    held: int = Field(0, ge=0)
    turned_back: int = Field(0, ge=0)
    fever: int = Field(0, ge=0)
    green: int = Field(0, ge=0)
    yellow: int = Field(0, ge=0)
    red: int = Field(0, ge=0)
    disinfections: int = Field(0, ge=0)

    @property
    def is_zero(self) -> bool:
        return not any(self.model_dump().values())


class DailyReport(Event):
    """A gate's day up to the cut-off hour; sent even when nothing happened (zero-report)."""

    kind: Literal["daily-report"] = "daily-report"
    day: date = Field(description="the day the report closes")
    period_start: AwareDatetime
    period_end: AwareDatetime = Field(description="the cut-off, to the hour")
    counts: CheckpointCounts
    zero_report: bool

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        if self.period_end.minute or self.period_end.second or self.period_end.microsecond:
            raise ValueError("period_end is a cut-off to the hour")
        if self.day != self.period_end.date():
            raise ValueError("day must be the date of period_end (the day the report closes)")
        if self.zero_report != self.counts.is_zero:
            raise ValueError("zero_report must be true exactly when every count is zero")
        return self


class DeviceFault(Event):
    """A device, the outbox or the config going wrong, or recovering."""

    kind: Literal["device-fault"] = "device-fault"
    device: Slug = Field(description="scanner, thermometer, thermal-array, camera, relay, outbox…")
    fault: Slug = Field(description="timeout, garbage, checksum, unplugged, stuck, slow, full…")
    state: Literal["raised", "cleared"]
    detail: ShortText | None = None


class DepotReading(BaseModel):
    """One storage temperature/humidity sample from one sensor on the depot's bus."""

    model_config = STRICT

    sensor: Slug = Field(description="where the sensor is, e.g. cold-store-1")
    bus_address: int = Field(ge=1, le=247, description="Modbus slave id")
    at: AwareDatetime
    status: Literal["ok", "timeout", "crc", "range"]
    temperature_c: float | None = Field(None, ge=-60.0, le=90.0)
    humidity_pct: float | None = Field(None, ge=0.0, le=100.0)

    @model_validator(mode="after")
    def _values_when_ok(self) -> Self:
        if self.status == "ok" and (self.temperature_c is None or self.humidity_pct is None):
            raise ValueError("an ok reading carries temperature_c and humidity_pct")
        return self


class DepotReadingBatch(Event):
    """Readings of every sensor on a depot node's bus, batched through the outbox."""

    kind: Literal["reading"] = "reading"
    readings: tuple[DepotReading, ...] = Field(min_length=1, max_length=READINGS_MAX)


class ScaleWeight(BaseModel):
    """One settled weight from a platform scale under a pallet of one item.

    Only a stable weight is ever sent: the indicator showed standstill for several
    frames in a row, without overload. `net_kg` is what lies on the pallet.
    """

    model_config = STRICT

    scale: Slug = Field(description="the scale's name in the depot, e.g. pallet-n95")
    item: Slug = Field(description="the catalogue item on the pallet, e.g. n95-mask")
    at: AwareDatetime
    basis: Literal["gross", "net"] = Field(
        description="what the indicator showed: gross, or net of its own tare"
    )
    shown_kg: float = Field(ge=WEIGHT_KG_MIN, le=WEIGHT_KG_MAX, description="as shown, in kg")
    tare_kg: float = Field(ge=0, le=WEIGHT_KG_MAX, description="the pallet's tare from config")
    net_kg: float = Field(
        ge=WEIGHT_KG_MIN - WEIGHT_KG_MAX, le=WEIGHT_KG_MAX,
        description="shown_kg - tare_kg: the goods on the pallet",
    )  # fmt: skip

    @model_validator(mode="after")
    def _net_is_shown_minus_tare(self) -> Self:
        if abs(self.shown_kg - self.tare_kg - self.net_kg) > 0.0005:
            raise ValueError("net_kg must be shown_kg - tare_kg (to the gram)")
        return self


class WeightBatch(Event):
    """Settled weights from a depot node's platform scales (only stable ones, ever)."""

    kind: Literal["weight"] = "weight"
    weights: tuple[ScaleWeight, ...] = Field(min_length=1, max_length=WEIGHTS_MAX)


EVENT_MODELS: dict[EventKind, type[Event]] = {
    EventKind.PASSAGE: Passage,
    EventKind.HOLD: Hold,
    EventKind.HOLD_RESOLVED: HoldResolved,
    EventKind.REGISTRATION: Registration,
    EventKind.SHIFT: Shift,
    EventKind.DISINFECTION: Disinfection,
    EventKind.DAILY_REPORT: DailyReport,
    EventKind.DEVICE_FAULT: DeviceFault,
    EventKind.WEIGHT: WeightBatch,
}
