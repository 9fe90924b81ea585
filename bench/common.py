"""What every benchmark shares: the machine, a table, a results file, a broker and its site."""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from edge.contract.presence import Birth, Health
from edge.contract.topics import DEFAULT_PREFIX, Node
from edge.mqtt import Endpoint
from edge.outbox import Outbox
from edge.uplink import Uplink, UplinkSettings
from firmware_tools.site_pki import IdentityRole, SitePki
from gateway.config import broker_config
from simulators.broker import PrivateBroker, free_port
from simulators.processes import python_module, spawn, stop, wait_for_http

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


def bench_uplink(broker: Endpoint, node: Node, outbox: Outbox) -> Uplink:
    """The node's real uplink over `outbox`, with a fixed birth and a plain heartbeat."""
    return Uplink(
        UplinkSettings(broker), node, outbox,
        birth=lambda s: Birth(session=s, node_time=datetime.now(UTC), role=node.role,
                              version="bench", config_hash="0" * 16, heartbeat_s=10),
        health=lambda s: Health(node_time=datetime.now(UTC), session=s, uptime_s=0,
                                last_seq=outbox.last_seq, outbox_depth=outbox.depth,
                                outbox_capacity=outbox.capacity),
    )  # fmt: skip


# --- the broker and who reaches it -------------------------------------------------

SITE = "bench"
PLAIN = "plain"  # before: anonymous MQTT, no TLS
TLS = "tls+cert"  # after: the locked site broker, as deployed
TRANSPORTS = (PLAIN, TLS)
GATEWAY = "gw1"  # the gateway's identities: gateway-gw1 (ingest), gateway-gw1-out (publisher)


def transport_arg(parser: argparse.ArgumentParser, default: str) -> None:
    """`--transport plain|tls+cert|both`; read it back with `transports(args)`."""
    parser.add_argument(
        "--transport", choices=[*TRANSPORTS, "both"], default=default,
        help=f"{PLAIN}: anonymous MQTT (before TLS); {TLS}: the locked site broker with "
        f"TLS, client certificates and the site ACL, as deployed; both: each in turn "
        f"(default: {default})",
    )  # fmt: skip


def transports(args: argparse.Namespace) -> tuple[str, ...]:
    return TRANSPORTS if args.transport == "both" else (args.transport,)


class BenchSite:
    """A private Mosquitto for one bench run, and the identities its clients reach it by.

    `plain` is the broker before TLS: anonymous MQTT, every client the same endpoint.
    `tls+cert` is the broker as `make demo` and a site run it: a site PKI, TLS with a
    client certificate of the site CA required, the certificate's name as user name and
    client id, the site's ACL, and one identity per client (docs/security.md). The
    gateway's pair is issued at once; take every other endpoint before the broker starts
    (`with site:`), so that no reload happens while a client is away (see `endpoint`).

    Args:
        work: a folder of its own (broker data and, locked, the PKI with private keys).
        transport: PLAIN or TLS.
        site, prefix: the only site the ACL grants anything on.
    """

    def __init__(
        self, work: Path, transport: str, site: str = SITE, prefix: str = DEFAULT_PREFIX
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport {transport!r} is not one of {', '.join(TRANSPORTS)}")
        self.transport, self.site, self.prefix = transport, site, prefix
        self.pki = SitePki.init(work / "pki", site, prefix) if transport == TLS else None
        self.broker = PrivateBroker(work / "broker", pki=self.pki)
        self.endpoint(IdentityRole.GATEWAY, GATEWAY)

    def endpoint(self, role: IdentityRole, name: str) -> Endpoint:
        """How `<role>-<name>` reaches the broker; plain: anonymously.

        Locked, the identity is issued on first use. Mosquitto's dynamic security
        plugin reads its grants only when the broker starts, so a running broker is
        restarted (it keeps persistent sessions and their queues, and forgets shared
        subscriptions until their owners subscribe again). Better: issue before the start.
        """
        if self.pki is None:
            return Endpoint(self.broker.url)
        files, issued = self.pki.ensure(role, name)
        if issued and self.broker.running:
            self.broker.restart()
        return files.endpoint(self.broker.url)

    def simulators(self, count: int) -> list[Endpoint]:
        """One endpoint per fleet publisher process: a connection, so an identity, each."""
        return [self.endpoint(IdentityRole.SIMULATOR, f"fleet{i}") for i in range(count)]

    def gateway_broker(self) -> dict[str, str]:
        """The gateway config's broker section, with both its identities when locked."""
        ingest = publisher = self.endpoint(IdentityRole.GATEWAY, GATEWAY)
        if self.pki is not None:
            publisher = self.pki.gateway_pair(GATEWAY)[1].endpoint(self.broker.url)
        return broker_config(ingest, publisher) | {"prefix": self.prefix}

    def __enter__(self) -> BenchSite:
        self.broker.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.broker.stop()


class GatewayProcess:
    """`gatepost gateway run` on a bench site's broker as itself, `gates` its inventory.

    `site_config` adds to the site's section of its config (depots, zones, storage classes),
    `config` to the config itself (e.g. an `ingest` section).
    """

    def __init__(
        self, site: BenchSite, workdir: Path, gates: Sequence[str],
        site_config: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        path = workdir / "gateway.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "sites": [{"name": site.site, "gates": list(gates)} | (site_config or {})],
                    "broker": site.gateway_broker(),
                    "store": {"path": "gateway.db"},
                    "http": {"port": self.port},
                }
                | (config or {})
            )
        )
        self.db = workdir / "gateway.db"
        self.process = spawn(
            python_module("edge.cli", "--log-level", "warning", "gateway", "run",
                          "--config", str(path))
        )  # fmt: skip
        if not wait_for_http(f"http://127.0.0.1:{self.port}/metrics"):
            self.stop()
            raise RuntimeError("the gateway did not come up")
        time.sleep(0.5)  # its SUBACK

    def stop(self) -> None:
        stop(self.process, "gateway")
