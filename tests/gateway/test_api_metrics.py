"""Gateway /metrics: Prometheus text that parses, and numbers that follow the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from edge.contract.topics import AlertKind
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.stats import IngestStats
from gateway.store import SqliteStore
from gateway.store.records import AlarmDraft, DeadLetter
from tests.gateway.factory import Gates
from tests.gateway.test_api_nodes import birth

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: TestClient) -> Samples:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics__names_and_types(gateway_context: GatewayContext) -> None:
    response = TestClient(create_app(gateway_context)).get("/metrics")
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    assert families == {
        "gatepost_ingest_received": "counter",
        "gatepost_ingest_stored": "counter",
        "gatepost_ingest_duplicates": "counter",
        "gatepost_ingest_dead_letters": "counter",
        "gatepost_ingest_batches": "counter",
        "gatepost_ingest_store_retries": "counter",
        "gatepost_ingest_writer_faults": "counter",
        "gatepost_ingest_lag_seconds": "gauge",
        "gatepost_ingest_queue_depth": "gauge",
        "gatepost_ingest_connected": "gauge",
        "gatepost_ingest_healthy": "gauge",
        "gatepost_leader": "gauge",
        "gatepost_dead_letters": "gauge",
        "gatepost_dead_letters_dropped": "counter",
        "gatepost_alarms_open": "gauge",
        "gatepost_nodes_online": "gauge",
    }
    assert "gatepost_ingest_rate" not in response.text  # Prometheus derives rates itself


def test_metrics__move_after_ingest_and_store_writes(
    gateway_context: GatewayContext, store: SqliteStore, gates: Gates
) -> None:
    api = TestClient(create_app(gateway_context))
    before = scrape(api)
    assert before[("gatepost_ingest_stored_total", ())] == 0
    assert before[("gatepost_nodes_online", ())] == 0
    assert before[("gatepost_alarms_open", (("kind", "fever"),))] == 0

    now = datetime.now(UTC)
    events = [gates.passage(), gates.passage()]
    dead = [DeadLetter("gatepost/north/g01/event", b"junk", "not-cbor", now)]
    store.write(events, presence=[birth("g01"), birth("g02")], dead=dead)
    # Ingest counts what it handed the store: 4 messages, 2 new events, 1 refused, 1 repeat.
    gateway_context.stats.batch_done(received=4, stored=2, duplicates=1, dead=1, lag_s=0.25)
    gateway_context.alarms.raise_alarm(
        AlarmDraft(kind=AlertKind.FEVER, site="north", node="g01", subject="h1", severity="warning",
                   message="fever")
    )  # fmt: skip

    after = scrape(api)
    assert after[("gatepost_ingest_received_total", ())] == 4
    assert after[("gatepost_ingest_stored_total", ())] == 2
    assert after[("gatepost_ingest_duplicates_total", ())] == 1
    assert after[("gatepost_ingest_dead_letters_total", ())] == 1
    assert after[("gatepost_ingest_lag_seconds", ())] == 0.25
    assert after[("gatepost_dead_letters", ())] == 1
    assert after[("gatepost_nodes_online", ())] == 2
    assert after[("gatepost_alarms_open", (("kind", "fever"),))] == 1
    assert after[("gatepost_alarms_open", (("kind", "node-offline"),))] == 0


def test_metrics__each_app_has_its_own_numbers(gateway_context: GatewayContext) -> None:
    # Two apps in one process (as in tests) must neither share nor clash over a registry.
    first = TestClient(create_app(gateway_context))
    second = TestClient(create_app(replace(gateway_context, stats=IngestStats())))
    gateway_context.stats.batch_done(received=1, stored=1, duplicates=0, dead=0, lag_s=0.0)
    assert scrape(first)[("gatepost_ingest_received_total", ())] == 1
    assert scrape(second)[("gatepost_ingest_received_total", ())] == 0
