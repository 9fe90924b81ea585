"""What the gate hears: the exit button and the door contact, each calling back the node."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from gpiozero import DigitalInputDevice

from edge.devices.link import FaultChange
from edge.gate.gpio.config import DoorContactConfig, ExitButtonConfig

log = logging.getLogger(__name__)

DoorState = Literal["open", "closed"]
DOOR_DEVICE = "door"
HELD_OPEN = "held-open"


def _call(name: str, callback: Callable[[], None]) -> None:
    # Callbacks run on gpiozero's pin thread; one that raises must not silence the pin.
    try:
        callback()
    except Exception:
        log.exception("%s callback failed", name)


class ExitButton:
    """The request-to-exit button: each press calls `on_press` on gpiozero's pin thread.

    Args:
        config: the button's wiring.
        on_press: called once per press; must return quickly (it runs on the pin thread).
        pin_factory: a gpiozero pin factory; None for real pins.
    """

    def __init__(
        self, config: ExitButtonConfig, *, on_press: Callable[[], None], pin_factory: Any = None
    ) -> None:
        self.config = config
        self._on_press = on_press
        # Not gpiozero's Button: its hold-time thread polls and takes 0.1 s to stop, and a
        # press is all the node needs.
        self._button = DigitalInputDevice(
            config.pin,
            pull_up=config.pull_up,
            bounce_time=config.bounce_s or None,
            pin_factory=pin_factory,
        )
        self._button.when_activated = self._pressed

    @property
    def is_pressed(self) -> bool:
        """Whether the button is held down now."""
        return bool(self._button.is_active)

    def shutdown(self) -> None:
        """Stop listening and release the pin."""
        self._button.when_activated = None
        self._button.close()

    def _pressed(self) -> None:
        _call("exit button", self._on_press)


class DoorContact:
    """The door's reed contact: reports every change and a door left open too long.

    A door open for held_open_fault_s raises FaultChange(device="door", fault="held-open",
    state="raised") once; the door closing clears it once. Callbacks run on gpiozero's pin
    thread or the held-open timer's thread and must return quickly.

    Args:
        config: the contact's wiring and the held-open limit.
        on_change: called with "open" or "closed" at every change.
        on_fault: called with each held-open fault change.
        pin_factory: a gpiozero pin factory; None for real pins.
    """

    def __init__(
        self, config: DoorContactConfig, *,
        on_change: Callable[[DoorState], None] | None = None,
        on_fault: Callable[[FaultChange], None] | None = None,
        pin_factory: Any = None,
    ) -> None:  # fmt: skip
        self.config = config
        self._on_change = on_change
        self._on_fault = on_fault
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._held_open = False
        self._contact = DigitalInputDevice(
            config.pin,
            pull_up=config.pull_up,
            bounce_time=config.bounce_s or None,
            pin_factory=pin_factory,
        )
        self._state = self._read()
        if self._state == "open":
            # Already open at start: the limit counts from now, as nobody knows since when.
            with self._lock:
                self._arm()
        self._contact.when_activated = self._changed
        self._contact.when_deactivated = self._changed

    @property
    def state(self) -> DoorState:
        """The door as last read: open or closed."""
        with self._lock:
            return self._state

    @property
    def held_open(self) -> bool:
        """Whether the held-open fault is raised now."""
        with self._lock:
            return self._held_open

    def shutdown(self) -> None:
        """Stop listening and the held-open timer, and release the pin."""
        self._contact.when_activated = None
        self._contact.when_deactivated = None
        with self._lock:
            self._disarm()
        self._contact.close()

    def _read(self) -> DoorState:
        high = bool(self._contact.pin.state)
        return "closed" if high == self.config.closed_when_high else "open"

    def _changed(self) -> None:
        state = self._read()
        cleared = False
        with self._lock:
            if state == self._state:
                return
            self._state = state
            if state == "open":
                self._arm()
            else:
                self._disarm()
                cleared, self._held_open = self._held_open, False
        log.info("door %s", state)
        if self._on_change is not None:
            on_change = self._on_change
            _call("door change", lambda: on_change(state))
        if cleared:
            self._fault("cleared", None)

    def _arm(self) -> None:
        self._disarm()
        timer = threading.Timer(self.config.held_open_fault_s, self._expired)
        timer.daemon = True
        timer.name = "door-held-open"
        self._timer = timer
        timer.start()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        with self._lock:
            # A close that raced this timer wins: it cancelled or replaced `_timer`.
            if self._timer is not threading.current_thread() or self._state != "open":
                return
            self._timer = None
            self._held_open = True
        self._fault("raised", f"open longer than {self.config.held_open_fault_s:g} s")

    def _fault(self, state: Literal["raised", "cleared"], detail: str | None) -> None:
        log.warning("door held-open fault %s", state)
        if self._on_fault is not None:
            on_fault = self._on_fault
            change = FaultChange(device=DOOR_DEVICE, fault=HELD_OPEN, state=state, detail=detail)
            _call("door fault", lambda: on_fault(change))
