"""Gateway ingest beside a bare `mosquitto_sub`, while a fleet floods a real Mosquitto at QoS 1.

The fleet (simulators/fleet.py) publishes from several processes, since one Python
publisher cannot saturate the broker. `mosquitto_sub` is the ceiling: a C client that
only prints what it receives. Every receiver is counted on the same stream in the same
run, so the gateway's rate can be read as a share of what the broker can deliver
(the target is >= 0.9x mosquitto_sub and >= 20,000 events/s). The fleet's own row
runs from its start signal to its last PUBACK.

Draining is compared like for like (#16: >= 0.5x): the same fleet run is queued in two
persistent sessions, the gateway's and a bare `mosquitto_sub -c`'s, and each drains its
own queue in turn with the machine to itself. The gateway's draining row also gives its
CPU per stored event (user + system of its process, first to last stored event; the
goal is <= 25 us).

Each transport runs in turn on a broker of its own (issue #11, the cost of TLS):
`plain`, anonymous MQTT, and `tls+cert`, the locked site broker as deployed, where
every client (each publisher process, mosquitto_sub, the gateway's two connections)
has its own certificate and the site ACL holds. "vs plain" is a row's rate over the
same row's rate on plain MQTT in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import PLAIN, BenchSite, GatewayProcess, record, transport_arg, transports
from edge.contract.topics import CONTRACT_VERSION, Role
from edge.mqtt import Endpoint
from firmware_tools.site_pki import IdentityRole
from simulators.fleet import FleetPlan, FleetResult, run_fleet
from simulators.processes import spawn, stop

FLEET_TIMEOUT_S = 300.0
# A receiver that got nothing new for this long has got all it will get.
IDLE_S = 10.0


def stored_in(db: Path) -> int:
    """Events stored: each node's contiguous seq, kept per batch (exact once all arrived)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT COALESCE(SUM(seq_contiguous), 0) FROM nodes").fetchone()
    return int(row[0])


def mosquitto_args(endpoint: Endpoint, fallback_id: str) -> list[str]:
    """Options that make a mosquitto_* client reach `endpoint` as its certificate's identity."""
    args = ["-h", endpoint.host, "-p", str(endpoint.port), "-i", endpoint.client_id(fallback_id)]
    files = {"--cafile": endpoint.ca, "--cert": endpoint.cert, "--key": endpoint.key}
    return args + [arg for flag, path in files.items() if path for arg in (flag, str(path))]


class SubReceiver:
    """A `mosquitto_sub` printing receive time, topic and payload of every event."""

    def __init__(
        self, broker: Endpoint, topic_filter: str, expected: int, client_id: str = "bench-sub",
        *, persistent: bool = False,
    ) -> None:  # fmt: skip
        self.lines: list[str] = []
        session = ["-c"] if persistent else []  # clean session off: resumes a queued session
        self.process = spawn(
            ["mosquitto_sub", *mosquitto_args(broker, client_id), *session,
             "-q", "1", "-t", topic_filter, "-F", "%U %t %p", "-C", str(expected),
             "-W", str(int(FLEET_TIMEOUT_S + 60))],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode())

    def wait(self, expected: int) -> None:
        """Until `expected` lines arrived (it then exits) or none came for IDLE_S."""
        _wait_for(lambda: len(self.lines), expected)
        self.close()

    def close(self) -> None:
        stop(self.process, "mosquitto_sub", grace_s=5)
        self._reader.join(5)

    def row(self, expected: set[tuple[str, int]]) -> dict[str, Any]:
        """Received, lost and duplicated (by node and seq), and the rate first to last."""
        keys: list[tuple[str, int]] = []
        stamps: list[float] = []
        for line in self.lines:
            stamp, topic, payload = line.split(" ", 2)
            stamps.append(float(stamp))
            keys.append((topic.split("/")[4], json.loads(payload)["seq"]))
        unique = set(keys)
        span = max(stamps) - min(stamps) if stamps else 0.0
        return _row("mosquitto_sub", len(keys), len(expected - unique),
                    len(keys) - len(unique), span)  # fmt: skip


