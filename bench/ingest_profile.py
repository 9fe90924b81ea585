"""Where a draining gateway's CPU goes, stage by stage, on the stream the bench's fleet sends.

In the gateway, ingest runs in two threads (the reader; the writer, which decodes its
batch, stores it and runs the alarm rules after each commit); `bench/gateway_ingest.py`
measures the whole process. Here each stage runs alone in this one thread over the same
stream (`simulators/fleet_worker.py`: 88 % green passages, 4 % fevers, 5 % yellow and
3 % red codes, each node's events a hash chain, a retained birth per node first), in
batches of `ingest.batch_max` as a drained queue gives them, so each stage's CPU per
event is read without the others' (thread CPU time; the store's fsync waits are not CPU
and show only in its wall time). Then one more pass of decode + write + rules under
cProfile, on a fresh store, splits that time into what the code does (cProfile inflates
Python calls, so read its shares, not its microseconds). For fsyncs per batch, run it
under `strace -f -c -e trace=fsync,fdatasync`.

`--store postgresql` runs the same stages against a private PostgreSQL cluster
(simulators/postgres.py, fsync on as deployed): the write's CPU here is then the client's
(psycopg building and sending statements, reading results); the server's own CPU per
event (postmaster and backends over the stages) is a row of its own, and cProfile times
by thread CPU, so waits on the server are not counted as work.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import logging
import pstats
import shutil
import struct
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import record
from bench.gateway_pg_ingest import cluster_cpu_s
from edge.contract import catalogue
from edge.contract.catalogue import encode
from gateway.alarm_cases import alarm_cases
from gateway.alarms import AlarmBook
from gateway.config import GatewayConfig, SiteSection
from gateway.ingest import DeliveryQueue, Triage, triage
from gateway.live import LiveFeed
from gateway.rules import AlarmRules
from gateway.service import GC_YOUNG_THRESHOLD
from gateway.store import open_store
from gateway.store.records import DEFAULT_LIMITS, Written
from gateway.store.settings import StoreSection
from gateway.subscriber import Delivery, encode_length, parse_publish, split_packets
from simulators.fleet import FleetPlan
from simulators.fleet_worker import births, build_stream
from simulators.postgres import PrivatePostgres

READ_BYTES = 256 * 1024  # what one read of the gateway's subscriber takes at most
Batch = list[Delivery]


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """An MQTT 5 PUBLISH at QoS 1 as the broker sends it (no properties)."""
    name = topic.encode()
    body = struct.pack("!H", len(name)) + name + struct.pack("!H", packet_id) + b"\0" + payload
    return bytes([0x32]) + encode_length(len(body)) + body


def wire(plan: FleetPlan) -> list[bytes]:
    """The fleet's births, then its events, as the reads a draining gateway gets."""
    messages = [m for w in range(plan.processes) for m in births(plan, w)]
    messages += [m for w in range(plan.processes) for m in build_stream(plan, w)]
    stream = b"".join(
        publish_packet(topic, payload, i % 65_535 + 1)
        for i, (topic, payload) in enumerate(messages)
    )
    return [stream[at : at + READ_BYTES] for at in range(0, len(stream), READ_BYTES)]


def read(chunks: list[bytes]) -> list[Batch]:
    """The reader: packets split off each read, PUBLISHes parsed into deliveries."""
    buffer, reads, now = bytearray(), [], datetime.now(UTC)
    for chunk in chunks:
        buffer += chunk
        reads.append([
            Delivery(*_fields(flags, body), now, 1) for _kind, flags, body in split_packets(buffer)
        ])  # fmt: skip
    return reads


def _fields(flags: int, body: bytes) -> tuple[str, bytes, int, int, bool]:
    topic, payload, packet_id, qos, retain = parse_publish(flags, body)
    return topic, payload, packet_id, qos, retain


def hand_over(reads: list[Batch], batch_max: int) -> list[Batch]:
    """Reader -> writer (DeliveryQueue) -> batches of batch_max."""
    deliveries = DeliveryQueue(10**9)
    for chunk in reads:
        deliveries.put(chunk, timeout_s=0)
    batches: list[Batch] = []
    batch: Batch = []
    while chunk := deliveries.get(timeout_s=0):
        deliveries.done(len(chunk))
        batch += chunk
        if len(batch) >= batch_max:
            batches.append(batch)
            batch = []
    return [*batches, batch] if batch else batches


class Pipeline:
    """The decoder's and writer's work, and the alarm rules after commit, on one store."""

    def __init__(self, config: GatewayConfig, log_to: io.TextIOBase) -> None:
        self.config = config
        self.store = open_store(config.store)
        self.alerts: list[bytes] = []
        book = AlarmBook(self.store, lambda alert: self.alerts.append(encode(alert)), LiveFeed())
        self.rules = AlarmRules(config, self.store, book, book._clock, book._clock())
        self.lines = Counter[str]()
        handler = logging.StreamHandler(log_to)  # the gateway's format, to a file as systemd's
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(self._count)
        self.handler = handler

    def _count(self, record: logging.LogRecord) -> bool:
        self.lines[f"{record.levelname} {record.name}: {record.msg}"] += 1
        return True

    def decode(self, batch: Batch) -> None:
        prefix = self.config.broker.prefix
        for item in batch:
            catalogue.decode(item.topic, item.payload, prefix)

    def triage(self, batch: Batch) -> Triage:
        return triage(self.config, batch)

    def write(self, sorted_: Triage) -> Written:
        return self.store.write(
            sorted_.events, sorted_.presence, sorted_.dead, alarm_cases, DEFAULT_LIMITS
        )

    def after(self, written: Written) -> None:
        self.rules.on_stored(written)


