"""One output line that returns to rest on a deadline kept by its own thread, not the caller."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from gpiozero import DigitalOutputDevice

log = logging.getLogger(__name__)

# (away from rest?, seconds) — one step of a pattern such as a beep sequence.
Step = tuple[bool, float]
JOIN_TIMEOUT_S = 1.0


class TimedOutput:
    """A digital output whose "active" spells are timed by a worker thread.

    The caller only changes a plan and, if the line must change now, writes it: no sleep,
    no thread start, so it fits the decision path's budget and any thread may call it.

    Args:
        pin: BCM number.
        active_high: the device's pin level when energised.
        rest_energised: whether the device is energised at rest (a fail-safe relay is).
        name: for logs and the thread's name.
        pin_factory: a gpiozero pin factory; None for gpiozero's default (real pins).
    """

    def __init__(
        self, pin: int, *, active_high: bool, rest_energised: bool, name: str,
        pin_factory: Any = None,
    ) -> None:  # fmt: skip
        self.name = name
        self._rest_energised = rest_energised
        # The rest level is given at creation, so gpiozero makes the line an output already
        # at rest: there is no moment at which the pin drives the other level.
        self._device = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=rest_energised, pin_factory=pin_factory
        )
        self._cond = threading.Condition()
        self._plan: deque[tuple[float, bool]] = deque()
        self._active = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"gpio-{name}", daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        """Whether the line is away from rest now."""
        with self._cond:
            return self._active

    def hold(self, seconds: float) -> bool:
        """Go active now and stay active until at least `seconds` from now.

        A call while already active moves the end later (never earlier) without a gap, so
        two callers racing produce one spell, not two.

        Returns:
            True when this call started the spell, False when it only extended one.
        """
        with self._cond:
            if self._closed:
                log.warning("%s: hold after shutdown ignored", self.name)
                return False
            now = time.monotonic()
            end = now + seconds
            started = not self._active
            if not started and self._plan:
                end = max(end, self._plan[-1][0])
            self._replan(now, [(now, True), (end, False)])
            return started

    def play(self, steps: Sequence[Step]) -> None:
        """Replace whatever is running with `steps` from now, ending at rest."""
        with self._cond:
            if self._closed:
                return
            now = time.monotonic()
            at = now
            plan: list[tuple[float, bool]] = []
            for active, seconds in steps:
                plan.append((at, active))
                at += seconds
            plan.append((at, False))
            self._replan(now, plan)

    def rest(self) -> None:
        """Back to rest at once and forget any plan."""
        with self._cond:
            self._plan.clear()
            self._write(False)
            self._cond.notify()

    def shutdown(self) -> None:
        """Drive rest, stop the worker and release the pin."""
        with self._cond:
            self._closed = True
            self._plan.clear()
            self._write(False)
            self._cond.notify()
        self._thread.join(JOIN_TIMEOUT_S)
        self._device.close()

    def _replan(self, now: float, plan: list[tuple[float, bool]]) -> None:
        self._plan = deque(plan)
        self._advance(now)
        self._cond.notify()

    def _advance(self, now: float) -> None:
        while self._plan and self._plan[0][0] <= now:
            _, active = self._plan.popleft()
            self._write(active)

    def _write(self, active: bool) -> None:
        # Only this object writes the device, so `_active` is the line's level and an
        # unchanged level needs no write (a real pin write is a syscall).
        if active != self._active:
            self._device.value = active != self._rest_energised
            self._active = active

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                self._advance(now)
                timeout = self._plan[0][0] - now if self._plan else None
                self._cond.wait(timeout)
