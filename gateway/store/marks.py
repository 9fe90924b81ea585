"""Each node's seq marks in the store: how far it has arrived, gaps, implausible seqs.

Per node and epoch the store keeps `seq_contiguous` (every seq up to it has arrived, or a
person accepted the missing ones as lost), `seq_max` and since when a hole has been open.
A seq far past the contiguous mark is not a gap but a forgery or a broken node: one event
at seq 900,001 once opened a hole no real event could fill, and clearing its alarm by hand
moved the mark where no later loss showed. Such seqs are quarantined instead, and a mark a
person moved is moved back as soon as the node shows it still had what was given up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NamedTuple

from gateway.store.records import InboundEvent, InboundPresence, Quarantined, utc_text
from gateway.store.sql import Connection


class SeqState(NamedTuple):
    """A node's seq bookkeeping, as the nodes table has it."""

    epoch: int
    contiguous: int
    seq_max: int
    gap_since: str | None
    outbox_id: str | None
    # The contiguous mark before a person accepted a gap as lost; None once the node has
    # shown what it still had (or nobody accepted anything).
    accepted_from: int | None

    @property
    def established(self) -> bool:
        """Whether the mark is known: from a birth naming the outbox, or from events."""
        return self.outbox_id is not None or self.seq_max > 0 or self.epoch > 0


# What a node not yet in `nodes` has once its row is inserted (the columns' defaults).
UNSEEN = SeqState(0, 0, 0, None, None, None)
_STATE_COLUMNS = "epoch, seq_contiguous, seq_max, gap_since, outbox_id, accepted_from"
# Nodes per query of several nodes' rows: a few variables each, well under SQLite's
# default limit of 32,766.
NODE_CHUNK = 2000


def seq_state(conn: Connection, site: str, node: str) -> SeqState:
    row = conn.execute(
        f"SELECT {_STATE_COLUMNS} FROM nodes WHERE site=? AND node=?",  # noqa: S608
        (site, node),
    ).fetchone()
    return SeqState(*row)


def rows_of_nodes(
    conn: Connection, select: str, keyed: Sequence[tuple[Any, ...]],
    columns: str = "site, node", types: str = "text, text",
) -> Iterator[Any]:  # fmt: skip
    """Rows of `select` joined to `wanted(<columns>)`, one row of `keyed` each.

    One statement per chunk, not one per node: a batch names up to thousands of nodes,
    and on PostgreSQL each statement is a round trip. `select` reads `wanted w` and
    follows the chunk's `WITH wanted(...) AS (...)`: a VALUES list on SQLite; on
    PostgreSQL one array per column (`types`: their SQL types), so the statement is the
    same text whatever the count (psycopg parses a statement of more than 50 parameters
    anew on every call, and that cost more than the query).
    """
    if not keyed:
        return
    if getattr(conn, "engine", "sqlite") == "postgresql":
        arrays = ", ".join(f"CAST(? AS {kind}[])" for kind in types.split(", "))
        sql = f"WITH wanted({columns}) AS (SELECT * FROM unnest({arrays})) {select}"  # noqa: S608
        # fetchall: psycopg checks its result on every row an iterator takes.
        params = [list(column) for column in zip(*keyed, strict=True)]
        yield from conn.execute(sql, params).fetchall()
        return
    width = columns.count(",") + 1
    row = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(keyed), NODE_CHUNK):
        chunk = keyed[start : start + NODE_CHUNK]
        values = ",".join(row for _ in chunk)
        sql = f"WITH wanted({columns}) AS (VALUES {values}) {select}"
        yield from conn.execute(sql, [value for key in chunk for value in key])


def seq_states(
    conn: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], SeqState]:
    """The seq state of each of these nodes in one read; UNSEEN for one not in `nodes`.

    Only the batch's nodes: reading the whole table each batch cost in proportion to the
    fleet, not to the batch.
    """
    states = dict.fromkeys(keys, UNSEEN)
    select = (
        "SELECT n.site, n.node, n.epoch, n.seq_contiguous, n.seq_max, n.gap_since, "
        "n.outbox_id, n.accepted_from FROM wanted w JOIN nodes n "
        "ON n.site = w.site AND n.node = w.node"
    )
    for site, node, *state in rows_of_nodes(conn, select, sorted(keys)):
        states[(site, node)] = SeqState(*state)
    return states


