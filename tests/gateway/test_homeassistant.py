"""Home Assistant discovery of depot zones: the real gateway, a real Mosquitto, a depot node
publishing as it would, and a client reading what Home Assistant would read."""

from __future__ import annotations

import functools
import json
import queue
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from edge.configfile import ConfigError
from edge.contract import topics
from edge.contract.base import chain_hash, new_event_id
from edge.contract.catalogue import encode
from edge.contract.events import DepotReading, DepotReadingBatch, Passage
from edge.contract.presence import Birth, Death
from edge.contract.topics import EventKind, Role
from edge.mqtt import Endpoint, publish
from firmware_tools.site_pki import IdentityRole
from gateway import depot_rules, homeassistant
from gateway.config import (
    AlarmSection,
    BrokerSection,
    GatewayConfig,
    HttpSection,
    SiteSection,
    load_config,
)
from gateway.homeassistant import HomeAssistantSection
from gateway.service import Gateway
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from tests.conftest import Subscriber, connect, gateway_broker, identity, running_gateway

SITE = topics.Site("north")
D01 = SITE.node(Role.DEPOT, "d01")
G01 = SITE.node(Role.GATE, "g01")
COLD, SHELF = "cold-store-1", "shelf-a"
ZONES = {"d01": {COLD: "cold", SHELF: "room"}}
DISCOVERY = "homeassistant/sensor/gatepost-north"
# What Home Assistant subscribes to: every discovery config, and the gateway's branch.
HA_FILTERS = ("homeassistant/+/+/config", "homeassistant/+/+/+/config", f"{SITE.root}/ha/#")
CONFIG_FIELDS = {
    "name", "unique_id", "device_class", "unit_of_measurement", "state_class",
    "suggested_display_precision", "state_topic", "value_template", "availability",
    "expire_after", "qos", "device", "origin",
}  # fmt: skip
QUIET_S = 1.0  # five of the test gateway's ticks


def config_topic(zone: str, quantity: str, node: str = "d01") -> str:
    return f"{DISCOVERY}/{node}-{zone}-{quantity}/config"


def state_topic(zone: str) -> str:
    return f"{SITE.root}/ha/d01/state/{zone}"


AVAILABILITY = f"{SITE.root}/ha/d01/availability"


def site(zones: dict[str, dict[str, str]] = ZONES) -> SiteSection:
    return SiteSection(name=SITE.name, gates=("g01",), depots=("d01",), zones=zones)


def gateway_config(
    broker: BrokerSection, store: Path, enabled: bool = True, **sites: Any
) -> GatewayConfig:
    return GatewayConfig(
        sites=(site(**sites),), broker=broker, store=StoreSection(path=store),
        http=HttpSection(port=0), alarms=AlarmSection(check_every_s=0.2),
        homeassistant=HomeAssistantSection(enabled=enabled, report_interval_s=60),
    )  # fmt: skip


class DepotNode:
    """Depot node d01 on the broker: its presence and reading batches, chained as its
    outbox sends them."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.client = connect(endpoint, "depot-d01")
        self.seq = 0
        self.prev_hash: str | None = None

    def birth(self) -> None:
        payload = Birth(session=1, node_time=datetime.now(UTC), role=Role.DEPOT,
                        version="1.0.0", config_hash="ab" * 8, heartbeat_s=60)  # fmt: skip
        publish(self.client, topics.status(D01), payload).wait_for_publish(5)

    def death(self) -> None:
        payload = Death(session=1, node_time=datetime.now(UTC), reason="shutdown")
        publish(self.client, topics.status(D01), payload).wait_for_publish(5)

    def send(self, *readings: DepotReading) -> None:
        self.seq += 1
        newest = max(reading.at for reading in readings)
        batch = DepotReadingBatch(event_id=new_event_id(newest), seq=self.seq,
                                  node_time=newest, prev_hash=self.prev_hash,
                                  readings=readings)  # fmt: skip
        self.prev_hash = chain_hash(encode(batch))
        publish(self.client, topics.reading(D01), batch).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sample(zone: str, minutes_ago: float, temperature: float | None, humidity: float = 50.0,
           status: str = "ok") -> DepotReading:  # fmt: skip
    """A reading of `zone` taken `minutes_ago` (negative: ahead of now)."""
    ok = status == "ok"
    return DepotReading.model_validate({
        "sensor": zone, "bus_address": 1, "status": status,
        "at": datetime.now(UTC) - timedelta(minutes=minutes_ago),
        "temperature_c": temperature if ok else None, "humidity_pct": humidity if ok else None,
    })  # fmt: skip


def stored(gateway: Gateway, count: int) -> None:
    """Wait until the gateway's store holds `count` readings of d01."""
    now = datetime.now(UTC)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = gateway.store.depot_readings(SITE.name, "d01", now - timedelta(days=1),
                                            now + timedelta(days=800))  # fmt: skip
        if len(rows) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the gateway did not store {count} readings")


