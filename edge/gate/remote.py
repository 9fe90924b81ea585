"""The signed node config pushed down by provisioning: verified, applied live, kept on disk.

Only the sections that can change while the node runs are accepted (the decision
policy, the report cut-off, the thermometer's calibration); a config that touches
anything else (devices, pins, broker) needs a new config file and a restart, and is
refused saying so. The fields it gives replace the file's, section by section; the
newest signed config wins whole, so a field it leaves out goes back to the file's value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.configfile import ConfigError
from edge.contract.documents import SignedNodeConfig
from edge.credentials.trust import DocumentRefused, verify_document
from edge.gate.config import GateConfig

log = logging.getLogger(__name__)

LIVE_SECTIONS = frozenset({"policy", "report", "calibration"})


class NodeConfigStore:
    """The file config, with the newest valid signed config's live sections over it.

    Args:
        root_keys: site root keys that may sign configs.
        path: where the applied signed config is kept across restarts.
        base: the node's config file.
    """

    def __init__(
        self, root_keys: Mapping[bytes, Ed25519PublicKey], path: Path, base: GateConfig
    ) -> None:
        self._root_keys = root_keys
        self._path = path
        self._base = base
        self.effective = base
        self.serial = 0

    def effective_hash(self) -> str:
        return self.effective.config_hash()

    def apply(self, document: SignedNodeConfig, now: datetime, *, persist: bool = True) -> None:
        """Verify `document` and make its sections the live ones.

        Raises:
            DocumentRefused: unsigned, forged, stale or expired.
            ConfigError: for another node, or a section that cannot change live, or invalid.
        """
        verify_document(document, self._root_keys, now, held_serial=self.serial)
        body = document.body
        if body.node != self._base.node.name:
            raise ConfigError(f"config serial {document.serial} is for node {body.node}")
        if extra := set(body.config) - LIVE_SECTIONS:
            raise ConfigError(
                f"config serial {document.serial}: {', '.join(sorted(extra))} cannot change "
                "while the node runs; change the config file and restart"
            )
        # The file's own settings, with the signed fields laid over them section by section.
        merged = self._base.model_dump(mode="json", exclude_unset=True)
        for section, fields in body.config.items():
            if not isinstance(fields, dict):
                raise ConfigError(f"config serial {document.serial}: {section} is not a mapping")
            merged[section] = {**merged.get(section, {}), **fields}
        try:
            effective = GateConfig.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"config serial {document.serial}: {where}: {first['msg']}") from None
        self.effective, self.serial = effective, document.serial
        log.info("applied node config serial %d (%s)", document.serial, ", ".join(body.config))
        if persist:
            self._persist(document)

    def load(self, now: datetime) -> None:
        """Take up the kept config again, verifying it; a bad file leaves the file config."""
        try:
            document = SignedNodeConfig.model_validate_json(self._path.read_bytes())
            self.apply(document, now, persist=False)
        except FileNotFoundError:
            return
        except (OSError, ValueError, DocumentRefused, ConfigError) as exc:
            log.warning("kept node config %s not used: %s", self._path, exc)

    def _persist(self, document: SignedNodeConfig) -> None:
        temporary = self._path.with_name(f".{self._path.name}.tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as file:
                file.write(document.model_dump_json(exclude_none=True).encode())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self._path)
        except OSError:
            log.exception("could not keep node config at %s", self._path)
