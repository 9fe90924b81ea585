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
from edge.credentials.verifier import Verdict, Verifier
from edge.gate.book import LocalBook
from edge.gate.decision import MISSING_READING, GatePolicy, decide_vehicle
from edge.gate.hold_rules import PASSING, offered
from edge.gate.views import (
    DecisionView,
    DisinfectionRound,
    HoldResolution,
    OpenHold,
    Refusal,
    Registration,
    ShiftChange,
    VehicleCheck,
)
from edge.outbox import Batch


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
    policy: GatePolicy
    verifier: Verifier
    actions: GateActions

    def _transaction(self, *, reserved: bool = False) -> AbstractContextManager[Batch]:
        raise NotImplementedError

    def _open_hold(self, batch: Batch, passage: Passage, masked_name: str | None) -> None:
        raise NotImplementedError

    def _show(self, view: DecisionView) -> None:
        raise NotImplementedError

    def resolve_hold(self, hold_id: str, resolution: HoldResolution) -> None:
        now = self.clock()
        with self._lock:
            hold = self._book.holds.get(hold_id)
            if hold is None:
                raise Refusal("unknown-hold", f"no open hold {hold_id}")
            self._check_resolution(hold, resolution)
            with self._transaction() as batch:
                registration_id = None
                if resolution.registration is not None:
                    registration_id = self._registration(
                        batch, resolution.registration, resolution.volunteer_id, hold_id, now
                    )
                batch.add(
                    HoldResolved(
                        **batch.ids(now), hold_id=hold_id, resolution=resolution.resolution,
                        volunteer_id=resolution.volunteer_id,
                        temperature_c=resolution.temperature_c,
                        registration_id=registration_id, note=resolution.note,
                    )
                )  # fmt: skip
                del self._book.holds[hold_id]
        if resolution.resolution in PASSING:
            self.actions.open_barrier()
            self.actions.show("allow")

    def _check_resolution(self, hold: OpenHold, resolution: HoldResolution) -> None:
        if resolution.resolution == "registered" and resolution.registration is None:
            raise Refusal("registration-missing", "fill in the registration form first")
        if resolution.resolution not in offered(hold.reasons):
            # A forged or revoked code is never released, a fever never registered.
            raise Refusal(
                "action-not-offered",
                f"{resolution.resolution} does not fit a hold for {', '.join(hold.reasons)}",
            )
        if resolution.resolution != "released":
            return
        temperature = resolution.temperature_c
        fever_like = {
            "fever", "vehicle-fever", "re-measure", "temperature-implausible", *MISSING_READING,
        }  # fmt: skip
        if fever_like & set(hold.reasons) and temperature is None:
            raise Refusal("measure-temperature", "enter the re-measured temperature")
        if temperature is not None and temperature >= self.policy.fever_c:
            raise Refusal("fever", f"{temperature:.1f} °C: refer or turn back")

    def register(self, registration: Registration, volunteer_id: str) -> str:
        now = self.clock()
        with self._transaction() as batch:
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

    def check_vehicle(self, check: VehicleCheck) -> DecisionView:
        now = self.clock()
        outcome, reasons = decide_vehicle(check.occupant_temperatures_c, self.policy)
        highest = max(check.occupant_temperatures_c)
        with self._lock:
            with self._transaction() as batch:
                passage = batch.add(
                    Passage(
                        **batch.ids(now), direction=check.direction, subject="vehicle",
                        outcome=outcome, colour=None, credential="none", reasons=reasons,
                        temperature_c=highest, vehicle_plate=check.vehicle_plate,
                        occupants=len(check.occupant_temperatures_c),
                    )
                )  # fmt: skip
                if outcome == "hold":
                    self._open_hold(batch, passage, None)
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

    def change_shift(self, badge_text: str, action: Literal["start", "end"]) -> ShiftChange:
        verdict = self.verifier.verify(badge_text.strip(), self.clock())
        if not verdict.ok:
            raise Refusal(verdict.reasons[0], verdict.detail)
        if not isinstance(verdict.credential, Badge):
            raise Refusal("not-a-badge", "scan a volunteer badge")
        return self._shift(verdict, action)

    def _shift(self, verdict: Verdict, action: Literal["start", "end"]) -> ShiftChange:
        badge = verdict.credential
        assert isinstance(badge, Badge)
        now = self.clock()
        with self._transaction() as batch:
            on_duty = [v for v in self._book.on_duty if v != badge.volunteer]
            self._book.on_duty = [*on_duty, badge.volunteer] if action == "start" else on_duty
            batch.add(
                Shift(
                    **batch.ids(now), action=action, volunteer_id=badge.volunteer,
                    role=badge.role,
                )
            )  # fmt: skip
        return ShiftChange(
            action=action, volunteer_id=badge.volunteer, masked_name=badge.name, at=now
        )

    def log_disinfection(self, round_: DisinfectionRound) -> None:
        now = self.clock()
        with self._transaction() as batch:
            batch.add(
                Disinfection(
                    **batch.ids(now), volunteer_id=round_.volunteer_id, area=round_.area,
                    agent=round_.agent,
                )
            )  # fmt: skip
