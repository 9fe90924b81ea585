"""`gatepost edge run` with role depot: the node runtime, a polling worker per bus, its scales."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from edge.contract.events import DepotReading, DepotReadingBatch, ScaleWeight, WeightBatch
from edge.contract.presence import DeviceState
from edge.depot.config import DepotConfig
from edge.depot.poller import BusPoller
from edge.depot.scales import ScaleLink, scale_links
from edge.devices.link import REOPEN_EVERY_S, FaultChange
from edge.fault_log import FaultLog
from edge.outbox import Batch, OutboxError
from edge.runtime import NodeRuntime

log = logging.getLogger(__name__)


class DepotNode(NodeRuntime):
    """One depot: its sensors polled bus by bus into the outbox, and the uplink.

    Each bus is polled by a supervised worker (`bus-1`, `bus-2`, …); each round's reports
    are one DepotReadingBatch, committed in one transaction (on disk before the next
    round starts), and each sensor's faults are device-fault events raised and cleared
    once, across restarts too. Each platform scale has its own link (a thread named after
    the scale) committing its settled weights as WeightBatch events (edge/depot/scales.py).

    Args:
        config: the validated configuration.
        clock: wall clock (aware): each reading's `at` and each event's time. A test
            passes a compressed one, so that hours of readings pass in seconds.
    """

    def __init__(
        self, config: DepotConfig, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        super().__init__(
            config.node_id, state_dir=config.node.state_dir, broker=config.broker,
            outbox=config.outbox, clock=clock,
        )  # fmt: skip
        self.config = config
        self.pollers: list[BusPoller] = []
        self.scales: list[ScaleLink] = []

    def start(self) -> None:
        self.init_outbox()
        self.init_faults()
        self.init_buses()
        self.init_scales()
        self.init_uplink()

    def init_faults(self) -> None:
        self.faults = FaultLog(self.outbox, self.clock, transaction=self._transaction)

    def init_buses(self) -> None:
        # pymodbus logs an ERROR for every request a dead sensor leaves unanswered, each
        # round; the node says it once, as the sensor's fault (raised, then cleared).
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        reported = self.faults.reported_faults
        for number, section in enumerate(self.config.buses, start=1):
            poller = BusPoller(
                f"bus-{number}", section, record=self.record, faults=self.faults,
                clock=self.clock, reported=reported,
            )  # fmt: skip
            self.pollers.append(poller)
            self.start_worker(poller.name, poller.run)

    def init_scales(self) -> None:
        self.scales = scale_links(
            self.config.scales, record=self.record_weights, on_fault=self._scale_fault,
            clock=self.clock,
        )  # fmt: skip
        for link in self.scales:
            link.start(self._stop)

    def close_parts(self) -> None:
        for link in self.scales:
            link.join()

    def _scale_fault(self, change: FaultChange) -> None:
        self.faults.record_fault(change.device, change.fault, change.state, change.detail)

    def record_weights(self, weights: list[ScaleWeight]) -> bool:
        """Commit settled weights as one WeightBatch. False if the outbox refused it."""
        try:
            with self._transaction() as batch:
                batch.add(WeightBatch(**batch.ids(self.clock()), weights=tuple(weights)))
        except OutboxError as exc:
            log.error("%d weight(s) not recorded: %s", len(weights), exc)
            return False
        return True

    def record(self, readings: list[DepotReading]) -> bool:
        """Commit one round's readings as one batch. False if the outbox refused it."""
        try:
            with self._transaction() as batch:
                batch.add(DepotReadingBatch(**batch.ids(self.clock()), readings=tuple(readings)))
        except OutboxError as exc:
            log.error("%d reading(s) not recorded: %s", len(readings), exc)
            return False
        return True

    @contextmanager
    def _transaction(self, *, reserved: bool = False) -> Iterator[Batch]:
        """One outbox transaction; the uplink sends what it committed at once."""
        with self.outbox.transaction(reserved=reserved) as batch:
            yield batch
        self.uplink.wake()

    # Presence.
    def part_states(self) -> dict[str, DeviceState]:
        states: dict[str, DeviceState] = {
            track.sensor.zone: track.state for p in self.pollers for track in p.tracks
        }
        states.update({link.name: link.state for link in self.scales})
        return states

    def part_faults(self) -> set[tuple[str, str]]:
        present = {
            (track.sensor.zone, track.fault)
            for poller in self.pollers for track in poller.tracks if track.fault
        }  # fmt: skip
        return present | {(link.name, fault) for link in self.scales for fault in link.faults}

    def parts_settle_s(self) -> float:
        scales = [max(REOPEN_EVERY_S, link.profile.silence_fault_s or 0.0) for link in self.scales]
        return max([*(poller.settle_s for poller in self.pollers), *scales], default=0.0)

    def config_hash(self) -> str:
        return self.config.config_hash()
