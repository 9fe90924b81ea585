"""Draining one queued stream into SQLite, into PostgreSQL, and into two replicas on it (#16).

One fleet run (bench/gateway_ingest.py's stream: simulators/fleet.py, QoS 1, plain MQTT)
is queued by a private Mosquitto in four places at once, each a persistent session or a
share group of its own, so each gets the whole stream:
- a bare `mosquitto_sub -c` (the reference row, as in bench/gateway_ingest.py);
- (a) one gateway on SQLite;
- (b) one gateway on PostgreSQL;
- (c) two gateways on PostgreSQL in one share group (Mosquitto deals the stream out to
  the two sessions while they are away; both then drain their halves at once).
Each then drains in turn, with the machine to itself. Rates run from the first stored
event to the last; CPU is user + system of the gateway processes over that span, and for
PostgreSQL also of the server's processes (postmaster and backends: what a replica costs
the database host). PostgreSQL is a private cluster with fsync on (durable, as deployed);
its count is polled through one connection every 10 ms, which the server's CPU includes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench.common import PLAIN, BenchSite, record
from bench.gateway_ingest import (
    FLEET_TIMEOUT_S,
    GatewayWatch,
    SubReceiver,
    events_filter,
    expected_keys,
    open_session,
    process_cpu_s,
    stored_in,
)
from firmware_tools.site_pki import IdentityRole
from simulators.broker import free_port
from simulators.fleet import FleetPlan, run_fleet
from simulators.postgres import PrivatePostgres
from simulators.processes import python_module, spawn, stop, wait_for_http


def cluster_cpu_s(postmaster: int) -> float:
    """CPU seconds of the postmaster and its live children (the backends, the WAL writer…)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == postmaster or stat.parent.name == str(postmaster):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class PgCount:
    """Events a PostgreSQL store holds (each node's contiguous seq), on one connection."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)

    def __call__(self) -> int:
        row = self.conn.execute("SELECT COALESCE(SUM(seq_contiguous), 0) FROM nodes").fetchone()
        return int(row[0]) if row else 0

    def rows(self) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(row[0]) if row else 0


class Replica:
    """How one gateway of the bench is configured: client id, share group, store."""

    def __init__(self, site: BenchSite, work: Path, name: str, group: str, url: str | None) -> None:
        self.site, self.workdir, self.name = site, work / name, name
        self.group, self.url = group, url

    def start(self, gates: list[str]) -> Gateway:
        """Spawn it on this thread (a child dies with the thread that spawned it); return
        before it serves: `Gateway.ready()` waits for that."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        broker = {"client_id": self.name, "share_group": self.group}
        store = {"url": self.url} if self.url else {"path": "gateway.db"}
        config = self.workdir / "gateway.yaml"
        port = free_port()
        config.write_text(
            yaml.safe_dump({
                "sites": [{"name": self.site.site, "gates": gates}],
                "broker": self.site.gateway_broker() | broker,
                "store": store, "http": {"port": port},
            })
        )  # fmt: skip
        process = spawn(python_module("edge.cli", "--log-level", "warning", "gateway", "run",
                                      "--config", str(config)))  # fmt: skip
        return Gateway(process, port)


class Gateway:
    """A gateway process of the bench."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process, self.port = process, port

    def ready(self) -> None:
        if not wait_for_http(f"http://127.0.0.1:{self.port}/metrics"):
            self.stop()
            raise RuntimeError("the gateway did not come up")

    def stop(self) -> None:
        stop(self.process, "gateway")


def drain(
    replicas: list[Replica], gates: list[str], count: Callable[[], int], total: int,
    postmaster: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Start `replicas` together on their queued sessions; the row once they stored `total`."""
    seen: list[tuple[float, float]] = []  # (gateways' CPU, the server's) at each change
    watch = GatewayWatch(count)
    started: list[Gateway] = []

    def cpu() -> float:
        gateways = sum(process_cpu_s(g.process.pid) for g in list(started))
        seen.append((gateways, cluster_cpu_s(postmaster) if postmaster else 0.0))
        return gateways

    try:
        started += [replica.start(gates) for replica in replicas]  # together
        for gateway in started:
            gateway.ready()
        watch.cpu = cpu
        watch.wait(total)
    finally:
        watch.close()
        for gateway in started:
            gateway.stop()
    row = watch.row(total)
    if postmaster and len(seen) > 1 and watch.cpu_first and watch.cpu_last:
        events = watch.cpu_last[0] - watch.cpu_first[0]
        if events > 0:
            row["PG CPU us/event"] = round((seen[-1][1] - seen[0][1]) / events * 1e6, 1)
    return row


