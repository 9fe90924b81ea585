"""How long replicas go without a leader when the leader dies (#16, bench (c)).

Two `gatepost gateway run` processes on one private PostgreSQL and one private Mosquitto
(plain MQTT, a client id each). The leader is SIGKILLed; timed from the kill to (a) the
follower's log line "this replica leads" and (b) its /metrics showing gatepost_leader 1
(updated on its tick, every alarms.check_every_s); each kill at a random point of the
follower's retry period. The killed one is then started again
as the new follower, and the next repetition kills the other: `--runs` kills in all.

What bounds it: PostgreSQL ends the dead leader's session (and its advisory lock) as
soon as the kernel closes its socket, then the follower's next try, every
gateway.leader.RETRY_S, takes the lock. A leader cut off by the network instead (not
measured here) is dropped by the server's keepalives, about 11 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from bench.common import PLAIN, BenchSite, record
from gateway.leader import RETRY_S
from simulators.broker import free_port
from simulators.postgres import PrivatePostgres
from simulators.processes import python_module, spawn, stop

LEADS = "this replica leads"
CHECK_EVERY_S = 1.0  # the gateway's default tick


class Replica:
    """One gateway process, its log lines with when each arrived."""

    def __init__(self, site: BenchSite, work: Path, name: str, url: str) -> None:
        self.name = name
        self.port = free_port()
        work.mkdir(parents=True, exist_ok=True)
        path = work / f"{name}.yaml"
        path.write_text(
            yaml.safe_dump({
                "sites": [{"name": site.site, "gates": ["g01"]}],
                "broker": site.gateway_broker() | {"client_id": f"gw-{name}"},
                "store": {"url": url},
                "http": {"port": self.port},
                "alarms": {"check_every_s": CHECK_EVERY_S},
            })
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self._new = threading.Condition()
        self.process = spawn(
            python_module("edge.cli", "gateway", "run", "--config", str(path)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with self._new:
                self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))
                self._new.notify_all()

    def wait_for(self, needle: str, timeout_s: float = 30) -> float:
        """When the first line containing `needle` arrived."""
        with self._new:
            if not self._new.wait_for(lambda: self._first(needle) is not None, timeout_s):
                tail = "\n".join(line for _, line in self.lines[-20:])
                raise RuntimeError(f"{self.name}: no {needle!r} in {timeout_s} s:\n{tail}")
            found = self._first(needle)
            assert found is not None
            return found

    def _first(self, needle: str) -> float | None:
        return next((at for at, line in self.lines if needle in line), None)

    def leader_gauge(self) -> str:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=1).text
        except httpx.HTTPError:
            return ""
        return next(
            (ln.split()[1] for ln in text.splitlines() if ln.startswith("gatepost_leader ")), ""
        )

    def kill(self) -> float:
        self.process.kill()
        at = time.monotonic()
        self.process.wait(10)
        return at

    def stop(self) -> None:
        if self.process.poll() is None:
            stop(self.process, "gateway")


def failover(site: BenchSite, work: Path, url: str, runs: int) -> list[dict[str, Any]]:
    rows = []
    leader = Replica(site, work, "r0", url)
    leader.wait_for(LEADS)
    follower = Replica(site, work, "r1", url)
    try:
        for run in range(1, runs + 1):
            follower.wait_for("ingest subscribed")
            # At a random point of the follower's retry period, not always the same one
            # (its tries keep the phase of its start, and so would every kill).
            time.sleep(random.uniform(0, RETRY_S))
            killed = leader.kill()
            log_at = follower.wait_for(LEADS, timeout_s=20)
            while follower.leader_gauge() not in ("1", "1.0"):
                time.sleep(0.02)
            metrics_at = time.monotonic()
            rows.append({
                "run": run, "killed": leader.name, "took over": follower.name,
                "to log line ms": (log_at - killed) * 1000,
                "to /metrics ms": (metrics_at - killed) * 1000,
            })  # fmt: skip
            leader, follower = follower, Replica(site, work, f"r{run + 1}", url)
    finally:
        leader.stop()
        follower.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="leaders killed (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="failover-") as tmp:
        work = Path(tmp)
        postgres = PrivatePostgres(durable=False)
        postgres.start()
        try:
            url = postgres.create_database("failover")
            with BenchSite(work / "site", PLAIN) as site:
                rows = failover(site, work / "gateways", url, args.runs)
        finally:
            postgres.remove()
    logged = [row["to log line ms"] for row in rows]
    summary = {
        "run": "median", "killed": "", "took over": "",
        "to log line ms": statistics.median(logged),
        "to /metrics ms": statistics.median(row["to /metrics ms"] for row in rows),
    }  # fmt: skip
    record(
        "gateway_failover", [*rows, summary],
        retry_s=RETRY_S, check_every_s=CHECK_EVERY_S,
        note="two gateway processes on one private PostgreSQL, the leader SIGKILLed",
    )  # fmt: skip


if __name__ == "__main__":
    main()
