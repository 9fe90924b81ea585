"""A gate node at rest: resident memory and CPU share, devices connected and nobody at the gate.

The node runs as `gatepost edge run` against a private Mosquitto, a simulated GM65
scanner and a GY-MCU90614 thermometer streaming its ~14 frames a second, with the
console serving. Nothing is scanned; heartbeats go out every 10 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import record
from simulators.broker import PrivateBroker, free_port
from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermometer import SimulatedThermometer
from simulators.processes import python_module, spawn, stop
from simulators.site import SiteKit

WARMUP_S = 15.0
MEASURE_S = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="gatepost-idle-"))
    try:
        with PrivateBroker(work / "broker") as broker:
            kit = SiteKit(work / "site")
            kit.publish_trust_list(broker.url)
            scanner = SimulatedScanner(work / "scanner").start()
            thermometer = SimulatedThermometer(work / "thermometer").start()
            config = kit.gate_config(
                "g01", broker.url,
                {"scanner": {"url": str(scanner.path), "profile": "gm65-scanner"},
                 "thermometer": {"url": str(thermometer.path), "profile": "gy-mcu90614"}},
                broker={"heartbeat_s": 10}, console={"host": "127.0.0.1", "port": free_port()},
            )  # fmt: skip
            node = spawn(python_module("edge.cli", "--log-level", "warning", "edge", "run",
                                       "--config", str(config)))  # fmt: skip
            try:
                time.sleep(WARMUP_S)
                cpu0, t0 = cpu_seconds(node.pid), time.monotonic()
                samples = []
                while time.monotonic() - t0 < MEASURE_S:
                    samples.append(rss_mb(node.pid))
                    time.sleep(1)
                cpu = 100 * (cpu_seconds(node.pid) - cpu0) / (time.monotonic() - t0)
            finally:
                stop(node, "gate node")
                scanner.stop()
                thermometer.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record(
        "node_idle",
        [{"measure": "resident memory, MB (max)", "value": round(max(samples), 1)},
         {"measure": "resident memory, MB (mean)", "value": round(sum(samples) / len(samples), 1)},
         {"measure": "CPU, % of one core", "value": round(cpu, 2)}],
        warmup_s=WARMUP_S, measure_s=MEASURE_S,
        targets={"rss_mb": 80, "cpu_percent": 2},
    )  # fmt: skip


if __name__ == "__main__":
    main()
