"""The gate's GPIO wiring as config: one model per part, checked across parts at load time."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

BarrierMode = Literal["pulse", "latched"]
FailMode = Literal["safe", "secure"]
PinFactoryChoice = Literal["auto", "mock"]

# BCM 0 and 1 are the HAT ID EEPROM bus; the firmware reads them at boot, so a part there
# would see traffic before the node runs.
MIN_PIN = 2
MAX_PIN = 27


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BarrierConfig(_Part):
    """The relay that releases the barrier, door strike or turnstile.

    Rest is the locked level; which relay state that is depends on `fail`:

    | fail     | relay at rest | to let one person pass | if any power is lost        |
    |----------|---------------|------------------------|-----------------------------|
    | `secure` | de-energised  | energise (lock on NO)  | relay drops: stays locked   |
    | `safe`   | energised     | de-energise            | relay drops: door released  |

    `active_high` then turns "energised" into a pin level (high for an active-high module).
    """

    relay_pin: int = Field(17, ge=MIN_PIN, le=MAX_PIN, description="BCM number of the relay input")
    active_high: bool = Field(
        True, description="the relay module energises when its input is high (false: when low)"
    )
    mode: BarrierMode = Field(
        "pulse",
        description="pulse: a momentary signal to a turnstile or barrier controller that "
        "lets one person through; latched: the relay itself holds the lock open for open_s",
    )  # fmt: skip
    pulse_s: float = Field(
        1.0, ge=0.02, le=10.0, description="how long a pulse lasts (mode pulse only)"
    )
    open_s: float = Field(
        5.0, ge=0.02, le=120.0, description="how long the lock stays open (mode latched only)"
    )
    fail: FailMode = Field(
        "secure",
        description="what the door does when power is lost: safe releases it (escape "
        "routes, maglocks), secure keeps it locked (strikes, turnstiles)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _timing_fits_mode(self) -> Self:
        # Both timings have defaults, so only a value the operator wrote can contradict the mode.
        if self.mode == "latched" and "pulse_s" in self.model_fields_set:
            raise ValueError(
                "mode is 'latched', so pulse_s does not apply; open_s sets how long it stays open"
            )
        if self.mode == "pulse" and "open_s" in self.model_fields_set:
            raise ValueError(
                "mode is 'pulse', so open_s does not apply; set pulse_s for the pulse length"
            )
        return self

    @property
    def opening_s(self) -> float:
        """How long one open() keeps the relay away from rest."""
        return self.pulse_s if self.mode == "pulse" else self.open_s

    @property
    def rest_energised(self) -> bool:
        """Whether the relay coil is powered while the barrier is locked."""
        return self.fail == "safe"


class LampsConfig(_Part):
    """The green (pass) and red (stop) lamps above the lane."""

    green_pin: int = Field(27, ge=MIN_PIN, le=MAX_PIN, description="BCM number of the green lamp")
    red_pin: int = Field(22, ge=MIN_PIN, le=MAX_PIN, description="BCM number of the red lamp")
    active_high: bool = Field(True, description="a lamp lights when its pin is high")
    show_s: float = Field(
        3.0, ge=0.02, le=60.0, description="how long a lamp stays lit after a decision"
    )

    @model_validator(mode="after")
    def _two_pins(self) -> Self:
        if self.green_pin == self.red_pin:
            raise ValueError(
                f"green_pin and red_pin are both GPIO {self.green_pin}; each lamp needs its own pin"
            )
        return self


class BuzzerConfig(_Part):
    """An active buzzer (it sounds while its pin is driven; no PWM needed)."""

    pin: int = Field(23, ge=MIN_PIN, le=MAX_PIN, description="BCM number of the buzzer")
    active_high: bool = Field(True, description="the buzzer sounds when its pin is high")
    beep_s: float = Field(
        0.15, ge=0.01, le=1.0, description="one short beep; the patterns are multiples of it"
    )


class ExitButtonConfig(_Part):
    """The request-to-exit button on the inside of the gate."""

    pin: int = Field(24, ge=MIN_PIN, le=MAX_PIN, description="BCM number of the button")
    pull_up: bool = Field(
        True, description="internal pull-up, button to ground (false: pull-down, button to 3V3)"
    )
    bounce_s: float = Field(
        0.05, ge=0.0, le=1.0, description="ignore further edges this long after one (0: off)"
    )
    opens_barrier: bool = Field(
        True,
        description="the press opens the barrier itself before the node hears of it, so "
        "leaving never waits on the decision path",
    )  # fmt: skip


class DoorContactConfig(_Part):
    """The reed contact that tells whether the door or gate leaf is shut."""

    pin: int = Field(25, ge=MIN_PIN, le=MAX_PIN, description="BCM number of the contact")
    pull_up: bool = Field(
        True, description="internal pull-up, contact to ground (false: pull-down, contact to 3V3)"
    )
    closed_when_high: bool = Field(
        False,
        description="the pin reads high while the door is shut; the default (low when shut, "
        "with the pull-up) makes a cut wire read as open, which the held-open fault then reports",
    )  # fmt: skip
    bounce_s: float = Field(
        0.05, ge=0.0, le=1.0, description="ignore further edges this long after one (0: off)"
    )
    held_open_fault_s: float = Field(
        30.0, ge=0.05, le=3600.0, description="a door open this long raises a held-open fault"
    )


class GpioConfig(_Part):
    """Every part on the gate's header; set a part to null when it is not fitted."""

    pin_factory: PinFactoryChoice = Field(
        "auto", description="auto: real pins on a Raspberry Pi, simulated pins elsewhere"
    )
    barrier: BarrierConfig = Field(default_factory=BarrierConfig, description="the relay")
    lamps: LampsConfig | None = Field(default_factory=LampsConfig, description="lamps")
    buzzer: BuzzerConfig | None = Field(default_factory=BuzzerConfig, description="buzzer")
    exit_button: ExitButtonConfig | None = Field(
        default_factory=ExitButtonConfig, description="request-to-exit button"
    )
    door: DoorContactConfig | None = Field(
        default_factory=DoorContactConfig, description="door contact"
    )

    def pins(self) -> list[tuple[str, int]]:
        """Every (field path, BCM number) in use, barrier first."""
        used = [("barrier.relay_pin", self.barrier.relay_pin)]
        if self.lamps is not None:
            used += [("lamps.green_pin", self.lamps.green_pin)]
            used += [("lamps.red_pin", self.lamps.red_pin)]
        if self.buzzer is not None:
            used.append(("buzzer.pin", self.buzzer.pin))
        if self.exit_button is not None:
            used.append(("exit_button.pin", self.exit_button.pin))
        if self.door is not None:
            used.append(("door.pin", self.door.pin))
        return used

    @model_validator(mode="after")
    def _one_part_per_pin(self) -> Self:
        owner: dict[int, str] = {}
        for path, pin in self.pins():
            if pin in owner:
                raise ValueError(
                    f"{owner[pin]} and {path} both use GPIO {pin}; each part needs its own pin"
                )
            owner[pin] = path
        return self
