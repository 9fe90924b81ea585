"""`gatepost gateway run`: the gateway, started as a flat list of steps and stopped in reverse."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from edge.contract import topics
from edge.contract.base import Payload
from edge.contract.command import Alert
from edge.gate.console.server import ConsoleServer
from edge.mqtt import new_client, publish
from gateway.alarm_cases import alarm_cases
from gateway.alarms import AlarmBook, utc_now
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.changes import ChangeListener
from gateway.config import GatewayConfig
from gateway.depot_rollups import DepotRollups
from gateway.homeassistant import HomeAssistant
from gateway.ingest import Ingest, IngestFailed
from gateway.leader import Leader, Leadership, SoleLeader
from gateway.live import LiveFeed
from gateway.receipts import Receipts
from gateway.retention import RetentionRule
from gateway.rules import AlarmRules
from gateway.stats import IngestStats
from gateway.stock.cover import StockRules
from gateway.stock.daily_report import StockReportRules
from gateway.stock.supply_check import SupplyLevels
from gateway.store import open_store, store_name
from gateway.store.records import Written
from gateway.summaries import SummaryPublisher

log = logging.getLogger(__name__)
GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython: 700)


class Gateway:
    """Store, ingest, alarm rules, summaries and the HTTP server of one gateway.

    Args:
        config: the validated configuration.
        clock: now, in UTC (tests pass their own).
    """

    def __init__(self, config: GatewayConfig, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.clock = clock
        self.started_at = clock()
        self.live = LiveFeed()
        self.stats = IngestStats()
        self.url = ""
        # What each step that started needs undone, run in reverse on the way out.
        self._undo: list[Callable[[], object]] = []
        self.homeassistant: HomeAssistant | None = None  # when config.homeassistant.enabled
        self.rollups: DepotRollups | None = None  # depot time series, once the store is open
        self.retention: RetentionRule | None = None  # old events, once the store is open
        self.leader: Leader = SoleLeader()  # PostgreSQL: Leadership (init_replicas)
        self.stats.leads = lambda: self.leader.leads  # /metrics reads it live
        self._seq_marks: dict[tuple[str, str], tuple[int, int]] = {}  # _summaries_due

    def run(self, stop: threading.Event, ready: Callable[[Gateway], None] | None = None) -> None:
        """Run until `stop` is set; every step that started is undone on the way out.

        Raises:
            IngestFailed: ingest stopped on a fault; `gatepost gateway run` then exits 1
                and systemd (Restart=on-failure) starts a fresh gateway, which the broker
                gives everything not yet stored.
        """
        try:
            self.init_store()
            self.init_publisher()
            self.init_rules()
            self.init_ingest()
            self.init_http()
            self.init_collector()
            if ready is not None:
                ready(self)
            check_s = self.config.alarms.check_every_s
            while not stop.wait(check_s):
                if not self.stats.healthy:
                    raise IngestFailed(f"ingest stopped: {self.stats.fault}")
                self.tick()
        finally:
            self.shutdown()

    def tick(self) -> None:
        """Time-based rules, summaries and housekeeping; one failing does not stop the rest.

        With replicas, the clock's work runs on the leader only (once across them), and
        each replica does what is its own: receipts for the batches it stored, its
        local store's checkpoint, Home Assistant's states of the readings it ingested.
        """
        leads = self.leader.leads
        steps: list[Callable[[], object]] = []
        if leads:
            # Once across replicas: what they decide is read from the store (nodes, seqs,
            # live alarms, ledgers), and an alarm is live once whoever raises it.
            steps += [
                self.rules.check, self.stock_rules.check, self.stock_reports.check,
                self.supply_levels.check,
                self.receipts.check,  # its own receipts, then asks nodes again for what is missing
                self._summaries_due,
            ]  # fmt: skip
        else:
            # A follower's own batches' receipts: the replica that stored a batch owes its
            # nodes the receipt (asking nodes again is the leader's).
            steps.append(self.receipts.flush)
        # SQLite's WAL checkpoint is of this process's file; PostgreSQL's a no-op.
        steps.append(self.store.checkpoint)
        if self.homeassistant is not None:
            # Every replica: it publishes the newest readings its own ingest stored, and
            # availability read from the store (the same retained value from each).
            steps.append(self.homeassistant.tick)
        if leads and self.rollups is not None:
            steps.append(self.rollups.step)  # rolls and purges the shared store
        if leads and self.retention is not None:
            steps.append(self.retention.step)  # scrubs, then purges, old events
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("%s failed; the next tick tries again", step.__qualname__)

    def _summaries_due(self) -> None:
        """Summaries, told of the nodes any replica stored events of since the last run.

        `summaries.touched()` hears of this process's batches only; on PostgreSQL the
        nodes' seq marks in the store say which nodes gained events from any replica
        (a hole filled between two marks waits for the publisher's periodic recount).
        """
        if isinstance(self.leader, Leadership):  # replicas may store what we are not told of
            marks = {(n.site, n.node): (n.seq_contiguous, n.seq_max) for n in self.store.nodes()}
            for key, mark in marks.items():
                if self._seq_marks.get(key) != mark:
                    self.summaries.touched(*key)
            self._seq_marks = marks
        self.summaries.publish_due()

    def init_store(self) -> None:
        self.store = open_store(self.config.store)
        self._undo.append(self.store.close)
        log.info("gateway store %s", store_name(self.config.store))
        self.init_replicas()

    def init_replicas(self) -> None:
        """On PostgreSQL: the leader lock, and the live feed moved by every replica's writes."""
        url = getattr(self.store, "url", None)
        if self.store.engine != "postgresql" or not isinstance(url, str):
            return  # SQLite: one gateway per file, the sole leader (set in __init__)
        name = self.config.broker.client_id
        listener = ChangeListener(url, self.live, name=name)
        listener.start()
        self._undo.append(listener.stop)
        self.leader = Leadership(url, name=name)
        self.leader.start()
        self._undo.append(self.leader.stop)

    def init_publisher(self) -> None:
        """Alerts and summaries are few: paho publishes them, queueing while the broker is away."""
        broker = self.config.broker
        broker.endpoint().check()  # a wrong certificate path stops the start, named
        endpoint = broker.publisher_endpoint()
        endpoint.check()
        self.publisher = new_client(f"{broker.client_id}-out", endpoint)
        if self.config.homeassistant.enabled:  # its callbacks are set before connecting
            self.homeassistant = HomeAssistant(self.config, self.store, self.publisher, self.clock)
        self.publisher.connect_async(endpoint.host, endpoint.port, broker.keepalive_s)
        self.publisher.loop_start()
        self._undo.append(self.publisher.loop_stop)
        self._undo.append(self.publisher.disconnect)

    def init_rules(self) -> None:
        self.alarms = AlarmBook(self.store, self._publish_alert, self.live, self.clock)
        self.rules = AlarmRules(self.config, self.store, self.alarms, self.clock, self.started_at)
        self.stock_rules = StockRules(
            self.config, self.store, self.alarms, self.clock, self.store.live_conditions
        )
        self.stock_reports = StockReportRules(
            self.config, self.store, self.alarms, self.clock, self.store.live_conditions
        )
        self.summaries = SummaryPublisher(self.config, self.store, self._publish, self.clock)
        self.supply_levels = SupplyLevels(self.config, self.store, self._publish, self.clock)
        self.rollups = DepotRollups(self.store, self.config.store, self.clock)
        self.retention = RetentionRule(self.store, self.config.store, self.clock)
        self.receipts = Receipts(
            self.config, self.store, self._publish,
            caught_up=lambda: self.ingest.caught_up(), wall=self.clock,  # noqa: PLW0108
        )  # fmt: skip

    def init_ingest(self) -> None:
        self.ingest = Ingest(
            self.config, self.store, self.stats, self._on_stored, alarm_cases,
            on_subscribed=self.receipts.republish, clock=self.clock,
        )  # fmt: skip
        self.ingest.start()
        self._undo.append(self.ingest.stop)

    def init_http(self) -> None:
        context = GatewayContext(
            config=self.config, store=self.store, alarms=self.alarms, live=self.live,
            stats=self.stats, clock=self.clock,
        )  # fmt: skip
        http = self.config.http
        self.http = ConsoleServer(
            create_app(context), http.host, http.port, allowed_hosts=http.allowed_hosts,
            tls=http.certificate(),
        )  # fmt: skip
        self.http.start()
        self._undo.append(self.http.stop)
        self.url = self.http.url
        log.info("gateway API and dashboard at %s", self.url)

    def init_collector(self) -> None:
        """Keep the cyclic garbage collector off ingest's hot path.

        A drained batch allocates hundreds of thousands of objects (models, rows), and
        at CPython's default threshold (700) the young collections that follow took 7-12
        us of CPU per stored event, a sixth of ingest (bench/ingest_profile.py). What
        exists after the start (modules, config, app) is frozen out of every collection,
        and the young generation is collected every 50,000 allocations instead: a few MB
        more at most, for cycles only (reference counting frees the rest at once).
        """
        before = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
        self._undo.append(gc.unfreeze)
        self._undo.append(lambda: gc.set_threshold(*before))

    def shutdown(self) -> None:
        while self._undo:
            self._undo.pop()()
        log.info("gateway stopped")

    def _on_stored(self, written: Written) -> None:
        self.receipts.stored(written)
        self.rules.on_stored(written)
        if self.homeassistant is not None:
            self.homeassistant.on_stored(written)
        for site, node in {(item.site, item.node) for item in written.events}:
            self.summaries.touched(site, node)
        if written.events or written.presence:
            self.live.changed()

    def _publish(self, topic: str, payload: Payload) -> None:
        publish(self.publisher, topic, payload)

    def _publish_alert(self, alert: Alert) -> None:
        self._publish(topics.alert(self.config.topic_site(alert.site), alert.kind), alert)
