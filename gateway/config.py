"""The gateway's configuration file: sites and their gates, broker, store, alarm limits, HTTP."""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from edge.configfile import (
    BROKER_PATHS,
    BrokerFields,
    Section,
    ZoneName,
    broker_section,
    read_mapping,
    resolve_paths,
    validate,
)
from edge.contract.base import COUNTER_MAX, Slug
from edge.contract.topics import DEFAULT_PREFIX, Role, Site
from edge.mqtt import Endpoint
from edge.web.security import HostName, StreamLimits
from edge.web.tls import TLS_PATHS, TlsFields
from gateway.homeassistant import HomeAssistantSection, check_unique_ids
from gateway.stock.applications import Location
from gateway.stock.catalogue import SITE_ITEMS_MAX, StockItem, check_site_items, site_catalogue
from gateway.stock.cover import TARGETS_MAX, StockSection, StockTarget
from gateway.storage_classes import BUILT_IN, StorageClass
from gateway.store.records import SEQ_JUMP_MAX
from gateway.store.settings import STORE_TLS_PATHS, StoreSection


class ScaleSection(Section):
    """A depot platform scale under a pallet of one item, compared with the stock ledger.

    The pallet's tare is taken off at the depot node (its scale's `tare_kg`): the gateway
    takes the weight's `net_kg` as the goods and has no tare of its own (docs/stock.md).
    """

    item: Slug = Field(description="the catalogue item on the pallet")
    lot: str = Field(
        "", pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$",
        description="the pallet's lot; empty: all of the item at that depot",
    )  # fmt: skip
    unit_kg: float = Field(
        gt=0, le=100_000, description="the weight of one unit of the item as the ledger counts it"
    )
    tolerance_units: float = Field(
        0, ge=0, le=1_000_000, description="a difference this large or less is no discrepancy"
    )
    tolerance_pct: float = Field(
        2.0, ge=0, le=50,
        description="… nor one this many percent of the ledger's on hand or less (the larger "
        "of the two tolerances counts)",
    )  # fmt: skip
    lasting_min: float = Field(
        10.0, ge=0, le=7 * 24 * 60,
        description="how long a difference must last, by the weights' own times, to alarm",
    )  # fmt: skip


class SiteSection(Section):
    """One site: its gates and depots are the inventory reports and alarms are held to."""

    name: Slug = Field(description="the site's topic segment")
    timezone: ZoneName = Field("Asia/Shanghai", description="the site's local time")
    cutoff_hour: int = Field(0, ge=0, le=23, description="daily report cut-off, local hour")
    gates: tuple[Slug, ...] = Field((), description="gate nodes expected at this site")
    depots: tuple[Slug, ...] = Field((), description="depot nodes expected at this site")
    storage_classes: dict[Slug, StorageClass] = Field(
        default_factory=dict, max_length=64,
        description="this site's own classes, beside the built-in ones (a same name replaces it)",
    )  # fmt: skip
    zones: dict[Slug, dict[Slug, Slug]] = Field(
        default_factory=dict,
        description="depot node -> zone (its sensor's name) -> storage class; a zone not "
        "listed raises no excursion alarm",
    )  # fmt: skip
    depot_stale_after_min: float = Field(
        15.0, ge=0, le=24 * 60,
        description="a zone with a class and no ok reading this long, its node online, "
        "raises depot-sensor-stale; 0: never",
    )  # fmt: skip
    stock_items: tuple[StockItem, ...] = Field(
        (), max_length=SITE_ITEMS_MAX,
        description="this site's own stock items, beside the built-in catalogue (docs/stock.md)",
    )  # fmt: skip
    population: int = Field(
        0, ge=0, le=100_000_000,
        description="people the site's depots supply, for targets in days of their consumption",
    )  # fmt: skip
    stock_targets: tuple[StockTarget, ...] = Field(
        (), max_length=TARGETS_MAX,
        description="reserve targets in days of cover; below one raises stock-shortage",
    )  # fmt: skip
    scales: dict[Slug, dict[Slug, ScaleSection]] = Field(
        default_factory=dict, max_length=1000,
        description="depot node -> scale (its name on the node) -> the item it weighs, "
        "compared with the stock ledger (docs/stock.md#scales)",
    )  # fmt: skip
    depot_locations: dict[Slug, Location] = Field(
        default_factory=dict, max_length=1000,
        description="depot node -> where it is (lat, lon): an allocation draws from the "
        "depot nearest the applicant's place first (docs/stock.md#applications-and-allocation)",
    )  # fmt: skip

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def storage_class(self, node: str, zone: str) -> StorageClass | None:
        """The class a depot zone is kept at, or None for a zone nobody assigned."""
        name = self.zones.get(node, {}).get(zone)
        return None if name is None else self.storage_classes.get(name, BUILT_IN.get(name))

    def role_of(self, node: str) -> Role | None:
        """The role this node has in the inventory, or None for a node nobody listed."""
        if node in self.gates:
            return Role.GATE
        if node in self.depots:
            return Role.DEPOT
        return None

    @model_validator(mode="after")
    def _unique_nodes(self) -> Self:
        names = [*self.gates, *self.depots]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"nodes listed twice at site {self.name}: {', '.join(twice)}")
        return self

    @model_validator(mode="after")
    def _zones_of_known_depots(self) -> Self:
        known = {*BUILT_IN, *self.storage_classes}
        for node, zones in self.zones.items():
            if node not in self.depots:
                raise ValueError(f"zones.{node}: not a depot of site {self.name}")
            for zone, name in zones.items():
                if name not in known:
                    raise ValueError(
                        f"zones.{node}.{zone}: unknown storage class {name} "
                        f"(known: {', '.join(sorted(known))})"
                    )
        return self

    @model_validator(mode="after")
    def _stock_items(self) -> Self:
        check_site_items(self.stock_items, {*BUILT_IN, *self.storage_classes})
        return self

    @model_validator(mode="after")
    def _targets_of_known_items(self) -> Self:
        catalogue = site_catalogue(self.stock_items)
        subjects = [target.subject for target in self.stock_targets]
        for i, target in enumerate(self.stock_targets):
            if target.item is not None and target.item not in catalogue:
                raise ValueError(f"stock_targets.{i}.item: unknown item {target.item}")
            if subjects.index(target.subject) != i:
                raise ValueError(f"stock_targets.{i}: a second target for {target.subject}")
        return self

    @model_validator(mode="after")
    def _locations_of_known_depots(self) -> Self:
        for node in self.depot_locations:
            if node not in self.depots:
                raise ValueError(f"depot_locations.{node}: not a depot of site {self.name}")
        return self

    @model_validator(mode="after")
    def _scales_of_known_items(self) -> Self:
        catalogue = site_catalogue(self.stock_items)
        for node, scales in self.scales.items():
            if node not in self.depots:
                raise ValueError(f"scales.{node}: not a depot of site {self.name}")
            if len(scales) > 16:
                raise ValueError(f"scales.{node}: at most 16 scales a depot node")
            for name, scale in scales.items():
                if scale.item not in catalogue:
                    raise ValueError(f"scales.{node}.{name}.item: unknown item {scale.item}")
                if scale.lot and not catalogue[scale.item].lot_tracked:
                    raise ValueError(
                        f"scales.{node}.{name}.lot: {scale.item} is not tracked by lot"
                    )
        return self


