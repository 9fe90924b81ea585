"""The event chain's cost, on and off in one run: the gate's decision commit and gateway ingest.

Gate: what the chain adds to a decision is in its outbox commit (hash the passage's
bytes, keep the head in meta). Two real outboxes on this disk (WAL, synchronous FULL)
take the same decisions in turn, alternating first and second so drift hits both alike:
one as shipped, one with the chain off (no hash, no prev_hash, no head row: the outbox
before the chain). Timed from the decision to the commit's return, p50/p99.

Gateway: the store's `write` of batches of real chained events from many gates, decoded
as ingest decodes them, into a fresh SQLite store each round: as shipped (each event
hashed, its neighbours read and checked), and with the chain check off. Two batch sizes:
ingest.batch_max (2000, a backlog drained) and 300 (live: a few events of each gate per
batch). Rounds alternate; the best of each is kept. The full MQTT path is
`bench.gateway_ingest` (its fleet chains its events): what is measured here is the part
the chain changes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

from bench.common import record
from edge import outbox as outbox_module
from edge.contract import catalogue
from edge.contract.base import Event, chain_hash
from edge.contract.events import Passage
from edge.contract.topics import EventKind, Role, Site, event
from edge.outbox import Batch, Outbox, OutboxError
from gateway.store import SqliteStore
from gateway.store.records import InboundEvent

SCANS = 2000
WARMUP = 200
NODES = 100
EVENTS_PER_NODE = 300
BATCHES = (2000, 300)  # the default ingest.batch_max; a live batch of a busy site
ROUNDS = 5


class Unchained(SqliteStore):
    """The store with the chain check off (what ingest did before the chain)."""

    def _check_chain(self, conn: Any, new: Any) -> list[Any]:
        return []

    def _refork(self, conn: Any, events: Any) -> tuple[list[Any], list[Any]]:
        return [], []


class UnchainedOutbox(Outbox):
    """The outbox's commit as it was before the chain: no head kept in meta."""

    def _commit(self, batch: Batch, reserved: bool) -> None:
        rows = [
            (e.seq, event(self.node, EventKind(e.kind)), payload, int(reserved))
            for e, payload in zip(batch.events, batch.payloads, strict=True)
        ]
        last = batch.events[-1].seq
        try:
            with self._db:
                self._db.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?)", rows)
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", [("last_seq", last)]
                )
        except sqlite3.Error as exc:
            raise OutboxError(str(exc)) from exc
        self._last_seq = last
        self.depth += len(rows)


def passage(ids: dict[str, Any]) -> Passage:
    return Passage(
        **ids, direction="in", outcome="allow", colour="green", credential="health-code",
        temperature_c=36.5, subject_ref="ab" * 32, reasons=(),
    )  # fmt: skip


def decide(outbox: Outbox, chained: bool) -> float:
    """One decision's commit, in ms; the chain off is the hash left out (head stays None)."""
    with patch.object(outbox_module, "chain_hash", chain_hash if chained else _no_hash):
        start = time.perf_counter()
        with outbox.transaction() as batch:
            batch.add(passage(batch.ids(datetime.now(UTC))))
        return 1000 * (time.perf_counter() - start)


def _no_hash(payload: bytes) -> None:
    return None


def gate_rows(work: Path, scans: int) -> list[dict[str, Any]]:
    node = Site("bench").node(Role.GATE, "g01")
    boxes = {True: Outbox(work / "on.db", node), False: UnchainedOutbox(work / "off.db", node)}
    times: dict[bool, list[float]] = {True: [], False: []}
    for n in range(WARMUP + scans):
        for chained in (n % 2 == 0, n % 2 == 1):
            took = decide(boxes[chained], chained)
            if n >= WARMUP:
                times[chained].append(took)
    assert boxes[False].chain_head is None
    assert boxes[True].chain_head is not None
    payload = boxes[True].after(0, 1)[0].payload
    start = time.perf_counter()
    for _ in range(10_000):
        hashlib.sha256(payload).hexdigest()
    hash_us = 100 * (time.perf_counter() - start)
    for box in boxes.values():
        box.close()
    return [
        {"part": f"gate: decision -> outbox commit, chain {'on' if chained else 'off'}",
         "n": len(values), "p50": f"{statistics.median(values):.3f} ms",
         "p99": f"{statistics.quantiles(values, n=100)[98]:.3f} ms", "events/s": "-"}
        for chained, values in times.items()
    ] + [{"part": f"gate: SHA-256 of one passage ({len(payload)} bytes)", "n": 10_000,
          "p50": f"{hash_us:.2f} µs (mean)", "p99": "-", "events/s": "-"}]  # fmt: skip


