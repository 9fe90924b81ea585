"""What every benchmark shares: the machine it ran on, a printed table, a results file."""

from __future__ import annotations

import json
import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.contract.presence import Birth, Health
from edge.contract.topics import Node
from edge.mqtt import BrokerUrl
from edge.outbox import Outbox
from edge.uplink import Uplink, UplinkSettings

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare two runs."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned Markdown table (the same text goes into the issue note)."""
    headers = list(rows[0])
    cells = [[_cell(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def record(name: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """Print the table and write rows, machine and time to bench/results/<name>-<date>.json."""
    print(table(rows))
    when = datetime.now(UTC)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{when:%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps(
            {"bench": name, "at": when.isoformat(), "machine": machine(), "rows": rows, **extra},
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwritten to {path.relative_to(RESULTS.parent.parent)}")
    return path


def bench_uplink(broker: BrokerUrl, node: Node, outbox: Outbox) -> Uplink:
    """The node's real uplink over `outbox`, with a fixed birth and a plain heartbeat."""
    return Uplink(
        UplinkSettings(broker), node, outbox,
        birth=lambda s: Birth(session=s, node_time=datetime.now(UTC), role=node.role,
                              version="bench", config_hash="0" * 16, heartbeat_s=10),
        health=lambda s: Health(node_time=datetime.now(UTC), session=s, uptime_s=0,
                                last_seq=outbox.last_seq, outbox_depth=outbox.depth,
                                outbox_capacity=outbox.capacity),
    )  # fmt: skip
