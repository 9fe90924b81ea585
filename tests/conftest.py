"""Shared fixtures: a private Mosquitto per test, pseudo-terminal pairs, MQTT clients.

The suite's broker takes TLS with a client certificate only and binds each client id to
its certificate, as a site's broker does; it leaves out the site's ACL, so that a test
may publish what a node, the gateway or an attacker would. tests/test_broker_security.py
holds the ACL to account on brokers started from the generated config.
"""

from __future__ import annotations

import itertools
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.contract import catalogue
from edge.contract.command import Alert
from edge.mqtt import Endpoint, new_client
from edge.runtime import NodeRuntime
from firmware_tools.site_pki import IdentityRole, SitePki
from gateway.alarms import utc_now
from gateway.config import (
    AlarmSection,
    BrokerSection,
    GatewayConfig,
    HttpSection,
    SiteSection,
    broker_config,
)
from gateway.service import Gateway
from gateway.store.postgres import PostgresStore
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from simulators.postgres import PrivatePostgres
from simulators.pty import PseudoTerminal

# The browser fixtures (`page`) for every test module, registered once: a second
# playwright driver in the same session refuses to start beside the first.
pytest_plugins = ["tests.browser"]

BROKER_FIXTURES = {"broker", "mqtt_subscriber"}


def identity(broker: PrivateBroker, name: str, role: IdentityRole = IdentityRole.ADMIN) -> Endpoint:
    """An endpoint on `broker` with a certificate of its own, issued on first use.

    The broker takes the certificate's name (`<role>-<name>`) as the client id: two calls
    with one name are one client (a persistent session resumes), two names are two
    clients. A broker holding clients to the site's ACL reads it when it starts: issue
    its identities before (see tests/test_delivery.py).
    """
    pki = broker.pki
    if pki is None:
        return Endpoint(broker.url)
    files, issued = pki.ensure(role, name)
    assert not (issued and broker.acl and broker.running), (
        f"{files.cn}: issue it before the broker starts"
    )
    return files.endpoint(broker.url)


def gateway_broker(broker: PrivateBroker, client_id: str, **settings: Any) -> BrokerSection:
    """The gateway's broker section: its two identities (ingest, publisher) on `broker`."""
    ingest = publisher = identity(broker, client_id, IdentityRole.GATEWAY)
    if broker.pki is not None:
        publisher = broker.pki.gateway_pair(client_id)[1].endpoint(broker.url)
    return BrokerSection(**broker_config(ingest, publisher), client_id=client_id, **settings)


@contextmanager
def gateway_running(
    broker: PrivateBroker, store: Path, site: str, gates: tuple[str, ...]
) -> Iterator[Gateway]:
    """The real gateway, in this process, storing what the gates of `site` send.

    Nodes delete outbox rows only on its receipts, so a test that waits for an empty
    outbox needs one running.
    """
    config = GatewayConfig(
        sites=(SiteSection(name=site, gates=gates),),
        broker=gateway_broker(broker, f"gw-{store.stem}"),
        store=StoreSection(path=store),
        http=HttpSection(port=0),
        alarms=AlarmSection(check_every_s=0.2),
    )
    with running_gateway(config) as gateway:
        yield gateway


@contextmanager
def running_gateway(
    config: GatewayConfig, clock: Callable[[], datetime] = utc_now
) -> Iterator[Gateway]:
    """The real gateway of `config`, in this process, on `clock` (a test's compressed one)."""
    gateway = Gateway(config, clock=clock)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop, lambda _g: ready.set()))
    thread.start()
    try:
        assert ready.wait(30), "the gateway did not start"
        assert gateway.ingest.wait_connected(15), "the gateway did not subscribe"
        yield gateway
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the gateway did not stop"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that starts Mosquitto is a broker test, one that opens a page a browser test,
    # whether or not its author said so.
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if BROKER_FIXTURES & fixtures:
            item.add_marker(pytest.mark.broker)
        if "page" in fixtures:
            item.add_marker(pytest.mark.browser)


