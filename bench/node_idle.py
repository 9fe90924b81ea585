"""A node at rest: resident memory and CPU share of a gate and of a depot node.

Each runs as `gatepost edge run` against a private Mosquitto. The gate has a simulated
GM65 scanner and a GY-MCU90614 thermometer streaming its ~14 frames a second, with the
console serving; nothing is scanned. The depot polls three XY-MD02 sensors on a
simulated RS485 bus every 10 s (as its example config), readings steady. Heartbeats go
out every 10 s.

The broker is the locked site broker, as deployed: the node connects over TLS with its
own certificate under the site ACL. `--transport plain` or `both` adds anonymous MQTT.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import SITE, TLS, BenchSite, record, transport_arg, transports
from edge.depot.config import write_config
from firmware_tools.site_pki import IdentityRole
from simulators.broker import free_port
from simulators.devices.modbus_bus import SimulatedModbusBus, SimulatedSensor, constant
from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermometer import SimulatedThermometer
from simulators.processes import python_module, spawn, stop
from simulators.site import SiteKit

WARMUP_S = 15.0
MEASURE_S = 60.0
HEARTBEAT_S = 10  # as deployed
ROLES = ("gate", "depot")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def heartbeat_every(config: Path, seconds: int) -> None:
    """Set the node's heartbeat in its config (the kit writes its own broker section)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["broker"]["heartbeat_s"] = seconds
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def measure(
    work: Path, role: str, transport: str, warmup_s: float, measure_s: float
) -> list[dict[str, Any]]:
    """One idle node of `role` over `transport`: its memory (max, mean) and CPU share."""
    site = BenchSite(work / "broker", transport)
    provisioning = site.endpoint(IdentityRole.ADMIN, "provisioning")
    endpoint = site.endpoint(IdentityRole(role), "n01")
    with site:
        kit = SiteKit(work / "site", SITE)
        kit.publish_trust_list(provisioning)
        if role == "gate":
            scanner = SimulatedScanner(work / "scanner").start()
            thermometer = SimulatedThermometer(work / "thermometer").start()
            parts: list[Any] = [scanner, thermometer]
            config = kit.gate_config(
                "n01", endpoint,
                {"scanner": {"url": str(scanner.path), "profile": "gm65-scanner"},
                 "thermometer": {"url": str(thermometer.path), "profile": "gy-mcu90614"}},
                console={"host": "127.0.0.1", "port": free_port()},
            )  # fmt: skip
            heartbeat_every(config, HEARTBEAT_S)
        else:
            sensors = [SimulatedSensor(n, constant(5.0), constant(60.0)) for n in (1, 2, 3)]
            bus = SimulatedModbusBus(work / "rs485", sensors).start()
            parts = [bus]
            config = write_config(
                work / "depot.yaml", site=SITE, name="n01", endpoint=endpoint,
                buses=[{"url": str(bus.path), "poll_s": 10, "sensors": [
                    {"zone": f"zone-{n}", "slave_id": n} for n in (1, 2, 3)]}],
                broker={"heartbeat_s": HEARTBEAT_S},
            )  # fmt: skip
        try:
            node = spawn(python_module("edge.cli", "--log-level", "warning", "edge", "run",
                                       "--config", str(config)))  # fmt: skip
            try:
                time.sleep(warmup_s)
                cpu0, t0 = cpu_seconds(node.pid), time.monotonic()
                samples = []
                while time.monotonic() - t0 < measure_s:
                    samples.append(rss_mb(node.pid))
                    time.sleep(1)
                cpu = 100 * (cpu_seconds(node.pid) - cpu0) / (time.monotonic() - t0)
            finally:
                stop(node, f"{role} node")
        finally:
            for part in parts:
                part.stop()
    return [
        {"role": role, "transport": transport, "measure": "resident memory, MB (max)",
         "value": round(max(samples), 1)},
        {"role": role, "transport": transport, "measure": "resident memory, MB (mean)",
         "value": round(sum(samples) / len(samples), 1)},
        {"role": role, "transport": transport, "measure": "CPU, % of one core",
         "value": round(cpu, 2)},
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=MEASURE_S, help="measured seconds")
    parser.add_argument("--role", choices=[*ROLES, "both"], default="both", help="which node")
    transport_arg(parser, default=TLS)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for role in ROLES if args.role == "both" else (args.role,):
        for transport in transports(args):
            work = Path(tempfile.mkdtemp(prefix=f"gatepost-idle-{role}-{transport}-"))
            try:
                rows += measure(work, role, transport, args.warmup, args.seconds)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    record(
        "node_idle", rows, warmup_s=args.warmup, measure_s=args.seconds,
        targets={"rss_mb": 80, "cpu_percent": 2},
    )  # fmt: skip


if __name__ == "__main__":
    main()
