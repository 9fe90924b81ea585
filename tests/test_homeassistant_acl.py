"""A Home Assistant identity on the locked site broker: it reads the depots' discovery
configs and states the gateway publishes, and nothing a node sends (events carry personal
data). A real Mosquitto from the generated config, the real gateway, real TLS."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from edge.cli import main
from edge.contract import topics
from edge.contract.base import new_event_id
from edge.contract.events import Passage
from edge.contract.topics import EventKind, Role
from edge.mqtt import publish
from firmware_tools.site_pki import IdentityRole, SiteError, SitePki
from gateway.config import (
    AlarmSection,
    BrokerSection,
    GatewayConfig,
    HttpSection,
    SiteSection,
    broker_config,
)
from gateway.homeassistant import HomeAssistantSection
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from tests.conftest import running_gateway
from tests.gateway.test_homeassistant import (
    AVAILABILITY,
    COLD,
    DISCOVERY,
    HA_FILTERS,
    SHELF,
    ZONES,
    DepotNode,
    config_topic,
    sample,
    state_topic,
    stored,
)
from tests.test_broker_security import GRANTED, OPEN, REFUSED, connect

pytestmark = pytest.mark.broker

SITE = topics.Site("north")
G01 = SITE.node(Role.GATE, "g01")
PLATE = "京A12345"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    pki = SitePki.init(tmp_path_factory.mktemp("pki"), SITE.name)
    for role, name in [
        (IdentityRole.GATEWAY, "main"), (IdentityRole.DEPOT, "d01"), (IdentityRole.GATE, "g01"),
        (IdentityRole.HOMEASSISTANT, "ha"),
    ]:  # fmt: skip
        pki.issue(role, name)
    return pki


@pytest.fixture
def locked(tmp_path: Path, pki: SitePki) -> Iterator[PrivateBroker]:
    with PrivateBroker(tmp_path / "broker", pki=pki, acl=True) as running_broker:
        yield running_broker
        while OPEN:
            OPEN.pop().close()


def gateway_config(
    broker: PrivateBroker, store: Path, discovery_prefix: str = "homeassistant"
) -> GatewayConfig:
    pair = broker.endpoint("gateway-main"), broker.endpoint("gateway-main-out")
    return GatewayConfig(
        sites=(SiteSection(name=SITE.name, gates=("g01",), depots=("d01",), zones=ZONES),),
        broker=BrokerSection(**broker_config(*pair)), store=StoreSection(path=store),
        http=HttpSection(port=0), alarms=AlarmSection(check_every_s=0.2),
        homeassistant=HomeAssistantSection(enabled=True, report_interval_s=60,
                                           discovery_prefix=discovery_prefix),
    )  # fmt: skip


def test_home_assistant__receives_configs_and_states_and_is_refused_node_topics(
    locked: PrivateBroker, tmp_path: Path
) -> None:
    ha = connect(locked.endpoint("homeassistant-ha"))
    assert ha.subscribe(*HA_FILTERS, "homeassistant/status") == [GRANTED] * 4
    beyond = [
        "#", f"{SITE.root}/#", f"{SITE.root}/+/+/event/+", topics.event(G01, EventKind.PASSAGE),
        f"{SITE.root}/depot/+/reading", f"{SITE.root}/+/+/status", f"{SITE.root}/alert/+",
        f"$share/gateway/{SITE.root}/#",
    ]  # fmt: skip
    assert ha.subscribe(*beyond) == [REFUSED] * len(beyond)

    gate = connect(locked.endpoint("gate-g01"))
    with running_gateway(gateway_config(locked, tmp_path / "gateway.db")) as gateway:
        depot = DepotNode(locked.endpoint("depot-d01"))
        depot.birth()
        depot.send(sample(COLD, 1, 5.2, 44.0), sample(SHELF, 1, 21.5, 60.0))
        now = datetime.now(UTC)
        passage = Passage(event_id=new_event_id(now), seq=1, node_time=now, direction="in",
                          subject="vehicle", outcome="allow", colour="green",
                          credential="household-pass", vehicle_plate=PLATE)  # fmt: skip
        publish(gate.client, topics.event(G01, EventKind.PASSAGE), passage).wait_for_publish(5)
        stored(gateway, 2)
        expected = [config_topic(zone, quantity) for zone in (COLD, SHELF)
                    for quantity in ("temperature", "humidity")]  # fmt: skip
        got = ha.received(*expected, state_topic(COLD), state_topic(SHELF), AVAILABILITY)
        depot.close()
    received = {topic for topic, _ in got}
    assert received <= {*expected, state_topic(COLD), state_topic(SHELF), AVAILABILITY}
    assert not [payload for _, payload in got if PLATE.encode() in payload]
    latest = dict(got)
    assert b'"temperature_c":5.2' in latest[state_topic(COLD)]
    assert latest[AVAILABILITY] == b"online"


def test_home_assistant__cannot_forge_what_the_gateway_publishes(locked: PrivateBroker) -> None:
    ha = connect(locked.endpoint("homeassistant-ha"))
    assert ha.subscribe(*HA_FILTERS, "homeassistant/status") == [GRANTED] * 4
    for forged in [config_topic(COLD, "temperature"), f"{DISCOVERY}/d02-x-temperature/config",
                   state_topic(COLD), AVAILABILITY]:  # fmt: skip
        ha.publish(forged, b"forged", retain=True)
    # Its own birth, which Home Assistant publishes, is let through: the control.
    ha.publish("homeassistant/status", b"online")
    assert ha.received("homeassistant/status") == [("homeassistant/status", b"online")]


def test_gateway__may_not_publish_another_sites_discovery_configs(locked: PrivateBroker) -> None:
    ha = connect(locked.endpoint("homeassistant-ha"))
    assert ha.subscribe(*HA_FILTERS) == [GRANTED] * 3
    publisher = connect(locked.endpoint("gateway-main-out"))
    other = "homeassistant/sensor/gatepost-south/d01-cold-temperature/config"
    publisher.publish(other, b"{}", retain=True)
    own = config_topic(COLD, "temperature")
    publisher.publish(own, b"{}")
    assert ha.received(own) == [(own, b"{}")]


def test_gateway__a_discovery_prefix_the_broker_does_not_grant_is_logged(
    locked: PrivateBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ha = connect(locked.endpoint("homeassistant-ha"))
    assert ha.subscribe(f"{SITE.root}/ha/#") == [GRANTED]
    with (
        caplog.at_level(logging.WARNING, logger="gateway.homeassistant"),
        running_gateway(gateway_config(locked, tmp_path / "gateway.db", discovery_prefix="hass")),
    ):
        # The states and availability are granted and arrive: the gateway did send.
        assert AVAILABILITY in {topic for topic, _ in ha.received(AVAILABILITY)}
        deadline = time.monotonic() + 10
        while "the broker refused" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    refused = [r.getMessage() for r in caplog.records if "the broker refused" in r.getMessage()]
    assert len(refused) == 1  # said once, not for every config
    assert refused[0].startswith("Home Assistant: the broker refused hass/sensor/gatepost-north/")
    assert "Not authorized" in refused[0]


def test_discovery_prefix__from_site_yaml(tmp_path: Path) -> None:
    SitePki.init(tmp_path, SITE.name).issue(IdentityRole.HOMEASSISTANT, "ha")
    settings = yaml.safe_load((tmp_path / "site.yaml").read_text())
    assert "discovery_prefix" not in settings  # the default: homeassistant
    (tmp_path / "site.yaml").write_text(yaml.safe_dump({**settings, "discovery_prefix": "hass"}))
    grants = SitePki.open(tmp_path).grants()["homeassistant-ha"][1]
    assert ("read", "hass/#") in grants
    assert ("write", "hass/status") in grants
    assert not [topic for _, topic in grants if topic.startswith("homeassistant/")]


def test_discovery_prefix__invalid(tmp_path: Path) -> None:
    SitePki.init(tmp_path, SITE.name)
    settings = yaml.safe_load((tmp_path / "site.yaml").read_text())
    (tmp_path / "site.yaml").write_text(yaml.safe_dump({**settings, "discovery_prefix": "a/#"}))
    with pytest.raises(SiteError, match="not a site folder"):
        SitePki.open(tmp_path)


def test_cli_add__a_home_assistant_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fw", "site", "init", str(tmp_path), "--site", "north"]) == 0
    assert main(["fw", "site", "add", str(tmp_path), "homeassistant", "ha"]) == 0
    assert (tmp_path / "clients" / "homeassistant-ha" / "cert.pem").is_file()
    capsys.readouterr()
    assert main(["fw", "site", "list", str(tmp_path), "--grants"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "homeassistant-ha (homeassistant)" in lines
    start = lines.index("homeassistant-ha (homeassistant)")
    assert lines[start + 1 : start + 4] == [
        "  read      homeassistant/#", f"  read      {SITE.root}/ha/#",
        "  write     homeassistant/status",
    ]  # fmt: skip
