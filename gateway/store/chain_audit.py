"""The audit of a node's stored event chain, from the store alone (`gatepost gateway audit-chain`).

Per node and outbox life (epoch), in seq order, each stored payload is hashed again and
checked: its seq and id against the row, its hash against the one ingest recorded, its
prev_hash against the payload stored before it, and the rows the reports read (passages,
holds…) against what the payload says. A removed event leaves a gap or a link to nothing,
a changed one a hash or a link that no longer matches, a reordered one a seq that is not
its own, an inserted one two events at one seq. The chain is not a signature: someone who
rewrites every event after a point, consistently, is caught only by a hash kept outside
the store (a printed daily report's prev_hash, the node's own outbox).

Retention (gateway/store/retention.py) changes the store on purpose, and the audit says so
rather than calling it tampering: a scrubbed event (personal fields removed) links through
the hash recorded when it was received, and its content is checked against its rows with
the personal columns left out; a life whose oldest events were purged starts after the
highest seq purged. What a scrub removed cannot be checked any more.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edge.contract.base import chain_hash

Row = tuple[Any, ...]


@dataclass(frozen=True)
class StoredEvent:
    """One row of the events table as stored, and the rows derived from it."""

    event_id: str
    seq: int
    kind: str
    payload: str
    sha256: str | None
    derived: Counter[Row]  # the report tables' rows for this event, as stored
    expected: Counter[Row]  # the same rows as the payload makes them
    scrubbed: bool = False  # personal fields removed by retention: sha256 is the original's

    def link_hash(self) -> str:
        """The hash the next event's prev_hash names: of the payload as received."""
        if self.scrubbed and self.sha256 is not None:
            return self.sha256
        return chain_hash(self.payload.encode())


@dataclass(frozen=True)
class Finding:
    """Something wrong at one seq: `what` is missing, changed, reordered, inserted or broken."""

    seq: int
    what: str
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.what}: {self.detail}"


@dataclass
class LifeAudit:
    """One outbox life of one node: what is stored, its head, and what is wrong."""

    site: str
    node: str
    epoch: int
    events: int = 0
    first_seq: int = 0
    last_seq: int = 0
    head: str | None = None
    chained_from: int | None = None  # the seq the chain starts at, if it has started
    scrubbed: int = 0  # events whose personal fields retention removed
    purged_through: int = 0  # retention deleted this life's events up to this seq
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        where = f"{self.site}/{self.node} outbox life {self.epoch}"
        chained = f"chained from seq {self.chained_from}" if self.chained_from else "no chain"
        head = f"head {self.head} at seq {self.last_seq}" if self.head else "no events"
        state = "OK" if self.ok else f"{len(self.findings)} problem(s)"
        kept = ""
        if self.purged_through:
            kept += f"; purged by retention through seq {self.purged_through}"
        if self.scrubbed:
            kept += f"; {self.scrubbed} scrubbed of personal fields (linked by received hash)"
        return (
            f"{where}: {state}: {self.events} events, seqs {self.first_seq}-{self.last_seq} "
            f"({chained}), {head}{kept}"
        )


def audit_life(
    site: str, node: str, epoch: int, events: Iterable[StoredEvent], stored_up_to: int = 0,
    *, purged_through: int = 0,
) -> LifeAudit:  # fmt: skip
    """Check one outbox life's events, read one by one in seq order (a life can be large).

    Args:
        stored_up_to: the highest seq the store's own marks say it held in this life
            (0 when unknown): events past the last one stored were removed from the end.
        purged_through: the highest seq retention deleted in this life (0: none): seqs up
            to it may be gone, and the first one kept may link to one of them.
    """
    audit = LifeAudit(site, node, epoch, purged_through=purged_through)
    found = audit.findings
    before: list[tuple[StoredEvent, dict[str, Any]]] = []
    last: StoredEvent | None = None
    for seq, group in itertools.groupby(events, key=lambda e: e.seq):
        here = list(group)
        if last is None:
            audit.first_seq = seq
        gap = (1 if last is None else audit.last_seq + 1, seq - 1)
        if gap[0] <= gap[1]:
            before = []
            if max(gap[0], purged_through + 1) <= gap[1]:  # not all of it purged
                found.append(_missing(max(gap[0], purged_through + 1), gap[1]))
        if len(here) > 1:
            ids = ", ".join(e.event_id for e in here)
            found.append(Finding(seq, "inserted", f"{len(here)} different events ({ids})"))
        current = [(event, _checked(event, found)) for event in here]
        audit.scrubbed += sum(event.scrubbed for event in here)
        for _, body in current:
            _link(seq, body, before, audit, found, first=last is None and seq > purged_through + 1)
        before, last = current, here[-1]
        audit.events += len(here)
        audit.last_seq = seq
    if last is not None:
        audit.head = last.link_hash()
    if stored_up_to > audit.last_seq:
        found.append(
            Finding(audit.last_seq + 1, "missing",
                    f"seqs {audit.last_seq + 1}-{stored_up_to} were stored and are gone")
        )  # fmt: skip
    return audit


def _missing(first: int, last: int) -> Finding:
    if first == last:
        return Finding(first, "missing", "no event stored at this seq")
    return Finding(first, "missing", f"seqs {first}-{last} are not stored")


def _checked(event: StoredEvent, found: list[Finding]) -> dict[str, Any]:
    """The payload's fields, after checking them against the row they are stored in."""
    try:
        body: dict[str, Any] = json.loads(event.payload)
    except ValueError:
        found.append(Finding(event.seq, "changed", f"{event.event_id}: payload is not JSON"))
        return {}
    if body.get("seq") != event.seq:
        found.append(
            Finding(event.seq, "reordered",
                    f"{event.event_id} is stored at seq {event.seq}; its payload says "
                    f"seq {body.get('seq')}")
        )  # fmt: skip
    if body.get("event_id") != event.event_id or body.get("kind", event.kind) != event.kind:
        found.append(Finding(event.seq, "changed", f"{event.event_id}: payload is another event's"))
    if (
        event.sha256 is not None
        and not event.scrubbed
        and chain_hash(event.payload.encode()) != event.sha256
    ):
        found.append(
            Finding(event.seq, "changed",
                    f"{event.event_id}: payload differs from what was received")
        )  # fmt: skip
    if event.derived != event.expected:
        found.append(
            Finding(event.seq, "changed",
                    f"{event.event_id}: its {event.kind} row differs from its payload")
        )  # fmt: skip
    return body


def _link(
    seq: int, body: dict[str, Any], before: list[tuple[StoredEvent, dict[str, Any]]],
    audit: LifeAudit, found: list[Finding], *, first: bool,
) -> None:  # fmt: skip
    prev_hash = body.get("prev_hash")
    if prev_hash is not None and audit.chained_from is None:
        audit.chained_from = seq - 1 if before and before[0][1].get("prev_hash") is None else seq
    if first or not before:
        if prev_hash is not None and first:
            found.append(Finding(seq, "missing", "it links to an event that is not stored"))
        return
    if prev_hash is None:
        if any(b.get("prev_hash") is not None for _, b in before):
            found.append(Finding(seq, "broken", "no prev_hash after the chain had started"))
        return
    if prev_hash not in {e.link_hash() for e, _ in before}:
        found.append(
            Finding(seq, "broken",
                    f"does not link to seq {seq - 1}: one of them was changed, or one inserted")
        )  # fmt: skip