class BrokerSection(BrokerFields):
    """The broker, and the gateway's two identities on it: `cert` for ingest (it reads the
    site) and `publisher_cert` for what it publishes (alerts, summaries, receipts)."""

    publisher_cert: Path | None = Field(None, description="the publisher's certificate (PEM)")
    publisher_key: Path | None = Field(None, description="its private key (PEM)")
    prefix: Slug = Field(DEFAULT_PREFIX, description="topic prefix")
    client_id: str = Field(
        "gatepost-gateway", min_length=1, max_length=64,
        description="unique per replica: the broker keeps this session's queue across restarts",
    )  # fmt: skip
    share_group: Slug = Field("gateway", description="replicas in one group split the stream")
    session_expiry_s: int = Field(
        86_400, ge=60, le=30 * 86_400, description="how long the broker queues for us while down"
    )
    keepalive_s: int = Field(30, ge=5, le=600)

    @model_validator(mode="after")
    def _two_identities(self) -> Self:
        if (self.cert is None) != (self.publisher_cert is None):
            raise ValueError(
                "the broker binds a client id to each certificate: give cert and "
                "publisher_cert together (ingest and publisher are two connections)"
            )
        return self

    def publisher_endpoint(self) -> Endpoint:
        """The publisher's endpoint: the same broker, its own certificate."""
        return replace(self.endpoint(), cert=self.publisher_cert, key=self.publisher_key)


class IngestSection(Section):
    batch_max: int = Field(2000, ge=1, le=50_000, description="messages per transaction at most")
    batch_wait_ms: int = Field(
        0, ge=0, le=5000,
        description="how long a batch waits to fill; 0: it takes what queued during the last "
        "commit (batches grow with the load, and nothing waits when it is quiet)",
    )  # fmt: skip
    queue_max: int = Field(
        20_000, ge=1, le=1_000_000,
        description="messages received and not yet stored; beyond it the gateway stops "
        "reading and the broker holds the rest",
    )  # fmt: skip
    payload_max_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024,
        description="a node message larger than this is a dead letter, not decoded; the "
        "largest valid one (a depot batch of 247 readings) is about 54 KB",
    )  # fmt: skip
    seq_jump_max: int = Field(
        SEQ_JUMP_MAX, ge=1000, le=COUNTER_MAX,
        description="a seq more than this past its node's contiguous mark is quarantined and "
        "alarms (seq-jump); keep it above the nodes' outbox capacity",
    )  # fmt: skip


