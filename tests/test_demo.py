"""`make demo` (gatepost demo): live contract messages, a clean stop, no process left behind."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge.mqtt import BrokerUrl, Endpoint, new_client
from simulators.processes import python_module, spawn, stop
from tests.conftest import OutputLines

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEMO = python_module("edge.cli", "demo", "--gates", "2", "--arrivals", "150")


def start_demo(tmp: Path) -> tuple[subprocess.Popen[bytes], OutputLines]:
    """The demo with its output read line by line (not a terminal: every message printed).

    Its temporary folder goes under `tmp` (TMPDIR), a folder this test owns.
    """
    process = spawn(DEMO, stdout=subprocess.PIPE, env={**os.environ, "TMPDIR": str(tmp)})
    return process, OutputLines(process)


def demo_folder(output: OutputLines) -> Path:
    [line] = output.wait_for("[demo] folder ")
    return Path(line.split()[2])


def processes_naming(text: str) -> list[int]:
    """Processes whose command line mentions `text` (the sweeper, mosquitto, nodes…)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text.encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def pids_and_port(output: OutputLines) -> tuple[list[int], int]:
    output.wait_for("Ctrl-C stops everything.")
    started = "\n".join(line for line in output.lines if line.startswith("[demo]"))
    pids = [int(pid) for pid in re.findall(r"pid (\d+)", started)]
    port = re.search(r"mqtts://127\.0\.0\.1:(\d+)", started)
    assert len(pids) == 6 and port  # broker, gateway, watcher, two gates, a depot
    return pids, int(port.group(1))


