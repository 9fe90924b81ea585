"""A gate node's configuration file: one model per section, checked whole at start.

Unknown keys are refused and every error names its field path, so a technician
sees "devices.scanner.url: …" rather than a stack trace. Secrets (the key for ID
number hashes) come from a file or the environment, never from the config itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    Field,
    model_validator,
)

from edge.configfile import (
    BROKER_PATHS,
    PROFILES_DIR,
    BrokerSection,
    ConfigError,
    OutboxSection,
    Section,
    ZoneName,
    read_mapping,
    resolve_paths,
    validate,
)
from edge.contract.base import Slug
from edge.contract.topics import DEFAULT_PREFIX, Node, Role, Site
from edge.credentials.dcc import DccRules
from edge.devices.base import DeviceProfile
from edge.devices.registry import load_profile
from edge.errors import GatepostError
from edge.gate.decision import GatePolicy
from edge.gate.gpio.config import GpioConfig
from edge.updater.config import UpdateSection
from edge.web.security import HostName, StreamLimits, is_loopback
from edge.web.tls import TLS_PATHS, TlsFields


class NodeSection(Section):
    site: Slug = Field(description="the site's topic segment")
    name: Slug = Field(description="this gate's name (a topic segment), e.g. g01")
    role: Literal["gate"] = Field(
        "gate", description="gate, or left out: `gatepost edge run` starts a gate node"
    )
    prefix: Slug = Field(DEFAULT_PREFIX, description="topic prefix")
    timezone: ZoneName = Field(
        "Asia/Shanghai", description="the site's local time, for report cut-offs and weeks"
    )
    direction: Literal["in", "out"] = Field("in", description="which way this lane lets people")
    state_dir: Path = Field(
        Path("/var/lib/gatepost"), description="outbox, trust lists and keys live here"
    )
    decision_priority: int = Field(
        10, ge=0, le=50,
        description="SCHED_RR priority of the scanner's and thermometer's threads, which "
        "decide and drive the barrier, ahead of the kiosk browser on the Pi's cores "
        "(the unit's LimitRTPRIO allows it); 0: a normal thread",
    )  # fmt: skip


class PartSection(Section):
    profile: str = Field(
        description="a file in hardware/profiles (without .yaml), or a path to a profile file"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="overrides of profile fields for this one unit"
    )

    def load(self) -> DeviceProfile:
        """The profile, with this unit's overrides applied and validated."""
        path = Path(self.profile)
        if not path.suffix:
            path = PROFILES_DIR / f"{self.profile}.yaml"
        profile = load_profile(path)
        if not self.settings:
            return profile
        return load_profile({**profile.model_dump(), **self.settings})


class DeviceSection(PartSection):
    url: str = Field(
        min_length=1,
        description="serial URL: /dev/ttyUSB0, /dev/gatepost-scanner, socket://host:port, …",
    )


class CameraSection(PartSection):
    source: int | str = Field(description="V4L2 index (0), a device path or a capture URL")
    profile: str = Field("usb-camera", description="profile in hardware/profiles")


class DevicesSection(Section):
    scanner: DeviceSection | None = None
    thermometer: DeviceSection | None = None
    thermal_array: DeviceSection | None = None
    camera: CameraSection | None = None

    @model_validator(mode="after")
    def _one_device_per_port(self) -> Self:
        seen: dict[str, str] = {}
        for name in ("scanner", "thermometer", "thermal_array"):
            section = getattr(self, name)
            if section is None:
                continue
            if section.url in seen:
                raise ValueError(
                    f"{seen[section.url]} and {name} are both on {section.url}; "
                    "each part needs its own serial port"
                )
            seen[section.url] = name
        if not (self.scanner or self.camera):
            raise ValueError("a gate needs a scanner or a camera to read codes")
        return self


class TrustSection(Section):
    root_keys: tuple[Path, ...] = Field(
        min_length=1, description="PEM files of the site root public keys (sign the lists)"
    )
    max_age_h: float = Field(48.0, gt=0, le=24 * 90, description="older lists are reported")


class SessionLimits(Section):
    """How long a volunteer's sign-in lasts (console.sessions)."""

    idle_min: float = Field(30, gt=0, le=12 * 60, description="ends after this long unused")
    longest_h: float = Field(
        12, gt=0, le=24, description="ends this long after the badge was scanned, used or not"
    )
    most: int = Field(64, ge=1, le=1024, description="open sessions; one more ends the oldest")