def cpu_of(step: Callable[[], Any]) -> tuple[float, float, Any]:
    """(thread CPU s, wall s, result) of one call."""
    cpu, wall = time.thread_time(), time.perf_counter()
    result = step()
    return time.thread_time() - cpu, time.perf_counter() - wall, result


class GcTime:
    """The cyclic collector's own time, from gc.callbacks (it runs inside whatever allocates)."""

    def __init__(self) -> None:
        self.seconds, self.runs, self._start = 0.0, 0, 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._start
            self.runs += 1


def measure(
    config: GatewayConfig, chunks: list[bytes], log_to: io.TextIOBase,
    server: PrivatePostgres | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Each stage's CPU over the whole stream, summed over its batches (and the server's)."""
    spent: dict[str, float] = defaultdict(float)
    collector = GcTime()
    gc.callbacks.append(collector)
    try:
        spent["reader"], _, reads = cpu_of(lambda: read(chunks))
        batch_max = config.ingest.batch_max
        spent["hand-offs"], _, batches = cpu_of(lambda: hand_over(reads, batch_max))
        pipeline = Pipeline(config, log_to)
        root = logging.getLogger()
        root.addHandler(pipeline.handler)
        root.setLevel(logging.INFO)  # `gatepost gateway run`'s default --log-level
        fsync_wait = 0.0
        server_before = _server_cpu(server)
        for batch in batches:
            spent["decode alone"] += cpu_of(partial(pipeline.decode, batch))[0]
            cpu, _, sorted_ = cpu_of(partial(pipeline.triage, batch))
            spent["decode + triage"] += cpu
            cpu, wall, written = cpu_of(partial(pipeline.write, sorted_))
            spent["write (one transaction)"] += cpu
            fsync_wait += wall - cpu
            spent["rules + alarms announced"] += cpu_of(partial(pipeline.after, written))[0]
        if server is not None:
            spent["PostgreSQL server (its processes)"] = _server_cpu(server) - server_before
        root.removeHandler(pipeline.handler)
    finally:
        gc.callbacks.remove(collector)
    lines = sum(pipeline.lines.values())
    per_line = log_cost(log_to)
    events = sum(len(b) for b in batches)
    return {
        "events": events, "batches": len(batches), "spent": spent, "gc_s": collector.seconds,
        "gc_runs": collector.runs, "write_wait_s": fsync_wait, "log_lines": lines,
        "log_top": pipeline.lines.most_common(5), "log_us_per_line": per_line * 1e6,
        "alerts": len(pipeline.alerts), "store": pipeline.store,
    }  # fmt: skip


def _server_cpu(server: PrivatePostgres | None) -> float:
    if server is None or server.process is None:
        return 0.0
    return cluster_cpu_s(server.process.pid)


def log_cost(log_to: io.TextIOBase, lines: int = 5_000) -> float:
    """Seconds of CPU per log line as the gateway writes them (formatted, to a file)."""
    logger = logging.getLogger("gateway.alarms")
    handler = logging.StreamHandler(log_to)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        cpu = time.thread_time()
        for _ in range(lines):
            logger.warning("alarm %s raised: %s", "fever", "fever 38.1 °C held at bench/g0001")
        return (time.thread_time() - cpu) / lines
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


CATEGORIES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("logging", lambda f, n: "logging" in f),
    ("decode: pydantic and the contract", lambda f, n: "pydantic" in f + n or "edge/contract" in f),
    ("topic triage (gateway/ingest.py)", lambda f, n: "gateway/ingest.py" in f),
    (
        "alarms: cases, rules, announce",
        lambda f, n: any(
            part in f for part in ("alarm_cases", "gateway/alarms.py", "gateway/rules.py")
        ),
    ),
    ("SQL in SQLite (statements, B-trees, indexes, commit)", lambda f, n: "sqlite3" in n),
    ("psycopg: statements sent, results read (client side)", lambda f, n: "psycopg" in f),
    ("hash chain (sha256, links)", lambda f, n: "sha256" in n or "chain" in f),
    ("row building, store logic (Python)", lambda f, n: "gateway/store" in f),
    ("datetimes and time text", lambda f, n: "datetime" in n or "isoformat" in n),
]


def category(filename: str, name: str) -> str:
    return next((label for label, test in CATEGORIES if test(filename, name)), "other")


def profile(
    config: GatewayConfig, chunks: list[bytes], log_to: io.TextIOBase
) -> list[tuple[str, float, str]]:
    """Decode, write and rules for every batch under cProfile, tottime by category."""
    batches = hand_over(read(chunks), config.ingest.batch_max)
    pipeline = Pipeline(config, log_to)
    logging.getLogger().addHandler(pipeline.handler)
    # Thread CPU, not wall time: a PostgreSQL client's waits on its server are not its work.
    profiler = cProfile.Profile(time.thread_time) if config.store.url else cProfile.Profile()
    profiler.enable()
    for batch in batches:
        pipeline.after(pipeline.write(pipeline.triage(batch)))
    profiler.disable()
    logging.getLogger().removeHandler(pipeline.handler)
    pipeline.store.close()
    stats = pstats.Stats(profiler)
    by: Counter[str] = Counter()
    top: dict[str, Counter[str]] = {}
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        label = category(filename, name)
        by[label] += row[2]
        top.setdefault(label, Counter())[f"{Path(filename).name}:{name}"] += row[2]
    total = sum(by.values())
    return [
        (label, seconds / total,
         ", ".join(f"{k} {v / total:.0%}" for k, v in top[label].most_common(3)))
        for label, seconds in by.most_common()
    ]  # fmt: skip


def stage_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    events, spent = found["events"], found["spent"]
    us = {name: seconds / events * 1e6 for name, seconds in spent.items()}
    us["of it: garbage collection"] = found["gc_s"] / events * 1e6
    us["of it: logging"] = found["log_lines"] * found["log_us_per_line"] / events
    us["total (reader to rules)"] = sum(
        us[k] for k in ("reader", "hand-offs", "decode + triage", "write (one transaction)",
                        "rules + alarms announced")
    )  # fmt: skip
    return [_row(f"stage: {name}", value) for name, value in us.items()]


def _row(where: str, us: float, share: str = "-", top: str = "-") -> dict[str, Any]:
    return {"where": where, "CPU us/event": round(us, 1), "share": share, "top": top}


def share_rows(found: dict[str, Any], shares: list[tuple[str, float, str]]) -> list[dict[str, Any]]:
    """The profile's shares of decode + write + rules, in the measured microseconds."""
    spent = found["spent"]
    stages = ("decode + triage", "write (one transaction)", "rules + alarms announced")
    measured = sum(spent[k] for k in stages) / found["events"] * 1e6
    return [_row(f"profile: {label}", share * measured, f"{share:.0%}", top)
            for label, share, top in shares]  # fmt: skip


