"""Broker restart with 100,000 events buffered at the gates: seconds until all are stored.

Four gate nodes (the real outbox and uplink, in this process) are connected to a real
Mosquitto with the real gateway (`gatepost gateway run`, its own process). The broker
stops; the gates commit 25,000 events each while it is down (as during an outage); the
broker starts again with its persistence. Measured from its return: seconds until every
outbox is empty, which happens only once the gateway's receipts say it stored each
event, and what the gateway's store holds per gate (lost, stored twice).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.common import bench_uplink, record
from edge.contract.events import Disinfection
from edge.contract.topics import Role, Site
from edge.outbox import Outbox
from simulators.broker import PrivateBroker, free_port
from simulators.processes import python_module, spawn, stop, wait_for_http

SITE = Site("bench")
GATES = ("g01", "g02", "g03", "g04")
EVENTS = 100_000
BATCH = 1000
TIMEOUT_S = 300.0


def fill(outbox: Outbox, count: int) -> None:
    now = datetime.now(UTC)
    for _ in range(count // BATCH):
        with outbox.transaction() as batch:
            for _ in range(BATCH):
                batch.add(Disinfection(**batch.ids(now), volunteer_id="v017", area="hut"))


def start_gateway(work: Path, broker: PrivateBroker) -> tuple[Any, Path]:
    port = free_port()
    config = work / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "sites": [{"name": SITE.name, "gates": list(GATES)}],
        "broker": {"url": str(broker.url), "client_id": "bench-gateway"},
        "store": {"path": "gateway.db"},
        "http": {"port": port},
    }))  # fmt: skip
    process = spawn(python_module("edge.cli", "gateway", "run", "--config", str(config)))
    if not wait_for_http(f"http://127.0.0.1:{port}/metrics"):
        raise RuntimeError("the gateway did not come up")
    return process, work / "gateway.db"


def stored(db: Path, gate: str) -> tuple[int, int, int]:
    """Rows, distinct seqs and the highest seq the gateway holds for `gate`."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT seq), IFNULL(MAX(seq), 0) FROM events "
            "WHERE site = ? AND node = ?",
            (SITE.name, gate),
        ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="gatepost-drain-"))
    stop_uplinks = threading.Event()
    try:
        with PrivateBroker(work / "broker") as broker:
            gateway, db = start_gateway(work, broker)
            outboxes = [
                Outbox(work / g / "outbox.db", SITE.node(Role.GATE, g), capacity=EVENTS)
                for g in GATES
            ]
            runners = [
                threading.Thread(target=bench_uplink(broker.url, o.node, o).run,
                                 args=(stop_uplinks,))
                for o in outboxes
            ]  # fmt: skip
            for runner in runners:
                runner.start()
            time.sleep(2)  # connected, births stored
            broker.stop()
            started = time.monotonic()
            for outbox in outboxes:
                fill(outbox, EVENTS // len(GATES))
            fill_s = time.monotonic() - started
            broker.start()
            returned = time.monotonic()
            while any(o.depth for o in outboxes) and time.monotonic() - returned < TIMEOUT_S:
                time.sleep(0.05)
            drained_s = time.monotonic() - returned
            rows: list[dict[str, Any]] = []
            for outbox, gate in zip(outboxes, GATES, strict=True):
                count, distinct, highest = stored(db, gate)
                committed = outbox.last_seq
                rows.append({
                    "gate": gate, "committed": committed, "stored": distinct,
                    "lost": committed - distinct, "stored twice": count - distinct,
                    "left in outbox": outbox.depth, "highest stored": highest,
                })  # fmt: skip
            stop_uplinks.set()
            for runner in runners:
                runner.join(15)
            stop(gateway, "gateway")
        rows.append({
            "gate": "all", "committed": sum(r["committed"] for r in rows),
            "stored": sum(r["stored"] for r in rows), "lost": sum(r["lost"] for r in rows),
            "stored twice": sum(r["stored twice"] for r in rows),
            "left in outbox": sum(r["left in outbox"] for r in rows), "highest stored": "",
        })  # fmt: skip
        record(
            "outbox_drain", rows,
            drained_after_broker_return_s=round(drained_s, 2), fill_s=round(fill_s, 2),
            target_s=30,
        )  # fmt: skip
        print(f"\ndrained {drained_s:.1f} s after the broker returned (target ≤ 30 s); "
              f"committing {EVENTS:,} events took {fill_s:.1f} s")  # fmt: skip
    finally:
        stop_uplinks.set()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
