"""`make demo` (gatepost demo): live contract messages, a clean stop, no process left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from simulators.processes import python_module, spawn, stop
from tests.conftest import OutputLines

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def start_demo() -> tuple[subprocess.Popen[bytes], OutputLines]:
    process = spawn(
        python_module("edge.cli", "demo", "--gates", "2", "--arrivals", "150"),
        stdout=subprocess.PIPE,
    )
    return process, OutputLines(process)


def pids_and_port(output: OutputLines) -> tuple[list[int], int]:
    output.wait_for("Ctrl-C stops everything.")
    started = "\n".join(line for line in output.lines if line.startswith("[demo]"))
    pids = [int(pid) for pid in re.findall(r"pid (\d+)", started)]
    port = re.search(r"mqtt://127\.0\.0\.1:(\d+)", started)
    assert len(pids) == 5 and port  # broker, gateway, watcher, two gates
    return pids, int(port.group(1))


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


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_demo__shows_live_contract_messages_and_stops_cleanly(signum: signal.Signals) -> None:
    process, output = start_demo()
    try:
        pids, port = pids_and_port(output)
        for gate in ("g01", "g02"):
            output.wait_for(f"gatepost/v1/demo/gate/{gate}/status")
            output.wait_for(f"gatepost/v1/demo/gate/{gate}/event/shift")
            output.wait_for(f"gatepost/v1/demo/gate/{gate}/event/passage", timeout_s=30)
        output.wait_for("/event/hold ", timeout_s=30)
        # Each gate's volunteer console answers where the demo said it would.
        for url in re.findall(r"console (http://\S+)", "\n".join(output.lines)):
            with urllib.request.urlopen(f"{url}/api/state", timeout=5) as response:
                state = json.load(response)
            assert state["node"]["site"] == "demo"
            assert state["node"]["volunteers_on_duty"]
        # The dashboard's API answers with the token the demo printed, and has seen both gates.
        dashboard = re.search(r"dashboard (http://\S+)/\?token=(\S+)", "\n".join(output.lines))
        assert dashboard
        request = urllib.request.Request(
            f"{dashboard.group(1)}/api/nodes",
            headers={"Authorization": f"Bearer {dashboard.group(2)}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            nodes = {n["node"]: n for n in json.load(response)}
        assert {"g01", "g02"} <= set(nodes)
        assert all(nodes[g]["online"] for g in ("g01", "g02"))
        os.kill(process.pid, signum)
        assert process.wait(20) == 0
        lines = output.finish()
    finally:
        stop(process, "demo")
    assert not [line for line in lines if line.startswith("!!")], "contract violations shown"
    assert (
        len([line for line in lines if '"state":"offline"' in line and '"shutdown"' in line]) == 2
    )
    assert lines[-1] == "[demo] stopped: no process left behind"
    assert wait_gone(pids) == []
    assert not port_open(port)


def test_demo__killed_outright_still_leaves_no_process() -> None:
    process, output = start_demo()
    try:
        pids, port = pids_and_port(output)
        process.send_signal(signal.SIGKILL)
        process.wait(5)
        assert wait_gone(pids) == []
        assert not port_open(port)
    finally:
        stop(process, "demo")
