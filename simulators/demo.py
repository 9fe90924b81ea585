"""`gatepost demo`: every component that exists, on simulated hardware, stopped in order."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.contract import topics
from simulators.broker import PrivateBroker
from simulators.processes import python_module, spawn, stop

SITE = "demo"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Demo:
    """A private broker, a watcher printing every message, and simulated gate nodes.

    Startup is a flat list of steps; shutdown runs them backwards: nodes first (they
    publish a clean offline that the watcher still prints), then the watcher, then the
    broker, then the temporary folder.
    """

    def __init__(self, port: int | None, gates: int, event_interval_s: float) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="gatepost-demo-"))
        self.broker = PrivateBroker(self.workdir / "broker", port)
        self.gates = [f"g{n:02d}" for n in range(1, gates + 1)]
        self.event_interval_s = event_interval_s
        self.children: list[Child] = []

    def run(self, stop_event: threading.Event) -> int:
        """Run until `stop_event` is set or a component dies; 0 on a clean stop."""
        try:
            self.init_broker()
            self.init_watcher()
            self.init_nodes()
            say("Ctrl-C stops everything.")
            return self.supervise(stop_event)
        finally:
            self.shutdown()

    def init_broker(self) -> None:
        self.broker.start()
        assert self.broker.process is not None
        say(f"broker   {self.broker.url}  mosquitto pid {self.broker.process.pid}, "
            f"config {self.broker.config_path}")  # fmt: skip

    def init_watcher(self) -> None:
        self._start("watch", "watch", "--broker", str(self.broker.url))
        say(f"watcher  printing every message under {topics.DEFAULT_PREFIX}/#  "
            f"pid {self.children[-1].process.pid}")  # fmt: skip
        time.sleep(0.5)  # let it subscribe before the nodes' births

    def init_nodes(self) -> None:
        for seed, gate in enumerate(self.gates, start=1):
            self._start(
                f"gate {gate}", "--log-level", "warning", "sim", "node",
                "--broker", str(self.broker.url), "--site", SITE, "--node", gate,
                "--seed", str(seed), "--event-interval", str(self.event_interval_s),
            )  # fmt: skip
            say(f"gate     {SITE}/{gate}  simulated gate node (MQTT presence and events only; "
                f"no devices yet)  pid {self.children[-1].process.pid}")  # fmt: skip

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
        for child in reversed(self.children):
            if child.name == "watch":
                time.sleep(0.3)  # the nodes' last words reach the screen
            stop(child.process, child.name)
        self.broker.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        say("stopped: no process left behind")

    def _start(self, name: str, *args: str) -> None:
        self.children.append(Child(name, spawn(python_module("edge.cli", *args))))


def say(line: str) -> None:
    print(f"[demo] {line}", file=sys.stdout, flush=True)
