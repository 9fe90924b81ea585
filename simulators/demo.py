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
from typing import IO

import yaml

from edge.cli import endpoint_args
from edge.configfile import PROFILES_DIR
from edge.contract import topics
from edge.depot.config import write_config as depot_config
from edge.devices.registry import load_profile
from edge.devices.scale.profile import ScaleProfile
from firmware_tools.site_pki import IdentityRole, SitePki
from gateway.access import hash_token, new_token
from gateway.config import broker_config
from gateway.store import SqliteStore
from simulators import stock_week, sweeper
from simulators.broker import PrivateBroker, free_port
from simulators.crowd import Crowd, CrowdMix
from simulators.demo_status import DemoStatus, StatusScreen
from simulators.devices.base import SimulatedPart
from simulators.devices.depot_scenarios import (
    HOUR_S,
    CompressorFailure,
    Depot,
    DepotZone,
    DoorOpen,
    Normal,
    Occurrence,
)
from simulators.devices.modbus_bus import CompressedClock
from simulators.devices.scale import SimulatedScale
from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermometer import SimulatedThermometer
from simulators.processes import python_module, spawn, stop, wait_for_http
from simulators.site import SiteKit
from simulators.stock_week import Keeper, Seeded

SITE = "demo"
DEPOT = "d01"
# The depot's sensors live an hour of simulated time each real minute: its cold store's
# compressor fails a quarter of an hour in, the store crosses 8 °C some two minutes later
# and the demo's class alarms after one more minute; the compressor is back five
# simulated hours after failing and the alarm clears as the store cools (every 8 min).
DEPOT_SPEEDUP = 60.0
DEPOT_ZONES = (DepotZone("cold-store-1", 1, "cold"), DepotZone("dry-store", 2, "room"))
DEPOT_SCENARIOS = (
    Normal(),
    CompressorFailure(
        zone="cold-store-1", occurrence=Occurrence(0.25 * HOUR_S, 5 * HOUR_S, every_s=8 * HOUR_S)
    ),
    DoorOpen(zone="dry-store"),
)
# The cold store's class with its delays cut to a minute, so that the demo shows an
# excursion alarm raised and cleared within minutes (the built-in `cold` waits 10 h).
DEMO_COLD = {
    "description": "冷库 2 至 8 °C（演示：报警延时缩为 1 分钟） cold store, demo delays",
    "conditions": [
        {"name": "heat", "direction": "above", "threshold": 8.0, "delay_min": 1},
        {"name": "freeze", "direction": "below", "threshold": -0.5, "delay_min": 1},
    ],
}
# With the raw view, the counts and addresses are printed again this often.
SUMMARY_EVERY_S = 60.0
# The reserve targets are checked this often (60 s in a site), so that the keeper's pork
# issues raise stock-shortage within a minute or two of the start.
STOCK_CHECK_EVERY_S = 10


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Demo:
    """A locked broker, a watcher, the gateway, gate nodes with crowds, a depot node with a
    weighed pallet, and its keeper at the stock API (simulators/stock_week.py).

    The site runs as it would be deployed: a site CA, a broker that takes TLS with a
    client certificate only and holds every identity to its grants, and one certificate per
    process (docs/security.md).

    Startup is a flat list of steps; shutdown runs them backwards: crowds first, then
    the nodes (they publish a clean offline that the watcher still sees), their
    simulated devices, the gateway, the watcher, the broker, and the temporary folder.

    On a terminal the demo shows a live status (counts per gate, open alarms, every
    address and the token) and writes every message to messages.log in its folder; with
    `raw` (the default when the output is not a terminal) it prints every message instead.
    The folder holds the site's private keys: a sweeper process deletes it once the demo
    is gone, even if the demo was killed outright.

    Args:
        port: the broker's port, or None for a free one.
        gates: how many gate nodes.
        arrivals_per_min: people arriving at each gate per minute.
        raw: print every message (True), show the live status (False), or decide by
            whether standard output is a terminal (None).
    """

    def __init__(
        self, port: int | None, gates: int, arrivals_per_min: float, raw: bool | None = None
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="gatepost-demo-"))
        self.sweeper = sweeper.start(self.workdir)
        self.raw = not sys.stdout.isatty() if raw is None else raw
        self.pki = SitePki.init(self.workdir / "pki", SITE)
        self.broker = PrivateBroker(self.workdir / "broker", port, pki=self.pki)
        self.gates = [f"g{n:02d}" for n in range(1, gates + 1)]
        self.mix = CrowdMix(arrivals_per_min=arrivals_per_min)
        self.children: list[Child] = []
        self.parts: list[SimulatedPart] = []
        self.crowds: list[threading.Thread] = []
        self.crowd_stop = threading.Event()
        self.keeper: Keeper | None = None
        self.messages_log = self.workdir / "messages.log"
        # Off the terminal when the status is on it: warnings would scribble over it.
        self.process_log = self.workdir / "processes.log"
        self._stderr: IO[bytes] | None = None if self.raw else self.process_log.open("ab")
        self.status = DemoStatus(
            f"Gatepost demo: site {SITE}, {gates} gates, {arrivals_per_min:g} arrivals/min each",
            raw_hint="Every message (`gatepost demo --raw` prints them instead of this screen):\n"
            f"  tail -f {self.messages_log}",
        )
        self.screen = StatusScreen(self.status, sys.stdout)
        self._reader: threading.Thread | None = None

    def run(self, stop_event: threading.Event) -> int:
        """Run until `stop_event` is set or a component dies; 0 on a clean stop."""
        try:
            say(f"folder   {self.workdir}  (deleted when the demo ends)")
            self.init_broker()
            self.init_site()
            self.init_watcher()
            self.init_gateway()
            self.init_gates()
            self.init_depot()
            self.init_keeper()
            self.init_status()
            return self.supervise(stop_event)
        finally:
            self.shutdown()

    def init_broker(self) -> None:
        # Every identity before the broker starts: Mosquitto's dynamic security plugin
        # reads the grants only then (docs/security.md).
        identities = [(IdentityRole.COMMAND, "center"), (IdentityRole.ADMIN, "provisioning"),
                      (IdentityRole.ADMIN, "watch"), (IdentityRole.GATEWAY, "gw1"),
                      (IdentityRole.DEPOT, DEPOT),
                      *((IdentityRole.GATE, gate) for gate in self.gates)]  # fmt: skip
        for role, name in identities:
            self.pki.issue(role, name)
        self.broker.start()
        assert self.broker.process is not None
        sweeper.watch(self.sweeper, self.broker.process.pid)
        self.status.add_address("Broker (MQTT)", str(self.broker.url))
        say(f"broker   {self.broker.url}  mosquitto pid {self.broker.process.pid}, "
            f"config {self.broker.config_path}")  # fmt: skip
        center = self.broker.endpoint("command-center")
        say(f"broker   TLS with client certificates only; site CA {center.ca}; the command "
            f"center's certificate {center.cert}, key {center.key}")  # fmt: skip

    def init_site(self) -> None:
        self.kit = SiteKit(self.workdir / "site", SITE)
        self.kit.publish_trust_list(self.broker.endpoint("admin-provisioning"))
        say(f"site     {SITE}: root key, code signer and a signed trust list (retained)")

    def init_gateway(self) -> None:
        """The gateway, its inventory being the demo's gates, a command-center token, a
        depot keeper's token, and a week of the depot's stock ledger written before."""
        folder = self.workdir / "gateway"
        folder.mkdir()
        config = folder / "gateway.yaml"
        port = free_port()
        config.write_text(
            yaml.safe_dump(
                {
                    "sites": [
                        {
                            "name": SITE,
                            "gates": self.gates,
                            "depots": [DEPOT],
                            "storage_classes": {"cold-demo": DEMO_COLD},
                            "zones": {DEPOT: {"cold-store-1": "cold-demo", "dry-store": "room"}},
                            **stock_week.site_config(DEPOT),
                        }
                    ],
                    "stock": {"check_every_s": STOCK_CHECK_EVERY_S},
                    "broker": broker_config(
                        *(files.endpoint(self.broker.url) for files in self.pki.gateway_pair("gw1"))
                    ),
                    "store": {"path": "gateway.db"},
                    "http": {"host": "127.0.0.1", "port": port},
                }
            )
        )
        token, self.keeper_token, now = new_token(), new_token(), datetime.now(UTC)
        store = SqliteStore(folder / "gateway.db")
        store.add_token(hash_token(token), "demo-command-center", "command", now)
        store.add_token(hash_token(self.keeper_token), f"demo-keeper-{DEPOT}", "depot", now,
                        depots=[f"{SITE}/{DEPOT}"])  # fmt: skip
        self.stock: Seeded = stock_week.seed_week(store, SITE, DEPOT, now)
        store.close()
        self._start("gateway", "--log-level", "warning", "gateway", "run", "--config", str(config))
        url = self.gateway_url = f"http://127.0.0.1:{port}"
        self.dashboard = f"{url}/?token={token}"
        wait_for_http(f"{url}/metrics")
        self.status.add_address("Dashboard (command center)", f"{url}/?token={token}")
        self.status.add_address("Command-center token (API: Authorization: Bearer)", token)
        say(f"gateway  dashboard {url}/?token={token}  pid {self.children[-1].process.pid}")
        say(f"gateway  command-center token (no personal data): {token}  "
            f"API {url}/api/nodes, OpenAPI {url}/openapi.json")  # fmt: skip

    def init_watcher(self) -> None:
        watch = self.broker.endpoint("admin-watch")
        self._start("watch", "watch", *endpoint_args(watch), "--site", SITE, stdout=subprocess.PIPE)
        self._reader = threading.Thread(
            target=self._read_messages, args=(self.children[-1].process.stdout,), daemon=True
        )
        self._reader.start()
        where = "printing" if self.raw else f"writing to {self.messages_log}"
        say(f"watcher  {where} every message under {topics.DEFAULT_PREFIX}/#  "
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
                gate, self.broker.endpoint(f"gate-{gate}"),
                {"scanner": {"url": str(scanner.path), "profile": "gm65-scanner"},
                 "thermometer": {"url": str(thermometer.path), "profile": "gy-mcu90614"}},
                node={"direction": "in" if seed % 2 else "out"},
                console={"host": "127.0.0.1", "port": console},
            )  # fmt: skip
            self._start(
                f"gate {gate}", "--log-level", "warning", "edge", "run", "--config", str(config)
            )
            url = f"http://127.0.0.1:{console}"
            self.status.add_gate(gate, url)
            say(f"gate     {SITE}/{gate}  console {url}  scanner {scanner.path}, "
                f"thermometer {thermometer.path}  pid {self.children[-1].process.pid}")  # fmt: skip
            volunteer = f"v{seed:03d}"
            # The console asks for a badge: the crowd's volunteer's, to paste and sign in.
            badge = self.workdir / f"{gate}-badge.txt"
            badge.write_text(self.kit.code("badge", volunteer=volunteer) + "\n")
            say(f"gate     {SITE}/{gate}  console sign-in: paste {badge} into the badge "
                f"field, then 已在岗，登录 (On duty: sign in)")  # fmt: skip
            crowd = Crowd(self.kit, scanner, thermometer, mix=self.mix, console_url=url,
                          volunteer=volunteer, seed=seed)  # fmt: skip
            self.crowds.append(threading.Thread(target=crowd.run, args=(self.crowd_stop,)))
        time.sleep(1.0)  # the nodes open their ports and consoles before the crowd comes
        for thread in self.crowds:
            thread.start()

    def init_depot(self) -> None:
        """One depot node polling two sensors on a simulated RS485 bus, time compressed."""
        depot = Depot(DEPOT_ZONES, DEPOT_SCENARIOS)
        bus = depot.bus(self.workdir / f"{DEPOT}-rs485", clock=CompressedClock(DEPOT_SPEEDUP))
        self.parts.append(bus.start())
        profile = load_profile(PROFILES_DIR / "scale-st-gs.yaml")
        assert isinstance(profile, ScaleProfile)
        scale = SimulatedScale(self.workdir / f"{DEPOT}-scale", profile, settle_s=2.0)
        scale.load(stock_week.pallet_kg(self.stock.masks))  # the pallet the ledger holds
        self.parts.append(scale.start())
        config = depot_config(
            self.kit.folder / f"{DEPOT}.yaml", site=SITE, name=DEPOT,
            endpoint=self.broker.endpoint(f"depot-{DEPOT}"),
            buses=[{"url": str(bus.path), "profile": "xy-md02", "poll_s": 5, "sensors": [
                {"zone": zone.name, "slave_id": zone.slave_id, "max_interval_s": 60}
                for zone in DEPOT_ZONES
            ]}],
            scales=[stock_week.node_scale(str(scale.path))],
            broker={"heartbeat_s": 5, "reconnect_max_s": 2},
        )  # fmt: skip
        self._start(f"depot {DEPOT}", "--log-level", "warning", "edge", "run", "--config",
                    str(config))  # fmt: skip
        zones = ", ".join(zone.name for zone in DEPOT_ZONES)
        say(f"depot    {SITE}/{DEPOT}  sensors {zones} on {bus.path} (an hour a minute: "
            f"cold-store-1 warms past 8 °C and alarms within minutes, then recovers)  "
            f"pid {self.children[-1].process.pid}")  # fmt: skip
        say(f"scale    {SITE}/{DEPOT}/{stock_week.PALLET} on {scale.path}: the N95 pallet, "
            f"{self.stock.masks} masks and its tare, {stock_week.pallet_kg(self.stock.masks):.2f} "
            "kg; it weighs what the ledger holds (no stock-discrepancy)")  # fmt: skip

    def init_keeper(self) -> None:
        """The depot keeper issuing pork through the REST API, as a keeper's tablet does."""
        self.keeper = Keeper(self.gateway_url, self.keeper_token, SITE, DEPOT)
        thread = threading.Thread(target=self.keeper.run, args=(self.crowd_stop,), daemon=True)
        self.crowds.append(thread)
        thread.start()
        say(f"stock    {SITE}/{DEPOT}  a week of movements in the ledger ({self.stock.entries} "
            f"entries: receipts, a designated donation, issues, a stocktake, a reversal); "
            f"the keeper issues pork every {stock_week.ISSUE_EVERY_S:g} s with the depot "
            f"token {self.keeper_token}: pork falls below its 3-day target and "
            "stock-shortage is raised within two minutes, cleared when an allocation "
            "arrives; some 30 s in it submits the day's stock report (after 17:30 in "
            f"{stock_week.TIMEZONE} that clears stock-report-missing). Stock view: "
            f"{self.dashboard}#stock  API "
            f"{self.gateway_url}/api/stock/{SITE}/cover")  # fmt: skip

    def init_status(self) -> None:
        say("Ctrl-C stops everything.")
        if not self.raw:
            self.screen.start()

    def supervise(self, stop_event: threading.Event) -> int:
        next_summary = time.monotonic() + SUMMARY_EVERY_S
        while not stop_event.wait(0.2):
            for child in self.children:
                if child.process.poll() is not None:
                    self.say(f"{child.name} exited with {child.process.returncode}; "
                             "stopping the demo")  # fmt: skip
                    return 1
            if not self.broker.running:
                self.say("the broker exited; stopping the demo")
                return 1
            if self.raw and time.monotonic() >= next_summary:
                next_summary += SUMMARY_EVERY_S
                for line in self.status.summary():
                    say(line)
        self.say("stopping…")
        return 0

    def shutdown(self) -> None:
        self.screen.close()
        self.crowd_stop.set()
        for thread in self.crowds:
            thread.join(5)
        failed = False
        for child in reversed(self.children):
            if child.name == "watch":
                time.sleep(0.3)  # the nodes' last words reach the watcher
                for part in self.parts:
                    part.stop()
            failed |= stop(child.process, child.name) not in (0, None)
        if self._reader is not None:
            self._reader.join(5)  # every line the watcher printed is counted and logged
        self.broker.stop()
        for line in self.status.summary():
            say(line)
        if self.keeper is not None:
            say(self.keeper.summary())
        if self._stderr is not None:
            self._stderr.close()
            if failed:
                self._show_process_log()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self._end_sweeper()
        say("stopped: no process left behind")

    def say(self, line: str) -> None:
        """A line on the terminal; the live status gives the terminal back first."""
        self.screen.close()
        say(line)

    def _start(self, name: str, *args: str, stdout: int | None = None) -> None:
        process = spawn(python_module("edge.cli", *args), stdout=stdout, stderr=self._stderr)
        sweeper.watch(self.sweeper, process.pid)
        self.children.append(Child(name, process))

    def _read_messages(self, stream: IO[bytes]) -> None:
        with self.messages_log.open("a", encoding="utf-8") as log:
            for raw in stream:
                line = raw.decode(errors="replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                self.status.take(line)
                if self.raw:
                    print(line, flush=True)

    def _show_process_log(self) -> None:
        """What the processes said, for a run that ended with a failure (the log goes too)."""
        lines = self.process_log.read_text(errors="replace").splitlines()[-30:]
        say(f"the last {len(lines)} lines the processes wrote to {self.process_log}:")
        for line in lines:
            print(f"    {line}", flush=True)

    def _end_sweeper(self) -> None:
        assert self.sweeper.stdin is not None
        self.sweeper.stdin.close()  # the sweeper finds every process gone and the folder too
        try:
            self.sweeper.wait(sweeper.GRACE_S + 5)
        except subprocess.TimeoutExpired:
            self.sweeper.kill()
            self.sweeper.wait()


def say(line: str) -> None:
    print(f"[demo] {line}", file=sys.stdout, flush=True)