def connects(endpoint: Endpoint) -> bool:
    """Whether a client without a certificate gets a successful CONNACK within 3 s."""
    accepted = threading.Event()
    client = new_client("stranger", endpoint)
    client.on_connect = lambda _c, _u, _f, reason, _p: None if reason.is_failure else accepted.set()
    try:
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        return accepted.wait(3)
    except OSError:  # a TLS handshake refused outright
        return False
    finally:
        client.loop_stop()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def console_session_required(url: str, timeout_s: float = 30.0) -> bool:
    """The console at `url` comes up and answers its state only inside a volunteer session.

    The demo prints the address when it starts the node; the node opens its console
    after its broker connection, so the first receipts can come before it listens.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/state", timeout=5)
        except urllib.error.HTTPError as refused:
            return refused.code == 401 and json.load(refused)["reason"] == "session-required"
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        return False


def signed_in_state(url: str, badge_text: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """The console's state, read after signing in with `badge_text`.

    Refused (403) until the crowd's scan at the gate has started the volunteer's shift.
    """
    console = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    sign_in = urllib.request.Request(
        f"{url}/api/session", data=json.dumps({"badge_text": badge_text.strip()}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            console.open(sign_in, timeout=5).close()
            with console.open(f"{url}/api/state", timeout=5) as response:
                state: dict[str, Any] = json.load(response)
            return state
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def read_api(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def check_stock(output: OutputLines, api: str, token: str) -> None:
    """The depot's stock as the command center sees it: a week in the ledger, the keeper's
    pork issues through the API raising stock-shortage, the pallet's scale agreeing."""
    entries = read_api(f"{api}/api/stock/demo/d01/entries?limit=500", token)
    receipts = [e for e in entries if e["kind"] == "receipt"]
    assert {"receipt", "issue", "adjustment", "reversal"} <= {e["kind"] for e in entries}
    assert {e["source"] for e in receipts} == {"purchase", "allocation", "donation"}
    assert [e["item"] for e in receipts if e["designated_to"]] == ["surgical-mask"]
    week_ago = min(datetime.fromisoformat(e["at"]) for e in entries)
    assert datetime.now(UTC) - week_ago > timedelta(days=6)
    # Pork drifts below its 3-day target under the keeper's issues: raised on MQTT.
    shortage = output.wait_for("gatepost/v1/demo/alert/stock-shortage", timeout_s=150)[0]
    assert '"state":"raised"' in shortage and "item:pork" in shortage
    pork = [e for e in read_api(f"{api}/api/stock/demo/d01/entries?limit=500", token)
            if e["item"] == "pork" and e["kind"] == "issue"]  # fmt: skip
    assert any(e["who"] == "demo-keeper-d01" and e["application_id"].startswith("SQ-LIVE")
               for e in pork)  # fmt: skip
    # The keeper submitted the day's stock report.
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    reports = f"{api}/api/stock/demo/d01/daily-reports/{today}"
    assert wait_for(lambda: bool(read_api(reports, token)), 30)
    assert read_api(reports, token)[0]["who"] == "demo-keeper-d01"
    cover = read_api(f"{api}/api/stock/demo/cover", token)
    [target] = [t for t in cover["targets"] if t["subject"] == "item:pork"]
    assert target["basis"] == "population" and target["below"]

    # The N95 pallet's scale reports a settled weight that agrees with the ledger.
    def weighed() -> bool:
        [scale] = read_api(f"{api}/api/stock/demo/d01/scales", token)["scales"]
        return scale["state"] == "ok" and Decimal(scale["units"]) == Decimal(scale["ledger"])

    assert wait_for(weighed, 30)
    assert not [line for line in output.lines if "alert/stock-discrepancy" in line]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_demo__shows_live_contract_messages_and_stops_cleanly(
    signum: signal.Signals, tmp_path: Path
) -> None:
    process, output = start_demo(tmp_path)
    try:
        folder = demo_folder(output)
        pids, port = pids_and_port(output)
        # The watcher watches as a technician: presence, heartbeats, what the gateway
        # stored (receipts) and counted (summaries), and no event: those carry personal data.
        for gate in ("g01", "g02"):
            output.wait_for(f"gatepost/v1/demo/gate/{gate}/status")
            output.wait_for(f"gatepost/v1/demo/gate/{gate}/health")
            output.wait_for(f"gatepost/v1/demo/receipt/{gate}", timeout_s=30)
            output.wait_for(f"gatepost/v1/demo/summary/{gate}", timeout_s=30)
        # The depot node's readings reach the gateway (stored: receipted), as the
        # technician's watcher sees: readings carry no personal data.
        output.wait_for("gatepost/v1/demo/depot/d01/reading", timeout_s=30)
        output.wait_for("gatepost/v1/demo/receipt/d01", timeout_s=30)
        # Each gate's volunteer console answers where the demo said it would, and shows
        # the gate (holds, names) only to a volunteer signed in with a badge.
        text = "\n".join(output.lines)
        consoles = re.findall(r"console (http://\S+)", text)
        badges = re.findall(r"console sign-in: paste (\S+)", text)
        assert len(consoles) == len(badges) == 2
        for url, badge in zip(consoles, badges, strict=True):
            assert console_session_required(url)
            # The badge the demo printed signs its volunteer in, as a person at the kiosk would.
            state = signed_in_state(url, Path(badge).read_text())
            assert state["node"]["site"] == "demo"
        # The dashboard's API answers with the token the demo printed, and has seen both gates.
        dashboard = re.search(r"dashboard (http://\S+)/\?token=(\S+)", "\n".join(output.lines))
        assert dashboard
        request = urllib.request.Request(
            f"{dashboard.group(1)}/api/nodes",
            headers={"Authorization": f"Bearer {dashboard.group(2)}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            nodes = {n["node"]: n for n in json.load(response)}
        assert {"g01", "g02", "d01"} <= set(nodes)
        assert all(nodes[g]["online"] for g in ("g01", "g02", "d01"))
        # The command center sees the depot's zones, each with its storage class and a value.
        depots = urllib.request.Request(
            f"{dashboard.group(1)}/api/depots",
            headers={"Authorization": f"Bearer {dashboard.group(2)}"},
        )
        with urllib.request.urlopen(depots, timeout=5) as response:
            [depot] = json.load(response)["depots"]
        zones = {zone["zone"]: zone for zone in depot["zones"]}
        assert zones["cold-store-1"]["storage_class"] == "cold-demo"
        assert all(zone["latest"]["status"] == "ok" for zone in zones.values())
        check_stock(output, dashboard.group(1), dashboard.group(2))
        # The events the watcher may not read reached the gateway: passed and held people.
        passages = urllib.request.Request(
            f"{dashboard.group(1)}/api/passages?limit=500",
            headers={"Authorization": f"Bearer {dashboard.group(2)}"},
        )

        def passed_and_held() -> bool:
            with urllib.request.urlopen(passages, timeout=5) as response:
                return {"allow", "hold"} <= {p["outcome"] for p in json.load(response)}

        assert wait_for(passed_and_held, 30)
        # The broker is locked as a site's is: without a client certificate, nothing.
        ca = re.search(r"site CA (\S+);", "\n".join(output.lines))
        assert ca
        assert not connects(Endpoint(BrokerUrl("127.0.0.1", port, tls=True), ca=Path(ca[1])))
        assert not connects(Endpoint(BrokerUrl("127.0.0.1", port)))
        os.kill(process.pid, signum)
        assert process.wait(20) == 0
        lines = output.finish()
    finally:
        stop(process, "demo")
    assert not [line for line in lines if line.startswith("!!")], "contract violations shown"
    events = [line for line in lines if "/event/" in line and "not ours to read" not in line]
    assert not events, "the watcher read events"
    assert (
        len([line for line in lines if '"state":"offline"' in line and '"shutdown"' in line]) == 3
    )
    assert lines[-1] == "[demo] stopped: no process left behind"
    assert wait_gone(pids) == []
    assert not port_open(port)
    assert not folder.exists()
    assert processes_naming(str(folder)) == []


def test_demo__killed_outright_still_leaves_no_process_and_no_folder(tmp_path: Path) -> None:
    process, output = start_demo(tmp_path)
    try:
        folder = demo_folder(output)
        pids, port = pids_and_port(output)
        assert (folder / "site" / "id-hash.key").exists()  # a secret, among others
        process.send_signal(signal.SIGKILL)
        process.wait(5)
        assert wait_gone(pids) == []
        assert not port_open(port)
        # The sweeper deletes the folder once the processes that use it are gone, and ends.
        assert wait_for(lambda: not folder.exists(), 30), f"{folder} left behind"
        assert wait_for(lambda: processes_naming(str(folder)) == [], 5)
        assert list(tmp_path.iterdir()) == []
    finally:
        stop(process, "demo")


class Terminal:
    """A pseudo-terminal of 80 x 24 a process writes to, as a newcomer's terminal is."""

    COLUMNS, ROWS = 80, 24

    def __init__(self) -> None:
        self.main, self.side = pty.openpty()
        size = struct.pack("HHHH", self.ROWS, self.COLUMNS, 0, 0)
        fcntl.ioctl(self.side, termios.TIOCSWINSZ, size)
        self.written = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = spawn(argv, stdin=self.side, stdout=self.side, stderr=self.side, env=env)
        os.close(self.side)
        self._reader.start()
        return process

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.main, 65536)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            self.written.extend(chunk)

    def screen(self) -> list[str]:
        """The last full frame the live status drew (it redraws from the top-left corner)."""
        text = self.written.decode(errors="replace")
        frames = text.split("\x1b[H")
        frame = frames[-2] if len(frames) > 2 else frames[-1]  # the last one may be partial
        frame = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frame)
        return frame.replace("\r", "").split("\n")

    def close(self) -> None:
        os.close(self.main)


