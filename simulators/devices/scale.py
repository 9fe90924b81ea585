"""A simulated platform scale: an indicator streaming its weight, a pallet put on and taken off."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Literal

from edge.devices.scale.profile import ScaleProfile
from edge.devices.scale.protocol import Unit, encode_st_gs, encode_toledo
from simulators.devices.base import SimulatedPart

# While it settles a loaded platform swings by up to this much (kg), shrinking to nothing.
SWING_KG = Decimal("2.5")


class SimulatedScale(SimulatedPart):
    """A weighing indicator behind a pty, sending frames at its profile's rate and baud.

    `load(kg)` puts a weight on the platform: the indicator shows it swinging and sends
    US (motion) for `settle_s`, then ST with the weight. `overload()` shows OL until
    the next `load`. Line faults (`faults.garbage`, `faults.corrupt_next`, `faults.silent`,
    `unplug()`) come from SimulatedPart.

    Args:
        path: where the symlink to the pty goes.
        profile: format, baud, unit, rate and decimals as the real indicator is set.
        decimals: digits after the point (the indicator's division).
        settle_s: how long a newly loaded platform is in motion.
        basis: gross, or net (the indicator's own tare).
        seed: for the swing, so a scenario replays the same.
    """

    power_up_s = 1.0  # an indicator's self-test before its first frame

    def __init__(
        self, path: Path, profile: ScaleProfile, *, decimals: int = 2,
        settle_s: float = 1.0, basis: str = "gross", seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(path, profile.baudrate, 1 / profile.frames_per_s)
        self.profile = profile
        self.decimals = decimals
        self.settle_s = settle_s
        self.net = basis == "net"
        self._rng = random.Random(seed)
        self._state = threading.Lock()
        self._weight = Decimal(0)  # in the profile's unit
        self._settled_at = time.monotonic()
        self._overload = False
        self.frames_sent = 0

    @property
    def unit(self) -> Unit:
        return self.profile.unit

    def load(self, weight: Decimal | float | str, *, settle_s: float | None = None) -> None:
        """Put `weight` (in the indicator's unit) on the platform: motion, then stable."""
        with self._state:
            self._weight = Decimal(str(weight)).quantize(Decimal(1).scaleb(-self.decimals))
            self._overload = False
            self._settled_at = time.monotonic() + (self.settle_s if settle_s is None else settle_s)

    def unload(self) -> None:
        """Take everything off: motion, then a stable zero."""
        self.load(0)

    def overload(self) -> None:
        """More than the scale's capacity: OL until the next `load`."""
        with self._state:
            self._overload = True

    def next_frame(self) -> bytes | None:
        with self._state:
            weight, overload = self._weight, self._overload
            moving = time.monotonic() < self._settled_at
        if moving:
            weight += (SWING_KG * Decimal(self._rng.uniform(-1, 1))).quantize(
                Decimal(1).scaleb(-self.decimals)
            )
        self.frames_sent += 1
        if self.profile.format == "toledo":
            digits = int(abs(weight).scaleb(self.decimals))
            return encode_toledo(
                min(digits, 999_999), decimals=self.decimals, net=self.net,
                negative=weight < 0, overload=overload, motion=moving, unit=self.unit,
                checksum=self.profile.toledo_checksum,
            )  # fmt: skip
        status: Literal["ST", "US", "OL"] = "OL" if overload else "US" if moving else "ST"
        return encode_st_gs(
            status, "net" if self.net else "gross", weight, self.unit, decimals=self.decimals
        )

    def corrupt(self, frame: bytes) -> bytes:
        """A frame hit by line noise: its status letters and a digit mangled."""
        return b"\x8f?" + frame[2:5] + b"#" + frame[6:]