class AlarmSection(Section):
    heartbeats_missed: int = Field(3, ge=1, le=100, description="offline after this many")
    trust_max_age_h: float = Field(48.0, gt=0, description="trust list older than this alarms")
    clock_skew_max_s: float = Field(30.0, gt=0, description="node clock off by more alarms")
    gap_grace_s: float = Field(
        10.0, ge=0, description="a missing seq alarms once it stays missing this long"
    )
    disinfections_min: int = Field(4, ge=0, le=48, description="rounds a gate needs per day")
    unattended_after_s: float = Field(
        300.0, ge=0, description="an online gate with nobody on shift this long alarms"
    )
    report_grace_min: int = Field(
        30, ge=0, le=24 * 60, description="minutes after the cut-off before a report is missing"
    )
    check_every_s: float = Field(1.0, gt=0, le=60, description="how often time-based rules run")
    escalate_after_min: float = Field(
        0.0, ge=0, le=7 * 24 * 60,
        description="an alarm still raised (not acknowledged) this long is escalated: sent "
        "once more, marked; 0: never",
    )  # fmt: skip


class HttpSection(TlsFields):
    """The API and dashboard; with `tls_cert` and `tls_key` over HTTPS only."""

    host: str = Field("127.0.0.1", description="where the API and dashboard listen")
    port: int = Field(8000, ge=0, le=65535, description="0: any free port")
    allowed_hosts: tuple[HostName, ...] = Field(
        (), max_length=16, description="names the API answers to besides 127.0.0.1, "
        "localhost and `host`: the command center's name for this machine",
    )  # fmt: skip
    streams: StreamLimits = StreamLimits()
    auth_failures_max: int = Field(
        10, ge=1, le=1000, description="wrong tokens from one client address within "
        "`auth_failure_window_s` after which it is refused (429), live tokens included",
    )  # fmt: skip
    auth_failure_window_s: float = Field(
        60.0, gt=0, le=86400, description="how long a wrong token counts against its address"
    )


class SummarySection(Section):
    every_s: float = Field(5.0, gt=0, le=3600, description="retained summaries at most this often")


class GatewayConfig(Section):
    """Everything the gateway needs; `gatepost gateway run --config FILE` reads it."""

    sites: tuple[SiteSection, ...] = Field(min_length=1)
    broker: BrokerSection = BrokerSection()
    store: StoreSection = StoreSection()
    ingest: IngestSection = IngestSection()
    alarms: AlarmSection = AlarmSection()
    http: HttpSection = HttpSection()
    summary: SummarySection = SummarySection()
    homeassistant: HomeAssistantSection = HomeAssistantSection()
    stock: StockSection = StockSection()

    @model_validator(mode="after")
    def _unique_sites(self) -> Self:
        names = [s.name for s in self.sites]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"sites listed twice: {', '.join(twice)}")
        return self

    @model_validator(mode="after")
    def _home_assistant_ids(self) -> Self:
        if self.homeassistant.enabled:
            check_unique_ids(self.sites)
        return self

    def site(self, name: str) -> SiteSection | None:
        return next((s for s in self.sites if s.name == name), None)

    @cached_property
    def inventory(self) -> dict[tuple[str, str], Role]:
        """(site, node) to role, for every node listed (built once; looked up per message)."""
        return {
            (site.name, node): role
            for site in self.sites
            for role, nodes in ((Role.GATE, site.gates), (Role.DEPOT, site.depots))
            for node in nodes
        }

    def topic_site(self, name: str) -> Site:
        return Site(name, self.broker.prefix)


def broker_config(ingest: Endpoint, publisher: Endpoint) -> dict[str, str]:
    """The start of a gateway's `broker` section for its ingest and publisher endpoints
    (one broker; the publisher's certificate, when there is one, beside ingest's)."""
    section = broker_section(ingest)
    if publisher.cert is not None and publisher.key is not None:
        section |= {"publisher_cert": str(publisher.cert), "publisher_key": str(publisher.key)}
    return section


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a gateway config file (YAML or JSON).

    Raises:
        ConfigError: missing, not YAML, or invalid; every failing field is named.
    """
    data = read_mapping(path)
    store = data.setdefault("store", {})
    if isinstance(store, dict) and isinstance(store.get("path", ""), str):
        # Relative paths, the default included, are taken from the config's folder.
        store["path"] = str(path.parent / store.get("path", StoreSection().path))
    resolve_paths(
        data.get("broker"), (*BROKER_PATHS, "publisher_cert", "publisher_key"), path.parent
    )
    resolve_paths(data.get("http"), TLS_PATHS, path.parent)
    resolve_paths(store, STORE_TLS_PATHS, path.parent)
    return validate(path, GatewayConfig, data)