class ConsoleSection(TlsFields):
    """The volunteer console: on this machine over HTTP, beyond it over HTTPS with pairing."""

    enabled: bool = True
    host: str = Field(
        "127.0.0.1", description="where the volunteer console listens: the kiosk browser on "
        "the Pi; an address beyond this machine lets paired tablets in and needs tls_cert "
        "and tls_key",
    )  # fmt: skip
    port: int = Field(8080, ge=0, le=65535, description="0: any free port")
    allowed_hosts: tuple[HostName, ...] = Field(
        (), max_length=16, description="names the console answers to besides 127.0.0.1, "
        "localhost and `host`: what tablets on the LAN type into the address bar",
    )  # fmt: skip
    streams: StreamLimits = StreamLimits()
    sessions: SessionLimits = SessionLimits()
    language: Literal["zh", "en"] = "zh"
    words_file: Path | None = Field(
        None, description="the site's own wording for some of the console's words or reasons "
        "(JSON, key -> [简体中文, English]); relative to the config file",
    )  # fmt: skip
    paired_devices_max: int = Field(
        20, ge=1, le=200, description="tablets paired at once; past it one must be unpaired"
    )

    @model_validator(mode="after")
    def _https_beyond_this_machine(self) -> Self:
        if self.enabled and not is_loopback(self.host) and self.certificate() is None:
            raise ValueError(
                f"a console on {self.host or '*'} reaches beyond this machine: give it "
                "tls_cert and tls_key (HTTPS; tablets pair first), or listen on 127.0.0.1 "
                "(docs/security.md)"
            )
        return self


class ReportSection(Section):
    cutoff_hour: int = Field(0, ge=0, le=23, description="daily report cut-off, site local time")


class CalibrationSection(Section):
    """Per-unit corrections a signed config may change while the gate runs."""

    thermometer_object_offset_c: float | None = Field(
        None, ge=-3, le=3,
        description="replaces the thermometer profile's object_offset_c (`gatepost fw device "
        "thermo-calibrate` measures it); none: the profile's and settings' own",
    )  # fmt: skip


class SecretsSection(Section):
    id_hash_key_file: Path | None = Field(
        None, description="file holding the key for ID number hashes (32+ bytes)"
    )
    id_hash_key_env: str = Field(
        "GATEPOST_ID_HASH_KEY", description="or this environment variable (hex)"
    )

    def id_hash_key(self) -> bytes:
        if self.id_hash_key_file is not None:
            try:
                key = self.id_hash_key_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"secrets.id_hash_key_file: {exc}") from None
        else:
            try:
                key = bytes.fromhex(os.environ.get(self.id_hash_key_env, ""))
            except ValueError:
                raise ConfigError(f"${self.id_hash_key_env} is not hex") from None
        if len(key) < 32:
            raise ConfigError(
                f"the ID hash key must be at least 32 bytes (from {self.id_hash_key_file} "
                f"or ${self.id_hash_key_env})"
            )
        return key


class GateConfig(Section):
    """Everything a gate node needs; `gatepost edge run --config FILE` reads it."""

    node: NodeSection
    broker: BrokerSection = BrokerSection()
    devices: DevicesSection
    gpio: GpioConfig = GpioConfig()
    policy: GatePolicy = GatePolicy()
    dcc_rules: DccRules = DccRules()
    trust: TrustSection
    outbox: OutboxSection = OutboxSection()
    console: ConsoleSection = ConsoleSection()
    report: ReportSection = ReportSection()
    calibration: CalibrationSection = CalibrationSection()
    secrets: SecretsSection = SecretsSection()
    update: UpdateSection = UpdateSection()

    @property
    def node_id(self) -> Node:
        return Site(self.node.site, self.node.prefix).node(Role.GATE, self.node.name)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.node.timezone)

    def config_hash(self) -> str:
        """Short hash of the effective config, carried in every birth."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_config(path: Path) -> GateConfig:
    """Read and validate a gate config file (YAML or JSON).

    Relative paths in it are taken from the file's folder.

    Raises:
        ConfigError: the file is missing, not YAML, or fails validation; every failing
            field is named by its path.
    """
    data = read_mapping(path)
    _resolve_paths(data, path.parent)
    try:
        config = validate(path, GateConfig, data)
    except ConfigError as exc:
        if "buses" in data:  # a depot node's section: the role is what is wrong
            raise ConfigError(
                f"{exc}\n  node.role: read as a gate's config (role gate or none), which has "
                "no buses; a depot node's config says role: depot"
            ) from None
        raise
    for name in ("scanner", "thermometer", "thermal_array", "camera"):
        section = getattr(config.devices, name)
        if section is None:
            continue
        try:
            section.load()
        except (GatepostError, ValueError, OSError) as exc:
            raise ConfigError(f"{path}:\n  devices.{name}.profile: {exc}") from None
    return config


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    # Relative paths are relative to the config file, not to wherever the node started.
    resolve_paths(data.get("broker"), BROKER_PATHS, base)
    node = data.get("node")
    if isinstance(node, dict) and isinstance(node.get("state_dir"), str):
        node["state_dir"] = str(base / node["state_dir"])
    trust = data.get("trust")
    if isinstance(trust, dict) and isinstance(trust.get("root_keys"), list):
        trust["root_keys"] = [
            str(base / k) if isinstance(k, str) else k for k in trust["root_keys"]
        ]
    secrets = data.get("secrets")
    if isinstance(secrets, dict) and isinstance(secrets.get("id_hash_key_file"), str):
        secrets["id_hash_key_file"] = str(base / secrets["id_hash_key_file"])
    resolve_paths(data.get("console"), ("words_file", *TLS_PATHS), base)
    devices = data.get("devices")
    if isinstance(devices, dict):
        for section in devices.values():
            profile = section.get("profile") if isinstance(section, dict) else None
            if isinstance(profile, str) and Path(profile).suffix:
                section["profile"] = str(base / profile)
