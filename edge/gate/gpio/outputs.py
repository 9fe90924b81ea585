"""What the gate does to people: the barrier relay, the lamps and the buzzer."""

from __future__ import annotations

import logging
import threading
from typing import Any

from edge.contract.events import Outcome
from edge.gate.gpio.config import BarrierConfig, BuzzerConfig, LampsConfig
from edge.gate.gpio.timed import Step, TimedOutput

log = logging.getLogger(__name__)

# (on, off) in units of BuzzerConfig.beep_s. Hold and deny differ in count and length, so a
# volunteer looking at the person rather than the lamps still knows which it was.
BEEPS: dict[Outcome, tuple[tuple[int, int], ...]] = {
    "allow": ((1, 0),),
    "hold": ((1, 1), (1, 0)),
    "deny": ((3, 1), (3, 1), (3, 0)),
}


def beep_steps(outcome: Outcome, beep_s: float) -> list[Step]:
    """The buzzer's on/off steps for `outcome`, in seconds."""
    steps: list[Step] = []
    for on, off in BEEPS[outcome]:
        steps.append((True, on * beep_s))
        if off:
            steps.append((False, off * beep_s))
    return steps


class Barrier:
    """The relay that lets one person through.

    Built already at rest (locked) and returned to rest by `shutdown`; see BarrierConfig for
    how `fail` and `active_high` turn "locked" into a pin level.

    Args:
        config: the relay's wiring and timing.
        pin_factory: a gpiozero pin factory; None for real pins.
    """

    def __init__(self, config: BarrierConfig, *, pin_factory: Any = None) -> None:
        self.config = config
        self._relay = TimedOutput(
            config.relay_pin,
            active_high=config.active_high,
            rest_energised=config.rest_energised,
            name="relay",
            pin_factory=pin_factory,
        )

    @property
    def is_open(self) -> bool:
        """Whether the relay is away from rest (pulsing or latched open) now."""
        return self._relay.active

    def open(self) -> bool:
        """Let one person through; returns at once, a worker thread ends the opening.

        Pulse mode leaves rest for pulse_s, latched mode for open_s. A call while already
        open extends that opening instead of starting a second one, so a turnstile that
        counts pulses never lets two people through on one decision and its repeat.

        Returns:
            True when this call opened the barrier, False when it was already open.
        """
        started = self._relay.hold(self.config.opening_s)
        log.debug("barrier %s", "opened" if started else "opening extended")
        return started

    def close(self) -> None:
        """Back to rest (locked) at once, e.g. when the door contact reports the passage done."""
        self._relay.rest()

    def shutdown(self) -> None:
        """Lock and release the pin; the barrier cannot be opened afterwards."""
        self._relay.shutdown()


class Signals:
    """The lamps and buzzer that tell the person and the volunteer what was decided.

    Either part may be absent (None); `show` then drives what is fitted.

    Args:
        lamps: the lamps' wiring, or None.
        buzzer: the buzzer's wiring, or None.
        pin_factory: a gpiozero pin factory; None for real pins.
    """

    def __init__(
        self, lamps: LampsConfig | None, buzzer: BuzzerConfig | None, *, pin_factory: Any = None
    ) -> None:
        self.lamps = lamps
        self.buzzer = buzzer
        # One decision at a time: two racing shows must not leave both lamps lit.
        self._showing = threading.Lock()
        self._green: TimedOutput | None = None
        self._red: TimedOutput | None = None
        self._beeper: TimedOutput | None = None
        if lamps is not None:
            self._green = TimedOutput(
                lamps.green_pin, active_high=lamps.active_high, rest_energised=False,
                name="green-lamp", pin_factory=pin_factory,
            )  # fmt: skip
            self._red = TimedOutput(
                lamps.red_pin, active_high=lamps.active_high, rest_energised=False,
                name="red-lamp", pin_factory=pin_factory,
            )  # fmt: skip
        if buzzer is not None:
            self._beeper = TimedOutput(
                buzzer.pin, active_high=buzzer.active_high, rest_energised=False,
                name="buzzer", pin_factory=pin_factory,
            )  # fmt: skip

    def show(self, outcome: Outcome) -> None:
        """Light the lamp for `outcome` for show_s and play its beeps; returns at once.

        Green for allow, red for hold and deny. A new decision replaces the previous one's
        lamp and beeps rather than queueing behind them.
        """
        with self._showing:
            if self.lamps is not None and self._green is not None and self._red is not None:
                lit, dark = (
                    (self._green, self._red) if outcome == "allow" else (self._red, self._green)
                )
                dark.rest()
                lit.hold(self.lamps.show_s)
            if self.buzzer is not None and self._beeper is not None:
                self._beeper.play(beep_steps(outcome, self.buzzer.beep_s))

    def clear(self) -> None:
        """Lamps off and buzzer silent at once."""
        for output in self._outputs():
            output.rest()

    def shutdown(self) -> None:
        """Lamps off, buzzer silent, pins released."""
        for output in self._outputs():
            output.shutdown()

    def _outputs(self) -> list[TimedOutput]:
        return [o for o in (self._green, self._red, self._beeper) if o is not None]
