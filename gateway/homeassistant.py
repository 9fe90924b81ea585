"""Home Assistant MQTT discovery for depot sensors: each zone's temperature and humidity.

Topics (the state and availability are the gateway's, in its site's branch; the discovery
configs are in Home Assistant's prefix, in a node_id level of their own per site):

    <discovery_prefix>/sensor/<prefix>-<site>/<node>-<zone>-<quantity>/config  (retained)
    <prefix>/v1/<site>/ha/<node>/availability      online | offline (retained)
    <prefix>/v1/<site>/ha/<node>/state/<zone>      {temperature_c, humidity_pct, at} (retained)

The field names are Home Assistant's (home-assistant.io/integrations/mqtt, "MQTT
Discovery", and /integrations/sensor.mqtt). Nothing personal is published: names of
sites, depot nodes and zones, values and times only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import paho.mqtt.client as paho
from pydantic import Field

from edge.configfile import Section
from edge.contract.base import Slug
from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.topics import Site
from gateway.alarms import utc_now
from gateway.store.base import DepotStore, ReadStore
from gateway.store.records import Written

if TYPE_CHECKING:
    from gateway.config import GatewayConfig, SiteSection

log = logging.getLogger(__name__)

# Home Assistant's default; a site broker grants this prefix (firmware_tools.site_broker).
DISCOVERY_PREFIX = "homeassistant"
# The gateway's own branch for Home Assistant under each site: `<prefix>/v1/<site>/ha`.
BRANCH = "ha"
ONLINE, OFFLINE = "online", "offline"
# How often the depot nodes' presence, which the store keeps, is read again when no
# presence arrived (a node marked offline for missed heartbeats sends none).
PRESENCE_EVERY_S = 5.0
# A reading dated this far after its batch arrived is not believed: depot_rules.FUTURE_SLACK
# (not imported: depot_rules reads the config, which reads this module's section).
FUTURE_SLACK = timedelta(minutes=10)


class HomeAssistantSection(Section):
    """Home Assistant MQTT discovery for the depots' zones (docs/depots.md); off by default."""

    enabled: bool = Field(False, description="publish discovery configs and zone states")
    discovery_prefix: Slug = Field(
        DISCOVERY_PREFIX, description="Home Assistant's discovery prefix (its MQTT setting); "
        "a site broker grants `homeassistant` unless its site.yaml names another",
    )  # fmt: skip
    report_interval_s: int = Field(
        300, ge=10, le=86_400,
        description="the depot nodes' longest interval between two reports of one zone",
    )  # fmt: skip
    expire_after_reports: int = Field(
        3, ge=2, le=10, description="Home Assistant shows a zone unavailable after this "
        "many report intervals without a reading (its `expire_after`)",
    )  # fmt: skip

    @property
    def expire_after_s(self) -> int:
        return self.report_interval_s * self.expire_after_reports


@dataclass(frozen=True)
class Quantity:
    """One of a zone's two sensors as Home Assistant knows it."""

    name: str
    device_class: str
    unit: str
    field: str


QUANTITIES = (
    Quantity("temperature", "temperature", "°C", "temperature_c"),
    Quantity("humidity", "humidity", "%", "humidity_pct"),
)


@dataclass(frozen=True)
class Zone:
    """One depot zone shown in Home Assistant."""

    site: Site
    node: str
    name: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.site.name, self.node, self.name

    @property
    def state_topic(self) -> str:
        return f"{self.site.root}/{BRANCH}/{self.node}/state/{self.name}"


def node_id(site: Site) -> str:
    """The discovery topic's node_id level: one per site, so its grants can be the site's."""
    return f"{site.prefix}-{site.name}"


def availability_topic(site: Site, node: str) -> str:
    return f"{site.root}/{BRANCH}/{node}/availability"


def config_topic(discovery_prefix: str, zone: Zone, quantity: Quantity) -> str:
    object_id = f"{zone.node}-{zone.name}-{quantity.name}"
    return f"{discovery_prefix}/sensor/{node_id(zone.site)}/{object_id}/config"


def unique_id(zone: Zone, quantity: Quantity) -> str:
    """Stable across restarts and config edits: the names, never a position or a time."""
    return f"{node_id(zone.site)}-{zone.node}-{zone.name}-{quantity.name}"


def zones_of(config: GatewayConfig) -> list[Zone]:
    """Every zone assigned a storage class (`sites[].zones`), by site, node and zone."""
    return [
        Zone(config.topic_site(site.name), node, zone)
        for site in config.sites
        for node, zones in sorted(site.zones.items())
        for zone in sorted(zones)
    ]


