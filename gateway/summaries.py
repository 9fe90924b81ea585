"""Retained summaries for command-center tools: counts since the cut-off, per site and per gate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from edge.contract import topics
from edge.contract.base import Payload
from edge.contract.command import Summary
from edge.contract.events import CheckpointCounts
from edge.gate.daily import report_period
from gateway.config import GatewayConfig
from gateway.reports import sum_counts
from gateway.store.base import ReadStore

log = logging.getLogger(__name__)

Publish = Callable[[str, Payload], None]
REFRESH_RUNS = 12


class SummaryPublisher:
    """Publishes a site's and each gate's counts when they change, at most every `every_s`.

    Counts only, never a person's data: anyone on the command center's network may read
    these topics. They are retained, so a tool that connects later sees them at once.

    Args:
        config: sites and their gates, the cut-off hours, how often to publish.
        store: the counts.
        publish: sends one payload to one topic (with the contract's QoS and retain).
        clock: now, in UTC.
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: ReadStore,
        publish: Publish,
        clock: Callable[[], datetime],
    ) -> None:
        self._config = config
        self._store = store
        self._publish = publish
        self._clock = clock
        self._sent: dict[str, tuple[datetime, CheckpointCounts, int]] = {}
        self._last_run = float("-inf")
        # Counts are queried again only for gates with new events (or a new period):
        # a district's gates would otherwise cost a query each, every few seconds.
        self._counts: dict[tuple[str, str], tuple[datetime, CheckpointCounts]] = {}
        self._touched: set[tuple[str, str]] = set()
        self._touched_lock = threading.Lock()
        self._runs = 0

    def touched(self, site: str, node: str) -> None:
        """New events of this node were stored (called by ingest, from its thread)."""
        with self._touched_lock:
            self._touched.add((site, node))

    def publish_due(self) -> int:
        """Publish what changed, if `every_s` has passed since the last run; returns how many."""
        if time.monotonic() - self._last_run < self._config.summary.every_s:
            return 0
        self._last_run = time.monotonic()
        now = self._clock()
        sent = 0
        # Swapped before querying: a node touched meanwhile is queried again next time.
        with self._touched_lock:
            touched, self._touched = self._touched, set()
        # Every REFRESH_RUNS-th run counts every gate again: a replica beside this one
        # stores events this process is never told about.
        self._runs += 1
        if self._runs % REFRESH_RUNS == 0:
            self._counts.clear()
        online = {(n.site, n.node) for n in self._store.nodes() if n.online}
        for site in self._config.sites:
            since = report_period(now, site.cutoff_hour, site.zone).start
            branch = self._config.topic_site(site.name)
            gate_counts = []
            for gate in site.gates:
                counts = self._gate_counts(site.name, gate, since, touched)
                gate_counts.append(counts)
                sent += self._send(
                    topics.gate_summary(branch, gate),
                    Summary(site=site.name, node=gate, since=since, at=now, counts=counts),
                    int((site.name, gate) in online),
                )
            nodes = (*site.gates, *site.depots)
            up = sum((site.name, n) in online for n in nodes)
            summary = Summary(
                site=site.name, since=since, at=now, counts=sum_counts(gate_counts),
                nodes_online=up, nodes_total=len(nodes),
            )  # fmt: skip
            sent += self._send(topics.site_summary(branch), summary, up)
        return sent

    def _gate_counts(
        self, site: str, gate: str, since: datetime, touched: set[tuple[str, str]]
    ) -> CheckpointCounts:
        key = (site, gate)
        cached = self._counts.get(key)
        if cached is None or cached[0] != since or key in touched:
            cached = (since, self._store.counts(site, gate, since))
            self._counts[key] = cached
        return cached[1]

    def _send(self, topic: str, summary: Summary, online: int) -> int:
        state = (summary.since, summary.counts, online)
        if self._sent.get(topic) == state:
            return 0
        try:
            self._publish(topic, summary)
        except Exception:
            log.exception("could not publish %s", topic)
            return 0
        self._sent[topic] = state
        return 1
