"""`gatepost watch` prints every message, and says loudly when one breaks the contract."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from edge.cli import endpoint_args
from edge.contract import topics
from edge.contract.base import new_event_id
from edge.contract.catalogue import encode
from edge.contract.events import Shift
from edge.contract.topics import EventKind, Role, Site
from firmware_tools.site_pki import IdentityRole, SitePki
from firmware_tools.watch import describe
from simulators.broker import PrivateBroker
from simulators.processes import python_module, spawn, stop
from tests.conftest import OutputLines, connect, identity

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
GATE = Site("north").node(Role.GATE, "g01")
SHIFT = Shift(event_id=new_event_id(NOW), seq=1, node_time=NOW, action="start", volunteer_id="v017")


def test_describe__valid_message_shows_topic_and_fields() -> None:
    line = describe(topics.event(GATE, EventKind.SHIFT), encode(SHIFT), retained=False)
    assert line.startswith("gatepost/v1/north/gate/g01/event/shift {")
    assert json.loads(line.split(" ", 1)[1])["volunteer_id"] == "v017"


def test_describe__invalid_payload_names_model_and_field() -> None:
    line = describe(topics.event(GATE, EventKind.SHIFT), b'{"seq": 0}', retained=True)
    assert line.startswith("!! INVALID gatepost/v1/north/gate/g01/event/shift (retained): Shift:")
    assert "seq: Input should be greater than or equal to 1" in line


def test_describe__unknown_topic_says_why() -> None:
    line = describe("gatepost/v1/north/gate/g01/selfie", b"{}", retained=False)
    assert line == (
        "!! UNKNOWN TOPIC gatepost/v1/north/gate/g01/selfie: no gate node topic ending 'selfie'"
    )


def test_watch_command__prints_good_bad_and_unknown_and_keeps_going(broker: PrivateBroker) -> None:
    process = spawn(
        python_module("edge.cli", "watch", *endpoint_args(identity(broker, "watch"))),
        stdout=subprocess.PIPE,
    )
    try:
        output = OutputLines(process)
        output.wait_for("-- watching gatepost/#")
        publisher = connect(identity(broker, "pub"))
        publisher.publish("gatepost/v2/north/gate/g01/status", b"{}", qos=1).wait_for_publish(5)
        publisher.publish(topics.event(GATE, EventKind.SHIFT), b"garbage", qos=1).wait_for_publish(
            5
        )
        publisher.publish(
            topics.event(GATE, EventKind.SHIFT), encode(SHIFT), qos=1
        ).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()

        output.wait_for('"volunteer_id":"v017"')
        assert output.wait_for("!! UNKNOWN TOPIC gatepost/v2/north/gate/g01/status")
        assert output.wait_for("!! INVALID gatepost/v1/north/gate/g01/event/shift")
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        stop(process, "watch")


def test_watch_command__a_technician_on_a_site_broker_sees_all_but_events(tmp_path: Path) -> None:
    pki = SitePki.init(tmp_path / "pki", "north")
    for role, name in [(IdentityRole.ADMIN, "tech"), (IdentityRole.GATE, "g01")]:
        pki.issue(role, name)
    with PrivateBroker(tmp_path / "broker", pki=pki) as locked:
        tech = locked.endpoint("admin-tech")
        process = spawn(
            python_module("edge.cli", "watch", *endpoint_args(tech), "--site", "north"),
            stdout=subprocess.PIPE,
        )
        try:
            output = OutputLines(process)
            output.wait_for("-- watching gatepost/v1/north/+/+/status")
            [refused] = output.wait_for("-- not ours to read:")
            assert refused.endswith("not ours to read: gatepost/v1/north/+/+/event/+")
            gate = connect(locked.endpoint("gate-g01"))
            gate.publish(
                topics.event(GATE, EventKind.SHIFT), encode(SHIFT), qos=1
            ).wait_for_publish(5)
            gate.publish(topics.status(GATE), b"{}", qos=1).wait_for_publish(5)
            gate.disconnect()
            gate.loop_stop()
            output.wait_for("!! INVALID gatepost/v1/north/gate/g01/status")
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0
            lines = output.finish()
        finally:
            stop(process, "watch")
    assert not [line for line in lines if "volunteer_id" in line]
