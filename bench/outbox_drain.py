"""Broker restart with 100,000 events buffered at the gates: seconds until all are stored.

Four gate nodes (the real outbox and uplink, in this process) are connected to a real
Mosquitto with the real gateway (`gatepost gateway run`, its own process). The broker
stops; the gates commit 25,000 events each while it is down (as during an outage); the
broker starts again with its persistence. Measured from its return: seconds until every
outbox is empty, which happens only once the gateway's receipts say it stored each
event, and what the gateway's store holds per gate (lost, stored twice).

The broker is the locked site broker, as deployed (TLS, a certificate per gate and two
for the gateway, the site ACL); `--transport plain` or `both` adds anonymous MQTT.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    SITE,
    TLS,
    BenchSite,
    GatewayProcess,
    bench_uplink,
    record,
    transport_arg,
    transports,
)
from edge.contract.events import Disinfection
from edge.contract.topics import Role, Site
from edge.outbox import Outbox
from firmware_tools.site_pki import IdentityRole

GATES = ("g01", "g02", "g03", "g04")
EVENTS = 100_000
BATCH = 1000
TIMEOUT_S = 300.0


def fill(outbox: Outbox, count: int) -> None:
    now = datetime.now(UTC)
    for done in range(0, count, BATCH):
        with outbox.transaction() as batch:
            for _ in range(min(BATCH, count - done)):
                batch.add(Disinfection(**batch.ids(now), volunteer_id="v017", area="hut"))


def stored(db: Path, gate: str) -> tuple[int, int, int]:
    """Rows, distinct seqs and the highest seq the gateway holds for `gate`."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT seq), IFNULL(MAX(seq), 0) FROM events "
            "WHERE site = ? AND node = ?",
            (SITE, gate),
        ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def measure(work: Path, transport: str, events: int) -> tuple[list[dict[str, Any]], float, float]:
    """One outage and return over `transport`: a row per gate, seconds to drain and to fill."""
    stop_uplinks = threading.Event()
    runners: list[threading.Thread] = []
    outboxes: list[Outbox] = []
    site = BenchSite(work / "site", transport)
    gates = [site.endpoint(IdentityRole.GATE, g) for g in GATES]
    with site:
        gateway = GatewayProcess(site, work / "gateway", GATES)
        try:
            outboxes += [
                Outbox(work / g / "outbox.db", Site(SITE).node(Role.GATE, g), capacity=events)
                for g in GATES
            ]
            runners = [
                threading.Thread(target=bench_uplink(e, o.node, o).run, args=(stop_uplinks,))
                for e, o in zip(gates, outboxes, strict=True)
            ]
            for runner in runners:
                runner.start()
            time.sleep(2)  # connected, births stored
            site.broker.stop()
            started = time.monotonic()
            for outbox in outboxes:
                fill(outbox, events // len(GATES))
            fill_s = time.monotonic() - started
            site.broker.start()
            returned = time.monotonic()
            while any(o.depth for o in outboxes) and time.monotonic() - returned < TIMEOUT_S:
                time.sleep(0.05)
            drained_s = time.monotonic() - returned
            rows: list[dict[str, Any]] = []
            for outbox, gate in zip(outboxes, GATES, strict=True):
                count, distinct, highest = stored(gateway.db, gate)
                committed = outbox.last_seq
                rows.append({
                    "transport": transport, "gate": gate, "committed": committed,
                    "stored": distinct, "lost": committed - distinct,
                    "stored twice": count - distinct, "left in outbox": outbox.depth,
                    "highest stored": highest,
                })  # fmt: skip
        finally:
            stop_uplinks.set()
            for runner in runners:
                runner.join(15)
            for outbox in outboxes:
                outbox.close()
            gateway.stop()
    rows.append({
        "transport": transport, "gate": "all", "committed": sum(r["committed"] for r in rows),
        "stored": sum(r["stored"] for r in rows), "lost": sum(r["lost"] for r in rows),
        "stored twice": sum(r["stored twice"] for r in rows),
        "left in outbox": sum(r["left in outbox"] for r in rows), "highest stored": "",
    })  # fmt: skip
    return rows, drained_s, fill_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=EVENTS, help="committed during the outage")
    transport_arg(parser, default=TLS)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    drained: dict[str, float] = {}
    filled: dict[str, float] = {}
    for transport in transports(args):
        work = Path(tempfile.mkdtemp(prefix=f"gatepost-drain-{transport}-"))
        try:
            more, drained_s, fill_s = measure(work, transport, args.events)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows += more
        drained[transport], filled[transport] = round(drained_s, 2), round(fill_s, 2)
    record(
        "outbox_drain", rows, events=args.events, drained_after_broker_return_s=drained,
        fill_s=filled, target_s=30,
    )  # fmt: skip
    print()
    for transport, seconds in drained.items():
        print(f"{transport}: drained {seconds:.1f} s after the broker returned (target ≤ 30 s); "
              f"committing {args.events:,} events took {filled[transport]:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
