"""What the gateway's store holds per passage and per depot reading, on SQLite and PostgreSQL.

Each engine gets a fresh store (migrated to the newest schema), and through the store's
real `write`, in ingest-sized batches:
- `--passages` checkpoint passages from 100 gates as a gate sends them (chained: each
  names its predecessor's hash), in the crowd simulator's mix (simulators/crowd.py): a
  vehicle for every 20 people (with a plate and 2-4 occupants), a health code's keyed
  subject_ref on the people, 4 % fevers held and resolved, a registration for 1 % of
  people; the holds, resolutions and registrations are counted in "per passage";
- `--batches` depot batches of 10 sensors (a depot node's bus, one reading each: the
  DESIGN.md rate is one reading per sensor per 10 s).
Then the bytes each table and its indexes take: SQLite from `dbstat` (pages in use,
after a WAL checkpoint), PostgreSQL from pg_table_size + pg_indexes_size (heap, TOAST
and indexes; insert-only, so no dead rows), each minus the same empty store's. The
figures are per row of what a year keeps; docs/gateway.md "Retention and size" turns
them into a district's bytes per day.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import record
from edge.contract.base import Event, chain_hash, new_event_id
from edge.contract.catalogue import encode
from edge.contract.events import (
    DepotReading,
    DepotReadingBatch,
    Hold,
    HoldResolved,
    Passage,
    Registration,
)
from edge.contract.topics import Role
from gateway.store import SqliteStore
from gateway.store.postgres import PostgresStore
from gateway.store.records import InboundEvent
from gateway.store.sql_store import SqlStore
from simulators.postgres import PrivatePostgres

START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
GATES = 100
SENSORS = 10
BATCH = 500  # events per write: a busy ingest batch
# Tables by what they hold: a passage's share, a depot reading's.
PASSAGE_TABLES = ("events", "passages", "holds", "hold_resolutions", "registrations")
DEPOT_TABLES = ("events", "depot_readings")


class Gates:
    """Gate nodes numbering and chaining their events as an outbox does."""

    def __init__(self, site: str, nodes: int) -> None:
        self.site = site
        self.nodes = [f"g{n:03d}" for n in range(nodes)]
        self.seq: dict[str, int] = defaultdict(int)
        self.head: dict[str, str | None] = defaultdict(lambda: None)

    def event(self, node: str, model: type[Event], at: datetime, **fields: Any) -> InboundEvent:
        self.seq[node] += 1
        event = model(event_id=new_event_id(at), seq=self.seq[node], node_time=at,
                      prev_hash=self.head[node], **fields)  # fmt: skip
        raw = encode(event)
        self.head[node] = chain_hash(raw)
        role = Role.DEPOT if node.startswith("d") else Role.GATE
        return InboundEvent(self.site, node, role, event, raw, at + timedelta(seconds=0.3))


def passage_events(count: int, seed: int = 7) -> Iterator[InboundEvent]:
    """`count` passages in the crowd's mix, with the holds, resolutions and registrations
    they bring."""
    rng = random.Random(seed)
    gates = Gates("north", GATES)
    for n in range(count):
        node, at = gates.nodes[n % GATES], START + timedelta(seconds=n * 0.05)
        ref = hashlib.sha256(f"person-{rng.randrange(10**9)}".encode()).hexdigest()
        if rng.random() < 1 / 21:
            yield gates.event(node, Passage, at, direction=rng.choice(("in", "out")),
                              subject="vehicle", outcome="allow", colour=None,
                              credential="none", temperature_c=36.5, occupants=rng.randint(2, 4),
                              vehicle_plate=f"京A{rng.randrange(10_000, 100_000)}",
                              volunteer_id="v017")  # fmt: skip
            continue
        fever = rng.random() < 0.04
        temperature = round(rng.uniform(37.9, 39.0) if fever else rng.uniform(36.0, 36.9), 1)
        passage = gates.event(
            node, Passage, at, direction=rng.choice(("in", "out")),
            outcome="hold" if fever else "allow", colour="green", credential="health-code",
            reasons=("fever",) if fever else (), temperature_c=temperature, subject_ref=ref,
        )  # fmt: skip
        yield passage
        if fever:
            hold = gates.event(node, Hold, at, passage_id=passage.event.event_id,
                               reasons=("fever",), colour="green", temperature_c=temperature,
                               subject_ref=ref)  # fmt: skip
            yield hold
            yield gates.event(node, HoldResolved, at + timedelta(minutes=3),
                              hold_id=hold.event.event_id, resolution="referred",
                              volunteer_id="v017", temperature_c=temperature,
                              note="observation room 2")  # fmt: skip
        if rng.random() < 0.01:
            yield gates.event(node, Registration, at, name="张*", id_hash=ref, id_last4="123X",
                              phone="13800138000", origin="武汉", destination="北京朝阳",
                              reason="home", volunteer_id="v017")  # fmt: skip


def depot_events(batches: int) -> Iterator[InboundEvent]:
    """`batches` depot batches of SENSORS readings, nodes taking turns every 10 s."""
    gates = Gates("north", 0)
    nodes = [f"d{n:03d}" for n in range(100)]
    for n in range(batches):
        at = START + timedelta(seconds=n * 0.1)
        readings = tuple(
            DepotReading(sensor=f"z{i}", bus_address=i + 1, at=at, status="ok",
                         temperature_c=round(4.0 + (i + n) % 30 / 10, 1),
                         humidity_pct=round(50.0 + n % 97 / 10, 1))
            for i in range(SENSORS)
        )  # fmt: skip
        yield gates.event(nodes[n % len(nodes)], DepotReadingBatch, at, readings=readings)


def write_all(store: SqlStore, events: Iterator[InboundEvent]) -> dict[str, int]:
    """Write `events` in batches of BATCH; how many of each kind."""
    kinds: dict[str, int] = defaultdict(int)
    batch: list[InboundEvent] = []
    for item in events:
        kinds[item.event.kind] += 1
        batch.append(item)
        if len(batch) == BATCH:
            store.write(batch)
            batch = []
    if batch:
        store.write(batch)
    return dict(kinds)


def sqlite_sizes(store: SqlStore) -> dict[str, int]:
    """Bytes in use per table, its indexes included, and (key "<table>:idx") of which its
    indexes (dbstat, after a checkpoint)."""
    store.checkpoint()
    rows = store._conn().execute(
        "SELECT m.tbl_name, SUM(d.pgsize - d.unused), "
        "SUM(CASE WHEN m.type = 'index' THEN d.pgsize - d.unused ELSE 0 END) FROM dbstat d "
        "JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name"
    )
    return {
        k: int(v) for table, size, idx in rows for k, v in ((table, size), (f"{table}:idx", idx))
    }


def pg_sizes(store: SqlStore) -> dict[str, int]:
    """Bytes per table: heap and TOAST, and its indexes (pg_table_size + pg_indexes_size);
    a partitioned table's (depot_readings) are its partitions' summed."""
    rows = store._conn().execute(
        "SELECT COALESCE(p.relname, c.relname), "
        "SUM(pg_table_size(c.oid) + pg_indexes_size(c.oid)), SUM(pg_indexes_size(c.oid)) "
        "FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
        "LEFT JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace GROUP BY 1"
    )
    return {
        k: int(v) for table, size, idx in rows for k, v in ((table, size), (f"{table}:idx", idx))
    }


def grown(before: dict[str, int], after: dict[str, int], tables: tuple[str, ...]) -> int:
    return sum(after.get(t, 0) - before.get(t, 0) for t in tables)


def measure(
    engine: str, open_fresh: Callable[[str], SqlStore], sizes: Callable[[SqlStore], dict[str, int]],
    passages: int, batches: int,
) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for what, events, tables in (
        ("passage", passage_events(passages), PASSAGE_TABLES),
        ("depot reading", depot_events(batches), DEPOT_TABLES),
    ):
        store = open_fresh(what.replace(" ", "_"))
        try:
            empty = sizes(store)
            kinds = write_all(store, events)
            full = sizes(store)
        finally:
            store.close()
        units = kinds["passage"] if what == "passage" else kinds["reading"] * SENSORS
        row: dict[str, Any] = {"engine": engine, "per": what, "rows": units,
                               "events": sum(kinds.values())}  # fmt: skip
        for table in tables:
            row[f"{table} B"] = round((full.get(table, 0) - empty.get(table, 0)) / units, 1)
        row["of which indexes"] = round(
            grown(empty, full, tuple(f"{t}:idx" for t in tables)) / units, 1
        )
        row["bytes each"] = round(grown(empty, full, tables) / units, 1)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=2_000, help="depot batches of 10")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="store-size-") as work:
        rows += measure("sqlite", lambda name: SqliteStore(Path(work) / f"{name}.db"),
                        sqlite_sizes, args.passages, args.batches)  # fmt: skip
        pg = PrivatePostgres(durable=False)
        pg.start()
        try:
            rows += measure("postgresql", lambda name: PostgresStore(pg.create_database(name)),
                            pg_sizes, args.passages, args.batches)  # fmt: skip
        finally:
            pg.remove()
    # The table's columns differ per row kind: every row gets every column.
    columns = sorted({key for row in rows for key in row}, key=_column_order)
    record("store_size", [{c: row.get(c, "") for c in columns} for row in rows])


def _column_order(column: str) -> int:
    order = ["engine", "per", "rows", "events", *(f"{t} B" for t in PASSAGE_TABLES),
             "depot_readings B", "of which indexes", "bytes each"]  # fmt: skip
    return order.index(column)


if __name__ == "__main__":
    main()
