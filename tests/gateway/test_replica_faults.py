"""Replicas under faults (#16), as real processes: two `gatepost gateway run` in one share
group on one private PostgreSQL, gates publishing to a private Mosquitto at QoS 1.

What each test holds the gateways to: every event stored once (nothing lost, nothing
twice), each node's seq bookkeeping contiguous, an alarm condition live once, and a log
line for each outage and recovery. docs/scale.md ("Replicas and the broker") says what
Mosquitto does with a shared subscription's member that is away, as tested here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edge.contract import topics
from edge.contract.catalogue import encode
from edge.contract.topics import EventKind, Role, Site
from gateway.store.postgres import PostgresStore
from gateway.store.schema_pg import PG_MIGRATIONS
from simulators.broker import PrivateBroker, free_port
from simulators.postgres import PrivatePostgres
from tests.conftest import connect, gateway_broker, identity
from tests.gateway.factory import Gates
from tests.gateway.test_gateway_process import GatewayProcess, wait_until, write_config

NODES = ("g01", "g02", "g03", "g04")
PER_NODE = 750  # 3,000 events: a few seconds of stream at the pace below
RED_EVERY = 50  # every 50th passage of a node is a red code: one alarm each
PACE_S = 0.003  # per message per node: the stream lasts long enough to kill in its middle


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    """A durable private PostgreSQL for this module (fsync on: it is stopped and killed)."""
    pg = PrivatePostgres(durable=True)
    pg.start()
    try:
        yield pg
    finally:
        pg.remove()


@pytest.fixture
def database(cluster: PrivatePostgres, request: pytest.FixtureRequest) -> str:
    """A fresh, unmigrated database: the replicas migrate it as they start."""
    if not cluster.running:  # a test that failed half-way left it stopped
        cluster.start()
    name = "r_" + request.node.name.split("[")[0][-40:].lower()
    return cluster.create_database(name)


class Stream:
    """The gates' stream: PER_NODE passages per node, published at QoS 1 from a thread per
    node, each node a client of its own; `sent` once every PUBACK came back."""

    def __init__(self, broker: PrivateBroker) -> None:
        gates = Gates("north")
        self.payloads: dict[str, list[bytes]] = {}
        self.red = 0
        for node in NODES:
            made = []
            for n in range(1, PER_NODE + 1):
                red = n % RED_EVERY == 0
                self.red += red
                colour = {"colour": "red", "outcome": "deny"} if red else {}
                made.append(encode(gates.passage(node, **colour).event))
            self.payloads[node] = made
        self.total = len(NODES) * PER_NODE
        self.clients = {n: connect(identity(broker, f"node-{n}"), f"node-{n}") for n in NODES}
        self.sent = threading.Event()
        self.failures: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._publish, args=(node,), daemon=True) for node in NODES
        ]
        self._done = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _publish(self, node: str) -> None:
        client = self.clients[node]
        topic = topics.event(Site("north").node(Role.GATE, node), EventKind.PASSAGE)
        try:
            pending = []
            for payload in self.payloads[node]:
                pending.append(client.publish(topic, payload, qos=1))
                time.sleep(PACE_S)
            for info in pending:
                info.wait_for_publish(30)
        except BaseException as exc:  # reported by join()
            self.failures.append(exc)
        with self._lock:
            self._done += 1
            if self._done == len(NODES):
                self.sent.set()

    def join(self, timeout_s: float = 60) -> None:
        assert self.sent.wait(timeout_s), "the gates did not get every PUBACK"
        assert not self.failures, self.failures

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()


class Database:
    """The replicas' PostgreSQL, read as an operator would, beside them (a new connection
    per look, so a look across a restart of the server simply waits for it)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(psycopg.connect(self.url, connect_timeout=3, autocommit=True)) as conn:
            return conn.execute(sql).fetchall()

    def count(self) -> int:
        try:
            return int(self.rows("SELECT COUNT(*) FROM events")[0][0])
        except psycopg.OperationalError:
            return -1  # the server is down or the schema not there yet

    def assert_stored_once(self, stream: Stream) -> None:
        """Every event once, each node's seqs 1..PER_NODE and its bookkeeping at the end,
        one red-code alarm per red passage, and no condition live twice."""
        assert self.count() == stream.total
        twice = self.rows(
            "SELECT site, node, seq FROM events GROUP BY site, node, seq HAVING COUNT(*) > 1"
        )
        assert twice == []
        for node in NODES:
            seqs = [r[0] for r in self.rows(f"SELECT seq FROM events WHERE node = '{node}'")]
            assert sorted(seqs) == list(range(1, PER_NODE + 1)), node
        marks = self.rows("SELECT node, seq_contiguous, seq_max FROM nodes ORDER BY node")
        assert marks == [(node, PER_NODE, PER_NODE) for node in NODES]
        store = PostgresStore(self.url)
        try:
            assert store.lagging() == []
        finally:
            store.close()
        red = self.rows("SELECT subject, COUNT(*) FROM alarms WHERE kind = 'red-code' GROUP BY 1")
        assert len(red) == stream.red
        assert {n for _, n in red} == {1}
        live_twice = self.rows(
            "SELECT kind, site, node, subject FROM alarms WHERE state != 'cleared' "
            "GROUP BY 1, 2, 3, 4 HAVING COUNT(*) > 1"
        )
        assert live_twice == []


