"""Building blocks of every payload: the versioned base model, event identity, shared types."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)
from ulid import ULID

SCHEMA_VERSION: Literal[1] = 1

# Crockford base32, 26 characters: sorts by creation time as plain text.
EventId = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,47}$")]
# Keyed hash (HMAC-SHA256, hex) of an identity number: joinable, never reversible.
KeyedHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# SHA-256 of bytes, lower-case hex: an event's link to the one before it (see Event.prev_hash).
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
VolunteerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
# Any identity document a person shows at a gate: a resident ID card (18, the last may be
# X), a passport ("G1234567A"), a travel permit. One rule for the form and the event.
IdNumber = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{6,18}$")]
# Its last four characters, kept so a volunteer can find a registration again.
IdLast4 = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{4}$")]
# An IR forehead reading outdoors can sit well below core temperature; outside this
# range it is a sensor fault, not a person.
BodyTemperature = Annotated[float, Field(ge=25.0, le=45.0)]
Colour = Literal["green", "yellow", "red"]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]

# Every list and string that crosses a boundary has a bound: what a real gate, depot or
# provisioning sends, with room, and no more. An unbounded list in a valid payload is a
# way to fill a store (ten 1 MB passages of 120,000 reason codes each were "valid").
# A decision lists a handful of distinct reasons (a deny, a credential's, the temperature's).
REASONS_MAX = 16
ReasonCodes = Annotated[tuple[ReasonCode, ...], Field(max_length=REASONS_MAX)]
# A node's devices and workers in its birth and heartbeat (a gate has about ten).
DEVICES_MAX = 64
# A name as on an ID card (Chinese names are 2-4 characters; foreign ones longer).
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{5,15}$")]
# Standard base64 with padding; bounded per use: a key id (8 bytes in a COSE header, up to
# 32 here), a public key (SubjectPublicKeyInfo: 44 bytes for Ed25519, 550 for RSA-4096)
# and a certificate (a DSC is 1-2 KB of DER).
_BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
KeyId = Annotated[str, StringConstraints(pattern=_BASE64, min_length=4, max_length=44)]
PublicKeyText = Annotated[str, StringConstraints(pattern=_BASE64, min_length=4, max_length=2048)]
CertificateText = Annotated[
    str, StringConstraints(pattern=_BASE64, min_length=4, max_length=16_384)
]
# Counters (seq, session): JSON readers keep integers exact up to 2**53 - 1, and SQLite
# stores at most 2**63 - 1; a larger one is refused here rather than failing in a store.
COUNTER_MAX = 2**53 - 1


def personal(**kwargs: Any) -> Any:
    """A field holding personal data.

    Marked in the JSON schema (`"personal": true`) so tests can prove that no topic
    readable by the command center carries one, and the gateway knows what to audit.
    """
    return Field(json_schema_extra={"personal": True}, **kwargs)


def new_event_id(at: datetime) -> str:
    """A unique id for an event created at `at` (node time); sorts by time as text."""
    return str(ULID.from_datetime(at))


def chain_hash(payload: bytes) -> str:
    """The `prev_hash` of the event after this one: SHA-256 of its exact payload bytes."""
    return hashlib.sha256(payload).hexdigest()


# Strict: "5" is not a seq and a number is not a time; unknown fields are refused.
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)


class Payload(BaseModel):
    """Base of every payload: strict, immutable, versioned.

    Unknown fields are refused: adding a field means a new schema_version, and the
    gateway is upgraded before the nodes that send it.
    """

    model_config = STRICT

    schema_version: Literal[1] = SCHEMA_VERSION


class Event(Payload):
    """A durable node event: written to the outbox first, delivered at least once.

    `event_id` makes redelivery harmless (consumers store by id); `seq` counts every
    outbox entry of the node from 1 without gaps, so a consumer can see a loss.
    `prev_hash` chains each entry to the one before it in the same outbox, so a store
    that lost, changed or gained an entry can be shown to have.
    """

    kind: str = Field(description="the event kind, as in the topic")
    event_id: EventId
    seq: int = Field(
        ge=1, le=COUNTER_MAX, description="per-node outbox sequence, from 1, without gaps"
    )
    node_time: AwareDatetime = Field(description="node clock when the event was created")
    prev_hash: Sha256Hex | None = Field(
        None,
        description="SHA-256 (hex) of the exact payload bytes of this outbox's entry seq - 1; "
        "none for the first entry of an outbox (a chain start)",
    )


def personal_fields(model: type[BaseModel], path: str = "") -> list[str]:
    """Dotted paths of every personal field in `model`, nested models included."""
    found: list[str] = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("personal"):
            found.append(path + name)
        for nested in _models_in(field.annotation):
            found.extend(personal_fields(nested, f"{path}{name}."))
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]
