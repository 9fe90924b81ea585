"""A test double of the gate's Checkpoint: its state in memory, every call recorded."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from edge.contract.base import Colour, new_event_id
from edge.gate.hold_rules import misfit
from edge.gate.views import (
    ConsoleUpdate,
    DecisionView,
    DisinfectionRound,
    HoldResolution,
    NodeView,
    OpenHold,
    Refusal,
    Registration,
    ShiftChange,
    VehicleCheck,
    Volunteer,
)

AT = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
FEVER_C = 37.3
# A manual registration as the form sends it.
ID_NUMBER = "110101199003077777"
REGISTRATION = {
    "name": "张三丰",
    "id_number": ID_NUMBER,
    "phone": "+8613800138000",
    "origin": "东城区",
    "destination": "人民医院",
    "vehicle_plate": "京A12345",
}
# Badge text -> who it names; any other text is refused as forged.
BADGES = {
    "HC1:BADGE-V001": Volunteer(volunteer_id="V001", masked_name="王*"),
    "HC1:BADGE-V002": Volunteer(volunteer_id="V002", masked_name="李*"),
    "HC1:BADGE-S001": Volunteer(volunteer_id="S001", masked_name="赵*", role="supervisor"),
}


def open_hold(
    hold_id: str = "H1",
    *,
    reasons: tuple[str, ...] = ("fever",),
    temperature_c: float | None = 38.4,
    masked_name: str | None = "张*丰",
    at: datetime | None = None,
    colour: Colour | None = "green",
    vehicle_plate: str | None = None,
) -> OpenHold:
    """A person (or, with a plate, a vehicle) waiting at the gate since `at`, default now."""
    return OpenHold(
        hold_id=hold_id,
        passage_id=f"P-{hold_id}",
        at=at or datetime.now(UTC),
        reasons=reasons,
        colour=colour,
        temperature_c=temperature_c,
        masked_name=masked_name,
        subject="vehicle" if vehicle_plate else "person",
        vehicle_plate=vehicle_plate,
    )


def held(hold: OpenHold) -> DecisionView:
    """The decision that put `hold` in the queue."""
    return DecisionView(
        passage_id=hold.passage_id,
        at=hold.at,
        outcome="hold",
        colour=hold.colour,
        reasons=hold.reasons,
        credential="none" if hold.subject == "vehicle" else "health-code",
        temperature_c=hold.temperature_c,
        masked_name=hold.masked_name,
        subject=hold.subject,
        vehicle_plate=hold.vehicle_plate,
    )


def node_view(
    *,
    volunteers: tuple[str, ...] = ("V001",),
    broker_connected: bool = True,
    zone: str = "Asia/Shanghai",
    outbox_depth: int = 3,
) -> NodeView:
    """A healthy node with a full device set, at a site in `zone`."""
    return NodeView(
        site="east-village",
        node="gate-01",
        broker_connected=broker_connected,
        devices={"scanner": "ok", "thermometer": "ok", "barrier": "ok", "outbox": "ok"},
        outbox_depth=outbox_depth,
        outbox_capacity=100_000,
        volunteers_on_duty=volunteers,
        trust_list_age_s=420.0,
        zone=zone,
    )


@dataclass(frozen=True)
class Call:
    """One call that reached the checkpoint."""

    method: str
    args: tuple[Any, ...]


class RecordingCheckpoint:
    """Test double of edge.gate.views.Checkpoint: in-memory state, records every call.

    Tests change the state as the node would (`change`, `add_hold`) and read `calls`
    to see what the console sent; `refuse_next` makes the next call of a method raise.
    """

    def __init__(
        self,
        *,
        holds: tuple[OpenHold, ...] | None = None,
        decision: DecisionView | None = None,
        node: NodeView | None = None,
    ) -> None:
        if holds is None:
            holds = (open_hold(),)
        if decision is None and holds:
            decision = held(holds[0])
        self._changed = threading.Condition()
        self._version = 1
        self._state = ConsoleUpdate(decision=decision, holds=holds, node=node or node_view())
        self._refusals: dict[str, Refusal] = {}
        self.calls: list[Call] = []

    # --- what tests use -------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._changed:
            return [call for call in self.calls if call.method == method]

    def refuse_next(self, method: str, refusal: Refusal) -> None:
        with self._changed:
            self._refusals[method] = refusal

    def change(self, **fields: Any) -> None:
        """Replace parts of the state and wake every waiting console."""
        with self._changed:
            self._state = self._state.model_copy(update=fields)
            self._version += 1
            self._changed.notify_all()

    def add_hold(self, hold: OpenHold) -> None:
        self.change(holds=(*self.update().holds, hold), decision=held(hold))

    # --- the Checkpoint protocol ----------------------------------------------------

    def update(self) -> ConsoleUpdate:
        with self._changed:
            return self._state

    @property
    def on_duty(self) -> tuple[str, ...]:
        return self.update().node.volunteers_on_duty

    def wait_for_change(self, after: int, timeout_s: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._version > after, timeout_s)
            return self._version

    def resolve_hold(
        self, hold_id: str, resolution: HoldResolution, volunteer_id: str, role: str = "volunteer"
    ) -> None:
        self._record("resolve_hold", hold_id, resolution, volunteer_id)
        holds = self.update().holds
        hold = next((h for h in holds if h.hold_id == hold_id), None)
        if hold is None:
            raise Refusal("unknown-hold", f"no open hold {hold_id}")
        refusal = misfit(hold.reasons, resolution.resolution, override=resolution.override)
        if refusal is not None:
            raise refusal  # as the real checkpoint
        self.change(holds=tuple(h for h in holds if h.hold_id != hold_id))

    def register(self, registration: Registration, volunteer_id: str) -> str:
        self._record("register", registration, volunteer_id)
        return new_event_id(datetime.now(UTC))

    def check_vehicle(self, check: VehicleCheck, volunteer_id: str) -> DecisionView:
        self._record("check_vehicle", check, volunteer_id)
        fever = any(t >= FEVER_C for t in check.occupant_temperatures_c)
        decision = DecisionView(
            passage_id=new_event_id(datetime.now(UTC)),
            at=AT,
            outcome="hold" if fever else "allow",
            colour=None,
            reasons=("vehicle-fever",) if fever else (),
            credential="vehicle",
            temperature_c=max(check.occupant_temperatures_c),
            subject="vehicle",
            vehicle_plate=check.vehicle_plate,
        )
        self.change(decision=decision)
        return decision

    def identify(self, badge_text: str) -> Volunteer:
        if badge_text not in BADGES:
            raise Refusal("bad-signature", "badge signature does not verify")
        return BADGES[badge_text]

    def change_shift(self, badge_text: str, action: Literal["start", "end"]) -> ShiftChange:
        self._record("change_shift", badge_text, action)
        volunteer = self.identify(badge_text)
        on_duty = [v for v in self.update().node.volunteers_on_duty if v != volunteer.volunteer_id]
        if action == "start":
            on_duty.append(volunteer.volunteer_id)
        node = self.update().node.model_copy(update={"volunteers_on_duty": tuple(on_duty)})
        self.change(node=node)
        return ShiftChange(**volunteer.model_dump(), action=action, at=AT)

    def log_disinfection(self, round_: DisinfectionRound, volunteer_id: str) -> None:
        self._record("log_disinfection", round_, volunteer_id)

    def _record(self, method: str, *args: Any) -> None:
        with self._changed:
            self.calls.append(Call(method, args))
            refusal = self._refusals.pop(method, None)
        if refusal is not None:
            raise refusal
