"""Config files shared by every Gatepost process: YAML in, one pydantic model out, errors by path.

Unknown keys are refused and every error names its field path, so a technician sees
"devices.scanner.url: …" rather than a stack trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from edge.errors import GatepostError
from edge.mqtt import BrokerUrl

M = TypeVar("M", bound=BaseModel)


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
