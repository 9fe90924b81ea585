"""`gatepost demo`: every component that exists, on simulated hardware, stopped in order."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from edge.contract import topics
from gateway.access import hash_token, new_token
from gateway.store import SqliteStore
from simulators.broker import PrivateBroker, free_port
from simulators.crowd import Crowd, CrowdMix
from simulators.devices.base import SimulatedPart
from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermometer import SimulatedThermometer
from simulators.processes import python_module, spawn, stop, wait_for_http
from simulators.site import SiteKit

SITE = "demo"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Demo:
    """A private broker, a watcher, the gateway, and gate nodes on simulated devices with crowds.

    Startup is a flat list of steps; shutdown runs them backwards: crowds first, then
    the nodes (they publish a clean offline that the watcher still prints), their
    simulated devices, the gateway, the watcher, the broker, and the temporary folder.
    """

    def __init__(self, port: int | None, gates: int, arrivals_per_min: float) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="gatepost-demo-"))
        self.broker = PrivateBroker(self.workdir / "broker", port)
        self.gates = [f"g{n:02d}" for n in range(1, gates + 1)]
        self.mix = CrowdMix(arrivals_per_min=arrivals_per_min)
        self.children: list[Child] = []
        self.parts: list[SimulatedPart] = []
        self.crowds: list[threading.Thread] = []
        self.crowd_stop = threading.Event()

    def run(self, stop_event: threading.Event) -> int:
        """Run until `stop_event` is set or a component dies; 0 on a clean stop."""
        try:
            self.init_broker()
            self.init_site()
            self.init_watcher()
            self.init_gateway()
            self.init_gates()
            say("Ctrl-C stops everything.")
            return self.supervise(stop_event)
        finally:
            self.shutdown()

    def init_broker(self) -> None:
        self.broker.start()
        assert self.broker.process is not None
        say(f"broker   {self.broker.url}  mosquitto pid {self.broker.process.pid}, "
            f"config {self.broker.config_path}")  # fmt: skip

    def init_site(self) -> None:
        self.kit = SiteKit(self.workdir / "site", SITE)
        self.kit.publish_trust_list(self.broker.url)
        say(f"site     {SITE}: root key, code signer and a signed trust list (retained)")

    def init_gateway(self) -> None:
        """The gateway, its inventory being the demo's gates, and a command-center token."""
        folder = self.workdir / "gateway"
        folder.mkdir()
        config = folder / "gateway.yaml"
        port = free_port()
        config.write_text(
            yaml.safe_dump(
                {
                    "sites": [{"name": SITE, "gates": self.gates}],
                    "broker": {"url": str(self.broker.url)},
                    "store": {"path": "gateway.db"},
                    "http": {"host": "127.0.0.1", "port": port},
                }
            )
        )
        token = new_token()
        store = SqliteStore(folder / "gateway.db")
        store.add_token(hash_token(token), "demo-command-center", "command", datetime.now(UTC))
        store.close()
        self._start("gateway", "--log-level", "warning", "gateway", "run", "--config", str(config))
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/metrics")
        say(f"gateway  dashboard {url}/?token={token}  pid {self.children[-1].process.pid}")
        say(f"gateway  command-center token (no personal data): {token}  "
            f"API {url}/api/nodes, OpenAPI {url}/openapi.json")  # fmt: skip

    def init_watcher(self) -> None:
        self._start("watch", "watch", "--broker", str(self.broker.url))
        say(f"watcher  printing every message under {topics.DEFAULT_PREFIX}/#  "
            f"pid {self.children[-1].process.pid}")  # fmt: skip
        time.sleep(0.5)  # let it subscribe before the nodes' births

    def init_gates(self) -> None:
        for seed, gate in enumerate(self.gates, start=1):
            scanner = SimulatedScanner(self.workdir / f"{gate}-scanner").start()
            thermometer = SimulatedThermometer(self.workdir / f"{gate}-thermometer", seed=seed)
            thermometer.start()
            self.parts += [scanner, thermometer]
            console = free_port()
            config = self.kit.gate_config(
                gate, self.broker.url,
                {"scanner": {"url": str(scanner.path), "profile": "gm65-scanner"},
                 "thermometer": {"url": str(thermometer.path), "profile": "gy-mcu90614"}},
                node={"direction": "in" if seed % 2 else "out"},
                console={"host": "127.0.0.1", "port": console},
            )  # fmt: skip
            self._start(
                f"gate {gate}", "--log-level", "warning", "edge", "run", "--config", str(config)
            )
            url = f"http://127.0.0.1:{console}"
            say(f"gate     {SITE}/{gate}  console {url}  scanner {scanner.path}, "
                f"thermometer {thermometer.path}  pid {self.children[-1].process.pid}")  # fmt: skip
            crowd = Crowd(self.kit, scanner, thermometer, mix=self.mix, console_url=url,
                          volunteer=f"v{seed:03d}", seed=seed)  # fmt: skip
            self.crowds.append(threading.Thread(target=crowd.run, args=(self.crowd_stop,)))
        time.sleep(1.0)  # the nodes open their ports and consoles before the crowd comes
        for thread in self.crowds:
            thread.start()

    def supervise(self, stop_event: threading.Event) -> int:
        while not stop_event.wait(0.2):
            for child in self.children:
                if child.process.poll() is not None:
                    say(f"{child.name} exited with {child.process.returncode}; stopping the demo")
                    return 1
            if not self.broker.running:
                say("the broker exited; stopping the demo")
                return 1
        say("stopping…")
        return 0

    def shutdown(self) -> None:
        self.crowd_stop.set()
        for thread in self.crowds:
            thread.join(5)
        for child in reversed(self.children):
            if child.name == "watch":
                time.sleep(0.3)  # the nodes' last words reach the screen
                for part in self.parts:
                    part.stop()
            stop(child.process, child.name)
        self.broker.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        say("stopped: no process left behind")

    def _start(self, name: str, *args: str) -> None:
        self.children.append(Child(name, spawn(python_module("edge.cli", *args))))


def say(line: str) -> None:
    print(f"[demo] {line}", file=sys.stdout, flush=True)
