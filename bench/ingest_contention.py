"""The writer's CPU per event alone, and with another thread wanting the interpreter lock.

Python's sqlite3 lets go of the interpreter lock for every step of a statement. While
another thread of the process wants the lock (the reader parsing a read, the publisher,
a decoder), each step is a hand-off: the writer waits for the lock back and pays for the
switch. This stores the fleet's stream (`simulators/fleet_worker.py`, as
`bench/ingest_profile.py` replays it) through `Store.write` in batches of
`ingest.batch_max`, with new rows inserted row by row (one step each, as
`SqlStore._store_rows` does) and a few hundred to a statement (`SqliteStore`'s), each
alone and beside a thread that decodes batches without pause (what the gateway's decoder
thread did until the writer decoded its own batches). Contended runs take the first
`--contended-batches` batches only: row by row, each step waits out the other thread's
switch interval (5 ms), so the wall time is long.

CPU is the writer thread's (user + system); switches are its voluntary context switches,
each a wait for the lock or the disk.
"""

from __future__ import annotations

import argparse
import gc
import io
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import record
from bench.ingest_profile import Batch, Pipeline, config_for, hand_over, read, wire
from gateway.config import GatewayConfig
from gateway.ingest import triage
from gateway.service import GC_YOUNG_THRESHOLD
from gateway.store.sql_store import SqlStore
from gateway.store.sqlite import SqliteStore
from simulators.fleet import FleetPlan


class Busy:
    """A thread decoding batches without pause, as a second Python thread of ingest would."""

    def __init__(self, config: GatewayConfig, batches: list[Batch]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(config, batches), daemon=True)

    def _run(self, config: GatewayConfig, batches: list[Batch]) -> None:
        while not self._stop.is_set():
            for batch in batches:
                triage(config, batch)
                if self._stop.is_set():
                    return

    def __enter__(self) -> Busy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def store_all(config: GatewayConfig, batches: list[Batch], row_by_row: bool) -> dict[str, float]:
    """Decode, then store every batch on a fresh store; the writer thread's costs per event."""
    pipeline = Pipeline(config, io.StringIO())
    store = pipeline.store
    if row_by_row:  # the statement-a-row insert every SQL store inherits
        assert isinstance(store, SqliteStore)
        store._store_rows = SqlStore._store_rows.__get__(store)  # type: ignore[method-assign]
    sorted_ = [triage(config, batch) for batch in batches]
    events = sum(len(batch) for batch in batches)
    before, cpu, wall = (
        resource.getrusage(resource.RUSAGE_THREAD),
        time.thread_time(),
        time.perf_counter(),
    )
    for one in sorted_:
        pipeline.after(pipeline.write(one))
    after = resource.getrusage(resource.RUSAGE_THREAD)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    store.close()
    return {
        "events": events,
        "CPU us/event": round(cpu / events * 1e6, 1),
        "of it system": round((after.ru_stime - before.ru_stime) / events * 1e6, 1),
        "wall us/event": round(wall / events * 1e6, 1),
        "switches/event": round((after.ru_nvcsw - before.ru_nvcsw) / events, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--events-per-node", type=int, default=250)
    parser.add_argument("--batch-max", type=int, default=2000)
    parser.add_argument("--contended-batches", type=int, default=3)
    args = parser.parse_args()
    gc.freeze()  # as Gateway.init_collector sets it, after the imports
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    plan = FleetPlan(nodes=args.nodes, events_per_node=args.events_per_node)
    batches = hand_over(read(wire(plan)), args.batch_max)
    work = Path(tempfile.mkdtemp(prefix="gatepost-ingest-contention-"))
    rows: list[dict[str, Any]] = []
    try:
        for n, (insert, row_by_row) in enumerate((("row by row", True), ("multi-row", False))):
            config = config_for(plan, work / f"{n}-alone", args.batch_max)
            rows.append({"insert": insert, "beside": "nothing",
                         **store_all(config, batches, row_by_row)})  # fmt: skip
            config = config_for(plan, work / f"{n}-busy", args.batch_max)
            with Busy(config, batches):
                found = store_all(config, batches[: args.contended_batches], row_by_row)
            rows.append({"insert": insert, "beside": "a busy Python thread", **found})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record("ingest_contention", rows, nodes=plan.nodes, events_per_node=plan.events_per_node,
           batch_max=args.batch_max)  # fmt: skip


if __name__ == "__main__":
    main()