def replica_config(tmp_path: Path, broker: PrivateBroker, url: str, name: str) -> Path:
    """A replica's config: its own client id and certificates, the shared group and store."""
    folder = tmp_path / name
    folder.mkdir()
    section = gateway_broker(broker, name, session_expiry_s=600)
    data = {
        "sites": [{"name": "north", "gates": list(NODES)}],
        "broker": section.model_dump(mode="json", exclude_none=True),
        "store": {"url": url},
        "http": {"port": free_port()},
    }
    return write_config(folder / "gateway.yaml", data)


class Replicas:
    """Two replicas, gw-a and gw-b, started and stopped together (and one at a time)."""

    def __init__(self, tmp_path: Path, broker: PrivateBroker, url: str, stack: ExitStack) -> None:
        self.configs = {n: replica_config(tmp_path, broker, url, n) for n in ("gw-a", "gw-b")}
        self.running: dict[str, GatewayProcess] = {}
        self.past: list[GatewayProcess] = []
        stack.callback(self.stop_all)

    def start(self, name: str, session: str = "") -> GatewayProcess:
        gateway = GatewayProcess(self.configs[name])
        self.running[name] = gateway
        gateway.wait_ready(session)
        return gateway

    def kill(self, name: str) -> None:
        gateway = self.running.pop(name)
        gateway.kill()
        gateway.output.finish()
        self.past.append(gateway)

    def lines(self, name: str) -> list[str]:
        return self.running[name].output.lines

    def stop_all(self) -> None:
        for gateway in self.running.values():
            gateway.stop()


