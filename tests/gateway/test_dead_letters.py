"""What the gateway refuses costs it little: oversized payloads are not decoded, and dead
letters keep a bounded prefix, a size and a hash, at most so many of them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.contract import catalogue, topics
from edge.contract.base import DEVICES_MAX, REASONS_MAX, new_event_id
from edge.contract.catalogue import encode
from edge.contract.events import READINGS_MAX, DepotReading, DepotReadingBatch, Passage
from edge.contract.presence import Birth, Health
from edge.contract.topics import EventKind, Role, Site
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, IngestSection, SiteSection
from gateway.ingest import triage
from gateway.store import SqliteStore, SqlStore
from gateway.store.migrations import MIGRATIONS, apply_migrations
from gateway.store.records import DeadLetter, IngestLimits
from gateway.store.settings import StoreSection
from gateway.subscriber import Delivery
from tests.gateway.factory import Gates, look_inside
from tests.gateway.test_api_access import bearer, open_api
from tests.gateway.test_api_metrics import scrape

NORTH = Site("north")
G01 = NORTH.node(Role.GATE, "g01")
D01 = NORTH.node(Role.DEPOT, "d01")
NOW = datetime(2026, 11, 22, 8, 15, 3, 412_345, tzinfo=timezone(timedelta(hours=8)))


def delivery(topic: str, payload: bytes) -> Delivery:
    return Delivery(topic, payload, 1, 1, False, datetime.now(UTC), 1)


def letters(store: SqlStore) -> list[tuple[str, int, str, int]]:
    """(reason, size, sha256, bytes kept) of each dead letter, newest first."""
    return [
        (reason, size, sha256, len(payload))
        for reason, size, sha256, payload in look_inside(
            store, "SELECT reason, size, sha256, payload FROM dead_letters ORDER BY id DESC"
        )
    ]


# --- the payload limit -----------------------------------------------------------------------


def test_triage__an_oversized_payload_is_a_dead_letter_and_never_decoded(
    gateway_config: GatewayConfig, gates: Gates, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A valid passage of 120,000 reason codes was 1 MB; now it is not even parsed.
    big = json.dumps({**json.loads(encode(gates.passage().event)), "reasons": ["x"] * 120_000})
    decoded: list[int] = []
    real_decode = catalogue.decode

    def decode(topic: str, data: bytes, prefix: str) -> catalogue.Message:
        decoded.append(len(data))
        return real_decode(topic, data, prefix)

    monkeypatch.setattr(catalogue, "decode", decode)
    topic = topics.event(G01, EventKind.PASSAGE)
    small = gates.passage().raw
    sorted_ = triage(gateway_config, [delivery(topic, big.encode()), delivery(topic, small)])
    assert [letter.reason for letter in sorted_.dead] == [
        f"too large: {len(big)} bytes (ingest.payload_max_bytes 65536)"
    ]
    assert len(sorted_.events) == 1
    assert decoded == [len(small)], "the big one was decoded"


def test_triage__the_limit_is_the_configs(tmp_path: Path, gates: Gates) -> None:
    config = GatewayConfig(  # triage never opens the store: no backend to vary
        sites=(SiteSection(name="north", gates=("g01",)),),
        store=StoreSection(path=tmp_path / "gateway.db"),
        ingest=IngestSection(payload_max_bytes=1024),
    )
    passage = gates.passage(reasons=tuple(f"{'r' * 46}{i:02d}" for i in range(REASONS_MAX)))
    assert len(passage.raw) > 1024
    sorted_ = triage(config, [delivery(topics.event(G01, EventKind.PASSAGE), passage.raw)])
    assert sorted_.events == []
    assert sorted_.dead[0].reason.startswith("too large")


def _largest_node_messages() -> dict[str, tuple[str, bytes]]:
    """The largest valid payload of each kind of node message, every bound filled."""
    slug = "s" * 63
    reading = DepotReading(
        sensor=slug, bus_address=247, at=NOW, status="ok",
        temperature_c=-12.345678901234567, humidity_pct=12.345678901234567,
    )  # fmt: skip
    event = {"event_id": new_event_id(NOW), "seq": 2**53 - 1, "node_time": NOW}
    devices = {f"{i:02d}{slug[2:]}": "unplugged" for i in range(DEVICES_MAX)}
    reasons = tuple(f"{'r' * 46}{i:02d}" for i in range(REASONS_MAX))  # the longest codes
    passage = Passage(
        **event, direction="out", subject="vehicle", outcome="deny", colour="yellow",
        credential="household-pass", reasons=reasons,
        temperature_c=36.612345678901234, subject_ref="ab" * 32, vehicle_plate="京A1234567890",
        occupants=60,
    )  # fmt: skip
    birth = Birth(
        session=2**53 - 1, node_time=NOW, role=Role.DEPOT, version="v" * 40,
        config_hash="f" * 64, devices=devices, trust_list_age_s=1e300, heartbeat_s=3600,
        outbox_id="f" * 32, confirmed_seq=2**53 - 1,
    )  # fmt: skip
    health = Health(
        node_time=NOW, session=2**53 - 1, uptime_s=1e300, last_seq=2**53 - 1,
        outbox_depth=2**53 - 1, outbox_capacity=2**53 - 1, devices=devices,
        trust_list_age_s=1e300, rss_bytes=2**53 - 1, cpu_percent=1e300,
    )  # fmt: skip
    batch = DepotReadingBatch(**event, readings=(reading,) * READINGS_MAX)
    return {
        "passage": (topics.event(G01, EventKind.PASSAGE), encode(passage)),
        "birth": (topics.status(D01), encode(birth)),
        "health": (topics.health(D01), encode(health)),
        "depot readings": (topics.reading(D01), encode(batch)),
    }


@pytest.mark.parametrize("kind", _largest_node_messages())
def test_triage__the_largest_valid_node_messages_fit_the_default_limit(
    gateway_config: GatewayConfig, kind: str
) -> None:
    topic, payload = _largest_node_messages()[kind]
    sorted_ = triage(gateway_config, [delivery(topic, payload)])
    assert sorted_.dead == [], f"{kind} of {len(payload)} bytes refused"
    assert len(payload) <= IngestSection().payload_max_bytes


# --- dead letters ----------------------------------------------------------------------------


def test_dead_letters__keep_a_prefix_with_the_whole_size_and_hash(
    gateway_context: GatewayContext, store: SqlStore
) -> None:
    junk = bytes(range(256)) * 256  # 64 KiB
    store.write([], dead=[DeadLetter("gatepost/v1/north/gate/g01/event/passage", junk, "junk",
                                     datetime.now(UTC))])  # fmt: skip
    assert letters(store) == [("junk", len(junk), hashlib.sha256(junk).hexdigest(), 1024)]
    (shown,) = open_api(gateway_context).get("/api/dead-letters", headers=bearer("admin")).json()
    assert (shown["size"], shown["sha256"]) == (len(junk), hashlib.sha256(junk).hexdigest())
    assert len(shown["payload"]) <= 1024


def test_dead_letters__a_long_topic_and_reason_are_cut_too(store: SqlStore) -> None:
    reason = "payload is not a valid Passage: " + "; ".join(["reasons.0: bad"] * 10_000)
    store.write([], dead=[DeadLetter("x/" * 30_000, b"{}", reason, datetime.now(UTC))])
    (row,) = look_inside(store, "SELECT length(topic), length(reason) FROM dead_letters")
    assert row == (512, 2000)


def test_dead_letters__the_oldest_are_dropped_past_the_cap_and_counted(
    gateway_context: GatewayContext, store: SqlStore
) -> None:
    api = TestClient(create_app(gateway_context))
    limits = IngestLimits(dead_letters_max=100, dead_letter_keep_bytes=1024)
    now = datetime.now(UTC)
    for batch in range(3):
        dead = [
            DeadLetter("gatepost/v1/north/gate/g01/event/passage", b"x" * 60_000,
                       f"junk {batch}-{i}", now)
            for i in range(50)
        ]  # fmt: skip
        store.write([], dead=dead, limits=limits)
    kept = [reason for reason, *_ in letters(store)]
    assert kept == [f"junk {b}-{i}" for b in (2, 1) for i in reversed(range(50))]
    samples = scrape(api)
    assert samples[("gatepost_dead_letters", ())] == 100
    assert samples[("gatepost_dead_letters_dropped_total", ())] == 50


def test_dead_letters__junk_does_not_grow_the_store(tmp_path: Path) -> None:
    # SQLite-only: the file's page count (PostgreSQL's vacuum keeps its own space).
    # 18 MB of junk once grew a store by as much again; now by at most the cap's worth.
    store = SqliteStore(tmp_path / "gateway.db")
    limits = IngestLimits(dead_letters_max=100)
    now = datetime.now(UTC)
    for batch in range(30):
        junk = [DeadLetter("t", bytes([batch]) * 60_000, "junk", now) for _ in range(10)]
        store.write([], dead=junk, limits=limits)
    store.checkpoint()
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
    assert pages * page_size < 1_000_000
    store.close()


def test_migrations__dead_letters_kept_before_keep_no_more_than_new_ones(tmp_path: Path) -> None:
    # SQLite-only: a SQLite file from before migration 0006, migrated forward.
    path = tmp_path / "gateway.db"
    conn = sqlite3.connect(path, isolation_level=None)
    before = tuple(m for m in MIGRATIONS if m.name < "0006")
    apply_migrations(conn, before)
    junk = b"\xff" * 5000
    conn.execute(
        "INSERT INTO dead_letters (received_at, topic, payload, reason) VALUES (?,?,?,?)",
        ("2026-11-22T00:00:00.000000+00:00", "t", junk, "junk"),
    )
    conn.close()
    store = SqliteStore(path)
    assert letters(store) == [("junk", 5000, hashlib.sha256(junk).hexdigest(), 1024)]
    assert store.dead_letters_dropped() == 0
    store.close()
