"""Outbox drain after an outage: 100,000 buffered events to a real Mosquitto, until all are acked.

The events are committed while no broker is reachable (as during an outage); then the
uplink connects and drains them at QoS 1 with its bounded in-flight window. A separate
`mosquitto_sub` process receives them, so the receiving side is not the bottleneck, and
every `seq` it prints is counted: lost and duplicated events are reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bench_uplink, record
from edge.contract import topics
from edge.contract.events import Disinfection
from edge.contract.topics import EventKind, Role, Site
from edge.outbox import Outbox
from edge.uplink import UplinkSettings
from simulators.broker import PrivateBroker

EVENTS = 100_000
BATCH = 1000


def fill(outbox: Outbox) -> None:
    now = datetime.now(UTC)
    for _ in range(EVENTS // BATCH):
        with outbox.transaction() as batch:
            for _ in range(BATCH):
                batch.add(Disinfection(**batch.ids(now), volunteer_id="v017", area="hut"))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="gatepost-drain-"))
    node = Site("bench").node(Role.GATE, "g01")
    rows = []
    try:
        outbox = Outbox(work / "outbox.db", node, capacity=2 * EVENTS)
        started = time.monotonic()
        fill(outbox)
        fill_s = time.monotonic() - started
        outbox.checkpoint()
        with PrivateBroker(work / "broker") as broker:
            receiver = subprocess.Popen(
                ["mosquitto_sub", "-h", broker.url.host, "-p", str(broker.url.port), "-q", "1",
                 "-t", topics.event(node, EventKind.DISINFECTION), "-C", str(EVENTS), "-W", "120"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(0.5)  # subscribed before the node comes back
            uplink = bench_uplink(broker.url, node, outbox)
            stop = threading.Event()
            runner = threading.Thread(target=uplink.run, args=(stop,))
            started = time.monotonic()
            runner.start()
            output, _ = receiver.communicate(timeout=180)
            received_s = time.monotonic() - started
            while outbox.depth and time.monotonic() - started < 180:
                time.sleep(0.01)
            acknowledged_s = time.monotonic() - started
            stop.set()
            runner.join(30)
        seqs = [json.loads(line)["seq"] for line in output.splitlines()]
        unique = set(seqs)
        lost = EVENTS - len(unique & set(range(1, EVENTS + 1)))
        rows.append({
            "events": EVENTS, "fill s": round(fill_s, 2),
            "all received s": round(received_s, 2), "all acknowledged s": round(acknowledged_s, 2),
            "events/s": round(EVENTS / acknowledged_s), "lost": lost,
            "duplicated": len(seqs) - len(unique), "left in outbox": outbox.depth,
        })  # fmt: skip
        outbox.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record("outbox_drain", rows, window=UplinkSettings.window, target_s=30)


if __name__ == "__main__":
    main()
