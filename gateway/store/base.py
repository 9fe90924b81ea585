"""The storage interface the gateway codes against, one protocol per domain; SQLite implements all.

Nothing outside `gateway/store/` writes SQL. Each part of the gateway takes the narrowest
protocol it uses (the alarm book an `AlarmStore`, the excursion rules a `DepotStore`), so a
backend (the PostgreSQL one of #16) is built and tested one domain at a time, and a test
double implements just the domain it stands in for. `Store` is their union, for what needs
everything (the service that owns the store, the HTTP API's context).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Protocol

from edge.contract.events import CheckpointCounts, DepotReading
from edge.errors import GatepostError
from gateway.store.chain_audit import LifeAudit
from gateway.store.depot_months import DroppedMonth
from gateway.store.depot_records import (
    DepotReadingRecord,
    DepotResolution,
    DepotRollupRecord,
    ScaleReadingRecord,
)
from gateway.store.excursions import Excursion
from gateway.store.records import (
    DEFAULT_LIMITS,
    AccessRole,
    AlarmDraft,
    AlarmRecord,
    AlarmState,
    AuditEntry,
    DailyReportRecord,
    DeadLetter,
    DeadLetterRecord,
    DisinfectionRecord,
    EventQuery,
    HoldRecord,
    InboundEvent,
    InboundPresence,
    IngestLimits,
    NodeFaultRecord,
    NodeRecord,
    PassageFilter,
    PassageRecord,
    RegistrationRecord,
    StoredMark,
    TokenRecord,
    Written,
)
from gateway.store.rollups import Purged, Rolled, Series


class UnknownAlarm(LookupError):
    """No alarm has that id."""


class StoreUnavailable(GatepostError):
    """The store cannot be reached or written now (a full disk, a locked file, a refused
    connection); nothing of the batch was stored, so retry the same batch later.

    Ingest retries it with back-off and acknowledges nothing meanwhile; any other error
    from `write` is about the batch itself or a fault in the store code.
    """


# The alarms a newly stored event opens (a fever case, a red code), if any.
Cases = Callable[[InboundEvent], Sequence[AlarmDraft]]


class IngestStore(Protocol):
    """What ingest writes: node batches and presence, and the dead letters it refuses."""

    def write(
        self,
        events: Sequence[InboundEvent],
        presence: Sequence[InboundPresence] = (),
        dead: Sequence[DeadLetter] = (),
        cases: Cases | None = None,
        limits: IngestLimits = DEFAULT_LIMITS,
    ) -> Written:
        """Store one batch in one transaction.

        Idempotent by event_id: a redelivered event is not stored twice. Presence
        updates the node (a birth with a lower session than known starts a new seq
        epoch: the node lost its state; a death or heartbeat of an ended session is not
        applied). The seq bookkeeping (contiguous, max, since when a gap is open) of
        every node in the batch is updated; a node's first events set its start. The
        alarms `cases` gives for each new event are opened in the same transaction. Each
        new event's `prev_hash` is checked against the node's stored neighbours in its
        epoch: what does not link, or forks a stored seq, is stored all the same, marked,
        and returned in `Written.chain`.
        Dead letters keep a prefix of their payload with its size and hash, and the
        oldest are dropped past `limits.dead_letters_max` (and counted).
        """
        ...

    def mark_offline(
        self, nodes: Sequence[tuple[str, str, datetime | None]], reason: str
    ) -> list[tuple[str, str]]:
        """Mark (site, node, last_seen as read) offline unless heard from since; those marked."""
        ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRecord]: ...

    def dead_letter_count(self) -> int: ...

    def dead_letters_dropped(self) -> int:
        """How many dead letters were dropped past the cap, ever (oldest first)."""
        ...


class MarkStore(Protocol):
    """How far the store holds each node's outbox (its seq marks), and accepted gaps."""

    def marks(self) -> list[StoredMark]:
        """Every node with a known outbox, and how far the store holds it."""
        ...

    def lagging(self) -> list[tuple[StoredMark, int]]:
        """Nodes known to have sent more than the store holds: (mark, newest seq known)."""
        ...

    def event_seqs(self, site: str, node: str) -> list[int]:
        """The seqs stored for a node in its current epoch, ascending."""
        ...

    def accept_gap(self, site: str, node: str) -> None:
        """Someone accepted a node's missing events as lost: the gap is closed as it is."""
        ...


