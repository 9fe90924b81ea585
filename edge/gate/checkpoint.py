"""The gate's working state: scans and temperatures in, decisions and events out.

Every path that changes the gate (a scan, a temperature, a console action, the cut-off
hour) goes through one lock and one outbox transaction: the events and the local
state they change (open holds, counts, household exits, volunteers on duty) are
committed together, and only then does the barrier move.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from edge.contract.events import (
    CheckpointCounts,
    DailyReport,
    Hold,
    Passage,
)
from edge.credentials.native import Badge
from edge.credentials.verifier import Verdict, Verifier
from edge.devices.base import CodeScan, Reading, ScanFailed, TemperatureReading
from edge.devices.link import FaultChange
from edge.fault_log import FaultLog
from edge.gate.book import LocalBook
from edge.gate.console_actions import ConsoleActions, GateActions
from edge.gate.daily import daily_report_fields, report_period, tally
from edge.gate.decision import (
    Attempt,
    Decision,
    GatePolicy,
    LocalState,
    decide,
    masked_name,
    usable_reading,
)
from edge.gate.views import (
    ConsoleUpdate,
    DecisionView,
    NodeView,
    OpenHold,
    Prompt,
    PromptKind,
    WaitingView,
)
from edge.outbox import Batch, Outbox, OutboxError

log = logging.getLogger(__name__)

# Temperatures older than this are never used, whatever the policy says.
READINGS_KEPT_S = 120.0
# What a thermal array's refusal asks of the person in front of it.
PROBLEM_PROMPTS: dict[str, PromptKind] = {"too-far": "step-closer", "too-close": "step-back"}
# Exit-button passages waiting for room in the outbox (the barrier opened for each).
UNRECORDED_EXITS_KEPT = 10_000


@dataclass
class _Pending:
    """A code read, waiting for a temperature (at most the policy's window)."""

    verdict: Verdict
    at_wall: datetime
    at: float


class GateCheckpoint(ConsoleActions):
    """The gate: implements the console's Checkpoint and takes the devices' readings.

    Args:
        gate: this gate's name.
        outbox: where every event is committed first.
        verifier: checks codes and badges.
        policy: fever, proof windows, quotas.
        actions: the barrier and signals.
        direction: which way this lane lets people.
        zone: the site's time zone (report cut-off, household weeks).
        cutoff_hour: the daily report's cut-off hour, local time.
        id_hash_key: key for the keyed hash of ID numbers at registration.
        node_view: the node's own status for the console.
        on_event: called after every commit (wakes the uplink).
        clock: wall clock (aware); monotonic: seconds for reading windows.
    """

    def __init__(
        self, *, gate: str, outbox: Outbox, verifier: Verifier, policy: GatePolicy,
        actions: GateActions, direction: Literal["in", "out"], zone: ZoneInfo,
        cutoff_hour: int, id_hash_key: bytes, node_view: Callable[[], NodeView],
        on_event: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.gate = gate
        self.outbox = outbox
        self.verifier = verifier
        self.policy = policy
        self.actions = actions
        self.direction = direction
        self.zone = zone
        self.cutoff_hour = cutoff_hour
        self._id_key = id_hash_key
        self._node_view = node_view
        self._on_event = on_event
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._book = LocalBook.load(outbox)
        # Fault events commit through this checkpoint's transactions: the consoles hear.
        self.faults = FaultLog(outbox, clock, transaction=self._transaction, lock=self._lock)
        self._readings: deque[TemperatureReading] = deque(maxlen=256)
        self._pending: _Pending | None = None
        # Readings taken at or before this (monotonic) instant belong to an earlier
        # decision, or to nobody: they never count for the next person.
        self._readings_after = float("-inf")
        self._unrecorded_exits: deque[datetime] = deque(maxlen=UNRECORDED_EXITS_KEPT)
        self._recent_uses: dict[str, tuple[str, datetime]] = {}
        self._last: DecisionView | None = None
        self._prompt_shown: Prompt | None = None
        if not self._book.period_end:
            self._book.period_end = report_period(clock(), cutoff_hour, zone)[1].isoformat()

    # Devices.
    def on_reading(self, reading: Reading) -> None:
        """A scan or a temperature from any device (called on the device's thread)."""
        if isinstance(reading, CodeScan):
            self._on_scan(reading)
        elif isinstance(reading, ScanFailed):
            self._prompt("scan-again")
        else:
            self._on_temperature(reading)

    def _on_scan(self, scan: CodeScan) -> None:
        now = self.clock()
        verdict = self.verifier.verify(scan.text, now)
        if verdict.ok and isinstance(verdict.credential, Badge):
            action: Literal["start", "end"]
            action = "end" if verdict.credential.volunteer in self._book.on_duty else "start"
            self._shift(verdict.credential, action)
            return
        with self._lock:
            if self._pending is not None:
                self._decide(self._pending)  # an earlier code never got its temperature
            pending = _Pending(verdict, now, scan.at)
            window = self.policy.temperature_window_s
            near = usable_reading(self._fresh_readings(), pending.at, window) is not None
            if near or not self._waits_for_temperature(verdict):
                self._decide(pending)
            else:
                self._pending = pending
                self._touch()

    def _on_temperature(self, reading: TemperatureReading) -> None:
        with self._lock:
            self._readings.append(reading)
            if reading.problem in PROBLEM_PROMPTS:
                self._prompt(PROBLEM_PROMPTS[reading.problem])
            pending = self._pending
            window = self.policy.temperature_window_s
            if pending and usable_reading((reading,), pending.at, window) is not None:
                self._decide(pending)

    def _fresh_readings(self) -> tuple[TemperatureReading, ...]:
        """Readings no decision has had, taken after the previous person was decided."""
        return tuple(r for r in self._readings if r.at > self._readings_after)

    def tick(self) -> None:
        """Time passing: a code that waited too long for a temperature, the cut-off hour,
        exits that waited for room in the outbox."""
        with self._lock:
            pending = self._pending
            if pending and self.monotonic() - pending.at >= self.policy.temperature_window_s:
                self._pending = None
                self._decide(pending)
            if self.clock() >= datetime.fromisoformat(self._book.period_end):
                self._daily_report()
            if self._unrecorded_exits:
                self._record_exits()

    def on_fault(self, change: FaultChange) -> None:
        """A device fault raised or cleared: one device-fault event, and the console told."""
        self.record_fault(change.device, change.fault, change.state, change.detail)

    def record_fault(
        self, device: str, fault: str, state: Literal["raised", "cleared"], detail: str | None,
        *, each_incident: bool = False,
    ) -> None:  # fmt: skip
        """One device-fault event per change (FaultLog.record_fault)."""
        self.faults.record_fault(device, fault, state, detail, each_incident=each_incident)

    @property
    def reported_faults(self) -> set[tuple[str, str]]:
        return self.faults.reported_faults

    def reconcile_faults(self, present: set[tuple[str, str]]) -> None:
        self.faults.reconcile_faults(present)

    def on_exit_button(self) -> None:
        """Someone leaving pressed the exit button: the barrier opens and it is counted.

        Leaving never waits for the outbox: with no room the exit is kept in memory and
        recorded as soon as there is.
        """
        self.actions.open_barrier()
        with self._lock:
            self._unrecorded_exits.append(self.clock())
            self._record_exits()

    def _record_exits(self) -> None:
        try:
            with self._transaction() as batch:
                for at in self._unrecorded_exits:
                    batch.add(
                        Passage(**batch.ids(at), direction="out", outcome="allow",
                                credential="none")
                    )  # fmt: skip
        except OutboxError as exc:
            log.warning(
                "%d exit(s) wait for room in the outbox: %s", len(self._unrecorded_exits), exc
            )
            return
        self._unrecorded_exits.clear()

    # The decision path.
    def _waits_for_temperature(self, verdict: Verdict) -> bool:
        # A code that is refused or red is decided at once; no temperature changes that.
        return verdict.ok and verdict.colour != "red"

    def _decide(self, pending: _Pending) -> None:
        self._pending = None
        now = self.clock()
        horizon = pending.at - READINGS_KEPT_S
        readings = tuple(r for r in self._fresh_readings() if r.at >= horizon)
        attempt = Attempt(pending.verdict, pending.at_wall, pending.at, readings, self.direction)
        exits = self._book.household_exits if self._book.week == self._week(now) else {}
        state = LocalState(self.gate, dict(exits), dict(self._recent_uses))
        decision = decide(attempt, self.policy, state, now)
        # One reading, one person: whatever was measured up to now is used up.
        self._readings_after = self.monotonic()
        self._act(decision, now)

    def _act(self, decision: Decision, at: datetime) -> None:
        try:
            with self._transaction() as batch:
                passage = self._passage_events(batch, decision, at)
                if decision.household:
                    self._count_exit(decision.household, at)
        except OutboxError as exc:
            # Nothing could be recorded, so nothing may open: the volunteer decides by hand.
            log.error("decision not recorded: %s", exc)
            self._show(DecisionView(
                passage_id="0" * 26, at=at, outcome="hold", colour=decision.colour,
                reasons=("outbox-full", *decision.reasons), credential=decision.credential,
                temperature_c=decision.temperature_c, masked_name=decision.masked_name,
            ))  # fmt: skip
            self.actions.show("hold")
            return
        if decision.code_key:
            self._recent_uses[decision.code_key] = (self.gate, at)
        if decision.outcome == "allow":
            self.actions.open_barrier()
        self.actions.show(decision.outcome)
        self._show(DecisionView(
            passage_id=passage.event_id, at=at, outcome=decision.outcome, colour=decision.colour,
            reasons=decision.reasons, credential=decision.credential,
            temperature_c=decision.temperature_c, masked_name=decision.masked_name,
        ))  # fmt: skip

    def _passage_events(self, batch: Batch, decision: Decision, at: datetime) -> Passage:
        passage = Passage(
            **batch.ids(at), direction=self.direction, outcome=decision.outcome,
            colour=decision.colour, credential=decision.credential, reasons=decision.reasons,
            temperature_c=decision.temperature_c, subject_ref=decision.subject_ref,
        )  # fmt: skip
        batch.add(passage)
        if decision.outcome == "hold":
            self._open_hold(batch, passage, decision.masked_name)
        return passage

    def _open_hold(self, batch: Batch, passage: Passage, masked_name: str | None) -> None:
        hold = batch.add(
            Hold(
                **batch.ids(passage.node_time), passage_id=passage.event_id,
                reasons=passage.reasons, colour=passage.colour,
                temperature_c=passage.temperature_c, subject_ref=passage.subject_ref,
            )
        )  # fmt: skip
        self._book.holds[hold.event_id] = OpenHold(
            hold_id=hold.event_id, passage_id=passage.event_id, at=passage.node_time,
            reasons=passage.reasons, colour=passage.colour,
            temperature_c=passage.temperature_c, masked_name=masked_name,
            subject=passage.subject, vehicle_plate=passage.vehicle_plate,
        )  # fmt: skip

    def _week(self, at: datetime) -> str:
        """The ISO week of `at` in the site's time zone: household quotas run per week."""
        year, week, _ = at.astimezone(self.zone).isocalendar()
        return f"{year}-W{week:02d}"

    def _count_exit(self, household: str, at: datetime) -> None:
        label = self._week(at)
        if self._book.week != label:
            self._book.week, self._book.household_exits = label, {}
        exits = self._book.household_exits
        exits[household] = exits.get(household, 0) + 1

    # The console (views.Checkpoint).
    def update(self) -> ConsoleUpdate:
        with self._lock:
            return ConsoleUpdate(
                decision=self._last, holds=tuple(self._book.holds.values()),
                node=self._node_view(), prompt=self._prompt_shown, waiting=self._waiting(),
            )  # fmt: skip

    def wait_for_change(self, after: int, timeout_s: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._version > after, timeout_s)
            return self._version

    def _waiting(self) -> WaitingView | None:
        pending = self._pending
        if pending is None:
            return None
        window = timedelta(seconds=self.policy.temperature_window_s)
        return WaitingView(
            scanned_at=pending.at_wall, deadline=pending.at_wall + window,
            colour=pending.verdict.colour, masked_name=masked_name(pending.verdict),
        )  # fmt: skip

    def refresh(self) -> None:
        """The node's own state changed (outbox depth, broker, devices): tell the consoles."""
        self._touch()

    @property
    def on_duty(self) -> tuple[str, ...]:
        return tuple(self._book.on_duty)

    # Daily report.
    def _daily_report(self) -> None:
        period_end = datetime.fromisoformat(self._book.period_end)
        period = report_period(period_end - timedelta(microseconds=1), self.cutoff_hour, self.zone)
        fields = daily_report_fields(period, self._book.counts)
        with self._transaction(reserved=True) as batch:
            batch.add(DailyReport(**batch.ids(self.clock()), **fields))
            self._book.counts = CheckpointCounts()
            # A node that was off across several cut-offs reports the period it held
            # counts for, then starts the current one.
            self._book.period_end = report_period(self.clock(), self.cutoff_hour, self.zone)[
                1
            ].isoformat()

    # Recording.
    @contextmanager
    def _transaction(self, *, reserved: bool = False) -> Iterator[Batch]:
        """One outbox transaction that also commits the local book and the day's counts."""
        with self._lock:
            # The book changes with the events or not at all.
            saved = copy.deepcopy(self._book)
            try:
                with self.outbox.transaction(reserved=reserved) as batch:
                    yield batch
                    for event in batch.events:
                        self._book.counts = tally(self._book.counts, event)
                    batch.meta.update(self._book.dump())
            except BaseException:
                self._book = saved
                raise
            self._touch()
        self._on_event()

    def _prompt(self, kind: PromptKind) -> None:
        with self._lock:
            self._prompt_shown = Prompt(kind=kind, at=self.clock())
            self._touch()

    def _show(self, view: DecisionView) -> None:
        with self._lock:
            self._last = view
            self._touch()

    def _touch(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()
