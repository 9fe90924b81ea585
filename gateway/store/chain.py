"""Each node's event chain in the store: links checked as events are stored.

An event's `prev_hash` names the SHA-256 of the payload before it in the node's outbox.
Ingest checks every new event against its stored neighbours in the same epoch (one
outbox's life): the one before it (does it link to it?), the one after it that arrived
first (does that one link to it?), and any other event already holding its seq (a fork).
What does not hold is stored anyway, marked in `events.chain`, and handed back as a
ChainFault for the alarm rules: losing the evidence would help whoever forged it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from edge.contract.base import Event
from edge.contract.topics import Role
from gateway.store.chain_audit import Finding, LifeAudit, StoredEvent, audit_life
from gateway.store.marks import rows_of_nodes
from gateway.store.records import ChainFault, ChainFaultKind, DeadLetter, InboundEvent
from gateway.store.retention import SCRUBBED_MODELS, mask_personal
from gateway.store.rows import TABLES, Row
from gateway.store.sql import Connection

# The model of each stored kind, to make its report rows again from its payload.
_MODELS: dict[str, type[Event]] = {model.model_fields["kind"].default: model for model in TABLES}
# Each kind's report rows of one event, as stored.
_ROWS_OF: dict[str, str] = {
    kind: f"SELECT {TABLES[model][1]} FROM {TABLES[model][0]} WHERE event_id=?"  # noqa: S608
    for kind, model in _MODELS.items()
}


class Link(NamedTuple):
    """One stored event as its chain sees it."""

    seq: int
    event_id: str
    sha256: str | None
    prev_hash: str | None


class EventChain:
    """Chain checks of SqlStore (mixed in; `_chain_faults` runs inside its write
    transaction, `audit_chain` reads a snapshot)."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def audit_chain(self, site: str | None = None, node: str | None = None) -> list[LifeAudit]:
        """Audit every stored outbox life (of one node, if named), from the stored rows alone.

        Reads one snapshot (a read transaction: WAL lets ingest go on meanwhile), so events
        stored during the audit cannot tear a life in two.
        """
        audits = []
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            nodes = conn.execute(
                "SELECT DISTINCT site, node FROM events WHERE site = COALESCE(?, site) "
                "AND node = COALESCE(?, node) ORDER BY site, node",
                (site, node),
            ).fetchall()
            for found_site, found_node in nodes:
                audits += _audit_node(conn, found_site, found_node)
        finally:
            conn.execute("COMMIT")
        return audits

    def _chain_faults(self, conn: Connection, new: Sequence[InboundEvent]) -> list[ChainFault]:
        """The links of new events that do not hold, checked before they are stored.

        The stored neighbours are read first and the batch's own events added from memory:
        read after the insert, every event of the batch came back as a row. Mark the
        faults with `_mark_chain` once the events are stored.
        """
        by_node: dict[tuple[str, str], list[InboundEvent]] = defaultdict(list)
        for item in new:
            by_node[(item.site, item.node)].append(item)
        stored = _neighbourhoods(conn, by_node)
        for item in new:
            stored[(item.site, item.node)][item.event.seq].append(_link(item))
        faults: list[ChainFault] = []
        for (site, node), items in by_node.items():
            faults += _node_links(conn, site, node, items, stored[(site, node)])
        return faults

    def _mark_chain(self, conn: Connection, faults: Sequence[ChainFault]) -> None:
        """Mark the stored events whose links do not hold (`_chain_faults`)."""
        marks = [(f.what, f.event_id) for f in faults if f.what != "start"]
        if marks:
            conn.executemany("UPDATE events SET chain=? WHERE event_id=?", marks)

    def _refork(
        self, conn: Connection, events: Sequence[InboundEvent]
    ) -> tuple[list[ChainFault], list[DeadLetter]]:
        """Of events already stored by id (redelivered), those with other bytes than the
        stored copy: forks that cannot be stored beside it (the id is taken), kept as dead
        letters instead. The same bytes again are a redelivery, nothing to say.

        One read for all of them: a replica taking over another's unacknowledged window
        gets whole batches again, and a statement each was a round trip each."""
        faults, letters = [], []
        select = (
            "SELECT e.event_id, e.seq, e.sha256 FROM wanted w JOIN events e "
            "ON e.event_id = w.event_id"
        )
        ids = sorted({(item.event.event_id,) for item in events})
        stored = {
            event_id: (seq, sha256)
            for event_id, seq, sha256 in rows_of_nodes(conn, select, ids, "event_id", "text")
        }
        for item in events:
            row = stored.get(item.event.event_id)
            if row is None or row[1] is None or row[1] == item.sha256:
                continue  # new, or a redelivery of the very same bytes
            faults.append(ChainFault(item.site, item.node, "fork", row[0], item.event.event_id))
            reason = (
                f"chain fork: {item.site}/{item.node} event {item.event.event_id} (seq "
                f"{row[0]}) is stored with other bytes; this copy is kept here, not stored"
            )
            letters.append(DeadLetter(item.topic, item.raw, reason, item.received_at))
        if faults:
            conn.executemany(
                "UPDATE events SET chain='fork' WHERE event_id=?", [(f.event_id,) for f in faults]
            )
        return faults, letters