class ReadStore(Protocol):
    """The nodes and their checkpoint records, as stored: read only."""

    def nodes(self, site: str | None = None) -> list[NodeRecord]: ...

    def node(self, site: str, node: str) -> NodeRecord | None: ...

    def passages(
        self, query: EventQuery, only: PassageFilter | None = None
    ) -> list[PassageRecord]: ...

    def holds(self, query: EventQuery, open_only: bool = False) -> list[HoldRecord]: ...

    def hold(self, event_id: str) -> HoldRecord | None: ...

    def node_faults(
        self, site: str | None = None, node: str | None = None
    ) -> list[NodeFaultRecord]:
        """Device faults the nodes raised and have not cleared, by site, node, device, fault."""
        ...

    def open_holds(self, site: str) -> dict[str, int]:
        """How many holds are still open at each node of the site (nodes with none left out)."""
        ...

    def registrations(self, query: EventQuery) -> list[RegistrationRecord]: ...

    def disinfections(self, query: EventQuery) -> list[DisinfectionRecord]: ...

    def daily_reports(self, site: str, day: date) -> list[DailyReportRecord]: ...

    def counts(
        self, site: str, node: str | None, since: datetime, until: datetime | None = None
    ) -> CheckpointCounts:
        """What the gate(s) counted from `since` (included) to `until` (excluded), by node time.

        The same rules as the gate's own tally (edge.gate.daily.tally).
        """
        ...


class AlarmStore(Protocol):
    """Alarms: opened, acknowledged, cleared and escalated, each change in one transaction."""

    def raise_alarms(
        self, drafts: Sequence[tuple[AlarmDraft, str]], at: datetime
    ) -> list[AlarmRecord]:
        """Open alarms (draft, new alarm id) in one transaction; returns those opened.

        A draft whose condition is already live opens nothing (no duplicates).
        """
        ...

    def live_alarm(
        self, kind: str, site: str, node: str | None, subject: str
    ) -> AlarmRecord | None: ...

    def live_conditions(self, kinds: Sequence[str]) -> set[tuple[str, str, str, str]]:
        """(kind, site, node or "", subject) of every live alarm of `kinds`: for rules run
        every second. Only the kinds a rule raises and clears: a district's live fever
        alarms (thousands, until people acknowledge them) are none of a clock rule's."""
        ...

    def conditions_raised_since(
        self, since: datetime, kinds: Sequence[str]
    ) -> set[tuple[str, str, str, str]]:
        """(kind, site, node or "", subject) of every alarm of `kinds` raised at or after
        `since`, whatever its state now: what a one-off rule already said."""
        ...

    def alarm(self, alarm_id: str) -> AlarmRecord:
        """Raises UnknownAlarm."""
        ...

    def alarms(
        self, states: Sequence[AlarmState] = ("raised", "acknowledged"), limit: int = 200
    ) -> list[AlarmRecord]: ...

    def acknowledge_alarm(self, alarm_id: str, by: str, at: datetime) -> tuple[AlarmRecord, bool]:
        """Acknowledge a raised alarm; the alarm, and whether this call changed it.

        Raises UnknownAlarm; ValueError if it is cleared.
        """
        ...

    def clear_alarm(self, alarm_id: str, by: str, at: datetime) -> tuple[AlarmRecord, bool]:
        """Clear a live alarm; the alarm, and whether this call changed it (two clearing at
        once: only one did). Raises UnknownAlarm."""
        ...

    def open_alarm_count(self) -> int: ...

    def alarms_to_escalate(self, raised_before: datetime) -> list[str]:
        """Ids of alarms raised at or before then, still unacknowledged, never escalated."""
        ...

    def escalate_alarms(self, alarm_ids: Sequence[str], at: datetime) -> list[AlarmRecord]:
        """Mark these alarms escalated at `at` in one transaction; returns those this call
        marked (still raised, not escalated before: a second caller marks none)."""
        ...


class DepotStore(Protocol):
    """Depot nodes' readings and where each zone's excursion conditions stand."""

    def depot_readings(
        self, site: str, node: str, since: datetime, until: datetime, *,
        zone: str | None = None, limit: int = 10_000,
    ) -> list[DepotReadingRecord]:  # fmt: skip
        """A depot's samples, `since` <= at < `until`, of one zone or all; by time, `limit` most."""
        ...

    def scale_readings(
        self, site: str, node: str, since: datetime, until: datetime, *,
        scale: str | None = None, limit: int = 10_000,
    ) -> list[ScaleReadingRecord]:  # fmt: skip
        """Settled weights of a depot's scales (or one), `since` <= at < `until`, by time."""
        ...

    def excursions(self, site: str, node: str) -> dict[tuple[str, str], Excursion]:
        """Where each (zone, condition) of a depot node stands; those never evaluated left out."""
        ...

    def excursions_last_at(self, site: str, node: str) -> datetime | None:
        """The newest reading time evaluated for a depot node (of all its conditions): what
        a replica compares with the state it kept to know whether another stepped it."""
        ...

    def depot_readings_after(
        self, site: str, node: str, zones: Sequence[str], after: datetime
    ) -> list[tuple[DepotReading, datetime]]:
        """A depot node's stored readings of these zones taken after `after`, oldest first,
        each with when its batch arrived."""
        ...

    def save_excursions(self, states: Sequence[Excursion]) -> None:
        """Keep these states (of any nodes) in one transaction; one not newer (`last_at`)
        than the stored state of its zone and condition is not kept."""
        ...

    def zones_last_evaluated(self) -> dict[tuple[str, str, str], datetime]:
        """(site, node, zone) to the `at` of its newest ok reading evaluated by the rules."""
        ...


