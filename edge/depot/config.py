"""A depot node's configuration file: its buses of Modbus sensors, checked whole at start.

The same rules as a gate's (edge/gate/config.py): unknown keys are refused, every error
names its field path, relative paths are taken from the config file's folder. A depot
takes no signed documents (no trust lists, no signed config): what it polls and how is
this file alone, and its hash goes in every birth.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import yaml
from pydantic import Field, field_validator, model_validator

from edge.configfile import (
    BROKER_PATHS,
    PROFILES_DIR,
    BrokerSection,
    ConfigError,
    OutboxSection,
    Section,
    ZoneName,
    broker_section,
    read_mapping,
    resolve_paths,
    validate,
)
from edge.contract.base import DEVICES_MAX, Slug
from edge.contract.events import WEIGHT_KG_MAX
from edge.contract.topics import DEFAULT_PREFIX, Node, Role, Site
from edge.devices.modbus.profile import ModbusSensorProfile
from edge.devices.modbus.protocol import Calibration
from edge.devices.registry import load_profile
from edge.devices.scale.profile import ScaleProfile
from edge.errors import GatepostError
from edge.mqtt import Endpoint
from edge.updater.config import UpdateSection

BUSES_MAX = 8
# Every sensor and every scale is a device in births and heartbeats, beside the outbox,
# the uplink and one worker per bus: all of them fit the contract's DEVICES_MAX.
SENSORS_MAX = DEVICES_MAX - BUSES_MAX - 2
SCALES_MAX = 16
# Names of the node's own devices, which a zone may not take.
RESERVED_ZONES = frozenset({"outbox", "uplink", *(f"bus-{n}" for n in range(1, BUSES_MAX + 1))})


P = TypeVar("P", ModbusSensorProfile, ScaleProfile)


class DepotNodeSection(Section):
    site: Slug = Field(description="the site's topic segment")
    name: Slug = Field(description="this depot node's name (a topic segment), e.g. d01")
    role: Literal["depot"] = Field(description="depot: `gatepost edge run` starts a depot node")
    prefix: Slug = Field(DEFAULT_PREFIX, description="topic prefix")
    timezone: ZoneName = Field("Asia/Shanghai", description="the site's local time, for logs")
    state_dir: Path = Field(Path("/var/lib/gatepost"), description="the outbox lives here")


class CalibrationSection(Section):
    """Offsets found on site against a reference instrument, added to what the module says."""

    temperature_c: float = Field(0.0, ge=-10, le=10, description="°C added to the reading")
    humidity_pct: float = Field(0.0, ge=-30, le=30, description="%RH added to the reading")


class SensorSection(Section):
    """One sensor on a bus: where it is, its address, its offsets and when it reports."""

    zone: Slug = Field(description="where it is, e.g. cold-store-1: the reading's `sensor`")
    slave_id: int = Field(ge=1, le=247, description="Modbus RTU address, 1..247")
    calibration: CalibrationSection = CalibrationSection()
    deadband_c: float = Field(
        0.2, ge=0, le=10, description="report when the temperature moved this far (0: always)"
    )
    deadband_pct: float = Field(
        1.0, ge=0, le=50, description="report when the humidity moved this far (0: always)"
    )
    max_interval_s: float = Field(
        300, ge=1, le=86_400, description="report at least this often, moved or not"
    )

    @field_validator("zone")
    @classmethod
    def _not_reserved(cls, zone: str) -> str:
        if zone in RESERVED_ZONES:
            raise ValueError(f"{zone!r} names one of the node's own devices; choose another")
        return zone

    def calibration_offsets(self) -> Calibration:
        return Calibration(self.calibration.temperature_c, self.calibration.humidity_pct)


class BusSection(Section):
    """One RS485 bus: a serial port, the line settings of its profile, and its sensors."""

    url: str = Field(
        min_length=1, max_length=200,
        description="serial URL: /dev/ttyUSB0, /dev/gatepost-rs485, socket://host:port, …",
    )  # fmt: skip
    profile: str = Field(
        "xy-md02",
        min_length=1,
        max_length=200,
        description="a file in hardware/profiles (without .yaml), or a path to a profile file",
    )
    poll_s: float = Field(10, ge=1, le=3600, description="seconds from one round to the next")
    fault_after: int = Field(
        2, ge=1, le=10,
        description="a sensor is in fault after this many failed polls in a row (one line "
        "glitch is no alarm)",
    )  # fmt: skip
    sensors: tuple[SensorSection, ...] = Field(min_length=1, max_length=SENSORS_MAX)

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, profile: str) -> str:
        load_bus_profile(profile)
        return profile

    def load(self) -> ModbusSensorProfile:
        return load_bus_profile(self.profile)

    @model_validator(mode="after")
    def _sensors_fit_the_bus(self) -> Self:
        seen: dict[int, str] = {}
        for sensor in self.sensors:
            if sensor.slave_id in seen:
                raise ValueError(
                    f"sensors {seen[sensor.slave_id]} and {sensor.zone} both have slave_id "
                    f"{sensor.slave_id}; each sensor on a bus needs its own"
                )
            seen[sensor.slave_id] = sensor.zone
            if sensor.max_interval_s < self.poll_s:
                raise ValueError(
                    f"sensors.{sensor.zone}.max_interval_s {sensor.max_interval_s:g} is shorter "
                    f"than poll_s {self.poll_s:g}: a sensor reports at most once a round"
                )
        profile = self.load()
        worst_s = len(self.sensors) * (1 + profile.retries) * profile.reply_timeout_s
        if worst_s > self.poll_s:
            raise ValueError(
                f"poll_s {self.poll_s:g} is shorter than a round of {len(self.sensors)} "
                f"sensors when none answers: {len(self.sensors)} x (1 + {profile.retries} "
                f"retries) x {profile.reply_timeout_s:g} s = {worst_s:g} s"
            )
        return self


class ScaleSection(Section):
    """One platform scale under a pallet of one catalogue item, on its own serial port."""

    name: Slug = Field(description="the scale's name (a device in events), e.g. pallet-n95")
    item: Slug = Field(description="the catalogue item on the pallet, e.g. n95-mask")
    url: str = Field(
        min_length=1, max_length=200,
        description="serial URL: /dev/ttyUSB1, /dev/gatepost-scale-1, socket://host:port, …",
    )  # fmt: skip
    profile: str = Field(
        "scale-st-gs", min_length=1, max_length=200,
        description="a file in hardware/profiles (without .yaml), or a path to a profile file",
    )  # fmt: skip
    tare_kg: float = Field(
        0.0, ge=0, le=WEIGHT_KG_MAX,
        description="the empty pallet (and anything else on the platform that is not the "
        "item), taken off every weight: net_kg = shown - tare_kg",
    )  # fmt: skip
    deadband_kg: float = Field(
        0.5, ge=0, le=1000, description="report when the settled weight moved this far (0: always)"
    )
    max_interval_s: float = Field(
        300, ge=1, le=86_400, description="report at least this often while the weight is settled"
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_ZONES:
            raise ValueError(f"{name!r} names one of the node's own devices; choose another")
        return name

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, profile: str) -> str:
        load_scale_profile(profile)
        return profile

    def load(self) -> ScaleProfile:
        return load_scale_profile(self.profile)


class DepotConfig(Section):
    """Everything a depot node needs; `gatepost edge run --config FILE` reads it."""

    node: DepotNodeSection
    broker: BrokerSection = BrokerSection()
    outbox: OutboxSection = OutboxSection()
    update: UpdateSection = UpdateSection()
    buses: tuple[BusSection, ...] = Field(min_length=1, max_length=BUSES_MAX)
    scales: tuple[ScaleSection, ...] = Field(
        (), max_length=SCALES_MAX, description="platform scales, each on its own port"
    )

    @model_validator(mode="after")
    def _zones_and_ports_distinct(self) -> Self:
        zones: set[str] = set()
        urls: set[str] = set()
        for bus in self.buses:
            if bus.url in urls:
                raise ValueError(f"two buses on {bus.url}; each bus needs its own serial port")
            urls.add(bus.url)
            for sensor in bus.sensors:
                if sensor.zone in zones:
                    raise ValueError(f"zone {sensor.zone} is named twice; each sensor its own")
                zones.add(sensor.zone)
        for scale in self.scales:
            if scale.url in urls:
                raise ValueError(f"scale {scale.name} on {scale.url}, which is taken already")
            urls.add(scale.url)
            if scale.name in zones:
                raise ValueError(f"{scale.name} is named twice; each sensor and scale its own")
            zones.add(scale.name)
        if len(zones) > SENSORS_MAX:
            raise ValueError(
                f"{len(zones)} sensors and scales; a depot node reports at most {SENSORS_MAX}"
            )
        return self

    @property
    def node_id(self) -> Node:
        return Site(self.node.site, self.node.prefix).node(Role.DEPOT, self.node.name)

    def config_hash(self) -> str:
        """Short hash of the config, carried in every birth."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_bus_profile(profile: str) -> ModbusSensorProfile:
    """A bus's profile: a name in hardware/profiles, or a path to a file.

    Raises:
        ValueError: the file is missing or invalid, or not a Modbus sensor profile.
    """
    return _part_profile(profile, ModbusSensorProfile, "a Modbus sensor (xy-md02)")