def chained_stream(work: Path, nodes: int, per_node: int) -> list[InboundEvent]:
    """Every gate's events as its real outbox publishes them, interleaved as they arrive."""
    by_node = []
    now = datetime.now(UTC)
    for n in range(nodes):
        name = f"g{n:03d}"
        box = Outbox(work / "gates" / f"{name}.db", Site("bench").node(Role.GATE, name))
        with box.transaction() as batch:
            for _ in range(per_node):
                batch.add(passage(batch.ids(now)))
        rows = box.after(0, per_node)
        box.close()
        decoded = [(r, catalogue.decode(r.topic, r.payload).payload) for r in rows]
        by_node.append([
            InboundEvent("bench", name, Role.GATE, event, r.payload, now, r.topic)
            for r, event in decoded
            if isinstance(event, Event)
        ])  # fmt: skip
    return [events[i] for i in range(per_node) for events in by_node]


def ingest_once(path: Path, stream: list[InboundEvent], chained: bool, batch: int) -> float:
    """Events/s of the store's writes of `stream` in batches of `batch`, fresh store."""
    store = (SqliteStore if chained else Unchained)(path)
    items = [
        InboundEvent(i.site, i.node, i.role, i.event, i.raw, i.received_at, i.topic) for i in stream
    ]
    if not chained:
        for item in items:  # no hash computed or stored: the store before the chain
            item.__dict__["sha256"] = None
    start = time.perf_counter()
    for at in range(0, len(items), batch):
        store.write(items[at : at + batch])
    took = time.perf_counter() - start
    faults = store.db.execute("SELECT COUNT(*) FROM events WHERE chain IS NOT NULL").fetchone()
    assert faults[0] == 0, "a whole, honest chain raised chain faults"
    store.close()
    return len(items) / took


def ingest_rows(work: Path, nodes: int, per_node: int, batch: int) -> list[dict[str, Any]]:
    stream = chained_stream(work / str(batch), nodes, per_node)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for n in range(ROUNDS):
        for chained in (n % 2 == 0, n % 2 == 1):
            db = work / f"gateway-{batch}-{n}-{chained}.db"
            rates[chained].append(ingest_once(db, stream, chained, batch))
    return [
        {"part": f"gateway: store.write of {batch}, chain {'on' if chained else 'off'}",
         "n": len(stream), "p50": "-", "p99": "-", "events/s": round(max(values))}
        for chained, values in rates.items()
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=SCANS, help="decisions per outbox")
    parser.add_argument("--nodes", type=int, default=NODES, help="gates in the ingest stream")
    parser.add_argument("--events-per-node", type=int, default=EVENTS_PER_NODE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatepost-bench-", dir=Path.cwd()) as tmp:
        work = Path(tmp)
        rows = gate_rows(work, args.scans)
        for batch in BATCHES:
            rows += ingest_rows(work, args.nodes, args.events_per_node, batch)
    on_off = {row["part"]: row for row in rows}
    gate_on = on_off["gate: decision -> outbox commit, chain on"]["p50"]
    gate_off = on_off["gate: decision -> outbox commit, chain off"]["p50"]
    ingest = {
        str(batch): round(
            on_off[f"gateway: store.write of {batch}, chain on"]["events/s"]
            / on_off[f"gateway: store.write of {batch}, chain off"]["events/s"], 3)
        for batch in BATCHES
    }  # fmt: skip
    record(
        "event_chain", rows, warmup_scans=WARMUP, rounds=ROUNDS,
        gate_p50_on_off=[gate_on, gate_off], ingest_on_over_off_by_batch=ingest,
        # Other work on the machine during the run (1, 5, 15 min), to read the noise by.
        load_average=[round(load, 2) for load in os.getloadavg()],
    )  # fmt: skip


if __name__ == "__main__":
    main()