def open_session(broker: Endpoint, topic_filter: str, client_id: str) -> None:
    """Subscribe a persistent `mosquitto_sub` session and leave: the broker queues for it."""
    subprocess.run(
        ["mosquitto_sub", *mosquitto_args(broker, client_id), "-c", "-q", "1",
         "-t", topic_filter, "-E"],
        check=True, timeout=30,
    )  # fmt: skip


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GatewayWatch:
    """Polls a gateway's count on a thread: when the first event and the last one arrived."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.counted = count
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        # The process's CPU seconds, once set: (count, cpu) at the first and last change seen.
        self.cpu: Callable[[], float] | None = None
        self.cpu_first: tuple[int, float] | None = None
        self.cpu_last: tuple[int, float] | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.01):
            count = self.counted()
            if count != self.count:
                now = time.monotonic()
                self.first = self.first or now
                self.count, self.last = count, now
                if self.cpu is not None:
                    self.cpu_last = (count, self.cpu())
                    self.cpu_first = self.cpu_first or self.cpu_last

    def wait(self, expected: int) -> None:
        """Until the gateway counted `expected` events or counted none more for IDLE_S."""
        _wait_for(lambda: self.count, expected)
        self.close()

    def close(self) -> None:
        if not self._done.is_set():
            self._done.set()
            self._thread.join(5)

    def row(self, total: int) -> dict[str, Any]:
        # The gateway stores by event_id, so a redelivery is not a second row: it
        # cannot show duplicates, and its count is what it stored.
        span = self.last - self.first if self.first else 0.0
        row = _row("gateway", self.count, max(0, total - self.count), "n/a", span)
        if self.cpu_first and self.cpu_last and self.cpu_last[0] > self.cpu_first[0]:
            events = self.cpu_last[0] - self.cpu_first[0]
            row["CPU us/event"] = round((self.cpu_last[1] - self.cpu_first[1]) / events * 1e6, 1)
        return row


def _wait_for(count: Callable[[], int], expected: int) -> None:
    last, since = -1, time.monotonic()
    while (now := count()) < expected and time.monotonic() - since < IDLE_S:
        if now != last:
            last, since = now, time.monotonic()
        time.sleep(0.05)


def _row(receiver: str, received: int, lost: int, duplicated: Any, span: float) -> dict[str, Any]:
    return {
        "receiver": receiver, "received": received, "lost": lost, "duplicated": duplicated,
        "first→last s": round(span, 2), "events/s": round(received / span) if span else 0,
        "CPU us/event": "-",
    }  # fmt: skip


def measure(
    plan: FleetPlan, work: Path, transport: str
) -> tuple[FleetResult, list[dict[str, Any]]]:
    """Run the fleet at a private broker with every receiver listening; one row per receiver."""
    topic_filter = events_filter(plan)
    expected = expected_keys(plan)
    site = BenchSite(work / "live", transport, plan.site, plan.prefix)
    publishers = site.simulators(plan.processes)
    # Events are the gateway's to read: the ceiling is a gateway identity of its own.
    ceiling = site.endpoint(IdentityRole.GATEWAY, "bench-sub")
    with site:
        sub = SubReceiver(ceiling, topic_filter, plan.total)
        gateway = GatewayProcess(site, work / "gateway", plan.node_names)
        watch = GatewayWatch(lambda: stored_in(gateway.db))
        try:
            # mosquitto_sub subscribes within milliseconds; the fleet takes a second or
            # more to start its processes and build its payloads, so nothing is missed.
            result = run_fleet(plan, publishers, timeout_s=FLEET_TIMEOUT_S)
            sub.wait(plan.total)
            watch.wait(plan.total)
        finally:
            sub.close()
            watch.close()
            gateway.stop()
    fleet = _row("fleet (PUBACKed)", result.published, plan.total - result.published, "-",
                 result.seconds)  # fmt: skip
    live = watch.row(plan.total)
    live["receiver"] = "gateway, live beside the fleet"
    rows = [fleet, sub.row(expected), live]
    rate = rows[1]["events/s"]
    for row in rows:
        row["vs mosquitto_sub"] = f"{row['events/s'] / rate:.2f}" if rate else "-"
    return result, rows


def events_filter(plan: FleetPlan) -> str:
    # The site, not +: a locked broker grants a subscription only within the ACL's site.
    return f"{plan.prefix}/{CONTRACT_VERSION}/{plan.site}/{Role.GATE}/+/event/+"


def expected_keys(plan: FleetPlan) -> set[tuple[str, int]]:
    return {(name, seq) for name in plan.node_names
            for seq in range(1, plan.events_per_node + 1)}  # fmt: skip


def measure_drain(plan: FleetPlan, work: Path, transport: str) -> list[dict[str, Any]]:
    """Capacity: the fleet's stream queued in two sessions, each then drained in turn.

    The gateway and a bare `mosquitto_sub -c` each subscribe once and leave; the broker
    keeps both persistent sessions and queues the whole stream in each. Then
    mosquitto_sub drains its queue, and after it the gateway starts again and stores its
    own, each with the machine's cores to itself (the broker aside). Live, three
    publisher processes share two cores with it, so the live row measures the machine
    as much as the gateway.
    """
    site = BenchSite(work / "queued", transport, plan.site, plan.prefix)
    publishers = site.simulators(plan.processes)
    topic_filter = events_filter(plan)
    # An identity of its own, issued before the broker starts (no reload while away).
    draining = site.endpoint(IdentityRole.GATEWAY, "bench-drain-sub")
    with site:
        GatewayProcess(site, work / "drain", plan.node_names).stop()
        open_session(draining, topic_filter, "bench-drain-sub")
        run_fleet(plan, publishers, timeout_s=FLEET_TIMEOUT_S)
        sub = SubReceiver(draining, topic_filter, plan.total, "bench-drain-sub", persistent=True)
        try:
            sub.wait(plan.total)
        finally:
            sub.close()
        # Watched from before the start: it stores while its HTTP side still comes up.
        watch = GatewayWatch(lambda: stored_in(work / "drain" / "gateway.db"))
        gateway = GatewayProcess(site, work / "drain", plan.node_names)
        watch.cpu = lambda: process_cpu_s(gateway.process.pid)
        try:
            watch.wait(plan.total)
        finally:
            watch.close()
            gateway.stop()
    sub_row = sub.row(expected_keys(plan))
    sub_row["receiver"] = "mosquitto_sub, draining its queue"
    row = watch.row(plan.total)
    row["receiver"] = "gateway, draining its queue"
    rate = sub_row["events/s"]
    for each in (sub_row, row):
        each["vs mosquitto_sub"] = f"{each['events/s'] / rate:.2f}" if rate else "-"
    return [sub_row, row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--events-per-node", type=int, default=500)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--window", type=int, default=1000, help="max unacked per publisher")
    transport_arg(parser, default="both")
    args = parser.parse_args()
    plan = FleetPlan(nodes=args.nodes, events_per_node=args.events_per_node,
                     processes=args.processes, window=args.window)  # fmt: skip
    rows: list[dict[str, Any]] = []
    windows_used: dict[str, list[int]] = {}
    fleet_errors: dict[str, dict[int, str]] = {}
    for transport in transports(args):
        work = Path(tempfile.mkdtemp(prefix=f"gatepost-ingest-{transport}-"))
        try:
            result, live = measure(plan, work, transport)
            drain = measure_drain(plan, work, transport)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows += [{"transport": transport} | row for row in [*live, *drain]]
        windows_used[transport] = [w.window for w in result.workers]
        if result.errors:
            fleet_errors[transport] = result.errors
        for worker, error in result.errors.items():
            print(f"{transport} publisher {worker}: {error}")
    compare_with_plain(rows)
    record(
        "gateway_ingest", rows, nodes=plan.nodes, events_per_node=plan.events_per_node,
        processes=plan.processes, window=plan.window, windows_used=windows_used,
        fleet_errors=fleet_errors,
        target="gateway >= 20,000 events/s and >= 0.9x mosquitto_sub live; draining >= 0.5x "
        "mosquitto_sub draining the same queued stream; <= 25 us CPU per stored event",
    )  # fmt: skip


def compare_with_plain(rows: list[dict[str, Any]]) -> None:
    """Each row's rate over the same receiver's on plain MQTT in this run (the TLS cost)."""
    plain = {row["receiver"]: row["events/s"] for row in rows if row["transport"] == PLAIN}
    for row in rows:
        base = plain.get(row["receiver"])
        row["vs plain"] = f"{row['events/s'] / base:.2f}" if base else "-"


if __name__ == "__main__":
    main()
