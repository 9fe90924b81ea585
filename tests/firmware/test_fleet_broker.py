"""`gatepost fw fleet` without a gateway: the site's retained status and the heartbeats heard,
from a real Mosquitto with the site's TLS identities."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import paho.mqtt.client as paho
import pytest

from edge.cli import endpoint_args, main
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import Role, Site, health, status
from edge.mqtt import publish
from firmware_tools.fleet_view import PROBLEM, UNREAD
from firmware_tools.site_pki import IdentityRole
from simulators.broker import PrivateBroker
from tests.conftest import connect, identity

SITE = Site("north")


def birth(role: Role, heartbeat_s: int = 1, trust_age_s: float | None = 60.0) -> Birth:
    return Birth(
        session=1, node_time=datetime.now(UTC), role=role, version="1.4.2",
        config_hash="ab" * 8, heartbeat_s=heartbeat_s, config_serial=3,
        trust_list_age_s=trust_age_s if role is Role.GATE else None,
        devices={"probe": "ok"} if role is Role.DEPOT else {"scanner": "ok"},
    )  # fmt: skip


def heartbeat(devices: dict[str, str], trust_age_s: float | None) -> Health:
    return Health.model_validate({
        "node_time": datetime.now(UTC), "session": 1, "uptime_s": 5.0,
        "last_seq": 0, "outbox_depth": 2, "outbox_capacity": 1000, "devices": devices,
        "trust_list_age_s": trust_age_s,
    })  # fmt: skip


@contextmanager
def node(broker: PrivateBroker, role: Role, name: str) -> Iterator[paho.Client]:
    client = connect(identity(broker, name, IdentityRole(role.value)), name)
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


@contextmanager
def beating(client: paho.Client, topic: str, beat: Health) -> Iterator[None]:
    """Publish `beat` on `topic` every 0.3 s until the block ends."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.3):
            publish(client, topic, beat.model_copy(update={"node_time": datetime.now(UTC)}))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_fleet_from_the_broker__retained_status_and_heartbeats(
    broker: PrivateBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    g01, g02, g03, d01 = (SITE.node(r, n) for r, n in (
        (Role.GATE, "g01"), (Role.GATE, "g02"), (Role.GATE, "g03"), (Role.DEPOT, "d01")))  # fmt: skip
    technician = identity(broker, "fleet-tech", IdentityRole.ADMIN)
    with (
        node(broker, Role.GATE, "g01") as gate, node(broker, Role.GATE, "g02") as gone,
        node(broker, Role.GATE, "g03") as silent, node(broker, Role.DEPOT, "d01") as depot,
    ):  # fmt: skip
        publish(gate, status(g01), birth(Role.GATE)).wait_for_publish(5)
        publish(gone, status(g02), birth(Role.GATE)).wait_for_publish(5)
        publish(gone, status(g02), Death(session=1, node_time=datetime.now(UTC),
                                         reason="shutdown")).wait_for_publish(5)  # fmt: skip
        publish(silent, status(g03), birth(Role.GATE)).wait_for_publish(5)
        publish(depot, status(d01), birth(Role.DEPOT)).wait_for_publish(5)
        with (
            beating(gate, health(g01), heartbeat({"scanner": "ok"}, 60.0)),
            beating(depot, health(d01), heartbeat({"probe": "fault"}, None)),
        ):
            code = main(["fw", "fleet", "--site", "north", *endpoint_args(technician),
                         "--listen", "2.5", "--json"])  # fmt: skip
    assert code == PROBLEM
    nodes = json.loads(capsys.readouterr().out)["nodes"]
    assert [(n["node"], n["problems"], n["offline_reason"]) for n in nodes] == [
        ("g02", ["offline"], "shutdown"),
        ("g03", ["offline"], "heartbeat"),  # a retained birth, and not one heartbeat in 2.5 s
        ("d01", ["device-fault"], None),
        ("g01", [], None),
    ]
    well = nodes[3]
    assert (well["version"], well["config_serial"], well["outbox_depth"]) == ("1.4.2", 3, 2)
    assert abs(well["clock_skew_s"]) < 1.0
    assert well["last_seen"] is not None and nodes[1]["last_seen"] is None


def test_fleet_from_the_broker__invalid(capsys: pytest.CaptureFixture[str]) -> None:
    # No gateway and no site: nothing to read.
    assert main(["fw", "fleet", "--broker", "mqtt://127.0.0.1:1"]) == UNREAD
    assert "give --gateway URL, or --site" in capsys.readouterr().err
    # Nobody listening.
    argv = ["fw", "fleet", "--site", "north", "--broker", "mqtt://127.0.0.1:1", "--timeout", "1"]
    assert main(argv) == UNREAD
    assert "no connection in 1 s" in capsys.readouterr().err
    # A listen without bound.
    assert main([*argv, "--listen", "9999"]) == UNREAD
    assert "--listen 9999.0: give 0 to 600 seconds" in capsys.readouterr().err