class PostgresDatabases:
    """The session's private PostgreSQL, and a fresh migrated database per test that asks.

    The schema is migrated once into a template; each database is a copy of it (tens of
    milliseconds), so a test starts from an empty store as on SQLite.
    """

    TEMPLATE = "gatepost_template"

    def __init__(self, cluster: PrivatePostgres) -> None:
        self.cluster = cluster
        self._count = itertools.count(1)
        PostgresStore(cluster.create_database(self.TEMPLATE)).close()  # migrates it

    def new(self) -> str:
        """The URL of a new database holding the gateway's empty, migrated schema."""
        return self.cluster.create_database(f"test_{next(self._count)}", template=self.TEMPLATE)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """A private PostgreSQL cluster for the session (initdb in a temp folder, a free port),
    started by the first test that needs it; never the machine's own server."""
    cluster = PrivatePostgres(durable=False)
    cluster.start()
    try:
        yield PostgresDatabases(cluster)
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def site_pki(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    """The suite's site CA; tests issue their clients' certificates from it as they need them."""
    return SitePki.init(tmp_path_factory.mktemp("pki"), "suite")


@pytest.fixture
def broker(tmp_path: Path, site_pki: SitePki) -> Iterator[PrivateBroker]:
    """A private Mosquitto on a free port, with persistence and a large per-client queue.

    TLS and a client certificate are required; see the module's docstring for the ACL.
    """
    with PrivateBroker(tmp_path / "broker", pki=site_pki, acl=False) as running:
        yield running
    assert not running.running


@pytest.fixture
def pty_pair() -> Iterator[PseudoTerminal]:
    """A raw pseudo-terminal: write to it as the device, open `.path` as the serial port."""
    with PseudoTerminal() as pair:
        yield pair


@dataclass
class Subscriber:
    """A connected client that queues every message it receives, for assertions."""

    client: paho.Client
    messages: queue.Queue[paho.MQTTMessage] = field(default_factory=queue.Queue)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic_filter, qos)
        assert done.wait(5), f"no SUBACK for {topic_filter}"

    @classmethod
    def connect(
        cls, endpoint: Endpoint, client_id: str = "subscriber", session_expiry_s: int = 0
    ) -> Subscriber:
        messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        # Set before connecting: a resumed session's queued messages arrive at once.
        client = connect(endpoint, client_id, session_expiry_s, on_message=messages.put)
        return cls(client, messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def next(self, timeout_s: float = 5.0) -> paho.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout_s} s") from None


def connect(
    endpoint: Endpoint,
    client_id: str = "client",
    session_expiry_s: int = 0,
    on_message: Callable[[paho.MQTTMessage], None] | None = None,
) -> paho.Client:
    """A started, connected client (raises AssertionError if it does not connect in 5 s).

    With `session_expiry_s`, the broker keeps the session (and queues for it) that long
    after a disconnect.
    """
    client = new_client(client_id, endpoint)
    if on_message is not None:
        client.on_message = lambda _c, _u, message: on_message(message)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    client.connect(
        endpoint.host, endpoint.port, clean_start=session_expiry_s == 0, properties=props
    )
    client.loop_start()
    assert connected.wait(5), f"{client_id} could not connect to {endpoint}"
    return client


@pytest.fixture
def mqtt_subscriber(broker: PrivateBroker) -> Iterator[Subscriber]:
    """A client on the private broker that records what it receives."""
    sub = Subscriber.connect(identity(broker, "test-subscriber"))
    yield sub
    sub.close()


class OutputLines:
    """Lines a child process prints, read on a thread so a test can wait for one with a timeout."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.lines: list[str] = []
        self._new = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with self._new:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._new.notify_all()

    def wait_for(self, needle: str, timeout_s: float = 15.0, count: int = 1) -> list[str]:
        """Every line so far containing `needle`, once there are `count` of them."""

        def matching() -> list[str]:
            return [line for line in self.lines if needle in line]

        with self._new:
            if not self._new.wait_for(lambda: len(matching()) >= count, timeout_s):
                tail = "\n".join(self.lines[-20:])
                raise AssertionError(
                    f"no {count} x {needle!r} within {timeout_s} s; last lines:\n{tail}"
                )
            return matching()

    def finish(self, timeout_s: float = 5.0) -> list[str]:
        """All lines, after the process closed its output."""
        self._thread.join(timeout_s)
        return self.lines


N = TypeVar("N", bound=NodeRuntime)


@contextmanager
def locked_site(
    folder: Path, site: str, identities: list[tuple[IdentityRole, str]]
) -> Iterator[PrivateBroker]:
    """A site's broker as deployed: TLS, one certificate per process, the site's ACL, with
    `identities` issued before it starts (its dynamic security reads them only then)."""
    pki = SitePki.init(folder / "pki", site)
    for role, name in identities:
        pki.issue(role, name)
    with PrivateBroker(folder / "broker", pki=pki) as running:
        yield running


@contextmanager
def running_node(node: N) -> Iterator[N]:
    """A node (gate or depot) running on a thread of this process until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=node.run, args=(stop,))
    thread.start()
    try:
        yield node
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "the node did not stop"


def alerts_until(
    sub: Subscriber, seen: list[Alert], done: Callable[[], bool], timeout_s: float = 60
) -> None:
    """Decode the alerts `sub` receives into `seen` until `done()` (or fail at `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout_s} s; alerts: {seen}"
        try:
            message = sub.next(0.2)
        except AssertionError:
            continue
        alert = catalogue.decode(message.topic, message.payload).payload
        assert isinstance(alert, Alert)
        seen.append(alert)
