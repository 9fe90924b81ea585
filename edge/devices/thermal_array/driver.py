"""GY-MCU90640 driver: sets rate and emissivity at open, then one reading per person in view."""

from __future__ import annotations

import hashlib
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import ClassVar

from edge.devices.base import (
    DeviceRefused,
    DeviceTimeout,
    FrameFault,
    RawSample,
    Reading,
    SerialStream,
    TemperatureReading,
)
from edge.devices.thermal_array.forehead import FaceMeasure, measure
from edge.devices.thermal_array.profile import ThermalArrayProfile
from edge.devices.thermal_array.protocol import (
    EMISSIVITY_QUERY,
    STREAM_COMMAND,
    EmissivityReply,
    ThermalArrayFramer,
    ThermalFrame,
    emissivity_command,
    rate_command,
)

log = logging.getLogger(__name__)

SOURCE = "thermal-array"
EMISSIVITY_SAME = 0.005  # the reply carries hundredths
Item = Reading | FrameFault | RawSample


class PersonEpisode:
    """One person in front of the array, from the first warm frame to an empty scene.

    An episode gives at most one body reading (after `settle_frames` measurable frames
    agree within `settle_spread_c`) and at most one problem reading (after the same
    problem held for `settle_frames` frames, so a person walking up is not told "too
    far" on the way); it ends after `clear_frames` frames with nobody in view.
    """

    def __init__(self, profile: ThermalArrayProfile) -> None:
        self.profile = profile
        self._window: deque[FaceMeasure] = deque(maxlen=profile.settle_frames)
        self._problem_run: tuple[str | None, int] = (None, 0)
        self._empty = 0
        self.measured = False
        self.problem_told = False

    def update(self, face: FaceMeasure, ambient_c: float, at: float) -> TemperatureReading | None:
        """Take one frame's measure; return the episode's reading when it is due."""
        if face.problem == "no-face":
            self._window.clear()
            self._empty += 1
            if self._empty >= self.profile.clear_frames:
                self.measured = self.problem_told = False
                self._problem_run = (None, 0)
            return None
        self._empty = 0
        if self.measured:
            return None
        if face.problem is None:
            self._problem_run = (None, 0)
            self._window.append(face)
            return self._settled(ambient_c, at)
        self._window.clear()
        last, count = self._problem_run
        self._problem_run = (face.problem, count + 1 if last == face.problem else 1)
        if self._problem_run[1] < self.profile.settle_frames or self.problem_told:
            return None
        self.problem_told = True
        return TemperatureReading(
            SOURCE, at, body_c=None, object_c=face.skin_c, ambient_c=ambient_c,
            problem=face.problem,
        )  # fmt: skip

    def _settled(self, ambient_c: float, at: float) -> TemperatureReading | None:
        if len(self._window) < self.profile.settle_frames:
            return None
        bodies = [f.body_c for f in self._window if f.body_c is not None]
        if max(bodies) - min(bodies) > self.profile.settle_spread_c:
            return None
        skins = [f.skin_c for f in self._window if f.skin_c is not None]
        self.measured = True
        return TemperatureReading(
            SOURCE, at, body_c=round(statistics.median(bodies), 2),
            object_c=round(statistics.median(skins), 2), ambient_c=ambient_c,
        )  # fmt: skip


