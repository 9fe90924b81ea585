"""What `gatepost fw config push` may carry: `--set section.key=value` items or a `--file`
of sections, checked against the sections a gate takes while it runs and their models
(edge/gate/remote.py LIVE_SECTIONS, edge/gate/config.py), before anything is signed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from edge.contract.documents import CONFIG_MAX_BYTES, CONFIG_SECTIONS_MAX
from edge.errors import GatepostError
from edge.gate.config import GateConfig
from edge.gate.remote import LIVE_SECTIONS

SETS_MAX = 64
SET_MAX_CHARS = 1_000

Sections = dict[str, dict[str, Any]]


class ConfigPushError(GatepostError):
    """Bad input or a broker that will not serve the push; nothing was published."""


def parse_sets(items: Sequence[str]) -> Sections:
    """`section.key=value` items as sections; a value is JSON (38.5, true, null) or text.

    Raises:
        ConfigPushError: naming the item that is not `section.key=value` or past a bound.
    """
    if len(items) > SETS_MAX:
        raise ConfigPushError(f"--set: at most {SETS_MAX} of them, got {len(items)}")
    sections: Sections = {}
    for item in items:
        if len(item) > SET_MAX_CHARS:
            raise ConfigPushError(f"--set {item[:40]}…: longer than {SET_MAX_CHARS} characters")
        name, equals, text = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not (equals and dot and section and key) or "." in key:
            raise ConfigPushError(
                f"--set {item!r}: give section.key=value, e.g. policy.fever_c=37.5"
            )
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        sections.setdefault(section, {})[key] = value
    return sections


def load_sections(path: Path) -> Sections:
    """A YAML (or JSON) file of sections, each a mapping of keys to values.

    Raises:
        ConfigPushError: unreadable, too big, not YAML, or not a mapping of mappings.
    """
    try:
        with path.open("rb") as file:
            data = file.read(CONFIG_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigPushError(f"--file {path}: {exc.strerror}") from None
    if len(data) > CONFIG_MAX_BYTES:
        raise ConfigPushError(f"--file {path}: more than {CONFIG_MAX_BYTES} bytes")
    try:
        loaded = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigPushError(f"--file {path}: not YAML: {exc}") from None
    if not isinstance(loaded, dict) or not all(
        isinstance(section, str) and isinstance(fields, dict) for section, fields in loaded.items()
    ):
        raise ConfigPushError(f"--file {path}: give a mapping of sections, each a mapping")
    return {section: dict(fields) for section, fields in loaded.items()}


def check_sections(sections: Mapping[str, Mapping[str, Any]]) -> Sections:
    """The sections as a gate will take them, checked against its config model.

    Raises:
        ConfigPushError: empty; a section a gate cannot change while it runs; a key or
            value its model refuses (named `section.key`).
    """
    if not sections:
        raise ConfigPushError("nothing to push: give --set section.key=value or --file")
    if len(sections) > CONFIG_SECTIONS_MAX:
        raise ConfigPushError(f"at most {CONFIG_SECTIONS_MAX} sections")
    checked: Sections = {}
    for section, fields in sections.items():
        if section not in LIVE_SECTIONS:
            raise ConfigPushError(
                f"{section}: not a section a gate changes while it runs (those are "
                f"{', '.join(sorted(LIVE_SECTIONS))}); change its config file and restart it"
            )
        model = GateConfig.model_fields[section].annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        try:
            model.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in (section, *first["loc"]))
            raise ConfigPushError(f"{where}: {first['msg']}") from None
        checked[section] = dict(fields)
    return checked