def check_unique_ids(sites: Iterable[SiteSection]) -> None:
    """Raises ValueError naming two zones whose discovery ids would be one (`a-b`/`c` and
    `a`/`b-c` at one site): Home Assistant would take the second for the first."""
    for site in sites:
        seen: dict[str, str] = {}
        for node, zones in site.zones.items():
            for zone in zones:
                joined = f"{node}-{zone}"
                if (other := seen.setdefault(joined, f"{node}.{zone}")) != f"{node}.{zone}":
                    raise ValueError(
                        f"zones.{other} and zones.{node}.{zone} of site {site.name} would be "
                        f"one sensor in Home Assistant ({joined}): rename one"
                    )


def discovery_config(
    settings: HomeAssistantSection, zone: Zone, quantity: Quantity
) -> dict[str, Any]:
    """What Home Assistant reads to show one sensor of one zone."""
    site = zone.site
    return {
        "name": f"{zone.name} {quantity.name}",
        "unique_id": unique_id(zone, quantity),
        "device_class": quantity.device_class,
        "unit_of_measurement": quantity.unit,
        "state_class": "measurement",
        "suggested_display_precision": 1,
        "state_topic": zone.state_topic,
        "value_template": f"{{{{ value_json.{quantity.field} }}}}",
        "availability": [{
            "topic": availability_topic(site, zone.node),
            "payload_available": ONLINE, "payload_not_available": OFFLINE,
        }],
        "expire_after": settings.expire_after_s,
        "qos": 1,
        "device": {
            "identifiers": [f"{node_id(site)}-{zone.node}"],
            "name": f"{site.name} {zone.node}",
            "manufacturer": "Gatepost",
            "model": "depot node",
        },
        "origin": {"name": "Gatepost"},
    }  # fmt: skip


