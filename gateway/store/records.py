"""What the store keeps and returns: the rows of each resource, as the API shows them."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.contract.base import Colour, Event, chain_hash
from edge.contract.events import CheckpointCounts, Direction, Outcome
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import AlertKind, Role

AlarmState = Literal["raised", "acknowledged", "cleared"]
Severity = Literal["info", "warning", "critical"]
AccessRole = Literal["command", "depot", "registrar", "admin"]
ACCESS_ROLES: tuple[AccessRole, ...] = ("command", "depot", "registrar", "admin")


# Ingest asks for each event's node time twice and a chunk's receipt time once per event.
@functools.lru_cache(maxsize=8192)
def utc_text(at: datetime) -> str:
    """A time as stored: UTC, microseconds always written, so text order is time order."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


# --- what ingest hands the store -------------------------------------------------


@dataclass(frozen=True)
class InboundEvent:
    """A valid event from a known node, as received (raw is the payload's exact bytes)."""

    site: str
    node: str
    role: Role
    event: Event
    raw: bytes
    received_at: datetime
    topic: str = ""
    # The hash of the exact bytes: what the node's next event names as `prev_hash`. Made
    # here, not on first use: every event's is read, and a cached_property takes a lock
    # on each read (Python 3.11), which cost more than the hash itself.
    sha256: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", chain_hash(self.raw))


@dataclass(frozen=True)
class InboundPresence:
    """A birth, death or heartbeat from a known node, as received."""

    site: str
    node: str
    role: Role
    payload: Birth | Death | Health
    received_at: datetime
    retained: bool = False  # a stored birth/death replayed on subscribe: not live
    topic: str = ""
    raw: bytes = b""

    @property
    def skew_s(self) -> float | None:
        """Node clock minus gateway clock, from a heartbeat only.

        A heartbeat is QoS 0, which the broker does not keep for a gateway that is away;
        a birth may have waited in the gateway's session for the whole outage.
        """
        if not isinstance(self.payload, Health):
            return None
        return (self.payload.node_time - self.received_at).total_seconds()


@dataclass(frozen=True)
class Written:
    """What one stored batch changed."""

    events: list[InboundEvent]  # new to the store (a redelivered one is not here)
    presence: list[InboundPresence]  # applied (a will of an ended session is not here)
    alarms: list[AlarmRecord]  # opened by the new events, in the same transaction
    marks: list[StoredMark] = field(default_factory=list)  # receipts now due
    quarantined: list[Quarantined] = field(default_factory=list)  # seqs not believed
    chain: list[ChainFault] = field(default_factory=list)  # links that did not hold


@dataclass(frozen=True)
class StoredMark:
    """How far the store holds one node's outbox: every seq up to `stored_seq`."""

    site: str
    node: str
    role: str
    outbox_id: str
    stored_seq: int


@dataclass(frozen=True)
class DeadLetter:
    """A message the gateway could not accept, kept with the reason.

    `payload` is the whole message; the store keeps a prefix of it, with its size and
    SHA-256 (`IngestLimits.dead_letter_keep_bytes`).
    """

    topic: str
    payload: bytes
    reason: str
    received_at: datetime


ChainFaultKind = Literal["break", "fork", "start"]


@dataclass(frozen=True)
class ChainFault:
    """What ingest found at one link of a node's event chain.

    `break`: an event's prev_hash is not the hash of the stored event before it (or the
    stored event after it does not name this one), named by the later event's seq.
    `fork`: a second, different event for a seq already stored (another event_id, or the
    same one with other bytes). `start`: a new chain after an earlier one (the node lost
    its state): not wrong, but for a person to know.
    """

    site: str
    node: str
    what: ChainFaultKind
    seq: int
    event_id: str


