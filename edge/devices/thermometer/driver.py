"""GY-MCU90614 driver: turns the module's endless frame stream into one reading per person."""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

from edge.devices.base import FrameFault, RawSample, Reading, SerialStream, TemperatureReading
from edge.devices.thermometer.profile import ThermometerProfile
from edge.devices.thermometer.protocol import (
    CONTINUOUS_OUTPUT,
    FrameReader,
    TemperatureFrame,
    command,
)

SOURCE = "thermometer"


class PersonEpisode:
    """From a person stepping in front of the sensor to stepping away: at most one reading.

    An episode starts at the first frame with object >= presence_min_c and ends at the
    first frame below it. The reading comes once `settle_frames` consecutive frames of
    the episode lie within `settle_spread_c`; its object value is their median.

    Args:
        profile: presence, settle and calibration settings.
    """

    def __init__(self, profile: ThermometerProfile) -> None:
        self.profile = profile
        self._window: deque[int] = deque(maxlen=profile.settle_frames)
        self._present = False
        self._measured = False
        # Compare in raw hundredths so 0.3 °C means exactly 30, not 29.999….
        self._spread_raw = round(profile.settle_spread_c * 100)
        self._offset_raw = round(profile.object_offset_c * 100)

    def frame(self, frame: TemperatureFrame, at: float) -> TemperatureReading | None:
        """Take the next frame.

        Args:
            frame: a valid frame, in arrival order.
            at: monotonic time its last byte arrived.

        Returns:
            The episode's reading when this frame settles it, else None.
        """
        if self._offset_raw:  # the sensor's calibration (object_offset_c) first
            frame = replace(frame, object_raw=frame.object_raw + self._offset_raw)
        if frame.object_c < self.profile.presence_min_c:
            self._present = self._measured = False
            self._window.clear()
            return None
        if not self._present:
            self._present = True
            self._window.clear()
        if self._measured:
            return None
        self._window.append(frame.object_raw)
        if len(self._window) < self.profile.settle_frames:
            return None
        if max(self._window) - min(self._window) > self._spread_raw:
            return None
        self._measured = True
        return self._reading(round(statistics.median(self._window) / 100, 2), frame, at)

    def _reading(self, object_c: float, frame: TemperatureFrame, at: float) -> TemperatureReading:
        if object_c > self.profile.max_plausible_c:
            return TemperatureReading(
                SOURCE, at, None, object_c, frame.ambient_c, problem="out-of-range"
            )
        body_c = round(object_c + self.profile.body_offset_c, 2)
        return TemperatureReading(SOURCE, at, body_c, object_c, frame.ambient_c)


class ThermometerDriver:
    """Reads a GY-MCU90614-class module on an open stream.

    `poll` returns a RawSample for every valid frame, so the link sees a streaming,
    live part even when nobody is at the gate, plus a TemperatureReading once per
    person.

    Args:
        stream: the open serial port (its timeout should be short, e.g. 0.02 s).
        profile: presence, settle and calibration settings.
    """

    part: ClassVar[str] = "gy-mcu90614"

    def __init__(self, stream: SerialStream, profile: ThermometerProfile) -> None:
        self._stream = stream
        self.profile = profile
        self._reader = FrameReader()
        self._episode = PersonEpisode(profile)
        self._latest: tuple[int, int] | None = None

    def setup(self) -> None:
        """Start continuous output; the module sends no answer, its frames are the answer."""
        self._reader = FrameReader()
        self._episode = PersonEpisode(self.profile)
        if self.profile.configure_on_start:
            self._stream.write(command(CONTINUOUS_OUTPUT))

    def revive(self) -> None:
        """Start continuous output again (`A5 45 EA`), as at open.

        A module that restarted, set to stay silent at power-up (`A5 52 F7` stored),
        waits for it, though its port never closed.
        """
        if self.profile.configure_on_start:
            self._stream.write(command(CONTINUOUS_OUTPUT))

    def poll(self) -> Sequence[Reading | FrameFault | RawSample]:
        """Raw samples, readings and frame faults from the bytes that arrived ([] if none)."""
        data = self._stream.read(max(1, self._stream.in_waiting))
        if not data:
            return []
        at = time.monotonic()  # the frame's last byte came with this read
        out: list[Reading | FrameFault | RawSample] = []
        for item in self._reader.feed(data):
            if isinstance(item, FrameFault):
                out.append(item)
                continue
            self._latest = (item.object_raw, item.ambient_raw)
            out.append(RawSample(self._latest))
            reading = self._episode.frame(item, at)
            if reading is not None:
                out.append(reading)
        return out

    def stuck_key(self, reading: Reading) -> object | None:
        """The raw (object, ambient) of the latest frame, whatever reading it settled.

        Readings come once per person, so stuck detection watches every frame (the
        RawSamples); a reading carries the same key as the frame that settled it.
        """
        del reading
        return self._latest
