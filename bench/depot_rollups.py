"""What depot rollups and retention cost the gateway: its tick, its catch-up, its ingest.

Tick: depot nodes of 10 sensors each send a batch every 10 s (one reading per sensor),
spread over the 10 s; each simulated second's batches are stored with the store's real
`write`, then the gateway's tick step rolls them up (`DepotRollups.roll`), timed: p50,
p99 and max ms per tick at 1,000 and 10,000 zones (100 and 1,000 readings a second; the
issue's target of 100,000 sensors is `--zones 100000`). A tick holds the store's write
lock while it rolls, so its time is also how long ingest may wait on it.

Catch-up: a backlog of readings stored and not rolled (a first start on an old store, an
outbox drained after days) rolled to the end: readings/s, and the longest transaction
(ROLL_LIMIT readings), the longest ingest waits.

Ingest: what the arrival number (migration 0012: a rowid table with AUTOINCREMENT and a
unique index, where depot_readings was WITHOUT ROWID) costs `store.write` of depot
batches: the same batches into fresh stores with and without 0012, rounds alternating,
best of each.

Retention: rolled readings 40 days old deleted by `DepotRollups.purge` steps: rows/s and
the longest step (PURGE_ROWS rows).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

from bench.common import record
from edge.contract.base import new_event_id
from edge.contract.catalogue import encode
from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.topics import Role
from gateway import depot_rollups
from gateway.depot_rollups import ROLL_LIMIT, DepotRollups
from gateway.store import SqliteStore
from gateway.store import sqlite as sqlite_module
from gateway.store.migrations import MIGRATIONS, apply_migrations
from gateway.store.records import InboundEvent
from gateway.store.settings import StoreSection

SITE = "bench"
SENSORS = 10  # per depot node
EVERY_S = 10  # each node's batch interval
START = datetime(2026, 12, 6, tzinfo=UTC)
ZONES = (1_000, 10_000)
TICKS = 30
PREFILL_S = 120
BACKLOG = 100_000
RETENTION = 100_000
INGEST_BATCHES = 3000  # depot batches (of SENSORS readings) per ingest round
ROUNDS = 5


class Fleet:
    """Depot nodes of SENSORS sensors, each sending a batch every EVERY_S seconds."""

    def __init__(self, zones: int) -> None:
        self.nodes = [f"d{n:05d}" for n in range(max(1, zones // SENSORS))]
        self.seq = dict.fromkeys(self.nodes, 0)

    def second(self, s: int, start: datetime = START) -> list[InboundEvent]:
        """The batches sent in second `s`: those of every node whose turn it is."""
        at = start + timedelta(seconds=s)
        turn = [node for n, node in enumerate(self.nodes) if n % EVERY_S == s % EVERY_S]
        return [self.batch(node, at) for node in turn]

    def batch(self, node: str, at: datetime) -> InboundEvent:
        self.seq[node] += 1
        readings = tuple(
            DepotReading(sensor=f"z{i}", bus_address=i + 1, at=at, status="ok",
                         temperature_c=4.0 + (i + self.seq[node]) % 30 / 10, humidity_pct=55.0)
            for i in range(SENSORS)
        )  # fmt: skip
        event = DepotReadingBatch(
            event_id=new_event_id(at), seq=self.seq[node], node_time=at, readings=readings
        )
        return InboundEvent(SITE, node, Role.DEPOT, event, encode(event), datetime.now(UTC))


class Timed:
    """Wall time of each block timed (ms) and CPU time of them all: on a shared machine
    the CPU seconds are the steadier figure (they leave out waiting for a core and the
    disk's fsync, which wall time counts)."""

    def __init__(self) -> None:
        self.ms: list[float] = []
        self.cpu_s = 0.0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        yield
        self.ms.append(1000 * (time.perf_counter() - start))
        self.cpu_s += time.process_time() - cpu

    def row(self, part: str, readings: int, *, per: str = "tick") -> dict[str, Any]:
        ms = sorted(self.ms)
        p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
        return {
            "part": part, "n": f"{len(ms)} {per}s", "readings": readings,
            "p50 ms": round(statistics.median(ms), 1), "p99 ms": round(p99, 1),
            "max ms": round(ms[-1], 1), "readings/s": round(readings / (sum(ms) / 1000)),
            "readings/cpu-s": round(readings / self.cpu_s) if self.cpu_s else "-",
        }  # fmt: skip


def settings(path: Path) -> StoreSection:
    return StoreSection(path=path, depot_raw_days=30, depot_minute_days=90)


def tick_row(work: Path, zones: int, ticks: int, prefill_s: int) -> dict[str, Any]:
    store = SqliteStore(work / f"tick-{zones}.db")
    rollups = DepotRollups(store, settings(store.path), lambda: START)
    fleet = Fleet(zones)
    for s in range(prefill_s):  # minutes and hours already rolled, as in a running gateway
        store.write(fleet.second(s))
        if s % EVERY_S == EVERY_S - 1:
            rollups.roll()
            store.checkpoint()
    rollups.roll()
    timed, rolled = Timed(), 0
    for s in range(prefill_s, prefill_s + ticks):
        store.write(fleet.second(s))
        with timed():
            rolled += rollups.roll()
        store.checkpoint()  # the tick's next step, as in the gateway
    store.close()
    return timed.row(f"tick: roll 1 s of {zones:,} zones ({rolled // ticks:,} readings)", rolled)


def fill(store: SqliteStore, readings: int, start: datetime = START) -> None:
    """`readings` readings of 1,000 zones (100 nodes), one second's batches per write."""
    fleet = Fleet(1000)
    for s in range(readings // (len(fleet.nodes) // EVERY_S * SENSORS)):
        store.write(fleet.second(s, start))
        if s % 100 == 0:
            store.checkpoint()


def backlog_row(work: Path, readings: int) -> dict[str, Any]:
    store = SqliteStore(work / "backlog.db")
    fill(store, readings)
    backlog = store.depot_rollup_backlog()
    timed = Timed()
    while store.depot_rollup_backlog():
        with timed():
            store.roll_depot_readings(ROLL_LIMIT)
    store.close()
    part = f"catch-up: {backlog:,} readings of 1,000 zones, {ROLL_LIMIT:,} a transaction"
    return timed.row(part, backlog, per="transaction")


@contextmanager
def before_0012() -> Iterator[None]:
    """SqliteStore opens new files at the schema before migration 0012."""
    older = tuple(m for m in MIGRATIONS if m.name < "0012")
    with patch.object(
        sqlite_module, "apply_migrations", lambda conn: apply_migrations(conn, older)
    ):
        yield


def ingest_rows(work: Path, batches: int, rounds: int) -> list[dict[str, Any]]:
    fleet = Fleet(batches * SENSORS)
    stream = [e for s in range(EVERY_S) for e in fleet.second(s)]
    best: dict[bool, Timed] = {}
    for n in range(rounds):
        for with_0012 in (n % 2 == 0, n % 2 == 1):
            path = work / f"ingest-{n}-{with_0012}.db"
            if with_0012:
                store = SqliteStore(path)
            else:
                with before_0012():
                    store = SqliteStore(path)
            timed = Timed()
            for at in range(0, len(stream), 100):  # live batches: 100 node messages a write
                with timed():
                    store.write(stream[at : at + 100])
            store.close()
            if with_0012 not in best or timed.cpu_s < best[with_0012].cpu_s:
                best[with_0012] = timed
    names = {False: "before 0012", True: "with 0012 (arrival number)"}
    return [
        best[key].row(f"ingest: store.write of depot batches, {name}, best of {rounds}",
                      len(stream) * SENSORS, per="write")
        for key, name in names.items()
    ]  # fmt: skip


def retention_row(work: Path, readings: int) -> dict[str, Any]:
    store = SqliteStore(work / "retention.db")
    fill(store, readings, START - timedelta(days=40))
    rollups = DepotRollups(store, settings(store.path), lambda: START)
    while rollups.roll():
        pass
    timed, deleted = Timed(), 0
    rollups.purge(steps=0)  # starts the pass
    while raw_left(store):
        with timed():
            deleted += rollups.purge(steps=1)[0]
    store.close()
    part = f"retention: raw readings of 1,000 zones, {depot_rollups.PURGE_ROWS:,} a step"
    return timed.row(part, deleted, per="step")


def raw_left(store: SqliteStore) -> int:
    return int(store.db.execute("SELECT COUNT(*) FROM depot_readings").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, nargs="+", default=list(ZONES))
    parser.add_argument("--ticks", type=int, default=TICKS, help="timed ticks per zone count")
    parser.add_argument("--prefill-s", type=int, default=PREFILL_S, help="seconds stored first")
    parser.add_argument("--backlog", type=int, default=BACKLOG, help="readings not rolled")
    parser.add_argument("--retention", type=int, default=RETENTION, help="old readings")
    parser.add_argument("--ingest-batches", type=int, default=INGEST_BATCHES)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="ingest rounds of each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatepost-bench-", dir=Path.cwd()) as tmp:
        work = Path(tmp)
        rows = [tick_row(work, zones, args.ticks, args.prefill_s) for zones in args.zones]
        rows.append(backlog_row(work, args.backlog))
        rows += ingest_rows(work, args.ingest_batches, args.rounds)
        rows.append(retention_row(work, args.retention))
    record("depot_rollups", rows, args=vars(args))


if __name__ == "__main__":
    main()