def load_scale_profile(profile: str) -> ScaleProfile:
    """A scale's profile: a name in hardware/profiles, or a path to a file.

    Raises:
        ValueError: the file is missing or invalid, or not a scale profile.
    """
    return _part_profile(profile, ScaleProfile, "a scale (scale-continuous)")


def _part_profile(profile: str, kind: type[P], what: str) -> P:
    path = Path(profile)
    if not path.suffix:
        path = PROFILES_DIR / f"{profile}.yaml"
    try:
        loaded = load_profile(path)
    except (GatepostError, OSError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(loaded, kind):
        raise ValueError(f"{path}: part {loaded.part} is not {what}")
    return loaded


def node_role(path: Path) -> Role:
    """The role a node config file is for: `node.role`, a gate when it has none.

    Raises:
        ConfigError: the file cannot be read, or names a role that is not a node's.
    """
    data = read_mapping(path)
    node = data.get("node")
    role = node.get("role", Role.GATE.value) if isinstance(node, dict) else Role.GATE.value
    if role not in {r.value for r in Role}:
        known = ", ".join(r.value for r in Role)
        raise ConfigError(f"{path}:\n  node.role: {role!r} is not a node role ({known})")
    return Role(role)


def load_config(path: Path) -> DepotConfig:
    """Read and validate a depot config file (YAML or JSON).

    Relative paths in it (state_dir, broker files, profile files) are taken from the
    file's folder.

    Raises:
        ConfigError: the file is missing, not YAML, or fails validation; every failing
            field is named by its path.
    """
    data = read_mapping(path)
    _resolve_paths(data, path.parent)
    return validate(path, DepotConfig, data)


def write_config(
    path: Path, *, site: str, name: str, endpoint: Endpoint, buses: list[dict[str, Any]],
    scales: list[dict[str, Any]] | None = None, **sections: dict[str, Any],
) -> Path:  # fmt: skip
    """Write a depot config file (a demo's or a test's); `sections` extend whole sections.

    Args:
        path: the file to write; the node's state goes in `state-<name>` beside it.
        site: the site's topic segment.
        name: the node's name.
        endpoint: how it reaches the broker (its `depot-<name>` identity).
        buses: the `buses` section as a list of mappings (url, profile, sensors, …).
        scales: the `scales` section (name, item, url, profile, tare_kg, …), if any.

    Returns:
        `path`, which `load_config` (or `gatepost edge run --config`) reads.
    """
    config: dict[str, Any] = {
        "node": {"site": site, "name": name, "role": "depot", "state_dir": f"state-{name}"},
        "broker": broker_section(endpoint),
        "buses": buses,
    }
    if scales:
        config["scales"] = scales
    for section, value in sections.items():
        config[section] = {**config.get(section, {}), **value}
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return path


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    resolve_paths(data.get("broker"), BROKER_PATHS, base)
    node = data.get("node")
    if isinstance(node, dict) and isinstance(node.get("state_dir"), str):
        node["state_dir"] = str(base / node["state_dir"])
    buses = data.get("buses")
    scales = data.get("scales")
    for part in [*(buses if isinstance(buses, list) else ()),
                 *(scales if isinstance(scales, list) else ())]:  # fmt: skip
        profile = part.get("profile") if isinstance(part, dict) else None
        if isinstance(profile, str) and Path(profile).suffix:
            part["profile"] = str(base / profile)
