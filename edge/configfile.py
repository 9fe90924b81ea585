"""Config files shared by every Gatepost process: YAML in, one pydantic model out, errors by path.

Unknown keys are refused and every error names its field path, so a technician sees
"devices.scanner.url: …" rather than a stack trace. The sections every node's config has
whatever its role (`broker`, `outbox`, and where the device profiles are) live here too,
beside the gateway's: edge/gate/config.py and edge/depot/config.py both take them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import GatepostError
from edge.mqtt import BrokerUrl, Endpoint
from edge.uplink import UplinkSettings

M = TypeVar("M", bound=BaseModel)

# Device profiles named without a path (`xy-md02`, `gm65-scanner`) are files here.
PROFILES_DIR = Path(__file__).resolve().parents[1] / "hardware" / "profiles"


class ConfigError(GatepostError):
    """The configuration file cannot be used; the message names the file and each field."""


class Section(BaseModel):
    """A config section: unknown keys refused, immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _broker_url(value: str) -> str:
    BrokerUrl.parse(value)
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone name such as Asia/Shanghai") from None
    return value


BrokerUrlText = Annotated[str, AfterValidator(_broker_url)]
ZoneName = Annotated[str, AfterValidator(_zone)]


class BrokerFields(Section):
    """Where the broker is and who we are to it: the start of every `broker` section."""

    url: BrokerUrlText = Field(
        "mqtts://127.0.0.1:8883", description="mqtts://host:port (mqtt:// only on a test bench)"
    )
    ca: Path | None = Field(None, description="the site CA (PEM); relative to the config file")
    cert: Path | None = Field(
        None, description="this client's certificate (PEM): its name is the client's identity"
    )
    key: Path | None = Field(None, description="the certificate's private key (PEM, mode 0600)")
    username: str | None = Field(None, min_length=1, max_length=64)
    password_file: Path | None = Field(None, description="a file holding the password")

    @model_validator(mode="after")
    def _usable(self) -> BrokerFields:
        Endpoint(BrokerUrl.parse(self.url), self.ca, self.cert, self.key, self.username)
        if self.password_file is not None and self.username is None:
            raise ValueError("a password_file needs a username")
        return self

    def endpoint(self) -> Endpoint:
        """The broker endpoint this section describes.

        Raises:
            ConfigError: the password file cannot be read.
        """
        password = None
        if self.password_file is not None:
            try:
                password = self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"broker.password_file: {exc}") from None
        return Endpoint(
            BrokerUrl.parse(self.url), ca=self.ca, cert=self.cert, key=self.key,
            username=self.username, password=password,
        )  # fmt: skip


class BrokerSection(BrokerFields):
    """A node's `broker` section, whatever its role: the endpoint and how the uplink paces."""

    keepalive_s: int = Field(10, ge=2, le=600, description="the broker declares us lost after 1.5x")
    heartbeat_s: int = Field(10, ge=1, le=3600, description="seconds between health messages")
    reconnect_max_s: float = Field(5.0, ge=0.1, le=600, description="longest wait between tries")
    unconfirmed_window: int = Field(
        10_000, ge=1, le=1_000_000,
        description="events sent past the gateway's last receipt: what one resend may cost",
    )  # fmt: skip
    window: int = Field(1000, ge=1, le=20_000, description="events in flight per connection")

    def settings(self) -> UplinkSettings:
        return UplinkSettings(
            self.endpoint(), keepalive_s=self.keepalive_s,
            heartbeat_s=self.heartbeat_s, reconnect_min_s=min(1.0, self.reconnect_max_s),
            reconnect_max_s=self.reconnect_max_s, window=self.window,
            unconfirmed_window=self.unconfirmed_window,
        )  # fmt: skip


class OutboxSection(Section):
    """A node's `outbox` section: how many unsent events it keeps, and when that is a fault."""

    capacity: int = Field(100_000, ge=10, le=10_000_000, description="unsent events kept")
    warn_fraction: float = Field(0.8, gt=0, lt=1, description="raise a fault at this fill level")


BROKER_PATHS = ("ca", "cert", "key", "password_file")


def broker_section(endpoint: Endpoint) -> dict[str, str]:
    """The start of a `broker` config section that reaches `endpoint` (no password)."""
    files = {"ca": endpoint.ca, "cert": endpoint.cert, "key": endpoint.key}
    section = {"url": str(endpoint.url)} | {k: str(v) for k, v in files.items() if v}
    if endpoint.username is not None:
        section["username"] = endpoint.username
    return section


def resolve_paths(section: Any, keys: tuple[str, ...], base: Path) -> None:
    """Make the relative paths under `keys` of a raw config section relative to `base`."""
    if isinstance(section, dict):
        for key in keys:
            if isinstance(section.get(key), str):
                section[key] = str(base / section[key])


def read_mapping(path: Path) -> dict[str, Any]:
    """The YAML (or JSON) mapping in `path`.

    Raises:
        ConfigError: missing, unreadable, not YAML, or not a mapping of sections.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections")
    return data


def validate(path: Path, model: type[M], data: dict[str, Any]) -> M:
    """`data` as `model`, or a ConfigError naming `path` and every failing field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}:\n" + "\n".join(problems(exc))) from None


def problems(exc: ValidationError) -> list[str]:
    """One "  field.path: message" line per error."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return lines