def _neighbourhoods(
    conn: Connection, by_node: dict[tuple[str, str], list[InboundEvent]]
) -> dict[tuple[str, str], dict[int, list[Link]]]:
    """Each node's stored events from one below its lowest new seq to one above its highest,
    in its current epoch (the one _insert stores them in), by seq.

    One query for the whole batch: a live batch holds one or two events of each of many
    nodes, and a query per node cost more than the checks themselves.
    """
    stored: dict[tuple[str, str], dict[int, list[Link]]] = {
        key: defaultdict(list) for key in by_node
    }
    ranges = [
        (site, node, min(i.event.seq for i in items) - 1, max(i.event.seq for i in items) + 1)
        for (site, node), items in by_node.items()
    ]
    select = (
        "SELECT e.site, e.node, e.seq, e.event_id, e.sha256, e.prev_hash FROM wanted w "
        "JOIN nodes n ON n.site = w.site AND n.node = w.node "
        "JOIN events e ON e.site = w.site AND e.node = w.node AND e.epoch = n.epoch "
        "AND e.seq BETWEEN w.low AND w.high"
    )
    wanted = ("site, node, low, high", "text, text, bigint, bigint")
    for site, node, *link in rows_of_nodes(conn, select, ranges, *wanted):
        stored[(site, node)][link[0]].append(Link(*link))
    return stored


def _node_links(
    conn: Connection, site: str, node: str, items: list[InboundEvent],
    stored: dict[int, list[Link]],
) -> list[ChainFault]:  # fmt: skip
    fresh = {item.event.event_id for item in items}
    found: list[tuple[ChainFaultKind, int, str]] = []
    for item in items:
        seq, event_id, prev_hash = item.event.seq, item.event.event_id, item.event.prev_hash
        if any(link.event_id != event_id for link in stored[seq]):
            found.append(("fork", seq, event_id))
        before = stored.get(seq - 1)
        if before and not _links(prev_hash, before):
            found.append(("break", seq, event_id))
        for after in stored.get(seq + 1, ()):
            # An event that arrived before this one (out of order): does it link here?
            if after.event_id not in fresh and not _links(after.prev_hash, [_link(item)]):
                found.append(("break", seq + 1, after.event_id))
        if prev_hash is None and seq == 1 and _had_chain(conn, site, node):
            found.append(("start", seq, event_id))
    return [ChainFault(site, node, what, seq, named) for what, seq, named in found]


def _link(item: InboundEvent) -> Link:
    return Link(item.event.seq, item.event.event_id, item.sha256, item.event.prev_hash)


def _links(prev_hash: str | None, before: list[Link]) -> bool:
    """Whether an event naming `prev_hash` may follow the stored event(s) `before`.

    No prev_hash follows only an event without one either: a node that has started its
    chain never drops it within one outbox (events from before the chain have none).
    """
    if prev_hash is None:
        return all(link.prev_hash is None for link in before)
    return any(link.sha256 == prev_hash for link in before)