class PendingMark(NamedTuple):
    """A node's mark to store, once the events beyond it have been walked over."""

    key: tuple[str, str]
    state: SeqState
    arrived: datetime
    walk: bool
    # Seqs this batch has just stored for the node (in `state.epoch`): walked over in
    # memory, so only what lies beyond them is read back.
    stored_now: frozenset[int] = frozenset()


class SeqMarks:
    """Seq marks of SqlStore (mixed in; runs inside the store's write transaction)."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _plausible(
        self, new: list[InboundEvent], states: dict[tuple[str, str], SeqState],
        known: set[tuple[str, str]], jump_max: int,
    ) -> tuple[list[InboundEvent], list[Quarantined]]:  # fmt: skip
        """Split off the events whose seq is more than `jump_max` past their node's mark.

        The mark grows with the batch's own run, so a backlog drained in one batch is
        plausible however long. A node whose mark is not known yet (not in `known`, no
        outbox named) starts where its first events are, as `_advance_seq` has it.
        `states`: each node's state as `seq_states` read it in this transaction.
        """
        by_node: dict[tuple[str, str], list[InboundEvent]] = defaultdict(list)
        for item in new:
            by_node[(item.site, item.node)].append(item)
        quarantined: list[Quarantined] = []
        for (site, node), items in by_node.items():
            state = states[(site, node)]
            if (site, node) not in known and state.epoch == 0 and state.outbox_id is None:
                mark = min(item.event.seq for item in items) - 1
            else:
                mark = state.contiguous
            for item in sorted(items, key=lambda i: i.event.seq):
                seq = item.event.seq
                if seq > mark + jump_max:
                    quarantined.append(Quarantined.of_event(item, mark, jump_max))
                elif seq == mark + 1:
                    mark = seq
        if not quarantined:
            return new, []
        out = {id(q.item) for q in quarantined}
        return [item for item in new if id(item) not in out], quarantined

    def _advance_seq(
        self, key: tuple[str, str], state: SeqState, items: list[InboundEvent], *, first: bool
    ) -> PendingMark:
        """The node's new mark after these events (`state`: as stored before them), to be
        stored by `_set_marks` with every other node's of the batch."""
        seqs = [item.event.seq for item in items]
        # A gap opens when its events arrived, by the gateway's clock of receipt.
        arrived = max(item.received_at for item in items)
        contiguous, seq_max = state.contiguous, max(state.seq_max, *seqs)
        accepted_from = state.accepted_from
        if first and state.epoch == 0 and state.outbox_id is None:
            # A node that does not name its outbox (one from before receipts, or a load
            # generator) and was already running: what came before is not a gap of
            # ours. A node that names it says in its birth what it holds instead.
            contiguous = min(seqs) - 1
        if accepted_from is not None and (
            inside := [seq for seq in seqs if accepted_from < seq <= contiguous]
        ):
            # A person accepted these seqs as lost, and the node is still sending them:
            # the mark was moved past events that exist (a forged seq far ahead made the
            # "gap", or it was cleared too soon). It goes back to them, and what the node
            # sends from here counts again, new gaps included.
            contiguous, seq_max, accepted_from = min(inside) - 1, max(seqs), None
        state = state._replace(contiguous=contiguous, seq_max=seq_max, accepted_from=accepted_from)
        return PendingMark(key, state, arrived, contiguous + 1 in seqs, frozenset(seqs))

    def _set_mark(
        self, conn: Connection, key: tuple[str, str], state: SeqState,
        now: datetime, *, walk: bool,
    ) -> None:  # fmt: skip
        """Store a node's contiguous mark, first walking it over what arrived beyond it."""
        self._set_marks(conn, [PendingMark(key, state, now, walk)])

    def _set_marks(self, conn: Connection, pending: Sequence[PendingMark]) -> None:
        """Store nodes' contiguous marks, first walking each over what arrived beyond it.

        One read of the stored seqs beyond every walking node's mark and one
        `executemany` of the updates, not three statements per node.
        """
        # Only an arrival right after the contiguous run can extend it; the walk then
        # goes forward over what had arrived out of order. It goes over the batch's own
        # seqs first: in a drain that is the whole walk, and reading them back cost a
        # row each.
        beyond: dict[tuple[str, str], list[int]] = defaultdict(list)
        start: dict[tuple[str, str], int] = {}
        for mark in pending:
            if mark.walk:
                contiguous = mark.state.contiguous
                while contiguous + 1 in mark.stored_now:
                    contiguous += 1
                start[mark.key] = contiguous
        walking = [(*p.key, p.state.epoch, start[p.key]) for p in pending if p.walk]
        select = (
            "SELECT e.site, e.node, e.seq FROM wanted w JOIN events e ON e.site = w.site "
            "AND e.node = w.node AND e.epoch = w.epoch AND e.seq > w.after"
        )
        wanted = ("site, node, epoch, after", "text, text, bigint, bigint")
        for site, node, seq in rows_of_nodes(conn, select, walking, *wanted):
            beyond[(site, node)].append(seq)
        updates = []
        for key, state, now, *_ in pending:
            _, contiguous, seq_max, gap_since, _, accepted_from = state
            contiguous = start.get(key, contiguous)
            for seq in sorted(beyond.get(key, ())):
                if seq == contiguous + 1:
                    contiguous = seq
                elif seq > contiguous + 1:
                    break
            seq_max = max(seq_max, contiguous)
            if contiguous >= seq_max:
                gap_since = None
            elif gap_since is None:
                gap_since = utc_text(now)
            updates.append((contiguous, seq_max, gap_since, accepted_from, *key))
        conn.executemany(
            "UPDATE nodes SET seq_contiguous=?, seq_max=?, gap_since=?, accepted_from=? "
            "WHERE site=? AND node=?",
            updates,
        )

    def _anchor(
        self, conn: Connection, item: InboundPresence, outbox_id: str, confirmed: int,
        *, first: bool, jump_max: int,
    ) -> Quarantined | None:  # fmt: skip
        """A birth names the node's outbox and says what it no longer holds.

        Events at or below `confirmed` were confirmed stored (by this store, or one
        before it) and are gone from the node: there is nothing to wait for below it.
        Everything above it the node still holds, so where the outbox is named for the
        first time the mark starts exactly there (a guess made from the first events
        seen would confirm events that went to nobody), and walks over what is stored.
        A known outbox whose birth claims far more than this store ever confirmed is
        not believed: the claim is quarantined and the mark stays.
        """
        key = (item.site, item.node)
        conn.execute("UPDATE nodes SET outbox_id=? WHERE site=? AND node=?", (outbox_id, *key))
        state = seq_state(conn, *key)
        if not first and confirmed > state.contiguous + jump_max:
            return Quarantined.of_claim(item, "birth", confirmed, state.contiguous, jump_max)
        if first or confirmed > state.contiguous:
            self._set_mark(conn, key, state._replace(contiguous=confirmed), item.received_at,
                           walk=True)  # fmt: skip
        return None

    def _plausible_last_seq(
        self, conn: Connection, item: InboundPresence, last_seq: int, jump_max: int
    ) -> Quarantined | None:
        """A heartbeat's newest seq far past the mark is not believed (nor kept)."""
        state = seq_state(conn, item.site, item.node)
        if state.established and last_seq > state.contiguous + jump_max:
            return Quarantined.of_claim(item, "heartbeat", last_seq, state.contiguous, jump_max)
        return None

    def accept_gap(self, site: str, node: str) -> None:
        # The mark before is kept: an event the node sends later inside the accepted
        # range moves the mark back (see _advance_seq), so a clear never hides a loss.
        with self._transaction() as conn:
            conn.execute(
                "UPDATE nodes SET accepted_from = COALESCE(MIN(accepted_from, seq_contiguous), "
                "seq_contiguous), seq_max = MAX(seq_max, COALESCE(last_seq, 0)), "
                "seq_contiguous = MAX(seq_max, COALESCE(last_seq, 0)), gap_since = NULL "
                "WHERE site=? AND node=? AND seq_contiguous < MAX(seq_max, COALESCE(last_seq, 0))",
                (site, node),
            )
