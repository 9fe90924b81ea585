"""`gatepost gateway …` as a real process: killed outright, a broker outage, check and tokens."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import psycopg
import pytest
import yaml

from edge.contract import topics
from edge.contract.catalogue import encode
from edge.contract.topics import EventKind, Role, Site
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker, free_port
from simulators.processes import python_module, spawn, stop
from tests.conftest import OutputLines, connect, gateway_broker, identity
from tests.gateway.factory import Gates

G01 = Site("north").node(Role.GATE, "g01")
PASSAGE_TOPIC = topics.event(G01, EventKind.PASSAGE)


def wait_until(condition: Callable[[], bool], timeout_s: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not in {timeout_s} s: {what or 'condition'}"
        time.sleep(0.05)


def broker_config(broker: PrivateBroker) -> dict[str, Any]:
    """The gateway's broker section as a config file holds it, with its two identities."""
    section = gateway_broker(broker, "gw-process", session_expiry_s=600)
    return section.model_dump(mode="json", exclude_none=True)


def settings(
    broker: dict[str, Any], http_port: int, store: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "sites": [{"name": "north", "gates": ["g01"]}],
        "broker": broker,
        "store": store or {"path": "gateway.db"},  # relative: next to the config
        "http": {"port": http_port},
        "alarms": {"check_every_s": 0.2},
    }


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def http_port() -> int:
    return free_port()


@pytest.fixture
def config(
    tmp_path: Path, broker: PrivateBroker, http_port: int, store_section: StoreSection
) -> Path:
    """The gateway's config on the test's store: the SQLite file next to it, or PostgreSQL."""
    store = {"url": store_section.url} if store_section.url else None
    return write_config(
        tmp_path / "gateway.yaml", settings(broker_config(broker), http_port, store)
    )


@pytest.fixture
def stored(tmp_path: Path, store_section: StoreSection) -> StoredEvents:
    return StoredEvents(tmp_path / "gateway.db", store_section.url)


def gatepost(*args: str) -> subprocess.CompletedProcess[str]:
    """`gatepost ARGS` to the end, its output captured."""
    return subprocess.run(
        python_module("edge.cli", *args), capture_output=True, text=True, timeout=60
    )


