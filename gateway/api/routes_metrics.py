"""GET /metrics: ingest, dead letters, alarms and nodes in the Prometheus text format."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.contract.topics import AlertKind
from gateway.api.auth import ContextDep
from gateway.api.context import GatewayContext

router = APIRouter(tags=["metrics"])


class GatewayCollector(Collector):
    """Reads the gateway's numbers when scraped, so nothing has to be kept in step.

    There is no ingest rate: Prometheus derives rates from the counters
    (`rate(gatepost_ingest_stored_total[1m])`), and one computed here would only
    cover whatever window the gateway happened to pick.
    """

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx

    def collect(self) -> Iterator[Metric]:
        yield from self._ingest()
        store = self._ctx.store
        yield GaugeMetricFamily(
            "gatepost_dead_letters", "Refused messages kept in the store",
            value=store.dead_letter_count(),
        )  # fmt: skip
        yield CounterMetricFamily(
            "gatepost_dead_letters_dropped",
            "Dead letters dropped, oldest first, past store.dead_letters_max (kept in the store)",
            value=store.dead_letters_dropped(),
        )
        yield self._alarms()
        online = sum(1 for node in store.nodes() if node.online)
        yield GaugeMetricFamily("gatepost_nodes_online", "Nodes online now", value=online)

    def _ingest(self) -> Iterator[Metric]:
        stats = self._ctx.stats
        # CounterMetricFamily adds the _total suffix itself.
        for name, value, text in (
            ("received", stats.received, "Messages taken from the broker"),
            ("stored", stats.stored, "Events stored for the first time"),
            ("duplicates", stats.duplicates, "Redelivered events, already stored"),
            ("dead_letters", stats.dead_letters, "Messages refused into the dead-letter table"),
            ("batches", stats.batches, "Batches stored, one transaction each"),
            ("store_retries", stats.store_retries, "Batches tried again: store unavailable"),
            ("writer_faults", stats.writer_faults, "Ingest stopped by an error not retried"),
        ):
            yield CounterMetricFamily(f"gatepost_ingest_{name}", text, value=value)
        yield GaugeMetricFamily(
            "gatepost_ingest_lag_seconds",
            "Newest batch: the oldest message's wait from receipt to commit",
            value=stats.lag_s,
        )
        yield GaugeMetricFamily(
            "gatepost_ingest_queue_depth",
            "Reads (up to 256 KiB each) waiting to be stored",
            value=stats.queue_depth,
        )
        yield GaugeMetricFamily(
            "gatepost_ingest_connected", "1 while connected to the broker",
            value=int(stats.connected),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "gatepost_leader", "1 while this replica runs the time-based work (gateway.leader)",
            value=int(stats.leads()),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "gatepost_ingest_healthy", "0 once ingest stopped on a fault (the process ends)",
            value=int(stats.healthy),
        )  # fmt: skip

    def _alarms(self) -> Metric:
        store = self._ctx.store
        open_count = store.open_alarm_count()
        # Live alarms are few (one per condition), so counting them by kind is cheap.
        live = store.alarms(("raised", "acknowledged"), open_count) if open_count else []
        by_kind = Counter(str(alarm.kind) for alarm in live)
        family = GaugeMetricFamily(
            "gatepost_alarms_open", "Raised or acknowledged alarms, by kind", labels=["kind"]
        )
        for kind in AlertKind:  # every kind, zeros too, so a series never just vanishes
            family.add_metric([str(kind)], by_kind[str(kind)])
        return family


@router.get(
    "/metrics",
    response_class=Response,
    response_model=None,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(ctx: ContextDep) -> Response:
    """The gateway's metrics for a Prometheus scraper.

    No token: scrapers sit on the gateway's own network, and nothing here is personal
    (counts only). Keep the port off public networks.
    """
    # A registry per scrape, never the global one: several apps can share one process
    # (tests), and the collector reads everything fresh anyway.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(ctx))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