@dataclass(frozen=True)
class Quarantined:
    """A seq too far past its node's contiguous mark to be believed: kept apart as a dead
    letter (`letter`), never counted nor moving the mark, and alarmed (`seq-jump`)."""

    site: str
    node: str
    what: Literal["event", "heartbeat", "birth"]
    seq: int
    mark: int
    letter: DeadLetter
    item: InboundEvent | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of_event(cls, item: InboundEvent, mark: int, jump_max: int) -> Quarantined:
        seq = item.event.seq
        reason = (
            f"implausible seq: {seq} is {seq - mark} past the contiguous mark {mark} of "
            f"{item.site}/{item.node} (ingest.seq_jump_max {jump_max}); quarantined, not stored"
        )
        letter = DeadLetter(item.topic, item.raw, reason, item.received_at)
        return cls(item.site, item.node, "event", seq, mark, letter, item)

    @classmethod
    def of_claim(
        cls, item: InboundPresence, what: Literal["heartbeat", "birth"], seq: int, mark: int,
        jump_max: int,
    ) -> Quarantined:  # fmt: skip
        reason = (
            f"implausible seq: the {what} claims {seq}, {seq - mark} past the contiguous mark "
            f"{mark} of {item.site}/{item.node} (ingest.seq_jump_max {jump_max}); ignored"
        )
        letter = DeadLetter(item.topic, item.raw, reason, item.received_at)
        return cls(item.site, item.node, what, seq, mark, letter)


# A dead letter is evidence, not an archive: 65 MB of junk once grew the store by 150 MB.
# The first KiB of a payload shows what it was (a passage is about 400 bytes), its size and
# hash identify it, and at most this many are kept, the oldest dropped first.
DEAD_LETTER_KEEP_BYTES = 1024
DEAD_LETTERS_MAX = 10_000
# How far past a node's contiguous mark a seq may be and still be believed. A node that
# speaks receipts sends at most its unconfirmed_window (10,000 by default) past the last
# receipt, and no node holds more than its outbox's capacity plus its fault headroom
# (100,100 by default) unsent: twice that leaves room; 900,001 after 11 was a forgery.
SEQ_JUMP_MAX = 200_000


@dataclass(frozen=True)
class IngestLimits:
    """How much the store keeps of what it refuses (ingest passes the config's values)."""

    dead_letters_max: int = DEAD_LETTERS_MAX
    dead_letter_keep_bytes: int = DEAD_LETTER_KEEP_BYTES
    seq_jump_max: int = SEQ_JUMP_MAX


DEFAULT_LIMITS = IngestLimits()


# --- rows ------------------------------------------------------------------------


class Record(BaseModel):
    """A row as the API returns it."""

    model_config = ConfigDict(frozen=True)


class NodeRecord(Record):
    site: str
    node: str
    role: Role
    online: bool = Field(description="birth seen and neither death nor missed heartbeats since")
    first_seen: datetime | None = Field(None, description="gateway time of its first presence")
    last_seen: datetime | None = Field(None, description="gateway time of the last message")
    offline_reason: str | None = Field(
        None, description="lost (Last Will), shutdown, heartbeat (missed), or none"
    )
    session: int | None = None
    version: str | None = None
    config_hash: str | None = None
    config_serial: int | None = Field(
        None, description="serial of the signed node config it runs; 0: its config file only"
    )
    devices: dict[str, str] = Field(default_factory=dict)
    heartbeat_s: int | None = None
    trust_list_age_s: float | None = Field(
        None, description="age of the node's trust list when it last reported it"
    )
    trust_list_age_at: datetime | None = Field(None, description="when it reported that age")
    clock_skew_s: float | None = Field(None, description="node clock minus gateway clock")
    outbox_depth: int | None = None
    last_seq: int | None = Field(None, description="newest seq the node reported having")
    seq_contiguous: int = Field(description="every seq up to this one has arrived")
    seq_max: int = Field(description="highest seq that has arrived")
    gap_since: datetime | None = Field(None, description="since when a seq is missing")
    volunteers_on_duty: list[str] = Field(
        default_factory=list, description="whose newest shift here is a start"
    )

    def trust_age_now(self, now: datetime) -> float | None:
        """The trust list's age at `now`: the reported age grown by the time since."""
        if self.trust_list_age_s is None or self.trust_list_age_at is None:
            return None
        return self.trust_list_age_s + max(0.0, (now - self.trust_list_age_at).total_seconds())


