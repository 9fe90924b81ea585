"""What every node runs whatever its role: outbox, uplink, presence, workers and faults."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edge.contract.catalogue import Message
from edge.contract.presence import Birth, DeviceState, Health
from edge.contract.topics import Node
from edge.errors import ContractError
from edge.fault_log import FaultLog
from edge.lifecycle import ProcessUsage
from edge.outbox import Outbox
from edge.sd_notify import Notifier
from edge.updater.health import NodeReporter
from edge.uplink import Uplink

if TYPE_CHECKING:
    from edge.configfile import BrokerSection, OutboxSection

log = logging.getLogger(__name__)

# The node's own watchers (outbox, workers, the role's clock-driven work) run this often.
TICK_S = 0.25
OUTBOX_CHECKPOINT_S = 2.0
# Faults reported before a restart and not raised again by then are cleared: this long
# after the slowest part would have raised them again (see `parts_settle_s`).
FAULT_RECONCILE_MARGIN_S = 5.0
# A worker thread that died is started again after this long; its fault is cleared once
# it has run this much longer without dying (one that dies at once stays in fault).
WORKER_RESTART_S = 2.0
WORKER_HEALTHY_S = 10.0
# systemd's watchdog (WatchdogSec=30 in the node's unit) is fed at most this often.
WATCHDOG_EVERY_S = 1.0


class NodeRuntime:
    """The plumbing a node of any role shares; a role adds its parts (GateNode, DepotNode).

    `run` calls the role's `start` (a flat list of `init_*` steps, `init_outbox` first and
    `init_uplink` once all is in place), then ticks until stopped; `shutdown` undoes every
    step that started. The role says what its parts are through `part_states`,
    `part_faults` and `parts_settle_s`, and sets `faults` before the uplink starts.

    Args:
        node: this node's branch of the topic tree (its role is the birth's).
        state_dir: where the outbox lives.
        broker: the config's broker section.
        outbox: the config's outbox section.
        clock: wall clock (aware).
    """

    faults: FaultLog

    def __init__(
        self, node: Node, *, state_dir: Path, broker: BrokerSection, outbox: OutboxSection,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.node = node
        self.clock = clock
        self._state_dir = state_dir
        self._broker = broker
        self._outbox_settings = outbox
        self.started = time.monotonic()  # uptime: the wall clock may step at boot (NTP)
        self.usage = ProcessUsage()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._outbox_faults: set[str] = set()
        self._worker_faults: set[str] = set()
        self._restarted: dict[str, float] = {}  # worker -> when it was started again
        self._next_checkpoint = 0.0
        self._reconcile_at = 0.0
        # The health file and update report that `gatepost edge update` relies on.
        self.reporter = NodeReporter(state_dir, version("gatepost"))
        self.notifier = Notifier()
        self._next_watchdog = 0.0

    # What a role provides.
    def start(self) -> None:
        """Every step of the start, in order; each one that ran is undone by `shutdown`."""
        raise NotImplementedError

    def part_states(self) -> dict[str, DeviceState]:
        """The state of each of the role's parts, for births and heartbeats."""
        return {}

    def part_faults(self) -> set[tuple[str, str]]:
        """(device, fault) of every fault the role's parts have raised now."""
        return set()

    def parts_settle_s(self) -> float:
        """How long after a start the parts have had time to raise again what is wrong."""
        return 0.0

    def close_parts(self) -> None:
        """Release the role's parts once the workers have stopped."""

    def config_hash(self) -> str:
        raise NotImplementedError

    def trust_list_age_s(self, now: datetime) -> float | None:
        return None

    def downlink(self) -> tuple[str, ...]:
        """Topics of the signed documents this node takes (none unless the role has some)."""
        return ()

    def on_document(self, message: Message) -> None:
        """A valid document on a downlink topic."""

    def on_bad_document(self, topic: str, error: ContractError) -> None:
        """A message on a downlink topic that the contract refuses."""

    # Running.
    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set; every step that started is undone on the way out."""
        self._stop = stop
        try:
            self.start()
            log.info("%s %s running", self.node.role, self.node)
            self._reconcile_at = time.monotonic() + self.parts_settle_s() + FAULT_RECONCILE_MARGIN_S
            self.notifier.ready()
            while not stop.wait(TICK_S):
                self.tick()
                self._feed_watchdog()
        finally:
            self.notifier.stopping()
            self.shutdown()
            self.notifier.close()

    def workers_alive(self) -> bool:
        """Every worker's thread runs and none is down or crashed since its last healthy run."""
        return all(thread.is_alive() for thread in self._threads) and not self._worker_faults

    def _feed_watchdog(self) -> None:
        # Fed from the main loop, and only while the workers live: a stuck loop or a dead
        # worker starves systemd's watchdog, which then restarts the node.
        if time.monotonic() >= self._next_watchdog and self.workers_alive():
            self.notifier.watchdog()
            self._next_watchdog = time.monotonic() + WATCHDOG_EVERY_S

    def tick(self) -> None:
        """The node's own watchers; a role that has clock-driven work adds it around this."""
        self._watch_outbox()
        self._watch_workers()
        if time.monotonic() >= self._next_checkpoint:
            self.outbox.checkpoint()
            self._next_checkpoint = time.monotonic() + OUTBOX_CHECKPOINT_S
        if self._reconcile_at and time.monotonic() >= self._reconcile_at:
            self.faults.reconcile_faults(self.present_faults())
            self._reconcile_at = 0.0
        self.reporter.tick(self.uplink, self.node, self.devices())

    def init_outbox(self) -> None:
        """The outbox, and the uplink that drains it (started last, once all is in place)."""
        self.outbox = Outbox(
            self._state_dir / "outbox.db", self.node, self._outbox_settings.capacity
        )
        self.uplink = Uplink(
            self._broker.settings(), self.node, self.outbox,
            birth=self.birth, health=self.health, downlink=self.downlink(),
            on_document=self.on_document, on_refused=self.on_bad_document,
        )  # fmt: skip

    def init_uplink(self) -> None:
        self.uplink.settings.broker.check()  # a wrong certificate path stops the start, named
        self.start_worker("uplink", self.uplink.run)

    def shutdown(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        self.close_parts()
        if hasattr(self, "outbox"):
            self.outbox.close()
        log.info("%s %s stopped", self.node.role, self.node)

    # Workers.
    def start_worker(self, name: str, target: Callable[[threading.Event], None]) -> None:
        """Run `target(stop)` on a thread of its own, started again whenever it dies."""
        thread = threading.Thread(
            target=self._supervise, args=(name, target, self._stop), name=name
        )
        thread.start()
        self._threads.append(thread)

    def _supervise(
        self, name: str, target: Callable[[threading.Event], None], stop: threading.Event
    ) -> None:
        """Run a worker until `stop`; one that dies is a fault, and is started again."""
        while not stop.is_set():
            try:
                target(stop)
                return
            except Exception as exc:
                log.exception("%s worker died; starting it again", name)
                self._restarted.pop(name, None)
                self._worker_faults.add(name)
                self.faults.record_fault(name, "crashed", "raised", f"{type(exc).__name__}: {exc}")
            if stop.wait(WORKER_RESTART_S):
                return
            self._restarted[name] = time.monotonic()

    def _watch_workers(self) -> None:
        """Clear the fault of a worker that has run WORKER_HEALTHY_S since it was restarted."""
        for name, since in list(self._restarted.items()):
            if time.monotonic() - since >= WORKER_HEALTHY_S:
                self._restarted.pop(name, None)
                self._worker_faults.discard(name)
                self.faults.record_fault(name, "crashed", "cleared", None)

    def _watch_outbox(self) -> None:
        depth, capacity = self.outbox.depth, self.outbox.capacity
        warn = self._outbox_settings.warn_fraction * capacity
        for fault, raised in (("nearly-full", depth >= warn), ("full", depth >= capacity)):
            state: Literal["raised", "cleared"] | None = None
            if raised and fault not in self._outbox_faults:
                self._outbox_faults.add(fault)
                state = "raised"
            elif not raised and fault in self._outbox_faults:
                self._outbox_faults.discard(fault)
                state = "cleared"
            if state:
                self.faults.record_fault("outbox", fault, state, f"{depth} of {capacity} unsent")

    # Presence.
    def devices(self) -> dict[str, DeviceState]:
        states = self.part_states()
        states["outbox"] = "fault" if self._outbox_faults else "ok"
        for worker in self._worker_faults:
            states[worker] = "fault"
        return states

    def present_faults(self) -> set[tuple[str, str]]:
        """(device, fault) of every fault raised now, by whatever watches it."""
        present = self.part_faults()
        present |= {("outbox", fault) for fault in self._outbox_faults}
        present |= {(worker, "crashed") for worker in self._worker_faults}
        return present

    def birth(self, session: int) -> Birth:
        now = self.clock()
        return Birth(
            session=session, node_time=now, role=self.node.role, version=version("gatepost"),
            config_hash=self.config_hash(), devices=self.devices(),
            trust_list_age_s=self.trust_list_age_s(now),
            heartbeat_s=self._broker.heartbeat_s,
        )  # fmt: skip

    def health(self, session: int) -> Health:
        now = self.clock()
        return Health(
            node_time=now, session=session,
            uptime_s=round(time.monotonic() - self.started, 1),
            last_seq=self.outbox.last_seq, outbox_depth=self.outbox.depth,
            outbox_capacity=self.outbox.capacity, devices=self.devices(),
            trust_list_age_s=self.trust_list_age_s(now),
            rss_bytes=self.usage.rss_bytes(), cpu_percent=self.usage.cpu_percent(),
        )  # fmt: skip
