"""What SQLite alone costs per stored event: the floor under the gateway's write.

Issue #16 asks for at most 25 µs of CPU per stored event, the whole process. This bench
says how much of that SQLite itself takes, whatever the Python around it does: it runs
the bench fleet's stream through `Store.write` once (SQLite, WAL, synchronous FULL, as
deployed), records the rows each batch stored into its one-row-per-event tables (`events`
and the kind's own table: `passages`, mostly) and replays exactly those statements, batch
by batch, each in its own transaction, on fresh stores:

- as stored: the gateway's schema, every index;
- without the secondary index of `passages` (the 9-column `passages_by_node` the counts
  read): what rollup rows in its place could save at most;
- without any secondary index of those tables (their primary keys stay);
- without the raw payload (an empty text in its place): what keeping the exact bytes costs.

Each replay's thread CPU per event is the minimum over `--rounds` rounds (the machine is
shared; the minimum is the run least disturbed). The rest of the write (node locks, seq
marks, the chain check, alarms, presence) is not replayed: it is the store's Python and a
few statements per batch, and shows in `bench/ingest_profile.py`.

    .venv/bin/python -m bench.sqlite_floor [--nodes 200] [--events-per-node 250]
"""

from __future__ import annotations

import argparse
import gc
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import record
from bench.ingest_profile import Pipeline, config_for, hand_over, read, wire
from gateway.service import GC_YOUNG_THRESHOLD
from gateway.store import SqlStore
from gateway.store.rows import Row
from simulators.fleet import FleetPlan

Statement = tuple[str, list[Row]]  # an INSERT and the rows it stored, one batch's worth


def recorded_batches(plan: FleetPlan, folder: Path, batch_max: int) -> list[list[Statement]]:
    """The one-row-per-event inserts each `Store.write` of the stream ran, in order."""
    pipeline = Pipeline(config_for(plan, folder, batch_max), io.StringIO())
    store = pipeline.store
    batches: list[list[Statement]] = []
    original: Callable[..., None] = store._store_rows

    def recording(conn: Any, sql: str, table: str, columns: str, rows: list[Row]) -> None:
        batches[-1].append((sql, list(rows)))
        original(conn, sql, table, columns, rows)

    store._store_rows = recording  # type: ignore[method-assign]
    for batch in hand_over(read(wire(plan)), batch_max):
        batches.append([])
        pipeline.write(pipeline.triage(batch))
    store.close()
    return batches


def _secondary_indexes(store: SqlStore, tables: set[str]) -> list[str]:
    marks = ",".join("?" * len(tables))
    rows = store._conn().execute(
        f"SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({marks}) "
        "AND sql IS NOT NULL",  # autoindexes (primary keys, UNIQUE) have no SQL: they stay
        sorted(tables),
    )
    return [name for (name,) in rows]


def replay(
    plan: FleetPlan, folder: Path, batches: list[list[Statement]], *, drop: str,
    payload: bool,
) -> float:  # fmt: skip
    """Thread CPU µs per event of the recorded inserts on a fresh store, without the
    secondary indexes of table `drop` ("*": of every table replayed; "": none)."""
    store = Pipeline(config_for(plan, folder, 1), io.StringIO()).store
    conn = store._conn()
    if drop:
        tables = {sql.split()[2] for batch in batches for sql, _ in batch}
        for name in _secondary_indexes(store, tables if drop == "*" else {drop}):
            conn.execute(f"DROP INDEX {name}")
    if not payload:  # events' payload column: the 9th of the event row
        batches = [
            [(sql, [(*r[:8], "", *r[9:]) for r in rows] if " events " in sql else rows)
             for sql, rows in batch]
            for batch in batches
        ]  # fmt: skip
    events = sum(len(rows) for batch in batches for sql, rows in batch if " events " in sql)
    started = time.thread_time()
    for batch in batches:
        with store._transaction() as conn:
            for sql, rows in batch:
                conn.executemany(sql, rows)
    spent = time.thread_time() - started
    store.close()
    return spent / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--events-per-node", type=int, default=250)
    parser.add_argument("--batch-max", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    gc.freeze()  # as Gateway.init_collector sets it
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    plan = FleetPlan(nodes=args.nodes, events_per_node=args.events_per_node)
    work = Path(tempfile.mkdtemp(prefix="gatepost-sqlite-floor-"))
    variants = {
        "as stored (every index)": {"drop": "", "payload": True},
        "without passages' secondary index": {"drop": "passages", "payload": True},
        "without any secondary index": {"drop": "*", "payload": True},
        "without any secondary index or the payload": {"drop": "*", "payload": False},
    }
    try:
        batches = recorded_batches(plan, work / "recorded", args.batch_max)
        best = {name: float("inf") for name in variants}
        for round_ in range(args.rounds):
            for name, how in variants.items():
                spent = replay(plan, work / f"{round_}-{len(name)}-{how['drop']}", batches, **how)
                best[name] = min(best[name], spent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        {"replayed": name, "SQLite CPU us/event (min)": round(us, 1)} for name, us in best.items()
    ]
    record(
        "sqlite_floor", rows, nodes=plan.nodes, events_per_node=plan.events_per_node,
        batch_max=args.batch_max, rounds=args.rounds,
    )  # fmt: skip


if __name__ == "__main__":
    main()
