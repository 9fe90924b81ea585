"""Cost of the MQTT contract codec per message: encode on the node, decode at the gateway.

The gateway must ingest >= 20,000 events/s; decode is on that path, so its cost per
message bounds what one ingest process can do.

    .venv/bin/python -m bench.contract_codec [--n 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.common import record
from edge.contract import catalogue, topics
from edge.contract.base import Payload, new_event_id
from edge.contract.events import DepotReading, DepotReadingBatch, Passage
from edge.contract.presence import Health
from edge.contract.topics import EventKind, Role, Site

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SITE = Site("north")


def samples() -> list[tuple[str, str, Payload]]:
    gate, depot = SITE.node(Role.GATE, "g01"), SITE.node(Role.DEPOT, "d01")
    passage = Passage(
        event_id=new_event_id(T0), seq=1, node_time=T0, direction="in", outcome="hold",
        colour="green", credential="health-code", reasons=("fever",), temperature_c=38.2,
        subject_ref="ab" * 32,
    )  # fmt: skip
    health = Health(node_time=T0, session=1, uptime_s=10, last_seq=9, outbox_depth=0,
                    outbox_capacity=100_000)  # fmt: skip
    readings = tuple(
        DepotReading(
            sensor=f"cold-{n}",
            bus_address=n,
            at=T0 + timedelta(seconds=n),
            status="ok",
            temperature_c=4.2,
            humidity_pct=61.5,
        )
        for n in range(1, 21)
    )
    batch = DepotReadingBatch(event_id=new_event_id(T0), seq=2, node_time=T0, readings=readings)
    return [
        ("Passage", topics.event(gate, EventKind.PASSAGE), passage),
        ("Health", topics.health(gate), health),
        ("DepotReadingBatch (20 readings)", topics.reading(depot), batch),
    ]


def per_second(fn: Callable[[], object], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="messages per measurement")
    args = parser.parse_args()
    rows = []
    for name, topic, payload in samples():
        data = catalogue.encode(payload)
        encode = per_second(lambda p=payload: catalogue.encode(p), args.n)
        decode = per_second(lambda t=topic, d=data: catalogue.decode(t, d), args.n)
        rows.append({
            "payload": name, "bytes": len(data), "encode/s": encode, "decode/s": decode,
            "decode µs": 1e6 / decode,
        })  # fmt: skip
    record("contract_codec", rows, n=args.n)


if __name__ == "__main__":
    main()