def test_demo__a_terminal_shows_addresses_and_counts_instead_of_raw_messages(
    tmp_path: Path,
) -> None:
    terminal = Terminal()
    process = terminal.start(DEMO, {**os.environ, "TMPDIR": str(tmp_path), "TERM": "xterm"})
    began = time.monotonic()
    try:
        # What a newcomer sees after a while, not only at the start.
        def busy() -> bool:
            screen = "\n".join(terminal.screen())
            return len(re.findall(r"online +[1-9]", screen)) == 2

        assert wait_for(busy, 45), "\n".join(terminal.screen())
        time.sleep(max(0.0, 12 - (time.monotonic() - began)))  # the issue: gone within 10 s
        screen = terminal.screen()
        text = "\n".join(screen)
        assert len(screen) <= Terminal.ROWS
        assert all(len(line) <= Terminal.COLUMNS for line in screen), screen
        assert '{"' not in text  # no raw JSON on the terminal
        dashboard = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(gpt_\S+)", text)
        assert dashboard, text
        assert re.search(rf"^  {re.escape(dashboard.group(2))}$", text, re.MULTILINE)
        consoles = re.findall(r"^g0[12] +(http://\S+)", text, re.MULTILINE)
        assert len(consoles) == 2, text
        assert "Ctrl-C stops everything." in text
        # The addresses work, with the token shown.
        request = urllib.request.Request(
            f"{dashboard.group(1)}/api/nodes",
            headers={"Authorization": f"Bearer {dashboard.group(2)}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert {n["node"] for n in json.load(response)} >= {"g01", "g02"}
        for url in consoles:
            assert console_session_required(url)
        # Every message is a file away, as the screen says.
        hint = re.search(r"^  tail -f (\S+)\n((?:  \S+\n)*)", text + "\n", re.MULTILINE)
        assert hint, text
        log = Path(hint.group(1) + hint.group(2).replace(" ", "").replace("\n", ""))
        assert "gatepost/v1/demo/gate/g01/status" in log.read_text()

        os.kill(process.pid, signal.SIGINT)
        assert process.wait(30) == 0
        assert wait_for(lambda: b"stopped: no process left behind" in terminal.written, 5)
        assert not log.exists()
    finally:
        stop(process, "demo")
        terminal.close()
    after = terminal.written.decode(errors="replace").rsplit("\x1b[?1049l", 1)[-1]
    # The terminal's own screen is given back, with the addresses said again at the end.
    assert dashboard.group(2) in after
    assert after.rstrip().endswith("[demo] stopped: no process left behind")