class ThermalArrayDriver:
    """Reads a GY-MCU90640-class thermal array on an open stream.

    Every valid frame is a RawSample (a sign of life whose key is the frame's digest, so
    byte-identical frames show a stuck sensor); a person adds one reading per episode.

    Args:
        stream: the open serial port (its timeout should be short, e.g. 0.02 s).
        profile: link, face finding, compensation and episode settings.
        clock: monotonic seconds, for reading times.
    """

    part: ClassVar[str] = "gy-mcu90640"

    def __init__(
        self, stream: SerialStream, profile: ThermalArrayProfile,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._stream = stream
        self.profile = profile
        self._clock = clock
        self._framer = ThermalArrayFramer()
        self._episode = PersonEpisode(profile)
        self._waiting: list[Item] = []  # came in while setup waited
        self._keys: deque[tuple[TemperatureReading, str]] = deque(maxlen=4)
        self._next_check = float("inf")

    def setup(self) -> None:
        """Set emissivity, rate and continuous output; check the emissivity it reports.

        Setting commands get no reply, so the emissivity query is the one check that the
        module took them. A module that streams frames but ignores the query is used
        anyway (with a warning): the frames are what the gate needs.

        Raises:
            DeviceTimeout: neither the reply nor a frame came within `reply_timeout_s`.
            DeviceRefused: the module reports another emissivity than the one set.
        """
        self._framer = ThermalArrayFramer()
        self._stream.reset_input_buffer()
        self.revive()
        self._stream.write(EMISSIVITY_QUERY)
        reply = self._await_reply()
        if reply is None:
            log.warning("thermal array did not answer the emissivity query; frames flow")
        elif abs(reply.emissivity - self.profile.emissivity) > EMISSIVITY_SAME:
            raise DeviceRefused(
                f"thermal array kept emissivity {reply.emissivity:.2f} "
                f"after being set to {self.profile.emissivity:.2f}"
            )
        if self.profile.settings_check_s is not None:
            self._next_check = self._clock() + self.profile.settings_check_s

    def revive(self) -> None:
        """Send emissivity, rate and continuous output, as at open (none gets a reply).

        A module that restarted with query mode saved waits for them, though its port
        never closed.
        """
        for command in (
            emissivity_command(self.profile.emissivity),
            rate_command(self.profile.rate_hz),
            STREAM_COMMAND,
        ):
            self._stream.write(command)

    def poll(self) -> Sequence[Item]:
        """Readings, raw samples and frame faults that arrived since the last call.

        Every `settings_check_s` it asks the module for its emissivity again.

        Raises:
            DeviceRefused: the module answers with another emissivity than setup set: it
                restarted with its stored settings while the port stayed open, and every
                pixel it reports is off (0.95 for 0.98 reads a forehead ~0.6 °C warm).
        """
        items = [*self._waiting]
        self._waiting.clear()
        for item in self._read():
            if not isinstance(item, EmissivityReply):
                items.append(item)
            elif abs(item.emissivity - self.profile.emissivity) > EMISSIVITY_SAME:
                raise DeviceRefused(
                    f"thermal array emissivity is {item.emissivity:.2f}, set "
                    f"{self.profile.emissivity:.2f}: restarted with its stored settings?"
                )
        now = self._clock()
        if now >= self._next_check and self.profile.settings_check_s is not None:
            self._stream.write(EMISSIVITY_QUERY)
            self._next_check = now + self.profile.settings_check_s
        return items

    def stuck_key(self, reading: Reading) -> object | None:
        """The digest of the raw frame that gave `reading`."""
        return next((key for r, key in self._keys if r is reading), None)

    def _await_reply(self) -> EmissivityReply | None:
        deadline = self._clock() + self.profile.reply_timeout_s
        while self._clock() < deadline:
            for item in self._read():
                if isinstance(item, EmissivityReply):
                    return item
                self._waiting.append(item)
        if any(isinstance(item, RawSample | TemperatureReading) for item in self._waiting):
            return None
        raise DeviceTimeout(
            f"thermal array sent neither a frame nor the emissivity reply within "
            f"{self.profile.reply_timeout_s} s"
        )

    def _read(self) -> list[Item | EmissivityReply]:
        data = self._stream.read(max(1, self._stream.in_waiting))
        if not data:
            return []
        out: list[Item | EmissivityReply] = []
        for parsed in self._framer.feed(data):
            out.append(self._frame(parsed) if isinstance(parsed, ThermalFrame) else parsed)
        return out

    def _frame(self, frame: ThermalFrame) -> TemperatureReading | RawSample:
        key = hashlib.blake2b(frame.raw, digest_size=8).hexdigest()
        face = measure(frame.pixels, frame.ambient_c, self.profile)
        reading = self._episode.update(face, frame.ambient_c, self._clock())
        if reading is None:
            return RawSample(key)
        self._keys.append((reading, key))
        return reading
