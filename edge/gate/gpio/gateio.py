"""Every part on the gate's header, built from GpioConfig in a safe order and closed as one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from gpiozero.pins.mock import MockFactory

from edge.contract.events import Outcome
from edge.devices.link import FaultChange
from edge.gate.gpio.config import GpioConfig, PinFactoryChoice
from edge.gate.gpio.inputs import DoorContact, DoorState, ExitButton
from edge.gate.gpio.outputs import Barrier, Signals

log = logging.getLogger(__name__)

PI_MODEL_PATH = Path("/proc/device-tree/model")


def on_raspberry_pi(model_path: Path = PI_MODEL_PATH) -> bool:
    """Whether the device tree names a Raspberry Pi (it is absent on a PC or in CI)."""
    try:
        return b"Raspberry Pi" in model_path.read_bytes()
    except OSError:
        return False


def pin_factory_for(choice: PinFactoryChoice, model_path: Path = PI_MODEL_PATH) -> Any:
    """The gpiozero pin factory `choice` means on this machine.

    Returns:
        None (gpiozero's own choice of real pins) for "auto" on a Pi; a new MockFactory
        for "mock", and for "auto" anywhere else so the node also runs on a laptop.
    """
    if choice == "auto" and on_raspberry_pi(model_path):
        return None
    if choice == "auto":
        log.warning("not a Raspberry Pi (%s says otherwise): gate pins are simulated", model_path)
    return MockFactory()


class GateIO:
    """The barrier, signals, exit button and door contact of one gate.

    The barrier is built first, so the relay is at rest before anything else can fail or
    call back, and is shut down last. An exit-button press opens the barrier here (when
    `exit_button.opens_barrier`) before `on_exit` runs, so leaving never depends on the node;
    a node that also calls `barrier.open()` for that press only extends the same opening.

    Args:
        config: the gate's wiring.
        on_exit: called after each exit-button press, to record the passage.
        on_door: called with "open" or "closed" at every door change.
        on_fault: called with each device fault change (the door's held-open fault).
        pin_factory: overrides `config.pin_factory`, e.g. a test's own MockFactory.
    """

    def __init__(
        self, config: GpioConfig, *,
        on_exit: Callable[[], None] | None = None,
        on_door: Callable[[DoorState], None] | None = None,
        on_fault: Callable[[FaultChange], None] | None = None,
        pin_factory: Any = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.pin_factory = pin_factory if pin_factory is not None else pin_factory_for(
            config.pin_factory
        )  # fmt: skip
        self._on_exit = on_exit
        self._closing = threading.Lock()
        self._closed = False
        self.barrier = Barrier(config.barrier, pin_factory=self.pin_factory)
        self.exit_button: ExitButton | None = None
        self.door: DoorContact | None = None
        # Parts to shut down before the barrier, in order: inputs first, so nothing can
        # open the barrier while it is being locked.
        self._before_barrier: list[ExitButton | DoorContact | Signals] = []
        try:
            self.signals = Signals(config.lamps, config.buzzer, pin_factory=self.pin_factory)
            self._before_barrier.append(self.signals)
            if config.door is not None:
                self.door = DoorContact(
                    config.door, on_change=on_door, on_fault=on_fault, pin_factory=self.pin_factory
                )
                self._before_barrier.insert(0, self.door)
            if config.exit_button is not None:
                self.exit_button = ExitButton(
                    config.exit_button, on_press=self._exit_pressed, pin_factory=self.pin_factory
                )
                self._before_barrier.insert(0, self.exit_button)
        except Exception:
            # A part that cannot be built (pin busy, no permission) must not leave the others
            # holding pins, least of all the relay.
            self.close()
            raise

    def open_barrier(self) -> None:
        """Let one person through (see Barrier.open); with `show`, the node's GateActions."""
        self.barrier.open()

    def show(self, outcome: Outcome) -> None:
        """Light the lamp and sound the beeps for `outcome` (see Signals.show)."""
        self.signals.show(outcome)

    def close(self) -> None:
        """Release every pin, leaving the barrier at rest; safe to call twice."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
        for part in self._before_barrier:
            part.shutdown()
        self.barrier.shutdown()
        log.info("gate pins released, barrier at rest")

    def __enter__(self) -> GateIO:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    def _exit_pressed(self) -> None:
        exit_button = self.config.exit_button
        if exit_button is not None and exit_button.opens_barrier:
            self.barrier.open()
        log.info("exit button pressed")
        if self._on_exit is not None:
            self._on_exit()
