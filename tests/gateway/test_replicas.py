"""Replicas on one PostgreSQL (#16): one leader through the database, a live feed for all.

Against a private PostgreSQL (the session's cluster) and, for the processes, a private
Mosquitto: two `gatepost gateway run` processes, the leader SIGKILLed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from edge.contract.presence import Birth
from edge.contract.topics import Role, Site, status
from edge.mqtt import publish
from gateway.changes import ChangeListener
from gateway.config import GatewayConfig
from gateway.leader import Leadership
from gateway.live import LiveFeed
from gateway.service import Gateway
from gateway.store.postgres import PostgresStore
from gateway.store.records import DeadLetter
from simulators.broker import PrivateBroker, free_port
from tests.conftest import PostgresDatabases, connect, gateway_broker, identity
from tests.gateway.test_gateway_process import GatewayProcess, wait_until, write_config

NORTH = Site("north")
LEADS = "this replica leads"


@pytest.fixture
def database(postgres_databases: PostgresDatabases) -> str:
    return postgres_databases.new()


@pytest.fixture
def two_leaderships(database: str) -> Iterator[tuple[Leadership, Leadership]]:
    pair = (Leadership(database, name="a"), Leadership(database, name="b"))
    for leadership in pair:
        leadership.start()
    try:
        yield pair
    finally:
        for leadership in pair:
            leadership.stop()


def backend_pids(url: str, application: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchall()
    return [int(row[0]) for row in rows]


def test_leadership__one_of_two_leads_and_the_other_takes_over_when_its_session_ends(
    database: str, two_leaderships: tuple[Leadership, Leadership]
) -> None:
    a, b = two_leaderships
    wait_until(lambda: a.leads or b.leads, timeout_s=3, what="a leader")
    assert a.leads != b.leads
    leader, follower = (a, b) if a.leads else (b, a)

    both: list[float] = []
    stop = threading.Event()

    def sample() -> None:  # never both at once, however the hand-over goes
        while not stop.wait(0.005):
            if a.leads and b.leads:
                both.append(time.monotonic())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        (pid,) = backend_pids(database, f"gatepost-leader {leader.name}")
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        killed = time.monotonic()
        wait_until(lambda: follower.leads, timeout_s=3, what="the follower leading")
        taken_over_s = time.monotonic() - killed
        time.sleep(1.5)  # the old leader reconnects, and must then follow
    finally:
        stop.set()
        sampler.join()
    assert not both, "both replicas led at once"
    assert follower.leads and not leader.leads
    assert taken_over_s < 3


def test_leadership__a_stopped_leader_hands_over_at_once(
    two_leaderships: tuple[Leadership, Leadership],
) -> None:
    a, b = two_leaderships
    wait_until(lambda: a.leads or b.leads, timeout_s=3, what="a leader")
    leader, follower = (a, b) if a.leads else (b, a)
    leader.stop()
    assert not leader.leads
    wait_until(lambda: follower.leads, timeout_s=3, what="the follower leading")


def test_leadership__an_unreachable_database_is_no_leader_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there
    leadership = Leadership(f"postgresql://nobody@127.0.0.1:{port}/none", name="lost")
    leadership.step()
    assert not leadership.leads
    assert "cannot try for the lock" in caplog.text


def test_leadership__a_lease_not_longer_than_the_retry_is_refused() -> None:
    with pytest.raises(ValueError, match="lease_s"):
        Leadership("postgresql://x/y", retry_s=2, lease_s=2)


def test_change_listener__a_write_by_another_store_moves_this_live_feed(database: str) -> None:
    live = LiveFeed()
    listener = ChangeListener(database, live, name="reader")
    listener.start()
    writer = PostgresStore(database)
    try:
        assert listener.listening
        before = live.version
        dead = DeadLetter("gatepost/north/g01/event", b"junk", "not-cbor", datetime.now(UTC))
        started = time.monotonic()
        writer.write([], presence=[], dead=[dead])
        after = live.wait_for_change(before, timeout_s=1.0)
        assert after > before, "the live feed did not move within a second"
        assert time.monotonic() - started < 1.0
    finally:
        writer.close()
        listener.stop()


def test_change_listener__moves_the_feed_once_it_is_back_after_losing_its_connection(
    database: str,
) -> None:
    live = LiveFeed()
    listener = ChangeListener(database, live, name="cut")
    listener.start()
    try:
        (pid,) = backend_pids(database, "gatepost-listen cut")
        before = live.version
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # Whatever was stored meanwhile was not notified: the feed moves on reconnecting.
        assert live.wait_for_change(before, timeout_s=5.0) > before
        wait_until(lambda: listener.listening, timeout_s=5, what="listening again")
    finally:
        listener.stop()


def test_tick__a_follower_sends_its_receipts_and_leaves_the_clock_to_the_leader(
    gateway_config: GatewayConfig,
) -> None:
    ran: list[str] = []
    gateway = Gateway(gateway_config)
    gateway.leader = SimpleNamespace(leads=False)
    gateway.rules = SimpleNamespace(check=lambda: ran.append("rules"))  # type: ignore[assignment]
    gateway.stock_rules = SimpleNamespace(check=lambda: ran.append("stock"))  # type: ignore[assignment]
    gateway.stock_reports = SimpleNamespace(check=lambda: ran.append("reports"))  # type: ignore[assignment]
    gateway.supply_levels = SimpleNamespace(check=lambda: ran.append("supply"))  # type: ignore[assignment]
    gateway.receipts = SimpleNamespace(  # type: ignore[assignment]
        check=lambda: ran.append("ask again"), flush=lambda: ran.append("receipts")
    )
    gateway.summaries = SimpleNamespace(publish_due=lambda: ran.append("summaries"))  # type: ignore[assignment]
    gateway.store = SimpleNamespace(checkpoint=lambda: ran.append("checkpoint"))  # type: ignore[assignment]
    gateway.rollups = SimpleNamespace(step=lambda: ran.append("rollups"))  # type: ignore[assignment]
    gateway.retention = SimpleNamespace(step=lambda: ran.append("retention"))  # type: ignore[assignment]
    gateway.tick()
    assert ran == ["receipts", "checkpoint"]
    assert gateway.stats.leads() is False
    ran.clear()
    gateway.leader = SimpleNamespace(leads=True)
    gateway.tick()
    assert ran == [
        "rules", "stock", "reports", "supply", "ask again", "summaries", "checkpoint", "rollups",
        "retention",
    ]  # fmt: skip
    assert gateway.stats.leads() is True


# --- two gateway processes ------------------------------------------------------------


def replica_config(
    tmp_path: Path, broker: PrivateBroker, database: str, name: str
) -> tuple[Path, int]:
    port = free_port()
    section = gateway_broker(broker, f"gw-{name}", session_expiry_s=60)
    data: dict[str, Any] = {
        "sites": [{"name": "north", "gates": ["g01", "g02"]}],
        "broker": section.model_dump(mode="json", exclude_none=True),
        "store": {"url": database},
        "http": {"port": port},
        "alarms": {"check_every_s": 0.2, "heartbeats_missed": 2},
    }
    return write_config(tmp_path / f"{name}.yaml", data), port


def birth(heartbeat_s: int) -> Birth:
    return Birth(
        session=1, node_time=datetime.now(UTC), role=Role.GATE, version="1.4.2",
        config_hash="ab" * 8, heartbeat_s=heartbeat_s,
    )  # fmt: skip


def offline_alarms(url: str, node: str) -> int:
    """Alarms ever raised (live or not) for `node` going offline, as the store holds them."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM alarms WHERE kind = 'node-offline' AND node = %s", (node,)
        ).fetchone()
    return int(row[0]) if row else 0