def state(reading: DepotReading) -> dict[str, Any]:
    """A zone's newest ok reading, as its state topic carries it."""
    return {
        "temperature_c": reading.temperature_c,
        "humidity_pct": reading.humidity_pct,
        "at": reading.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def encoded(payload: dict[str, Any] | str) -> bytes:
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class HomeAssistantStore(ReadStore, DepotStore, Protocol):
    """The depot nodes' presence and their newest readings."""


class HomeAssistant:
    """Publishes the depots' zones for Home Assistant on the gateway's publisher.

    Ingest tells it of every stored batch (`on_stored`, on ingest's thread: it only keeps
    each zone's newest ok reading); the gateway's tick publishes what changed. On every
    connection it publishes every config, state and availability again (a broker that
    lost its retained messages gets them back), and clears the retained config of any
    zone of its sites that the config no longer names.

    Args:
        config: the gateway's configuration; `config.homeassistant` is enabled.
        store: the gateway's store (the depot nodes' presence, the newest readings).
        client: the gateway's publisher, not yet connected: its connect, publish and
            message callbacks (for its sites' discovery configs) are set here.
        clock: now, in UTC.
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: HomeAssistantStore,
        client: paho.Client,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = config.homeassistant
        self.store = store
        self.client = client
        self.clock = clock
        self.zones = {zone.key: zone for zone in zones_of(config)}
        self.nodes = sorted({(zone.site, zone.node) for zone in self.zones.values()},
                            key=lambda pair: (pair[0].name, pair[1]))  # fmt: skip
        prefix = self.settings.discovery_prefix
        # Topics only: the payloads are made when they are sent (on each connection).
        self.configs = {
            config_topic(prefix, zone, quantity): (zone, quantity)
            for zone in self.zones.values()
            for quantity in QUANTITIES
        }
        # Every site's, those left without zones included: their old configs are cleared.
        self.filters = [f"{prefix}/sensor/{node_id(config.topic_site(site.name))}/+/config"
                        for site in config.sites]  # fmt: skip
        self._lock = threading.Lock()
        self._newest: dict[tuple[str, str, str], DepotReading] = {}
        self._pending: set[tuple[str, str, str]] = set()
        self._available: dict[tuple[str, str], bool] = {}
        self._announce = False  # set on every connection: publish everything again
        self._loaded = False
        self._presence_at = 0.0
        # Message id -> topic until the broker answers, to name a refusal; ids are 16-bit
        # and reused, so it stays bounded even when answers are lost with a connection.
        self._sent: dict[int, str] = {}
        self._refused = False
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        for topic_filter in self.filters:
            client.message_callback_add(topic_filter, self._on_config)

    # --- ingest's thread ------------------------------------------------------------

    def on_stored(self, written: Written) -> None:
        """Keep each exposed zone's newest ok reading of a stored batch, by its own time.

        A reading older than the one kept (a late batch) changes nothing; one dated more
        than FUTURE_SLACK after its batch arrived (a node clock far ahead) is not believed.
        """
        newer: dict[tuple[str, str, str], DepotReading] = {}
        for item in written.events:
            if not isinstance(item.event, DepotReadingBatch):
                continue
            latest = item.received_at + FUTURE_SLACK
            for reading in item.event.readings:
                key = (item.site, item.node, reading.sensor)
                if reading.status != "ok" or key not in self.zones or reading.at > latest:
                    continue
                if (seen := newer.get(key)) is None or reading.at > seen.at:
                    newer[key] = reading
        if written.presence:
            self._presence_at = 0.0
        if not newer:
            return
        with self._lock:
            for key, reading in newer.items():
                kept = self._newest.get(key)
                if kept is None or reading.at > kept.at:
                    self._newest[key] = reading
                    self._pending.add(key)

    # --- the network thread -----------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, _u: object, _f: object, code: Any, _p: object
    ) -> None:
        if code.is_failure:
            return
        for topic_filter in self.filters:
            client.subscribe(topic_filter, qos=1)
        with self._lock:
            self._announce = True

    def _on_publish(self, _c: paho.Client, _u: object, mid: int, code: Any, _p: object) -> None:
        # A broker whose grants lack these topics (another discovery prefix than the
        # site's) refuses them with a reason code and nothing else: say so, once.
        with self._lock:
            topic = self._sent.pop(mid, None)
            first = topic is not None and code.is_failure and not self._refused
            self._refused = self._refused or first
        if first:
            log.warning("Home Assistant: the broker refused %s (%s); does it grant the "
                        "gateway this discovery prefix? (docs/security.md)",
                        topic, code)  # fmt: skip

    def _on_config(self, client: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        # A retained config of this gateway's sites that its config no longer names: an
        # empty retained message is how Home Assistant is told to delete the sensor.
        if message.payload and message.topic not in self.configs:
            log.info("Home Assistant: %s is no zone of the config any more; removed",
                     message.topic)  # fmt: skip
            client.publish(message.topic, b"", qos=1, retain=True)

    # --- the gateway's tick -----------------------------------------------------------

    def tick(self) -> None:
        """Publish what changed since the last tick: every config, state and availability
        after a (re)connection, new states, and availability when a node came or went."""
        if not self.client.is_connected():
            return  # everything is published again on the next connection
        if not self._loaded:
            self._load_newest()
        with self._lock:
            announce, self._announce = self._announce, False
            due = set(self._newest) if announce else self._pending
            states = {key: self._newest[key] for key in due}
            self._pending = set()
        if announce:
            for topic, (zone, quantity) in self.configs.items():
                self._send(topic, encoded(discovery_config(self.settings, zone, quantity)))
        self._publish_availability(announce)
        for key, reading in sorted(states.items()):
            self._send(self.zones[key].state_topic, encoded(state(reading)))

    def _publish_availability(self, announce: bool) -> None:
        now = time.monotonic()
        if not announce and now - self._presence_at < PRESENCE_EVERY_S:
            return
        self._presence_at = now
        online = {(record.site, record.node): record.online
                  for site in {site.name for site, _ in self.nodes}
                  for record in self.store.nodes(site)}  # fmt: skip
        for site, node in self.nodes:
            available = online.get((site.name, node), False)
            if announce or self._available.get((site.name, node)) != available:
                self._available[(site.name, node)] = available
                self._send(
                    availability_topic(site, node), encoded(ONLINE if available else OFFLINE)
                )

    def _load_newest(self) -> None:
        """Each zone's newest ok reading already stored, within `expire_after` (an older
        one would show Home Assistant a value it should already call unavailable).

        Read back from now one report interval (at most an hour) at a time, so that a
        zone's newest reading is found within the store's row limit per read.
        """
        now = self.clock()
        window = timedelta(seconds=min(self.settings.report_interval_s, 3600))
        oldest = now - timedelta(seconds=self.settings.expire_after_s)
        for key, zone in self.zones.items():
            until, found = now + FUTURE_SLACK, None
            while (
                until > oldest
                and (found := self._newest_stored(zone, until - window, until)) is None
            ):
                until -= window
            if found is None:
                continue
            with self._lock:
                kept = self._newest.get(key)
                if kept is None or found.at > kept.at:
                    self._newest[key] = found
                    self._pending.add(key)
        self._loaded = True

    def _newest_stored(self, zone: Zone, since: datetime, until: datetime) -> DepotReading | None:
        records = self.store.depot_readings(zone.site.name, zone.node, since, until, zone=zone.name)
        ok = [record for record in records if record.status == "ok"]
        if not ok:
            return None
        newest = ok[-1]
        return DepotReading(
            sensor=newest.zone, bus_address=newest.bus_address, at=newest.at, status="ok",
            temperature_c=newest.temperature_c, humidity_pct=newest.humidity_pct,
        )  # fmt: skip

    def _send(self, topic: str, payload: bytes) -> None:
        # Not under the lock: paho calls _on_publish holding its own, which publish takes.
        # An answer that comes before the id is kept is not looked at (it is forgotten).
        info = self.client.publish(topic, payload, qos=1, retain=True)
        with self._lock:
            self._sent[info.mid] = topic
