"""A depot's platform scales: each on its own serial link, settled weights into the outbox."""

# Reporting, per scale (docs/depot-node.md#scales):
#   only a usable weight is ever reported: the indicator showed standstill for the
#   profile's `stable_frames` frames in a row with one weight, without overload; frames
#   in motion (US) or overload (OL) never are. A usable weight is reported when it is the
#   first since the start, when it moved by at least `deadband_kg` from the last one
#   reported, or when `max_interval_s` passed since that one (or the clock stepped back).
#   Faults (raised once, cleared once, each a device-fault with the scale's name): the
#   link's `timeout`, `garbage`, `checksum`, `unplugged`, and `overload` while the
#   indicator says OL (cleared by its next frame that does not).

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import serial

from edge.contract.events import ScaleWeight
from edge.depot.config import ScaleSection
from edge.devices.base import FrameFault, SerialStream
from edge.devices.link import READ_TIMEOUT_S, REOPEN_EVERY_S, DeviceLink, FaultChange
from edge.devices.registry import DRIVERS
from edge.devices.scale.driver import ScaleDriver, WeightReading

log = logging.getLogger(__name__)

GRAM = Decimal("0.001")


class ScaleTrack:
    """One scale's reporting state: which settled weights are due.

    Args:
        section: the scale's config (name, item, tare, deadband, longest interval).
    """

    def __init__(self, section: ScaleSection) -> None:
        self.section = section
        self.tare = Decimal(str(section.tare_kg))
        self.last: ScaleWeight | None = None  # the last weight reported

    def step(self, reading: WeightReading, at: datetime) -> ScaleWeight | None:
        """The weight to report for `reading`, taken at `at` on the node's clock, if due.

        Returns:
            None for an unusable reading (motion, overload, not yet settled) and for a
            settled one within the deadband and the interval; else the weight (call
            `reported` once it is committed).
        """
        if reading.weight_kg is None:
            return None
        shown = reading.weight_kg.quantize(GRAM)
        weight = ScaleWeight(
            scale=self.section.name, item=self.section.item, at=at, basis=reading.basis,
            shown_kg=float(shown), tare_kg=float(self.tare), net_kg=float(shown - self.tare),
        )  # fmt: skip
        return weight if self._due(weight) else None

    def _due(self, weight: ScaleWeight) -> bool:
        last = self.last
        if last is None or last.basis != weight.basis:
            return True
        elapsed = (weight.at - last.at).total_seconds()
        if elapsed < 0 or elapsed >= self.section.max_interval_s:
            return True
        moved = abs(Decimal(str(weight.shown_kg)) - Decimal(str(last.shown_kg)))
        return moved >= Decimal(str(self.section.deadband_kg))

    def reported(self, weight: ScaleWeight) -> None:
        """`weight` is committed to the outbox: the next ones are measured from it."""
        self.last = weight


class ScaleLink(DeviceLink):
    """One scale's serial link: opened with its line settings, weights to `record`.

    Faults go to `on_fault` as a DeviceLink's do (timeout, garbage, checksum, unplugged),
    plus `overload`. The node's wall clock stamps each weight. `frames` counts what came
    since the start: `settled`, `unsettled` (motion, or not yet `stable_frames` alike),
    `overload`, and each frame fault kind (`garbage`, `checksum`).

    Args:
        section: the scale's config.
        record: commits weights in one transaction; False if it could not (the weight
            is then due again with the next settled frame).
        on_fault: called on the link's thread for every fault change.
        clock: the node's wall clock.
    """

    def __init__(
        self, section: ScaleSection, *, record: Callable[[list[ScaleWeight]], bool],
        on_fault: Callable[[FaultChange], None], clock: Callable[[], datetime],
    ) -> None:  # fmt: skip
        profile = section.load()
        super().__init__(
            section.name, section.url, profile, DRIVERS[profile.part],
            on_reading=lambda reading: None, on_fault=on_fault,
        )  # fmt: skip
        self.scale_profile = profile
        self.track = ScaleTrack(section)
        self._record = record
        self._wall = clock
        self.frames: Counter[str] = Counter()

    def run(self, stop: threading.Event) -> None:
        """Open the port with the indicator's line settings; read until `stop`, reopening."""
        profile = self.scale_profile
        while not stop.is_set():
            try:
                port = serial.serial_for_url(
                    self.url, baudrate=profile.baudrate, bytesize=profile.bytesize,
                    parity=profile.parity, timeout=READ_TIMEOUT_S,
                )  # fmt: skip
            except (serial.SerialException, OSError, ValueError) as exc:
                self._raise("unplugged", f"cannot open {self.url}: {exc}")
                stop.wait(REOPEN_EVERY_S)
                continue
            try:
                with port:
                    self._serve(port, stop)
            except (serial.SerialException, OSError) as exc:
                self._raise("unplugged", f"{self.url}: {exc}")
                stop.wait(REOPEN_EVERY_S)

    def _serve(self, port: SerialStream, stop: threading.Event) -> None:
        driver = ScaleDriver(port, self.scale_profile, self.name)
        driver.setup()
        self._clear("unplugged")
        self._last_good = self._clock()
        while not stop.is_set():
            for item in driver.read():
                if isinstance(item, FrameFault):
                    self.frames[item.kind] += 1
                    self._last_frame_fault = self._clock()
                    self._raise(item.kind, item.detail)
                else:
                    self._weighed(item)
            self.check_timers()

    def _weighed(self, reading: WeightReading) -> None:
        self._alive(None)
        self.frames[
            "overload" if reading.overload else "settled" if reading.usable else "unsettled"
        ] += 1
        if reading.overload:
            self._raise("overload", "the indicator shows OL (over capacity or out of range)")
            return
        self._clear("overload")
        weight = self.track.step(reading, self._wall())
        if weight is not None and self._record([weight]):
            self.track.reported(weight)
            log.info("%s: %s kg on %s", self.name, weight.net_kg, weight.item)


def scale_links(
    sections: tuple[ScaleSection, ...], *, record: Callable[[list[ScaleWeight]], bool],
    on_fault: Callable[[FaultChange], None], clock: Callable[[], datetime],
) -> list[ScaleLink]:  # fmt: skip
    """A link for each configured scale (not started)."""
    return [ScaleLink(s, record=record, on_fault=on_fault, clock=clock) for s in sections]
