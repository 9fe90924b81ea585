"""`gatepost edge run` with role depot: the node runtime plus one polling worker per bus."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.presence import DeviceState
from edge.depot.config import DepotConfig
from edge.depot.poller import BusPoller
from edge.fault_log import FaultLog
from edge.outbox import Batch, OutboxError
from edge.runtime import NodeRuntime

log = logging.getLogger(__name__)


class DepotNode(NodeRuntime):
    """One depot: its sensors polled bus by bus into the outbox, and the uplink.

    Each bus is polled by a supervised worker (`bus-1`, `bus-2`, …); each round's reports
    are one DepotReadingBatch, committed in one transaction (on disk before the next
    round starts), and each sensor's faults are device-fault events raised and cleared
    once, across restarts too.

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

    def start(self) -> None:
        self.init_outbox()
        self.init_faults()
        self.init_buses()
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
        return {track.sensor.zone: track.state for p in self.pollers for track in p.tracks}

    def part_faults(self) -> set[tuple[str, str]]:
        return {
            (track.sensor.zone, track.fault)
            for poller in self.pollers for track in poller.tracks if track.fault
        }  # fmt: skip

    def parts_settle_s(self) -> float:
        return max((poller.settle_s for poller in self.pollers), default=0.0)

    def config_hash(self) -> str:
        return self.config.config_hash()
