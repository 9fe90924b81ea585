"""What a volunteer does at the console: end holds, register, vehicles, shifts, disinfection."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Literal, Protocol

from edge.contract.events import Disinfection, HoldResolved, Outcome, Passage, Shift
from edge.contract.events import Registration as RegistrationEvent
from edge.credentials.native import Badge
from edge.credentials.verifier import Verifier
from edge.devices.base import TemperatureReading
from edge.gate.book import LocalBook
from edge.gate.decision import (
    MISSING_READING,
    GatePolicy,
    classify_reading,
    decide_vehicle,
    usable_reading,
)
from edge.gate.hold_rules import PASSING, misfit
from edge.gate.views import (
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
from edge.outbox import Batch

TemperatureSource = Literal["sensor", "manual"]
# The badge role that may override a refused code, where the site allows it.
SUPERVISOR = "supervisor"
# The node's devices that measure people (DeviceLink names): while none of them is "ok",
# the volunteer may type a temperature taken with a handheld thermometer.
TEMPERATURE_DEVICES = ("thermometer", "thermal-array")
# A hold for any of these is released only on a new temperature below the fever line.
TEMPERATURE_REASONS = frozenset(
    {"fever", "vehicle-fever", "re-measure", "temperature-implausible", *MISSING_READING}
)


class GateActions(Protocol):
    """What the checkpoint moves: the barrier and the lamps/buzzer."""

    def open_barrier(self) -> None: ...

    def show(self, outcome: Outcome) -> None: ...


class ConsoleActions:
    """The volunteer's actions on the gate (views.Checkpoint; mixed into GateCheckpoint).

    Each is an event in the outbox before it returns, and only then moves the barrier.
    """

    # Kept by GateCheckpoint, which mixes this in.
    _lock: threading.RLock
    _book: LocalBook
    _id_key: bytes
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    policy: GatePolicy
    verifier: Verifier
    actions: GateActions
    _readings_after: float
    _node_view: Callable[[], NodeView]

    def _fresh_readings(self) -> tuple[TemperatureReading, ...]:
        raise NotImplementedError

    def _transaction(self, *, reserved: bool = False) -> AbstractContextManager[Batch]:
        raise NotImplementedError

    def _open_hold(self, batch: Batch, passage: Passage, masked_name: str | None) -> None:
        raise NotImplementedError

    def _show(self, view: DecisionView) -> None:
        raise NotImplementedError

    def resolve_hold(
        self, hold_id: str, resolution: HoldResolution, volunteer_id: str, role: str = "volunteer"
    ) -> None:
        now = self.clock()
        with self._lock:
            self._require_on_duty(volunteer_id)
            hold = self._book.holds.get(hold_id)
            if hold is None:
                raise Refusal("unknown-hold", f"no open hold {hold_id}")
            if resolution.override:
                self._check_override(role)
            temperature, source = self._check_resolution(hold, resolution)
            with self._transaction() as batch:
                registration_id = None
                if resolution.registration is not None:
                    registration_id = self._registration(
                        batch, resolution.registration, volunteer_id, hold_id, now
                    )
                batch.add(
                    HoldResolved(
                        **batch.ids(now), hold_id=hold_id, resolution=resolution.resolution,
                        volunteer_id=volunteer_id, temperature_c=temperature,
                        temperature_source=source, registration_id=registration_id,
                        note=resolution.note, override=resolution.override,
                    )
                )  # fmt: skip
                del self._book.holds[hold_id]
            if source == "sensor":
                # One reading, one person: the re-measure never counts for the next one.
                self._readings_after = self.monotonic()
        if resolution.resolution in PASSING:
            self.actions.open_barrier()
            self.actions.show("allow")

    def _check_resolution(
        self, hold: OpenHold, resolution: HoldResolution
    ) -> tuple[float | None, TemperatureSource | None]:
        """Refuse what does not fit the hold; else the temperature to record and its source."""
        if resolution.resolution == "registered" and resolution.registration is None:
            raise Refusal("registration-missing", "fill in the registration form first")
        refusal = misfit(hold.reasons, resolution.resolution, override=resolution.override)
        if refusal is not None:
            raise refusal
        typed = resolution.temperature_c
        if resolution.resolution != "released" or not TEMPERATURE_REASONS & set(hold.reasons):
            if resolution.resolution == "released" and typed is not None:
                self._below_fever(typed)
            return typed, None if typed is None else "manual"
        if typed is not None:
            # A typed number is what the probes forged: taken only with no working sensor.
            if not self.thermometer_faulty():
                raise Refusal(
                    "sensor-reading-required",
                    "the thermometer works: measure again at it instead of typing",
                )
            self._below_fever(typed)
            return typed, "manual"
        return self._sensor_remeasure(), "sensor"

    def _check_override(self, role: str) -> None:
        if not self.policy.supervisor_override:
            raise Refusal("override-not-allowed", "this site does not allow overrides")
        if role != SUPERVISOR:
            raise Refusal("supervisor-required", "only a supervisor's badge overrides")

    def _sensor_remeasure(self) -> float:
        """The held person's new reading: taken at the gate after the hold, below the line."""
        window = self.policy.temperature_window_s
        reading = usable_reading(self._fresh_readings(), self.monotonic(), window)
        if reading is None:
            raise Refusal("measure-temperature", "measure again at the thermometer, then release")
        shown, reason = classify_reading(reading, self.policy)
        if reason is not None:
            # The held person's own reading: used up, so it never counts for the next one.
            self._readings_after = self.monotonic()
            code = "temperature-implausible" if reason == "temperature-implausible" else "fever"
            raise Refusal(code, f"{shown:.1f} °C: refer or turn back")
        return shown

    def _below_fever(self, temperature: float) -> None:
        if temperature >= self.policy.fever_c:
            raise Refusal("fever", f"{temperature:.1f} °C: refer or turn back")

    def thermometer_faulty(self) -> bool:
        """Whether no device that measures people works now (the node's device states)."""
        devices = self._node_view().devices
        return not any(devices.get(name) == "ok" for name in TEMPERATURE_DEVICES)

    def _require_on_duty(self, volunteer_id: str) -> None:
        """Refuse an actor who is not on duty at this gate now (the console asks first)."""
        if volunteer_id not in self._book.on_duty:
            raise Refusal("not-on-duty", f"{volunteer_id} is not on duty at this gate")

    def register(self, registration: Registration, volunteer_id: str) -> str:
        now = self.clock()
        with self._lock, self._transaction() as batch:
            self._require_on_duty(volunteer_id)
            return self._registration(batch, registration, volunteer_id, None, now)

    def _registration(
        self, batch: Batch, form: Registration, volunteer_id: str, hold_id: str | None,
        at: datetime,
    ) -> str:  # fmt: skip
        id_number = form.id_number.upper()
        event = batch.add(
            RegistrationEvent(
                **batch.ids(at), name=form.name,
                id_hash=hmac.new(self._id_key, id_number.encode(), hashlib.sha256).hexdigest(),
                id_last4=id_number[-4:], phone=form.phone, origin=form.origin,
                destination=form.destination, reason=form.reason,
                vehicle_plate=form.vehicle_plate, hold_id=hold_id, volunteer_id=volunteer_id,
            )
        )  # fmt: skip
        return event.event_id

    def check_vehicle(self, check: VehicleCheck, volunteer_id: str) -> DecisionView:
        now = self.clock()
        outcome, reasons = decide_vehicle(check.occupant_temperatures_c, self.policy)
        highest = max(check.occupant_temperatures_c)
        with self._lock:
            self._require_on_duty(volunteer_id)
            with self._transaction() as batch:
                passage = batch.add(
                    Passage(
                        **batch.ids(now), direction=check.direction, subject="vehicle",
                        outcome=outcome, colour=None, credential="none", reasons=reasons,
                        temperature_c=highest, vehicle_plate=check.vehicle_plate,
                        occupants=len(check.occupant_temperatures_c), volunteer_id=volunteer_id,
                    )
                )  # fmt: skip
                if outcome == "hold":
                    self._open_hold(batch, passage, None)
            if outcome == "hold":
                # Readings before the vehicle was held never release its occupants.
                self._readings_after = self.monotonic()
            view = DecisionView(
                passage_id=passage.event_id, at=now, outcome=outcome, colour=None,
                reasons=reasons, credential="none", temperature_c=highest,
                subject="vehicle", vehicle_plate=check.vehicle_plate,
            )  # fmt: skip
            self._show(view)
        if outcome == "allow":
            self.actions.open_barrier()
        self.actions.show(outcome)
        return view

    def identify(self, badge_text: str) -> Volunteer:
        return _volunteer(self._badge(badge_text))

    def change_shift(self, badge_text: str, action: Literal["start", "end"]) -> ShiftChange:
        return self._shift(self._badge(badge_text), action)

    def _badge(self, badge_text: str) -> Badge:
        verdict = self.verifier.verify(badge_text.strip(), self.clock())
        if not verdict.ok:
            raise Refusal(verdict.reasons[0], verdict.detail)
        if not isinstance(verdict.credential, Badge):
            raise Refusal("not-a-badge", "scan a volunteer badge")
        return verdict.credential

    def _shift(self, badge: Badge, action: Literal["start", "end"]) -> ShiftChange:
        now = self.clock()
        change = ShiftChange(**_volunteer(badge).model_dump(), action=action, at=now)
        with self._lock:
            on_duty = badge.volunteer in self._book.on_duty
            if on_duty == (action == "start"):
                # Already so: a second start is the volunteer signing in again at the console.
                return change
            with self._transaction() as batch:
                others = [v for v in self._book.on_duty if v != badge.volunteer]
                self._book.on_duty = [*others, badge.volunteer] if action == "start" else others
                batch.add(
                    Shift(
                        **batch.ids(now), action=action, volunteer_id=badge.volunteer,
                        role=badge.role,
                    )
                )  # fmt: skip
        return change

    def log_disinfection(self, round_: DisinfectionRound, volunteer_id: str) -> None:
        now = self.clock()
        with self._lock, self._transaction() as batch:
            self._require_on_duty(volunteer_id)
            batch.add(
                Disinfection(
                    **batch.ids(now), volunteer_id=volunteer_id, area=round_.area,
                    agent=round_.agent,
                )
            )  # fmt: skip


def _volunteer(badge: Badge) -> Volunteer:
    return Volunteer(volunteer_id=badge.volunteer, masked_name=badge.name, role=badge.role)