def _had_chain(conn: Connection, site: str, node: str) -> bool:
    """Whether the node stored events in an earlier outbox life (so this is not its first)."""
    row = conn.execute(
        "SELECT 1 FROM events WHERE site=? AND node=? "
        "AND epoch < (SELECT epoch FROM nodes WHERE site=? AND node=?) LIMIT 1",
        (site, node, site, node),
    ).fetchone()
    return row is not None


def _audit_node(conn: Connection, site: str, node: str) -> list[LifeAudit]:
    current, seq_max = conn.execute(
        "SELECT epoch, seq_max FROM nodes WHERE site=? AND node=?", (site, node)
    ).fetchone() or (None, 0)
    epochs = [epoch for (epoch,) in conn.execute(
        "SELECT DISTINCT epoch FROM events WHERE site=? AND node=? ORDER BY epoch", (site, node)
    )]  # fmt: skip
    purged = dict(conn.execute(
        "SELECT epoch, seq_through FROM retention_purged WHERE site=? AND node=?", (site, node)
    ).fetchall())  # fmt: skip
    audits = [
        audit_life(site, node, epoch, _stored(conn, site, node, epoch),
                   seq_max if epoch == current else 0, purged_through=purged.get(epoch, 0))
        for epoch in epochs
    ]  # fmt: skip
    audits[-1].findings.extend(_strays(conn, site, node))
    return audits


def _stored(conn: Connection, site: str, node: str, epoch: int) -> Iterator[StoredEvent]:
    """One life's events in seq order, each with its report rows as stored and as made."""
    for event_id, seq, kind, payload, sha256, scrubbed_at in conn.execute(
        "SELECT event_id, seq, kind, payload, sha256, scrubbed_at FROM events "
        "WHERE site=? AND node=? AND epoch=? ORDER BY seq, event_id",
        (site, node, epoch),
    ):
        scrubbed = scrubbed_at is not None
        stored: Counter[Row] = Counter()
        if kind in _ROWS_OF:
            stored.update(
                mask_personal(kind, _plain(row)) if scrubbed else _plain(row)
                for row in conn.execute(_ROWS_OF[kind], (event_id,))
            )
        expected = _expected_rows(site, node, kind, payload, scrubbed=scrubbed)
        yield StoredEvent(event_id, seq, kind, payload, sha256, stored, expected, scrubbed)


def _strays(conn: Connection, site: str, node: str) -> list[Finding]:
    """Report rows of the node with no event of their kind in the log: the event was removed
    and its rows were not, or the row was put there."""
    found = []
    for kind, model in _MODELS.items():
        table, columns, _ = TABLES[model]
        seq = "seq" if " seq," in columns else "0"
        sql = (
            f"SELECT DISTINCT event_id, {seq}, event_id IN (SELECT event_id FROM events) "  # noqa: S608
            f"FROM {table} WHERE site=? AND node=? "
            "AND event_id NOT IN (SELECT event_id FROM events WHERE kind=?)"
        )
        for event_id, at, logged in conn.execute(sql, (site, node, kind)):
            if logged:
                found.append(Finding(at, "inserted", f"a {table} row for {event_id}, "
                                     f"which is not a {kind} event"))  # fmt: skip
            else:
                found.append(
                    Finding(at, "missing", f"{event_id} has {table} rows but no event in the "
                            "log: the event was removed, or the rows put there")
                )  # fmt: skip
    return found


def _expected_rows(
    site: str, node: str, kind: str, payload: str, *, scrubbed: bool = False
) -> Counter[Row]:
    """The rows `payload` makes, as ingest made them (none if it is not a valid event);
    of a scrubbed payload, with its personal columns left out."""
    model = _MODELS.get(kind)
    if model is None:
        return Counter()
    reader = SCRUBBED_MODELS.get(kind, model) if scrubbed else model
    try:
        event: Any = reader.model_validate_json(payload)
    except ValueError:
        return Counter()
    item = InboundEvent(site, node, Role.GATE, event, payload.encode(), datetime.now(UTC))
    rows = (_plain(row) for row in TABLES[model][2](item, event))
    return Counter(mask_personal(kind, row) if scrubbed else row for row in rows)


def _plain(row: Row) -> Row:
    # SQLite gives back a stored True as 1.
    return tuple(int(value) if isinstance(value, bool) else value for value in row)
