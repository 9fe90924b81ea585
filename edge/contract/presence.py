"""Node presence: retained birth and death on `status`, and the periodic `health` heartbeat."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, TypeAdapter

from edge.contract.base import COUNTER_MAX, DEVICES_MAX, STRICT, Payload, ShortText, Slug
from edge.contract.documents import RefusalReason
from edge.contract.receipt import OutboxId
from edge.contract.topics import Role

DeviceState = Literal["ok", "fault", "unplugged", "disabled"]
ConfigHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]
DeviceStates = Annotated[dict[Slug, DeviceState], Field(max_length=DEVICES_MAX)]
ConfigSerial = Annotated[
    int,
    Field(
        ge=0, le=COUNTER_MAX,
        description="serial of the signed node config the node runs; 0: its config file only",
    ),
]  # fmt: skip


class ConfigRefusal(BaseModel):
    """The last signed node config the node refused, until it applies a newer one."""

    model_config = STRICT

    serial: int | None = Field(
        None, ge=1, le=COUNTER_MAX, description="none: refused before its serial was read"
    )
    issued_at: AwareDatetime | None = Field(None, description="the refused document's")
    reason: RefusalReason
    detail: ShortText | None = None


class Birth(Payload):
    """Published retained on every connect: the node is online, and in what shape."""

    state: Literal["online"] = "online"
    session: int = Field(
        ge=0, le=COUNTER_MAX, description="increments on every connect; its death carries it"
    )
    node_time: AwareDatetime
    role: Role
    version: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    config_hash: ConfigHash
    devices: DeviceStates = Field(default_factory=dict)
    trust_list_age_s: float | None = Field(None, ge=0, description="none: no trust list yet")
    heartbeat_s: int = Field(ge=1, le=3600, description="health interval the gateway expects")
    config_serial: ConfigSerial | None = None
    config_refused: ConfigRefusal | None = None
    outbox_id: OutboxId | None = Field(
        None, description="the node's outbox database; another one means seq starts again"
    )
    confirmed_seq: int | None = Field(
        None, ge=0, le=COUNTER_MAX,
        description="the gateway confirmed every event up to this seq: the node keeps none",
    )  # fmt: skip


class Death(Payload):
    """Retained `offline`: the Last Will (reason `lost`) or a clean shutdown.

    A Last Will is registered at connect time, so its node_time is the time of that
    connect; `session` ties it to the birth it ends.
    """

    state: Literal["offline"] = "offline"
    session: int = Field(ge=0, le=COUNTER_MAX)
    node_time: AwareDatetime
    reason: Literal["lost", "shutdown"]


NodeStatus = Annotated[Birth | Death, Field(discriminator="state")]
NODE_STATUS: TypeAdapter[Birth | Death] = TypeAdapter(NodeStatus)


class Health(Payload):
    """Heartbeat: the gateway marks a node offline after missing several in a row."""

    node_time: AwareDatetime
    session: int = Field(ge=0, le=COUNTER_MAX)
    uptime_s: float = Field(ge=0)
    last_seq: int = Field(ge=0, le=COUNTER_MAX, description="seq of the newest outbox entry")
    outbox_depth: int = Field(
        ge=0, le=COUNTER_MAX, description="events the gateway has not yet confirmed storing"
    )
    outbox_capacity: int = Field(ge=1, le=COUNTER_MAX)
    devices: DeviceStates = Field(default_factory=dict)
    trust_list_age_s: float | None = Field(None, ge=0)
    rss_bytes: int | None = Field(None, ge=0, le=COUNTER_MAX)
    config_serial: ConfigSerial | None = None
    config_refused: ConfigRefusal | None = None
    cpu_percent: float | None = Field(None, ge=0)


UpdateResult = Literal["installed", "rolled-back", "refused", "failed"]
VersionText = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class UpdateReport(Payload):
    """Retained on `update`: what the node's last `gatepost edge update` did (docs/update.md).

    `running_version` is what runs after it: the new version when installed, the old one
    after a rollback, a refusal or a failure.
    """

    node_time: AwareDatetime
    result: UpdateResult
    version: VersionText | None = Field(None, description="the bundle's; none if unreadable")
    running_version: VersionText | None = Field(None, description="none: nothing installed")
    previous_version: VersionText | None = None
    reason: ShortText | None = Field(None, description="why it was refused, failed or rolled back")