def config_for(
    plan: FleetPlan, folder: Path, batch_max: int, url: str | None = None
) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "sites": [SiteSection(name=plan.site, gates=tuple(plan.node_names))],
        "store": StoreSection(path=folder / "gateway.db", url=url),
        "ingest": {"batch_max": batch_max},
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--events-per-node", type=int, default=250)
    parser.add_argument("--batch-max", type=int, default=2000)
    parser.add_argument("--no-profile", action="store_true", help="the stage timings only")
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="a SQLite file, or a private PostgreSQL cluster (fsync on)",
    )
    parser.add_argument("--default-gc", action="store_true",
                        help="CPython's collector settings, not the gateway's")  # fmt: skip
    args = parser.parse_args()
    if not args.default_gc:  # as Gateway.init_collector sets it, after the imports
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    plan = FleetPlan(nodes=args.nodes, events_per_node=args.events_per_node)
    work = Path(tempfile.mkdtemp(prefix="gatepost-ingest-profile-"))
    server = PrivatePostgres() if args.store == "postgresql" else None
    try:
        urls: list[str | None] = [None, None]
        if server is not None:
            server.start()
            urls = [server.create_database("a"), server.create_database("b")]
        chunks = wire(plan)
        with open(work / "gateway.log", "w", encoding="utf-8") as log_to:
            found = measure(
                config_for(plan, work / "a", args.batch_max, urls[0]), chunks, log_to, server
            )
            found.pop("store").close()
            shares = [] if args.no_profile else profile(
                config_for(plan, work / "b", args.batch_max, urls[1]), chunks, log_to)  # fmt: skip
    finally:
        if server is not None:
            server.remove()
        shutil.rmtree(work, ignore_errors=True)
    rows = stage_rows(found)
    print(f"log lines: {found['log_lines']} ({found['log_us_per_line']:.1f} us each); "
          f"most: {found['log_top']}")  # fmt: skip
    wait_ms = found["write_wait_s"] / found["batches"] * 1e3
    print(f"write waits (wall - CPU, the fsyncs): {wait_ms:.1f} ms a batch")
    record(
        "ingest_profile", rows + share_rows(found, shares), store=args.store, nodes=plan.nodes,
        events_per_node=plan.events_per_node,
        events=found["events"], batches=found["batches"], batch_max=args.batch_max,
        log_lines=found["log_lines"], log_us_per_line=round(found["log_us_per_line"], 1),
        log_top=found["log_top"], gc_runs=found["gc_runs"], alerts=found["alerts"],
        write_wait_ms_per_batch=round(wait_ms, 2), collector=gc.get_threshold(),
    )  # fmt: skip


if __name__ == "__main__":
    main()