class PassageRecord(Record):
    event_id: str
    site: str
    node: str
    seq: int
    node_time: datetime
    direction: Direction
    subject: Literal["person", "vehicle"]
    outcome: Outcome
    colour: Colour | None
    credential: str
    reasons: list[str]
    temperature_c: float | None
    fever: bool
    occupants: int | None
    subject_ref: str | None = Field(None, description="personal: registrar and admin only")
    vehicle_plate: str | None = Field(None, description="personal: registrar and admin only")


class HoldRecord(Record):
    event_id: str
    site: str
    node: str
    seq: int
    node_time: datetime
    passage_id: str
    reasons: list[str]
    colour: Colour | None
    temperature_c: float | None
    resolution: str | None = Field(None, description="none while the hold is open")
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolved_temperature_c: float | None = None
    registration_id: str | None = None
    subject_ref: str | None = Field(None, description="personal: registrar and admin only")
    note: str | None = Field(None, description="personal: registrar and admin only")


class RegistrationRecord(Record):
    event_id: str
    site: str
    node: str
    node_time: datetime
    name: str
    id_hash: str
    id_last4: str
    phone: str | None
    origin: str | None
    destination: str | None
    reason: str | None
    vehicle_plate: str | None
    hold_id: str | None
    volunteer_id: str


class DisinfectionRecord(Record):
    event_id: str
    site: str
    node: str
    node_time: datetime
    volunteer_id: str
    area: str
    agent: str | None


class NodeFaultRecord(Record):
    """A device fault a node raised and has not cleared (the newest raise of it)."""

    site: str
    node: str
    device: str = Field(description="scanner, thermometer, outbox, trust-list, config, …")
    fault: str = Field(description="timeout, unplugged, full, refused, …")
    detail: str | None = Field(None, description="the node's words for a technician")
    raised_at: datetime = Field(description="node time of its newest raise")
    seq: int


class DailyReportRecord(Record):
    """A gate's own daily report as it sent it."""

    event_id: str
    site: str
    node: str
    day: date
    period_start: datetime
    period_end: datetime
    counts: CheckpointCounts
    zero_report: bool
    received_at: datetime
    seq: int = 0
    prev_hash: str | None = None  # the gate's chain head at seq - 1: what the report pins


class AlarmRecord(Record):
    alarm_id: str
    kind: AlertKind
    site: str
    node: str | None
    subject: str = Field(description="what the alarm is about within the node, e.g. a hold")
    severity: Severity
    state: AlarmState
    message: str
    raised_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    escalated_at: datetime | None = Field(
        None, description="when its one escalation went out (not acknowledged in time)"
    )


class DeadLetterRecord(Record):
    id: int
    received_at: datetime
    topic: str
    payload: str = Field(
        description="its first bytes (store.dead_letter_keep_bytes), decoded as UTF-8 with "
        "replacement"
    )
    size: int = Field(description="the whole payload's size in bytes")
    sha256: str = Field(description="SHA-256 of the whole payload, hex")
    reason: str


class TokenRecord(Record):
    name: str
    role: AccessRole
    created_at: datetime
    revoked_at: datetime | None = None
    depots: tuple[str, ...] = Field(
        (), description="role depot: the depots it may see, as site/node; other roles: none"
    )


class AuditEntry(Record):
    at: datetime
    who: str
    role: AccessRole
    action: str
    resource: str
    detail: str | None = None


@dataclass(frozen=True)
class EventQuery:
    """Filters shared by the event lists; None means any."""

    site: str | None = None
    node: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = True


@dataclass(frozen=True)
class PassageFilter:
    """Passage-only filters, beside EventQuery."""

    outcome: Outcome | None = None
    colour: Colour | None = None
    subject: Literal["person", "vehicle"] | None = None


@dataclass(frozen=True)
class AlarmDraft:
    """An alarm to raise: (kind, site, node, subject) names the condition."""

    kind: AlertKind
    site: str
    node: str | None
    subject: str
    severity: Severity
    message: str