def measure(plan: FleetPlan, work: Path) -> list[dict[str, Any]]:
    site = BenchSite(work / "site", PLAIN, plan.site, plan.prefix)
    publishers = site.simulators(plan.processes)
    topic_filter = events_filter(plan)
    draining = site.endpoint(IdentityRole.GATEWAY, "bench-drain-sub")
    gates = plan.node_names
    with PrivatePostgres(durable=True) as pg, site:
        urls = [pg.create_database("one"), pg.create_database("two")]
        sqlite = Replica(site, work, "gw-sqlite", "g-sqlite", None)
        one = Replica(site, work, "gw-pg", "g-pg", urls[0])
        two = [Replica(site, work, f"gw-pg-{n}", "g-pg-two", urls[1]) for n in "ab"]
        # Each subscribes once and leaves: the broker queues the stream for it from now.
        for replica in (sqlite, one, *two):  # (the first start migrates the database)
            opened = replica.start(gates)
            opened.ready()
            time.sleep(0.5)  # its SUBACK
            opened.stop()
        open_session(draining, topic_filter, "bench-drain-sub")
        run_fleet(plan, publishers, timeout_s=FLEET_TIMEOUT_S)

        sub = SubReceiver(draining, topic_filter, plan.total, "bench-drain-sub", persistent=True)
        try:
            sub.wait(plan.total)
        finally:
            sub.close()
        reference = sub.row(expected_keys(plan)) | {"receiver": "mosquitto_sub, draining"}
        rows = [reference]
        rows.append(
            drain(
                [sqlite], gates, lambda: stored_in(sqlite.workdir / "gateway.db"), plan.total, None
            )
            | {"receiver": "(a) 1 gateway, SQLite"}
        )
        assert pg.process is not None
        for label, replicas, url in (
            ("(b) 1 gateway, PostgreSQL", [one], urls[0]),
            ("(c) 2 gateways, PostgreSQL, one share group", two, urls[1]),
        ):
            counter = PgCount(url)
            try:
                row = drain(replicas, gates, counter, plan.total, pg.process.pid)
                row["duplicated"] = counter.rows() - row["received"]  # rows beyond the seqs
            finally:
                counter.conn.close()
            rows.append(row | {"receiver": label})
    rate = reference["events/s"]
    for row in rows:
        row.setdefault("PG CPU us/event", "-")
        row["vs mosquitto_sub"] = f"{row['events/s'] / rate:.2f}" if rate else "-"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--events-per-node", type=int, default=300)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--window", type=int, default=1000, help="max unacked per publisher")
    args = parser.parse_args()
    plan = FleetPlan(nodes=args.nodes, events_per_node=args.events_per_node,
                     processes=args.processes, window=args.window)  # fmt: skip
    load_before = os.getloadavg()  # the cores are shared: say how busy they were
    work = Path(tempfile.mkdtemp(prefix="gatepost-pg-ingest-"))
    try:
        rows = measure(plan, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record(
        "gateway_pg_ingest", rows, transport=PLAIN, nodes=plan.nodes,
        events_per_node=plan.events_per_node, processes=plan.processes, window=plan.window,
        load_average={"before": load_before, "after": os.getloadavg()},
        postgresql="private cluster, fsync and synchronous_commit on, same machine",
        target="draining >= 0.5x mosquitto_sub; <= 25 us gateway CPU per stored event",
    )  # fmt: skip


if __name__ == "__main__":
    main()