def online(url: str, node: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT online FROM nodes WHERE node = %s", (node,)).fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_two_gateway_processes__the_leader_killed_the_other_leads_and_alarms_once(
    broker: PrivateBroker, tmp_path: Path, database: str
) -> None:
    configs = [replica_config(tmp_path, broker, database, name) for name in ("a", "b")]
    node = connect(identity(broker, "node-north"), "node-north")
    replicas = [GatewayProcess(configs[0][0])]
    try:
        replicas[0].wait_ready()
        replicas[0].output.wait_for(LEADS, timeout_s=10)  # a started first, took the lock
        replicas.append(GatewayProcess(configs[1][0]))
        replicas[1].wait_ready()
        # g01 goes silent with both running: the leader alone marks it offline.
        publish(node, status(NORTH.node(Role.GATE, "g01")), birth(heartbeat_s=1))
        wait_until(lambda: offline_alarms(database, "g01") == 1, what="g01 offline alarm")
        # g02 is heard from, then the leader dies before g02's silence is due (2 x 3 s).
        publish(node, status(NORTH.node(Role.GATE, "g02")), birth(heartbeat_s=3))
        wait_until(lambda: online(database, "g02"), timeout_s=5, what="g02 online")
        replicas[0].kill()
        killed = time.monotonic()
        replicas[1].output.wait_for(LEADS, timeout_s=5)
        took_over_s = time.monotonic() - killed
        wait_until(lambda: offline_alarms(database, "g02") == 1, what="g02 offline alarm")
        time.sleep(1.5)  # ticks enough for a second raise, were there one
        assert offline_alarms(database, "g01") == 1
        assert offline_alarms(database, "g02") == 1
        assert took_over_s < 5
        # Each alarm was raised by the leader of its time: g01's by a, g02's by b.
        a_said, b_said = ([line for line in r.output.lines if "alarm" in line] for r in replicas)
        assert [line for line in a_said if "node-offline" in line], a_said
        assert not [line for line in a_said if "g02" in line], a_said
        assert not [line for line in b_said if "g01" in line], b_said
    finally:
        node.disconnect()
        node.loop_stop()
        for replica in replicas:
            if replica.process.poll() is None:
                replica.stop()