class GatewayProcess:
    """`gatepost gateway run` in a child process, with its log lines."""

    def __init__(self, config: Path) -> None:
        self.process = spawn(
            python_module("edge.cli", "gateway", "run", "--config", str(config)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output = OutputLines(self.process)

    def wait_ready(self, session: str = "") -> None:
        """Subscribed (on a `session` "new" or "resumed", if given) and serving HTTP."""
        self.output.wait_for(f"ingest subscribed (session {session}", timeout_s=30)
        self.output.wait_for("gateway API and dashboard at", timeout_s=30)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        stop(self.process, "gateway")
        self.output.finish()


@contextmanager
def gateway_running(config: Path, session: str = "") -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(config)
    try:
        gateway.wait_ready(session)
        yield gateway
    finally:
        gateway.stop()


class StoredEvents:
    """The gateway's store read the way an operator would, beside it: the SQLite file
    read-only, or PostgreSQL (`url`) on a connection of its own."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        self.path = path
        self.url = url

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.url:
            with psycopg.connect(self.url, autocommit=True) as pg:
                return pg.execute(sql).fetchall()
        if not self.path.exists():
            return []
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute(sql).fetchall()

    def count(self) -> int:
        rows = self._query("SELECT COUNT(*) FROM events")
        return int(rows[0][0]) if rows else 0

    def seqs(self) -> list[int]:
        rows = self._query(
            "SELECT seq FROM events WHERE site = 'north' AND node = 'g01' ORDER BY seq"
        )
        return [int(row[0]) for row in rows]


def passages(count: int) -> list[bytes]:
    """Passage payloads from gate north/g01, seq 1..count."""
    gates = Gates("north")
    return [encode(gates.passage().event) for _ in range(count)]


def publish_all(client: paho.Client, payloads: list[bytes]) -> None:
    for payload in payloads:
        client.publish(PASSAGE_TOPIC, payload, qos=1).wait_for_publish(10)


def connected_metric(http_port: int) -> str:
    """The value of gatepost_ingest_connected, or "" while the gateway does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return ""
    for line in text.splitlines():
        if line.startswith("gatepost_ingest_connected "):
            return line.split()[1]
    return ""


@pytest.mark.slow
def test_gateway_process__killed_outright_while_events_flow_loses_none(
    broker: PrivateBroker, stored: StoredEvents, config: Path
) -> None:
    store = stored
    made = passages(2000)
    node = connect(identity(broker, "node-g01"))
    sent = threading.Event()
    failures: list[BaseException] = []

    def publish_steadily() -> None:
        try:
            pending = []
            for payload in made:
                pending.append(node.publish(PASSAGE_TOPIC, payload, qos=1))
                time.sleep(0.002)
            for info in pending:
                info.wait_for_publish(10)
            sent.set()
        except BaseException as exc:
            failures.append(exc)

    first = GatewayProcess(config)
    second: GatewayProcess | None = None
    publisher = threading.Thread(target=publish_steadily, daemon=True)
    try:
        first.wait_ready("new")
        publisher.start()
        wait_until(lambda: store.count() >= 300, what="300 events stored")
        first.kill()
        stored_at_kill = store.count()
        assert stored_at_kill < 2000, "the kill came too late to test anything"
        assert not sent.is_set(), "the publisher had finished before the kill"
        # Same client id: the broker kept the session, and what was not acknowledged.
        second = GatewayProcess(config)
        second.wait_ready("resumed")
        publisher.join(30)
        assert not failures, failures
        assert sent.is_set()
        wait_until(lambda: store.count() >= 2000, timeout_s=30, what="2000 events stored")
        assert store.seqs() == list(range(1, 2001))
        assert store.count() == 2000
    finally:
        for gateway in (first, second):
            if gateway is not None:
                gateway.stop()
        node.disconnect()
        node.loop_stop()


@pytest.mark.slow
def test_gateway_process__a_broker_outage_loses_nothing_and_ingest_reconnects(
    broker: PrivateBroker, stored: StoredEvents, config: Path, http_port: int
) -> None:
    store = stored
    made = passages(200)
    with gateway_running(config, "new"):
        wait_until(lambda: connected_metric(http_port) == "1.0", what="ingest connected")
        node = connect(identity(broker, "node-g01"), session_expiry_s=600)
        try:
            publish_all(node, made[:100])
            wait_until(lambda: store.count() == 100, what="the first 100 stored")
            broker.stop()
            wait_until(lambda: connected_metric(http_port) == "0.0", what="ingest sees the outage")
            wait_until(lambda: not node.is_connected(), what="the publisher sees the outage")
            broker.start()  # same port, same persistence file
            wait_until(node.is_connected, what="the publisher back")
            publish_all(node, made[100:])
            wait_until(lambda: store.count() == 200, timeout_s=30, what="all 200 stored")
            assert store.seqs() == list(range(1, 201))
            wait_until(lambda: connected_metric(http_port) == "1.0", what="ingest connected")
        finally:
            node.disconnect()
            node.loop_stop()


NO_BROKER = {"url": "mqtts://127.0.0.1:8883"}  # `check` does not connect


def test_gateway_check__valid(tmp_path: Path, http_port: int) -> None:
    config = write_config(tmp_path / "gateway.yaml", settings(NO_BROKER, http_port))
    done = gatepost("gateway", "check", "--config", str(config))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.strip() == f"{config}: valid, 1 site(s), 1 gate(s)"


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [("broker", "ca", "missing-ca.crt"), ("http", "tls_cert", "missing-web.pem")],
)
def test_gateway_check__a_file_the_config_names_is_missing(
    tmp_path: Path, http_port: int, section: str, field: str, value: str
) -> None:
    data = settings(NO_BROKER, http_port)
    data[section] = {**data[section], field: value}  # a copy: NO_BROKER is shared
    if section == "http":
        data["http"]["tls_key"] = "missing-web.key"
    done = gatepost("gateway", "check", "--config", str(write_config(tmp_path / "g.yaml", data)))
    assert done.returncode == 1
    assert done.stdout == ""
    assert value in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c["sites"][0].update(cutoff_hour=24), "sites.0.cutoff_hour"),
        (lambda c: c["sites"][0].update(name="North Gate"), "sites.0.name"),
        (lambda c: c["http"].update(port=70_000), "http.port"),
        (lambda c: c["broker"].update(typo=1), "broker.typo"),
        (lambda c: c["alarms"].update(check_every_s=0), "alarms.check_every_s"),
        (lambda c: c.update(sites=[]), "sites"),
    ],
    ids=["cutoff-hour", "site-name", "http-port", "unknown-key", "check-every", "no-sites"],
)
def test_gateway_check__invalid(
    tmp_path: Path,
    http_port: int,
    change: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    data = settings(NO_BROKER, http_port)
    change(data)
    bad = write_config(tmp_path / "bad.yaml", data)
    done = gatepost("gateway", "check", "--config", str(bad))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "gatepost gateway: error:" in done.stderr
    assert f"  {field}: " in done.stderr, done.stderr


def test_gateway_token__created_used_listed_and_revoked_against_the_running_gateway(
    config: Path, http_port: int
) -> None:
    nodes = f"http://127.0.0.1:{http_port}/api/nodes"

    def get_nodes(token: str) -> httpx.Response:
        return httpx.get(nodes, headers={"Authorization": f"Bearer {token}"}, timeout=5)

    def token(*args: str) -> subprocess.CompletedProcess[str]:
        return gatepost("gateway", "token", *args, "--config", str(config))

    with gateway_running(config):
        assert httpx.get(nodes, timeout=5).status_code == 401  # no token at all
        created = token("create", "--role", "command", "--name", "cc")
        assert created.returncode == 0, created.stderr
        secret = created.stdout.strip()
        assert len(secret) >= 20
        assert "\n" not in secret

        answer = get_nodes(secret)
        assert answer.status_code == 200, answer.text
        assert [(n["site"], n["node"]) for n in answer.json()] == [("north", "g01")]
        assert get_nodes(secret + "x").status_code == 401

        again = token("create", "--role", "admin", "--name", "cc")
        assert again.returncode == 1
        assert again.stdout == ""
        assert "a token named 'cc' already exists" in again.stderr
        assert get_nodes(secret).status_code == 200  # the first one is untouched

        listed = token("list")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines() == ["cc\tcommand\tlive"]
        assert secret not in listed.stdout + listed.stderr

        revoked = token("revoke", "--name", "cc")
        assert revoked.returncode == 0, revoked.stderr
        answer = get_nodes(secret)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        [line] = token("list").stdout.splitlines()
        assert line.startswith("cc\tcommand\trevoked ")
        assert token("revoke", "--name", "cc").returncode == 1  # nothing live to revoke
