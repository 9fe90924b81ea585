"""A node config's `update` section: which release keys it trusts and how it restarts."""

from __future__ import annotations

from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import AfterValidator, Field, StringConstraints

from edge.configfile import Section
from edge.updater.bundle import release_key

RELEASE_KEYS_MAX = 8


def _is_release_key(text: str) -> str:
    release_key(text)  # ValueError names the bad key
    return text


ReleaseKeyText = Annotated[
    str, StringConstraints(min_length=43, max_length=44), AfterValidator(_is_release_key)
]
Word = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UpdateSection(Section):
    """How `gatepost edge update` installs a bundle on this node."""

    release_keys: tuple[ReleaseKeyText, ...] = Field(
        (), max_length=RELEASE_KEYS_MAX,
        description="base64url Ed25519 public keys whose bundles this node installs "
        "(`gatepost fw bundle build` prints its key's)",
    )  # fmt: skip
    restart_command: tuple[Word, ...] = Field(
        ("systemctl", "restart", "gatepost-node.service"), min_length=1, max_length=16,
        description="argv that restarts the node's service after the slot switch",
    )  # fmt: skip
    health_timeout_s: float = Field(
        120.0, ge=1, le=3600,
        description="the new version must be up, connected, its devices answering, by then",
    )  # fmt: skip

    def keys(self) -> list[Ed25519PublicKey]:
        return [release_key(text) for text in self.release_keys]