class HomeAssistantClient:
    """What Home Assistant would receive: (topic, payload, retained) as they come."""

    def __init__(self, endpoint: Endpoint, name: str = "ha-reader") -> None:
        self.sub = Subscriber.connect(endpoint, name)
        for topic_filter in HA_FILTERS:
            self.sub.subscribe(topic_filter)

    def until(self, done: Callable[[dict[str, bytes]], bool], timeout_s: float = 10.0
              ) -> dict[str, bytes]:  # fmt: skip
        """Every topic's latest payload, once `done` holds for them (then a quiet while)."""
        latest: dict[str, bytes] = {}
        deadline = time.monotonic() + timeout_s
        while not done(latest):
            latest.update(self.take(deadline - time.monotonic()))
        latest.update(self.quiet())
        return latest

    def take(self, timeout_s: float) -> dict[str, bytes]:
        message = self.sub.next(max(0.0, timeout_s))
        return {message.topic: bytes(message.payload)}

    def quiet(self, for_s: float = QUIET_S) -> dict[str, bytes]:
        """What else arrives before `for_s` passes without a message."""
        got: dict[str, bytes] = {}
        while True:
            try:
                message = self.sub.messages.get(timeout=for_s)
            except queue.Empty:
                return got
            got[message.topic] = bytes(message.payload)

    def close(self) -> None:
        self.sub.close()


def has(*expected: str) -> Callable[[dict[str, bytes]], bool]:
    return lambda latest: set(expected) <= set(latest)