def settled(db: Database, quiet_s: float = 2.0, timeout_s: float = 30) -> int:
    """The stored count once it has not changed for `quiet_s`."""
    deadline = time.monotonic() + timeout_s
    last, since = db.count(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, "the count kept changing"
        time.sleep(0.2)
        now = db.count()
        if now != last:
            last, since = now, time.monotonic()
    return last


@pytest.mark.slow
def test_replicas__one_killed_mid_stream_and_restarted_loses_nothing_and_stores_nothing_twice(
    broker: PrivateBroker, tmp_path: Path, database: str
) -> None:
    db = Database(database)
    with ExitStack() as stack:
        replicas = Replicas(tmp_path, broker, database, stack)
        replicas.start("gw-a", "new")
        replicas.start("gw-b", "new")
        stream = Stream(broker)
        stack.callback(stream.close)
        stream.start()
        wait_until(lambda: db.count() >= 600, what="600 events stored")
        replicas.kill("gw-b")  # SIGKILL: no DISCONNECT, its last batch maybe half-done
        at_kill = db.count()
        assert at_kill < stream.total, "the kill came too late to test anything"
        assert not stream.sent.is_set(), "the gates had finished before the kill"
        stream.join()

        # Mosquitto (2.0) keeps dealing the group's messages round-robin to the away
        # member's session: gw-a stores its own share and no more, the rest waits.
        # (About half of what came after the kill: gw-b's turns of the round-robin.)
        held_back = stream.total - settled(db)
        assert held_back >= (stream.total - at_kill) // 4, f"only {held_back} waited for gw-b"

        replicas.start("gw-b", "resumed")  # as systemd would, same client id
        wait_until(lambda: db.count() >= stream.total, timeout_s=60, what="every event stored")
        time.sleep(1.0)  # a redelivery that would store twice has had its chance
        db.assert_stored_once(stream)
        assert db.rows("SELECT COUNT(*) FROM _migrations") == [(len(PG_MIGRATIONS),)]


def outage_test(
    broker: PrivateBroker, tmp_path: Path, database: str, cluster: PrivatePostgres, how: str
) -> None:
    """PostgreSQL goes away under load (`how`: "fast" stop or "kill" -9 of the postmaster)
    and comes back on the same port: both replicas retry, say so, and say it is back."""
    db = Database(database)
    with ExitStack() as stack:
        replicas = Replicas(tmp_path, broker, database, stack)
        replicas.start("gw-a", "new")
        replicas.start("gw-b", "new")
        stream = Stream(broker)
        stack.callback(stream.close)
        stream.start()
        wait_until(lambda: db.count() >= 600, what="600 events stored")
        if how == "fast":
            cluster.stop(fast=True)
        else:
            cluster.kill()
        assert not stream.sent.is_set(), "the gates had finished before the outage"
        for name in ("gw-a", "gw-b"):
            replicas.running[name].output.wait_for("the store is unavailable", timeout_s=20)
        time.sleep(2.0)  # an outage of a few seconds, with the stream still coming
        cluster.start()
        stream.join()
        wait_until(lambda: db.count() >= stream.total, timeout_s=60, what="every event stored")
        for name in ("gw-a", "gw-b"):
            replicas.running[name].output.wait_for("the store is back", timeout_s=20)
            assert replicas.running[name].process.poll() is None, f"{name} exited"
        time.sleep(1.0)
        db.assert_stored_once(stream)


@pytest.mark.slow
def test_replicas__postgresql_fast_shutdown_and_start_under_load_loses_nothing(
    broker: PrivateBroker, tmp_path: Path, database: str, cluster: PrivatePostgres
) -> None:
    outage_test(broker, tmp_path, database, cluster, "fast")


@pytest.mark.slow
def test_replicas__postmaster_killed_and_started_under_load_loses_nothing(
    broker: PrivateBroker, tmp_path: Path, database: str, cluster: PrivatePostgres
) -> None:
    outage_test(broker, tmp_path, database, cluster, "kill")


def test_replicas__two_stores_opened_at_once_on_a_fresh_database_migrate_it_once(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="gateway.store.postgres")
    start = threading.Barrier(2)
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            start.wait(5)
            opened.append(PostgresStore(database))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert len(opened) == 2
        applied = [r.getMessage() for r in caplog.records if "applied migration" in r.message]
        assert applied == [f"applied migration {m.name}" for m in PG_MIGRATIONS]
        rows = Database(database).rows("SELECT name FROM _migrations ORDER BY name")
        assert [r[0] for r in rows] == sorted(m.name for m in PG_MIGRATIONS)
        for store in opened:  # both work
            assert store.marks() == []
    finally:
        for store in opened:
            store.close()


def test_mosquitto__a_share_group_member_away_keeps_its_turns_until_its_session_ends(
    broker: PrivateBroker,
) -> None:
    """What docs/scale.md says of Mosquitto 2.0: an away member's turns wait in its
    session (not given to the live one), and once its session ended, what waited is
    discarded and the live member gets every message."""
    got: dict[str, list[bytes]] = {"a": [], "b": []}

    def member(name: str, expiry_s: int) -> Any:
        client = connect(
            identity(broker, f"member-{name}"), f"member-{name}", expiry_s,
            on_message=lambda message: got[name].append(bytes(message.payload)),
        )  # fmt: skip
        if expiry_s:
            subscribed = threading.Event()
            client.on_subscribe = lambda *_: subscribed.set()
            client.subscribe("$share/g/test/#", 1)
            assert subscribed.wait(5)
        return client

    def publish(count: int) -> None:
        for n in range(count):
            sender.publish("test/x", str(n).encode(), qos=1).wait_for_publish(5)

    def leave(client: Any) -> None:
        client.disconnect()
        client.loop_stop()

    sender = connect(identity(broker, "sender"), "sender")
    a, b = member("a", 600), member("b", 600)
    try:
        leave(b)
        publish(100)
        wait_until(lambda: len(got["a"]) >= 50, what="a's half")
        time.sleep(0.5)
        assert len(got["a"]) == 50  # b's turns were not given to a
        b = member("b", 600)  # back with its session: its half was waiting
        wait_until(lambda: len(got["b"]) >= 50, what="b's half")
        leave(b)
        got["a"].clear()
        publish(20)  # b's turns wait again
        leave(member("b", 0))  # b's session ends (a clean start): its 10 are dropped
        publish(20)
        wait_until(lambda: len(got["a"]) >= 30, what="a gets every message")
        time.sleep(0.5)
        assert len(got["a"]) == 30
        b = member("b", 600)
        time.sleep(0.5)
        assert len(got["b"]) == 50  # nothing of what waited in the ended session
    finally:
        for client in (a, b, sender):
            leave(client)
