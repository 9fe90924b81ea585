"""What the volunteer console shows and sends: the Checkpoint it talks to, and its forms.

The console (edge/gate/console) only ever sees these types, never the node's internals,
so it can be tested against any Checkpoint and the node can change behind it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from edge.contract.base import (
    BodyTemperature,
    Colour,
    IdNumber,
    ReasonCode,
    ShortText,
    Slug,
    VolunteerId,
)
from edge.contract.events import Outcome, PlateNumber

Resolution = Literal["released", "registered", "referred", "turned-back"]


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecisionView(_View):
    """The gate's latest decision, as the volunteer sees it."""

    passage_id: str
    at: datetime
    outcome: Outcome
    colour: Colour | None
    reasons: tuple[ReasonCode, ...]
    credential: str
    temperature_c: float | None = None
    masked_name: str | None = Field(None, description="to compare with the ID card")
    subject: Literal["person", "vehicle"] = "person"
    vehicle_plate: str | None = None


class OpenHold(_View):
    """A person waiting at the gate for a volunteer."""

    hold_id: str
    passage_id: str
    at: datetime
    reasons: tuple[ReasonCode, ...]
    colour: Colour | None
    temperature_c: float | None = None
    masked_name: str | None = None
    subject: Literal["person", "vehicle"] = "person"
    vehicle_plate: str | None = None


class Registration(_View):
    """Manual registration of a person without a smartphone (or with a yellow code).

    The ID number is never stored: the node keeps a keyed hash and its last 4 characters.
    """

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    id_number: IdNumber
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{5,15}$")] | None = None
    origin: ShortText | None = None
    destination: ShortText | None = None
    reason: ShortText | None = None
    vehicle_plate: PlateNumber | None = None


class HoldResolution(_View):
    """How the volunteer ends a hold. `registration` is required for `registered`."""

    resolution: Resolution
    temperature_c: BodyTemperature | None = Field(None, description="re-measured temperature")
    registration: Registration | None = None
    note: ShortText | None = None
    override: bool = Field(
        False, description="a supervisor lets through a person whose code the gate refused "
        "(forged, unknown signer, revoked), where the site allows it; the gateway raises an alarm",
    )  # fmt: skip


class VehicleCheck(_View):
    """A vehicle at the gate: its plate and each occupant's temperature."""

    vehicle_plate: PlateNumber
    direction: Literal["in", "out"] = "in"
    occupant_temperatures_c: tuple[BodyTemperature, ...] = Field(min_length=1, max_length=60)


class DisinfectionRound(_View):
    area: Slug = "hut"
    agent: ShortText | None = None


class Volunteer(_View):
    """Whom a verified badge names: the actor of a console session."""

    volunteer_id: VolunteerId
    masked_name: str
    role: Slug = "volunteer"


class ShiftChange(Volunteer):
    """A shift started or ended by scanning a badge."""

    action: Literal["start", "end"]
    at: datetime


class NodeView(_View):
    """The node's own health, shown in the console's status bar."""

    site: str
    node: str
    broker_connected: bool
    devices: dict[str, str] = Field(description="device name -> ok, fault, unplugged, disabled")
    outbox_depth: int
    outbox_capacity: int
    volunteers_on_duty: tuple[str, ...]
    override_allowed: bool = Field(False, description="a supervisor may override a refused code")
    trust_list_age_s: float | None
    zone: str = Field("Asia/Shanghai", description="the site's time zone: times are shown in it")


class WaitingView(_View):
    """A code was read and waits for its temperature: "measure temperature now", time left."""

    scanned_at: datetime
    deadline: datetime = Field(description="the code is decided without a reading at this time")
    colour: Colour | None
    masked_name: str | None = None


PromptKind = Literal["scan-again", "step-closer", "step-back"]


class Prompt(_View):
    """A short instruction to the person at the gate, from a device (a code read in part…)."""

    kind: PromptKind
    at: datetime


class ConsoleUpdate(_View):
    """Pushed to open consoles (server-sent events) whenever something changes."""

    decision: DecisionView | None
    holds: tuple[OpenHold, ...]
    node: NodeView
    waiting: WaitingView | None = None
    prompt: Prompt | None = None


class Refusal(Exception):
    """A console action the checkpoint refused; `reason` is a reason code the page translates."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Checkpoint(Protocol):
    """The gate as the console sees it. Every method is safe to call from any thread.

    Actions raise Refusal (unknown hold, invalid badge…); they never lose an event:
    each one is in the outbox before the method returns.
    """

    def update(self) -> ConsoleUpdate: ...

    @property
    def on_duty(self) -> tuple[str, ...]:
        """The volunteers on duty now (NodeView.volunteers_on_duty, without the rest)."""
        ...

    def wait_for_change(self, after: int, timeout_s: float) -> int:
        """Block until the state's version exceeds `after` or the timeout passes; the version."""
        ...

    def resolve_hold(
        self, hold_id: str, resolution: HoldResolution, volunteer_id: str, role: str = "volunteer"
    ) -> None:
        """End a hold as `volunteer_id`; an override needs the role "supervisor"."""
        ...

    def register(self, registration: Registration, volunteer_id: str) -> str:
        """Register a person who has no code; returns the registration's event id."""
        ...

    def check_vehicle(self, check: VehicleCheck, volunteer_id: str) -> DecisionView: ...

    def identify(self, badge_text: str) -> Volunteer:
        """Whom a scanned badge names, once its signature verifies; else Refusal."""
        ...

    def change_shift(self, badge_text: str, action: Literal["start", "end"]) -> ShiftChange: ...

    def log_disinfection(self, round_: DisinfectionRound, volunteer_id: str) -> None: ...