def state_of(latest: dict[str, bytes], zone: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(latest[state_topic(zone)])
    return value


@pytest.fixture
def depot(broker: PrivateBroker) -> Iterator[DepotNode]:
    node = DepotNode(identity(broker, "d01", IdentityRole.DEPOT))
    yield node
    node.close()


@pytest.fixture
def reader(broker: PrivateBroker) -> Iterator[HomeAssistantClient]:
    client = HomeAssistantClient(identity(broker, "ha-reader"))
    yield client
    client.close()


# --- discovery configs ------------------------------------------------------------


def test_discovery__every_zone_and_quantity_with_the_fields_home_assistant_reads(
    broker: PrivateBroker, tmp_path: Path, depot: DepotNode, reader: HomeAssistantClient
) -> None:
    config = gateway_config(gateway_broker(broker, "gw-ha"), tmp_path / "gateway.db")
    expected = [config_topic(zone, quantity) for zone in (COLD, SHELF)
                for quantity in ("temperature", "humidity")]  # fmt: skip
    with running_gateway(config):
        depot.birth()
        latest = reader.until(has(*expected, AVAILABILITY))
    assert sorted(t for t in latest if t.startswith("homeassistant/")) == sorted(expected)
    temperature = json.loads(latest[config_topic(COLD, "temperature")])
    assert set(temperature) == CONFIG_FIELDS
    assert temperature == {
        "name": "cold-store-1 temperature",
        "unique_id": "gatepost-north-d01-cold-store-1-temperature",
        "device_class": "temperature", "unit_of_measurement": "°C",
        "state_class": "measurement", "suggested_display_precision": 1,
        "state_topic": state_topic(COLD),
        "value_template": "{{ value_json.temperature_c }}",
        "availability": [{"topic": AVAILABILITY, "payload_available": "online",
                          "payload_not_available": "offline"}],
        "expire_after": 180,  # three report intervals of 60 s
        "qos": 1,
        "device": {"identifiers": ["gatepost-north-d01"], "name": "north d01",
                   "manufacturer": "Gatepost", "model": "depot node"},
        "origin": {"name": "Gatepost"},
    }  # fmt: skip
    humidity = json.loads(latest[config_topic(SHELF, "humidity")])
    assert (humidity["device_class"], humidity["unit_of_measurement"]) == ("humidity", "%")
    assert humidity["value_template"] == "{{ value_json.humidity_pct }}"
    assert humidity["state_topic"] == state_topic(SHELF)
    # Both zones of one depot are one device in Home Assistant.
    assert humidity["device"] == temperature["device"]
    assert latest[AVAILABILITY] == b"online"


def test_discovery__retained_and_unique_ids_stable_across_a_restart(
    broker: PrivateBroker, tmp_path: Path
) -> None:
    config = gateway_config(gateway_broker(broker, "gw-ha"), tmp_path / "gateway.db")
    topic = config_topic(COLD, "temperature")
    with running_gateway(config):
        first = HomeAssistantClient(identity(broker, "ha-first"), "ha-first")
        before = first.until(has(topic))
        first.close()
    with running_gateway(config):
        time.sleep(QUIET_S)
    # A Home Assistant started later gets the configs from the broker (retained).
    later = HomeAssistantClient(identity(broker, "ha-later"), "ha-later")
    after = later.until(has(topic))
    later.close()
    assert after[topic] == before[topic]
    assert json.loads(after[topic])["unique_id"] == "gatepost-north-d01-cold-store-1-temperature"


@pytest.mark.parametrize(
    "zones", [{"d01": {COLD: "cold"}}, {}], ids=["one zone removed", "every zone removed"]
)
def test_discovery__a_removed_zone_gets_an_empty_retained_config(
    broker: PrivateBroker, tmp_path: Path, zones: dict[str, dict[str, str]]
) -> None:
    store = tmp_path / "gateway.db"
    every = {config_topic(zone, quantity) for zone in (COLD, SHELF)
             for quantity in ("temperature", "humidity")}  # fmt: skip
    kept = {config_topic(zone, quantity) for zone in zones.get("d01", {})
            for quantity in ("temperature", "humidity")}  # fmt: skip
    gone = every - kept
    with running_gateway(gateway_config(gateway_broker(broker, "gw-ha"), store)):
        first = HomeAssistantClient(identity(broker, "ha-first"), "ha-first")
        first.until(has(*every))
        first.close()
    reader = HomeAssistantClient(identity(broker, "ha-reader"), "ha-reader")
    with running_gateway(gateway_config(gateway_broker(broker, "gw-ha"), store, zones=zones)):
        # The retained configs come first, then the gateway's empty ones for those gone.
        latest = reader.until(lambda got: all(got.get(t) == b"" for t in gone))
    reader.close()
    assert all(latest[topic] != b"" for topic in kept)
    later = HomeAssistantClient(identity(broker, "ha-later"), "ha-later")
    after = later.until(has(*kept))
    later.close()
    assert {topic for topic in after if topic.startswith(DISCOVERY)} == kept


# --- states and availability ------------------------------------------------------


def test_state__follows_the_newest_reading_by_its_own_time(
    broker: PrivateBroker, tmp_path: Path, depot: DepotNode, reader: HomeAssistantClient
) -> None:
    with running_gateway(
        gateway_config(gateway_broker(broker, "gw-ha"), tmp_path / "gateway.db")
    ) as gw:
        depot.birth()
        reader.until(has(AVAILABILITY))
        depot.send(sample(COLD, 3, 5.0, 40.0), sample(COLD, 2, 5.5, 41.0),
                   sample(SHELF, 2, 21.0, 55.0))  # fmt: skip
        latest = reader.until(lambda got: state_topic(COLD) in got and state_topic(SHELF) in got)
        assert state_of(latest, COLD)["temperature_c"] == 5.5  # the newer of the batch
        assert state_of(latest, COLD)["humidity_pct"] == 41.0
        assert state_of(latest, SHELF) == {
            "temperature_c": 21.0, "humidity_pct": 55.0,
            "at": state_of(latest, SHELF)["at"],
        }  # fmt: skip
        at = datetime.fromisoformat(state_of(latest, COLD)["at"])
        assert abs(at - (datetime.now(UTC) - timedelta(minutes=2))) < timedelta(seconds=30)

        # A late batch (older readings) and readings without values change nothing.
        depot.send(sample(COLD, 10, 9.9), sample(COLD, 1, None, status="timeout"),
                   sample(COLD, 1, None, status="crc"))  # fmt: skip
        stored(gw, 6)
        assert reader.quiet() == {}

        newest = sample(COLD, 0.5, 6.1, 43.0)
        shanghai = newest.at.astimezone(timezone(timedelta(hours=8)))
        depot.send(newest.model_copy(update={"at": shanghai}))
        latest = reader.until(has(state_topic(COLD)))
        assert state_of(latest, COLD)["temperature_c"] == 6.1
        shown = state_of(latest, COLD)["at"]
        assert shown.endswith("Z") and datetime.fromisoformat(shown) == newest.at
        assert set(latest) == {state_topic(COLD)}  # the shelf's state is not sent again


def test_state__a_reading_far_ahead_of_its_arrival_is_not_shown(
    broker: PrivateBroker, tmp_path: Path, depot: DepotNode, reader: HomeAssistantClient
) -> None:
    with running_gateway(
        gateway_config(gateway_broker(broker, "gw-ha"), tmp_path / "gateway.db")
    ) as gw:
        depot.send(sample(COLD, -60 * 24 * 365, 30.0))  # a node clock a year ahead
        depot.send(sample(COLD, 1, 4.0))
        stored(gw, 2)
        latest = reader.until(has(state_topic(COLD)))
    assert state_of(latest, COLD)["temperature_c"] == 4.0
    assert homeassistant.FUTURE_SLACK == depot_rules.FUTURE_SLACK


def test_state__a_restarted_gateway_shows_the_newest_stored_reading(
    broker: PrivateBroker, tmp_path: Path, depot: DepotNode
) -> None:
    config = gateway_config(gateway_broker(broker, "gw-ha"), tmp_path / "gateway.db")
    with running_gateway(config) as gw:
        depot.send(sample(COLD, 2, 4.4), sample(COLD, 100, 3.0))
        stored(gw, 2)
    # The broker's retained state is cleared: only the store can tell.
    cleaner = connect(identity(broker, "cleaner"), "cleaner")
    cleaner.publish(state_topic(COLD), b"", qos=1, retain=True).wait_for_publish(5)
    cleaner.disconnect()
    cleaner.loop_stop()
    reader = HomeAssistantClient(identity(broker, "ha-reader"), "ha-reader")
    with running_gateway(config):
        latest = reader.until(has(state_topic(COLD)))
    reader.close()
    assert state_of(latest, COLD)["temperature_c"] == 4.4


def test_availability__follows_the_depot_nodes_presence(
    broker: PrivateBroker, tmp_path: Path, depot: DepotNode, reader: HomeAssistantClient
) -> None:
    with running_gateway(gateway_config(gateway_broker(broker, "gw-ha"), tmp_path / "gateway.db")):
        # Never heard from: offline.
        assert reader.until(has(AVAILABILITY))[AVAILABILITY] == b"offline"
        depot.birth()
        assert reader.until(has(AVAILABILITY))[AVAILABILITY] == b"online"
        depot.death()
        assert reader.until(has(AVAILABILITY))[AVAILABILITY] == b"offline"


# --- off, and nothing personal ----------------------------------------------------


def test_disabled__nothing_is_published(
    broker: PrivateBroker, tmp_path: Path, depot: DepotNode, reader: HomeAssistantClient
) -> None:
    config = gateway_config(gateway_broker(broker, "gw-ha"), tmp_path / "gateway.db",
                            enabled=False)  # fmt: skip
    assert GatewayConfig(sites=(site(),)).homeassistant.enabled is False  # off by default
    with running_gateway(config) as gw:
        depot.birth()
        depot.send(sample(COLD, 1, 5.0), sample(SHELF, 1, 20.0))
        stored(gw, 2)
        assert gw.homeassistant is None
        assert reader.quiet() == {}


def test_no_personal_data__only_names_numbers_and_times(
    broker: PrivateBroker, tmp_path: Path, depot: DepotNode, reader: HomeAssistantClient
) -> None:
    plate = "京A12345"
    gate = connect(identity(broker, "g01", IdentityRole.GATE), "gate-g01")
    with running_gateway(
        gateway_config(gateway_broker(broker, "gw-ha"), tmp_path / "gateway.db")
    ) as gw:
        depot.birth()
        now = datetime.now(UTC)
        passage = Passage(event_id=new_event_id(now), seq=1, node_time=now, direction="in",
                          subject="vehicle", outcome="allow", colour="green",
                          credential="household-pass", vehicle_plate=plate,
                          temperature_c=36.5)  # fmt: skip
        publish(gate, topics.event(G01, EventKind.PASSAGE), passage).wait_for_publish(5)
        depot.send(sample(COLD, 1, 5.0), sample(SHELF, 1, 20.0))
        stored(gw, 2)
        latest = reader.until(has(state_topic(COLD), state_topic(SHELF), AVAILABILITY))
    gate.disconnect()
    gate.loop_stop()
    # Every string sent, once the names of the site, depot and zones and Home Assistant's
    # own words are taken out, leaves nothing but punctuation: nothing else went out.
    words = sorted({SITE.name, "d01", COLD, SHELF, "gatepost", "homeassistant", "sensor",
                    "config", "v1", "ha", "state", "availability", "value_json",
                    "temperature_c", "humidity_pct", "temperature", "humidity", "measurement",
                    "°C", "Gatepost", "depot node", "online", "offline"}, key=len, reverse=True)  # fmt: skip
    for topic, payload in latest.items():
        assert plate.encode() not in payload
        texts = [topic]
        if payload not in (b"online", b"offline", b""):
            value = json.loads(payload)
            if "at" in value:  # a state: its reading's time, and two numbers
                assert set(value) == {"temperature_c", "humidity_pct", "at"}
                datetime.fromisoformat(value.pop("at"))
            texts += strings(value)
        for text in texts:
            left = functools.reduce(lambda rest, word: rest.replace(word, ""), words, text)
            assert re.fullmatch(r"[\s/{}._%-]*", left), (topic, text)


def strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (keys left out)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


# --- config -------------------------------------------------------------------------


def test_config__valid(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "sites: [{name: north, depots: [d01], zones: {d01: {cold-store-1: cold}}}]\n"
        "homeassistant: {enabled: true, discovery_prefix: ha, report_interval_s: 120}\n"
    )
    section = load_config(path).homeassistant
    assert (section.enabled, section.discovery_prefix, section.expire_after_s) == (True, "ha", 360)


@pytest.mark.parametrize(
    ("homeassistant", "zones", "message"),
    [
        ("{enabled: yes-please}", {}, "homeassistant.enabled"),
        ("{discovery_prefix: home/assistant}", {}, "homeassistant.discovery_prefix"),
        ("{report_interval_s: 5}", {}, "homeassistant.report_interval_s"),
        ("{expire_after_reports: 1}", {}, "homeassistant.expire_after_reports"),
        ("{enabled: true, state: x}", {}, "homeassistant.state"),
        # a-b/c and a/b-c would be one sensor, a-b-c, in Home Assistant
        ("{enabled: true}", {"a-b": {"c": "cold"}, "a": {"b-c": "cold"}},
         "zones.a-b.c and zones.a.b-c of site north would be one sensor"),
    ],
)  # fmt: skip
def test_config__invalid(tmp_path: Path, homeassistant: str, zones: dict[str, Any], message: str
                         ) -> None:  # fmt: skip
    path = tmp_path / "gateway.yaml"
    depots = json.dumps(sorted(zones) or ["d01"])
    path.write_text(
        f"sites: [{{name: north, depots: {depots}, zones: {json.dumps(zones)}}}]\n"
        f"homeassistant: {homeassistant}\n"
    )
    with pytest.raises(ConfigError, match=message):
        load_config(path)