class DepotRollupStore(Protocol):
    """Depot readings' minute and hour rollups, and the retention of what they replace."""

    def roll_depot_readings(self, limit: int) -> Rolled:
        """Roll up to `limit` readings stored since the last pass (in the order they were
        stored) into their zones' minute and hour rollups, in one transaction: each minute
        they fall in is rolled again from its raw readings (or, once those are deleted, the
        new ones are added to its figures), and their figures are added to each hour's."""
        ...

    def depot_rollup_backlog(self) -> int:
        """How many stored readings are not rolled up yet."""
        ...

    def depot_series(self) -> list[Series]:
        """(site, node, zone) of every zone rolled up so far."""
        ...

    def purge_depot_series(
        self, zones: Sequence[Series], raw_before: datetime, minutes_before: datetime,
        limit: int,
    ) -> Purged:  # fmt: skip
        """Delete these zones' raw readings before `raw_before` once rolled up, and their
        minute rollups before `minutes_before`: one transaction, `limit` rows at most."""
        ...

    def ensure_depot_partitions(self, now: datetime) -> list[str]:
        """PostgreSQL: make the month partitions of raw readings from `now`'s on, ahead."""
        ...

    def drop_depot_month(self, raw_before: datetime) -> DroppedMonth | None:
        """PostgreSQL: drop the oldest month of raw readings all rolled and before `raw_before`."""
        ...

    def depot_rollups(
        self, site: str, node: str, resolution: DepotResolution, since: datetime,
        until: datetime, *, zone: str | None = None, limit: int = 10_000,
    ) -> list[DepotRollupRecord]:  # fmt: skip
        """A depot's minute or hour rollups, `since` <= bucket < `until`, of one zone or
        all; by bucket, `limit` most."""
        ...


class AccessStore(Protocol):
    """API tokens and the audit log of what was done with them."""

    def add_token(
        self, token_hash: str, name: str, role: AccessRole, at: datetime,
        depots: Sequence[str] = (),
    ) -> None:  # fmt: skip
        """Raises ValueError if a token of that name exists. `depots`: the site/node a
        depot token may see (checked by gateway.access.token_depots before)."""
        ...

    def token(self, token_hash: str) -> TokenRecord | None:
        """The live (not revoked) token with that hash."""
        ...

    def tokens(self) -> list[TokenRecord]: ...

    def revoke_token(self, name: str, at: datetime) -> bool: ...

    def audit(self, entry: AuditEntry) -> None: ...

    def audit_log(self, limit: int = 200) -> list[AuditEntry]: ...


class ChainStore(Protocol):
    """The check of every stored event chain against the store's own records."""

    def audit_chain(self, site: str | None = None, node: str | None = None) -> list[LifeAudit]:
        """Check every stored event chain (of one node, if named) from the store alone:
        per node and outbox life, what was removed, changed, reordered or inserted."""
        ...


class RetentionStore(Protocol):
    """Old checkpoint events: personal fields removed first, whole rows later
    (gateway/store/retention.py)."""

    def scrub_personal(self, before: datetime, limit: int) -> int:
        """Remove the personal fields of up to `limit` events received before `before`
        (payload and rows; the hash received stays), in one transaction; how many were
        looked at, 0 when none is left."""
        ...

    def purge_checkpoint_rows(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` events received before `before` with their rows, in one
        transaction; how many, 0 when none is left."""
        ...

    def purge_depot_batches(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` depot reading batches received before `before` whose
        readings are all gone (rolled up, then deleted), in one transaction; how many."""
        ...


class StoreLifecycle(Protocol):
    """Housekeeping and closing, which every backend has."""

    def checkpoint(self) -> None:
        """Housekeeping that must not run inside ingest's commits (SQLite: WAL checkpoint)."""
        ...

    def close(self) -> None: ...


class Store(
    IngestStore,
    MarkStore,
    ReadStore,
    AlarmStore,
    DepotStore,
    DepotRollupStore,
    AccessStore,
    ChainStore,
    RetentionStore,
    StoreLifecycle,
    Protocol,
):
    """Everything the gateway keeps, behind one interface: every domain's protocol."""
