"""Replicas under the faults of #16 that need a network or a clock: the leader's network to
PostgreSQL cut under load, and the leader SIGKILLed as a daily cut-off is being checked.

Real processes: two `gatepost gateway run` in one share group, a private PostgreSQL (each
replica reaching it through a `TcpProxy` of its own), a private Mosquitto, gates at QoS 1.

The cut lasts 20 s, not the issue's minute: every timer involved ends within it (the
leader's lease 3 s, libpq's tcp_user_timeout 10 s, the server's keepalives 5 + 3 x 2 s),
so a longer cut only queues more of the stream in the broker. `TcpProxy`'s kernel answers
both ends' probes, so the cut plays their verdicts at those timers (simulators/netcut.py).
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.leader import LEASE_S, Leadership
from gateway.store.postgres import connect
from gateway.store.records import utc_text
from simulators.broker import PrivateBroker, free_port
from simulators.netcut import TcpProxy
from simulators.postgres import PrivatePostgres
from tests.conftest import gateway_broker
from tests.gateway import test_replica_faults as faults
from tests.gateway.test_gateway_process import GatewayProcess, wait_until, write_config

LEADS = "this replica leads"
LOST = "leadership lost"
CUT_S = 20.0
CLIENT_GIVES_UP_S = 10.0  # gateway.store.postgres.connect: tcp_user_timeout=10_000 ms
SERVER_GIVES_UP_S = 11.0  # the server's keepalives on the gateway's sessions: 5 + 3 x 2 s


cluster = faults.cluster  # a durable private PostgreSQL for this module


@pytest.fixture
def database(cluster: PrivatePostgres, request: pytest.FixtureRequest) -> str:
    name = "n_" + request.node.name.split("[")[0][-40:].lower()
    return cluster.create_database(name)


def through(url: str, cluster: PrivatePostgres, proxy: TcpProxy) -> str:
    """`url` by way of `proxy` instead of straight to the cluster."""
    return url.replace(f":{cluster.port}/", f":{proxy.port}/")


def logged_at(line: str) -> datetime:
    """The time at the head of a gateway log line (`asctime`, the machine's local time)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def said(gateway: GatewayProcess, needle: str) -> list[datetime]:
    return [logged_at(line) for line in list(gateway.output.lines) if needle in line]


def lead_spans(gateway: GatewayProcess, until: datetime) -> list[tuple[datetime, datetime]]:
    """When this replica said it led: from each `leads` line to the next `lost` line."""
    spans, start = [], None
    for line in list(gateway.output.lines):
        if LEADS in line and start is None:
            start = logged_at(line)
        elif (LOST in line or "no longer leads" in line) and start is not None:
            spans.append((start, logged_at(line)))
            start = None
    if start is not None:
        spans.append((start, until))
    return spans


def overlap(a: list[tuple[datetime, datetime]], b: list[tuple[datetime, datetime]]) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


@pytest.mark.slow
def test_netcut__the_leaders_network_cut_for_20_s_under_load_loses_nothing_and_hands_over(
    broker: PrivateBroker, tmp_path: Path, database: str, cluster: PrivatePostgres,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(faults, "PACE_S", 0.035)  # the stream outlasts the cut (~30 s)
    db = faults.Database(database)
    with ExitStack() as stack:
        proxies = {n: TcpProxy(0, "127.0.0.1", cluster.port) for n in ("gw-a", "gw-b")}
        for proxy in proxies.values():
            stack.callback(proxy.close)
        configs = {
            n: faults.replica_config(tmp_path, broker, through(database, cluster, p), n)
            for n, p in proxies.items()
        }
        a = GatewayProcess(configs["gw-a"])
        stack.callback(a.stop)
        a.wait_ready("new")
        a.output.wait_for(LEADS, timeout_s=10)  # started first: it leads
        b = GatewayProcess(configs["gw-b"])
        stack.callback(b.stop)
        b.wait_ready("new")
        stream = faults.Stream(broker)
        stack.callback(stream.close)
        stream.start()
        wait_until(lambda: db.count() >= 300, what="300 events stored")

        proxies["gw-a"].cut(
            client_gives_up_s=CLIENT_GIVES_UP_S, server_gives_up_s=SERVER_GIVES_UP_S
        )
        cut_at = datetime.now()
        assert not stream.sent.is_set(), "the gates had finished before the cut"
        b.output.wait_for(LEADS, timeout_s=CUT_S)
        time.sleep(max(0.0, CUT_S - (datetime.now() - cut_at).total_seconds()))
        proxies["gw-a"].mend()
        mended_at = datetime.now()

        stream.join(timeout_s=120)
        wait_until(lambda: db.count() >= stream.total, timeout_s=90, what="every event stored")
        a.output.wait_for("the store is back", timeout_s=30)
        time.sleep(1.5)  # a redelivery that would store twice has had its chance
        db.assert_stored_once(stream)
        assert a.process.poll() is None and b.process.poll() is None
        ended = datetime.now()

    lost = [t for t in said(a, LOST) if t >= cut_at]
    took_over = [t for t in said(b, LEADS) if t >= cut_at]
    unavailable = [t for t in said(a, "the store is unavailable") if t >= cut_at]
    back = [t for t in said(a, "the store is back") if t >= mended_at]
    assert lost and took_over and unavailable and back
    lost_s = (lost[0] - cut_at).total_seconds()
    took_over_s = (took_over[0] - cut_at).total_seconds()
    print(
        f"\ncut at {cut_at:%H:%M:%S.%f}: gw-a lost the lead after {lost_s:.2f} s, gw-b led "
        f"after {took_over_s:.2f} s, gw-a's store unavailable after "
        f"{(unavailable[0] - cut_at).total_seconds():.2f} s and back "
        f"{(back[0] - mended_at).total_seconds():.2f} s after the mend"
    )
    assert lost_s < 5, f"the cut leader said it lost the lead only after {lost_s:.1f} s"
    assert took_over_s < CUT_S
    assert not overlap(lead_spans(a, ended), lead_spans(b, ended)), "both led at once"


# --- the leader killed as a cut-off is checked ---------------------------------------

SITES = ("north", "east", "south", "west", "hill", "lake")
GATES = ("g01", "g02", "g03")
KILL_AFTER_S = (0.05, 0.12, 0.19, 0.26, 0.33, 0.40)  # after the cut-off became due


def cutoff_config(tmp_path: Path, broker: PrivateBroker, url: str, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    section = gateway_broker(broker, name, session_expiry_s=600)
    data: dict[str, Any] = {
        "sites": [{"name": site, "gates": list(GATES)} for site in SITES],
        "broker": section.model_dump(mode="json", exclude_none=True),
        "store": {"url": url},
        "http": {"port": free_port()},
        "alarms": {"check_every_s": 0.2},
    }
    return write_config(folder / "gateway.yaml", data)


def known_since_last_week(url: str, site: str) -> None:
    """The site's gates as the store would hold gates heard from for a week: from the next
    tick on, the leader owes the last cut-off's check (no daily report came: one
    report-missing alarm per gate)."""
    week_ago = utc_text(datetime.now(UTC) - timedelta(days=7))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO nodes (site, node, role, first_seen, last_seen) "
            "VALUES (%s, %s, 'gate', %s, %s)",
            [(site, gate, week_ago, week_ago) for gate in GATES],
        )


def report_missing(url: str, site: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT node, COUNT(*) FROM alarms WHERE kind = 'report-missing' AND site = %s "
            "GROUP BY node",
            (site,),
        ).fetchall()
    return {str(node): int(n) for node, n in rows}


@pytest.mark.slow
def test_cutoff__the_leader_killed_as_it_checks_a_cut_off_each_alarm_is_raised_once(
    broker: PrivateBroker, tmp_path: Path, database: str
) -> None:
    configs = {n: cutoff_config(tmp_path, broker, database, n) for n in ("gw-a", "gw-b")}
    running: dict[str, GatewayProcess] = {}
    by_killed: list[float | None] = []  # killed this long after it raised them, or not
    try:
        for name in ("gw-a", "gw-b"):
            running[name] = GatewayProcess(configs[name])
            running[name].wait_ready()
        leader = next(iter(running))
        running[leader].output.wait_for(LEADS, timeout_s=10)
        # One round per site (a cut-off the leader has not checked yet), the kill spread
        # over two ticks of 0.2 s: before, during or after the leader's check.
        for site, delay in zip(SITES, KILL_AFTER_S, strict=True):
            follower = next(n for n in running if n != leader)
            seen = len(running[leader].output.lines)
            known_since_last_week(database, site)
            time.sleep(delay)
            running[leader].kill()
            killed_at = datetime.now()
            killed = running[leader]
            running[follower].output.wait_for(LEADS, timeout_s=10)
            wait_until(
                lambda: len(report_missing(database, site)) == len(GATES),  # noqa: B023
                timeout_s=15, what=f"{site}'s report-missing alarms",
            )  # fmt: skip
            time.sleep(1.0)  # ticks enough for a second raise, were there one
            assert report_missing(database, site) == dict.fromkeys(GATES, 1), (site, delay)
            raised = [logged_at(x) for x in killed.output.lines[seen:] if "report-missing" in x]
            by_killed.append(round((killed_at - raised[0]).total_seconds(), 3) if raised else None)
            killed.output.finish()
            running[leader] = GatewayProcess(configs[leader])  # restarted, as systemd would
            running[leader].wait_ready()
            leader = follower
        for site in SITES:  # the restarted ones checked the cut-offs again: still once
            assert report_missing(database, site) == dict.fromkeys(GATES, 1), site
    finally:
        for gateway in running.values():
            if gateway.process.poll() is None:
                gateway.stop()
    print(
        f"\nleader killed {', '.join(f'{d:.2f}' for d in KILL_AFTER_S)} s after the cut-off was "
        f"due: this long after it raised that round's alarms (None: before) {by_killed}"
    )


def test_tcp_proxy__forwards_until_cut_holds_cut_connections_and_forwards_new_ones_once_mended(
    cluster: PrivatePostgres,
) -> None:
    proxy = TcpProxy(0, "127.0.0.1", cluster.port)
    url = through(cluster.url(), cluster, proxy)
    before = psycopg.connect(url, autocommit=True)
    answered = threading.Event()
    try:
        assert before.execute("SELECT 1").fetchone() == (1,)
        proxy.cut()

        def ask() -> None:  # blocks: the cut neither answers nor closes
            with suppress(psycopg.Error):
                before.execute("SELECT 2")
            answered.set()

        threading.Thread(target=ask, daemon=True).start()
        assert not answered.wait(1.5), "a cut connection answered or was closed"
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            psycopg.connect(url, connect_timeout=2)
        proxy.mend()
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as after:
            assert after.execute("SELECT 3").fetchone() == (3,)
        assert not answered.is_set(), "the cut connection came back to life"
    finally:
        proxy.close()  # closes the cut connection too: the blocked call ends
        assert answered.wait(5), "closing the proxy did not end the cut connection"
        before.close()


def test_connect__the_server_drops_a_cut_session_within_seconds_not_the_os_default_hours(
    cluster: PrivatePostgres,
) -> None:
    # Over TCP (the proxy), as a gateway on another host reaches its database: a session
    # cut mid-batch holds that batch's node locks until the server's keepalives give up.
    with TcpProxy(0, "127.0.0.1", cluster.port) as proxy:
        conn = connect(through(cluster.url(), cluster, proxy))
        try:
            idle, interval, count = (
                int(conn.execute(f"SHOW tcp_keepalives_{name}").fetchone()[0])  # type: ignore[index]
                for name in ("idle", "interval", "count")
            )
        finally:
            conn.close()
    assert idle + interval * count <= SERVER_GIVES_UP_S


def test_leadership__a_leader_whose_network_is_cut_says_it_lost_the_lead_once_its_lease_ends(
    cluster: PrivatePostgres, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    with TcpProxy(0, "127.0.0.1", cluster.port) as proxy:
        leadership = Leadership(through(database, cluster, proxy), name="cut")
        leadership.start()
        try:
            wait_until(lambda: leadership.leads, timeout_s=3, what="leading")
            proxy.cut()  # no verdicts: behind a middlebox that keeps acknowledging
            cut = time.monotonic()
            wait_until(lambda: LOST in caplog.text, timeout_s=6, what="the loss logged")
            said_s = time.monotonic() - cut
            assert not leadership.leads
        finally:
            leadership.stop()
    assert "session not confirmed for 3 s" in caplog.text
    assert said_s <= LEASE_S + 0.5
