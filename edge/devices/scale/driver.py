"""Scale driver: turns an indicator's endless frame stream into weight readings."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from edge.devices.base import FrameFault, RawSample, Reading, SerialStream
from edge.devices.scale.profile import ScaleProfile
from edge.devices.scale.protocol import Basis, LineReader, WeightFrame


@dataclass(frozen=True)
class WeightReading:
    """What the scale shows now, with the monotonic time of the frame's last byte.

    `weight_kg` is set only for a usable weight: stable (`stable_frames` stable frames
    in a row showing the same weight) and not overloaded. An unstable or overloaded
    scale gives a reading without weight, so the node knows the scale is alive but never
    uses what it shows.
    """

    source: str
    at: float
    stable: bool
    overload: bool
    basis: Basis
    weight_kg: Decimal | None

    @property
    def usable(self) -> bool:
        return self.weight_kg is not None


class ScaleDriver:
    """Reads a weighing indicator in continuous output on an open stream.

    `read` gives a WeightReading per valid frame and a FrameFault per bad one. `poll`
    (the Driver protocol) gives a RawSample in place of each reading: a generic
    DeviceLink then sees a live part, while the depot's ScaleLink reads `read`.

    Args:
        stream: the open serial port.
        profile: format, unit and how many stable frames make a weight.
        source: the scale's name in its readings.
    """

    part: ClassVar[str] = "scale-continuous"

    def __init__(self, stream: SerialStream, profile: ScaleProfile, source: str = "scale") -> None:
        self._stream = stream
        self.profile = profile
        self.source = source
        self._reader = LineReader(profile.format, checksum=profile.toledo_checksum)
        self._run: tuple[Decimal, Basis] | None = None
        self._run_length = 0

    def setup(self) -> None:
        """Nothing to send: an indicator in continuous mode talks on its own."""
        self._reader = LineReader(self.profile.format, checksum=self.profile.toledo_checksum)
        self._run, self._run_length = None, 0

    def revive(self) -> None:
        """Nothing to send: a silent indicator is off, unplugged or set to another mode."""

    def read(self) -> Sequence[WeightReading | FrameFault]:
        """Readings and frame faults from the bytes that arrived ([] if none)."""
        data = self._stream.read(max(1, self._stream.in_waiting))
        if not data:
            return []
        at = time.monotonic()
        out: list[WeightReading | FrameFault] = []
        for item in self._reader.feed(data):
            if isinstance(item, FrameFault):
                out.append(item)
            elif item.unit != self.profile.unit:
                self._run, self._run_length = None, 0
                out.append(
                    FrameFault("garbage", f"a frame in {item.unit}; the profile says "
                               f"{self.profile.unit}")
                )  # fmt: skip
            else:
                out.append(self._reading(item, at))
        return out

    def _reading(self, frame: WeightFrame, at: float) -> WeightReading:
        weight = None
        if frame.usable and frame.weight_kg is not None:
            key = (frame.weight_kg, frame.basis)
            self._run_length = self._run_length + 1 if key == self._run else 1
            self._run = key
            if self._run_length >= self.profile.stable_frames:
                weight = frame.weight_kg
        else:
            self._run, self._run_length = None, 0
        return WeightReading(self.source, at, frame.stable, frame.overload, frame.basis, weight)

    def poll(self) -> Sequence[Reading | FrameFault | RawSample]:
        """The Driver protocol: a RawSample per reading (a weight is no gate Reading)."""
        return [item if isinstance(item, FrameFault) else RawSample(None) for item in self.read()]

    def stuck_key(self, reading: Reading) -> object | None:
        """None: a pallet that sits for days shows the same weight, rightly."""
        del reading
        return None
