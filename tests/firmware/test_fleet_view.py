"""`gatepost fw fleet` against a real gateway on a real SQLite file: the table, --json, the exit
code, problems first, and every way of not reading the fleet."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.cli import main
from edge.contract.topics import Role
from edge.gate.console.server import ConsoleServer
from firmware_tools.fleet_view import PROBLEM, UNREAD, WELL, age
from gateway.access import hash_token
from gateway.alarms import AlarmBook
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import AlarmSection
from gateway.fleet import PROBLEMS, fleet_node, fleet_order
from gateway.live import LiveFeed
from gateway.store import SqlStore, open_store
from gateway.store.records import AccessRole, NodeRecord
from gateway.store.settings import StoreSection
from tests.conftest import PostgresDatabases
from tests.firmware.fleet_nodes import (
    CONFIG_HASH,
    CONFIG_SERIAL,
    ORDER,
    birth,
    fleet_config,
    seed_fleet,
)

ADMIN = "gpt_fleet-admin"
COMMAND = "gpt_fleet-command"


@pytest.fixture(params=["sqlite", "postgresql"])
def section(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSection:
    """Each test on a SQLite file and on a fresh PostgreSQL database, as the gateway's."""
    if request.param == "postgresql":
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        return StoreSection(path=tmp_path / "gateway.db", url=databases.new())
    return StoreSection(path=tmp_path / "gateway.db")


@pytest.fixture
def store(section: StoreSection) -> Iterator[SqlStore]:
    opened = open_store(section)
    yield opened
    opened.close()


@pytest.fixture
def gateway(section: StoreSection, store: SqlStore) -> Iterator[str]:
    """A gateway serving HTTP on a free port over the store; an admin and a command token."""
    live = LiveFeed()
    context = GatewayContext(
        config=fleet_config(section), store=store,
        alarms=AlarmBook(store, lambda _alert: None, live), live=live,
    )  # fmt: skip
    roles: tuple[tuple[str, AccessRole], ...] = ((ADMIN, "admin"), (COMMAND, "command"))
    for token, role in roles:
        store.add_token(hash_token(token), f"{role}-laptop", role, datetime.now(UTC))
    server = ConsoleServer(create_app(context), port=0)
    server.start()
    yield server.url
    server.stop()


def fleet(
    gateway: str, *extra: str, token: str | None = ADMIN, monkeypatch: pytest.MonkeyPatch
) -> int:
    if token is None:
        monkeypatch.delenv("GATEPOST_TOKEN", raising=False)
    else:
        monkeypatch.setenv("GATEPOST_TOKEN", token)
    return main(["fw", "fleet", "--gateway", gateway, *extra])


def test_fleet__table_lists_problems_first_and_exits_1(
    gateway: str, store: SqlStore, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    seed_fleet(store, datetime.now(UTC))
    assert fleet(gateway, monkeypatch=monkeypatch) == PROBLEM
    lines = capsys.readouterr().out.splitlines()
    header, rows, summary = lines[0], lines[1:-1], lines[-1]
    assert header.split()[:4] == ["SITE", "NODE", "ROLE", "STATE"]
    assert [tuple(row.split()[:2]) for row in rows] == [(s, n) for s, n, _ in ORDER]
    assert summary == "6 nodes, 5 with problems"
    # Aligned: every column starts where its heading does.
    for column in ("VERSION", "TRUST", "SKEW", "PROBLEMS"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows), column
    by_node = {tuple(row.split()[:2]): row for row in rows}
    assert "offline (never-seen)" in by_node["north", "g04"]
    assert "offline (shutdown)" in by_node["south", "g01"]
    well = by_node["north", "g01"]
    assert "online" in well and "1.4.2" in well and f"8/{CONFIG_HASH[:12]}" in well
    assert f" -/{CONFIG_HASH[:12]} " in by_node["north", "g02"]  # no serial said
    assert "+0.4s" in well and "2 ok" in well and well.endswith("-")
    assert "3d" in by_node["north", "g02"] and by_node["north", "g02"].endswith("trust-stale")
    assert "+120.0s" in by_node["north", "g03"]
    assert "probe=fault probe/timeout" in by_node["north", "d01"]


def test_fleet__json_has_every_column_and_the_same_order(
    gateway: str, store: SqlStore, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    seed_fleet(store, datetime.now(UTC))
    assert fleet(gateway, "--json", monkeypatch=monkeypatch) == PROBLEM
    document = json.loads(capsys.readouterr().out)
    nodes = document["nodes"]
    assert [(n["site"], n["node"], n["problems"]) for n in nodes] == ORDER
    d01 = nodes[4]
    assert (d01["role"], d01["devices"], d01["faults"]) == ("depot", {"probe": "fault"},
                                                            ["probe/timeout"])  # fmt: skip
    assert d01["trust_list_age_s"] is None  # a depot has no trust list, and is not judged on it
    g01 = nodes[5]
    assert (g01["version"], g01["config_hash"], g01["outbox_depth"]) == ("1.4.2", CONFIG_HASH, 3)
    assert (g01["config_serial"], nodes[2]["config_serial"]) == (CONFIG_SERIAL, None)
    assert g01["clock_skew_s"] == pytest.approx(0.4)
    assert 60 <= g01["trust_list_age_s"] < 120
    datetime.fromisoformat(document["at"])


def test_fleet__a_site_of_well_nodes_exits_0(
    gateway: str, store: SqlStore, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    seed_fleet(store, datetime.now(UTC))
    # South's one gate is down: 1. Bring it back and the site is well: 0.
    assert fleet(gateway, "--site", "south", monkeypatch=monkeypatch) == PROBLEM
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:-1]] == [
        ["south", "g01"]
    ]
    store.write([], presence=[birth("south", "g01", datetime.now(UTC), 60.0, session=2)])
    assert fleet(gateway, "--site", "south", monkeypatch=monkeypatch) == WELL
    assert capsys.readouterr().out.splitlines()[-1] == "1 node, 0 with problems"


@pytest.mark.parametrize(
    ("args", "token", "said"),
    [
        ((), None, "no token: give --token-file or set GATEPOST_TOKEN"),
        ((), COMMAND, "the fleet needs an admin token (403)"),
        ((), "gpt_nobody", "the gateway refused the token (401)"),
        ((), "two words", "$GATEPOST_TOKEN: not one token"),
        (("--token-file", "/nonexistent/token"), None, "--token-file /nonexistent/token: cannot"),
    ],
    ids=["no-token", "command-token", "unknown-token", "not-a-token", "no-token-file"],
)
def test_fleet__invalid_token(
    *, gateway: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...], token: str | None, said: str,
) -> None:  # fmt: skip
    assert fleet(gateway, *args, token=token, monkeypatch=monkeypatch) == UNREAD
    captured = capsys.readouterr()
    assert captured.out == ""  # no table: a script must not take a half answer for a fleet
    assert said in captured.err


def test_fleet__token_file__valid(
    gateway: str, store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    token_file = tmp_path / "admin.token"
    token_file.write_text(f"{ADMIN}\n")
    token_file.chmod(0o600)
    assert (
        fleet(gateway, "--token-file", str(token_file), token=None, monkeypatch=monkeypatch)
        == PROBLEM
    )  # fmt: skip  (g04 never reported)
    assert "north  g04" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://127.0.0.1:8000", "--gateway 'ftp://127.0.0.1:8000': give http(s)://host:port"),
        ("http://127.0.0.1:1", "--gateway http://127.0.0.1:1: no answer"),
    ],
    ids=["scheme", "nobody-listening"],
)
def test_fleet__invalid_gateway(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, said: str
) -> None:
    assert fleet(url, "--timeout", "2", monkeypatch=monkeypatch) == UNREAD
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("timeout", ["0", "-1", "301", "nan"])
def test_fleet__invalid_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    assert fleet("http://127.0.0.1:1", "--timeout", timeout, monkeypatch=monkeypatch) == UNREAD
    said = capsys.readouterr().err
    assert f"--timeout {float(timeout)}: give 0 to 300 seconds" in said


def test_fleet__invalid_site_is_refused_by_the_parser(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        fleet("http://127.0.0.1:1", "--site", "North Site", monkeypatch=monkeypatch)
    assert exited.value.code == 2
    assert "--site" in capsys.readouterr().err


# --- the judgement, at its limits -----------------------------------------------------------

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
LIMITS = AlarmSection()  # trust lists up to 48 h, clocks within 30 s


def record(**fields: object) -> NodeRecord:
    values: dict[str, object] = {
        "site": "north", "node": "g01", "role": Role.GATE, "online": True, "last_seen": NOW,
        "trust_list_age_s": 0.0, "trust_list_age_at": NOW, "clock_skew_s": 0.0,
        "seq_contiguous": 0, "seq_max": 0,
    }  # fmt: skip
    values.update(fields)
    return NodeRecord.model_validate(values)


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"trust_list_age_s": 48 * 3600.0}, []),
        ({"trust_list_age_s": 48 * 3600.0 + 1}, ["trust-stale"]),
        ({"trust_list_age_s": None}, ["trust-stale"]),  # a gate with no trust list
        ({"role": Role.DEPOT, "trust_list_age_s": None}, []),
        ({"clock_skew_s": -30.0}, []),
        ({"clock_skew_s": -30.5}, ["clock-skew"]),
        ({"devices": {"scanner": "disabled"}}, []),
        ({"devices": {"scanner": "unplugged"}}, ["device-fault"]),
        ({"online": False, "clock_skew_s": 31.0}, ["offline", "clock-skew"]),
        ({"online": False, "last_seen": None, "trust_list_age_s": None}, ["offline"]),
    ],
)
def test_fleet_node__problems_at_the_alarm_limits(
    fields: dict[str, object], problems: list[str]
) -> None:
    assert fleet_node(record(**fields), expected=True, faults=[], limits=LIMITS,
                      now=NOW).problems == problems  # fmt: skip


def test_fleet_order__worst_problem_first_then_by_name() -> None:
    rows = [
        fleet_node(record(node=node, **fields), expected=True, faults=[], limits=LIMITS, now=NOW)
        for node, fields in (
            ("a1", {}), ("b1", {"clock_skew_s": 99.0}), ("c2", {"online": False}),
            ("c1", {"online": False, "clock_skew_s": 99.0}), ("a2", {"trust_list_age_s": None}),
        )
    ]  # fmt: skip
    assert [row.node for row in sorted(rows, key=fleet_order)] == ["c1", "c2", "a2", "b1", "a1"]


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (7199, "120m"),
        (599, "10m"),
        (7200, "2h"),
        (3 * 86400, "3d"),
    ],
)
def test_age(seconds: float, said: str) -> None:
    assert age(seconds) == said


def test_fleet__last_seen_is_an_age(
    gateway: str, store: SqlStore, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    seed_fleet(store, datetime.now(UTC) - timedelta(minutes=10))
    fleet(gateway, "--site", "north", monkeypatch=monkeypatch)
    rows = {tuple(line.split()[:2]): line for line in capsys.readouterr().out.splitlines()}
    assert "10m ago" in rows["north", "g01"]
    assert "never" in rows["north", "g04"]


@contextmanager
def http_server(target: str = "") -> Iterator[tuple[str, list[str | None]]]:
    """A server answering every GET with a redirect to `target` (or 200 `[]` without one);
    yields its URL and the Authorization header of each request it got."""
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(302 if target else 200)
            if target:
                self.send_header("Location", target)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_fleet__a_redirect_is_refused_and_the_token_goes_nowhere_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with http_server() as (elsewhere, seen_elsewhere):
        with http_server(f"{elsewhere}/api/nodes/fleet") as (redirecting, seen):
            assert fleet(redirecting, monkeypatch=monkeypatch) == UNREAD
        assert seen == [f"Bearer {ADMIN}"]
        assert seen_elsewhere == []
    assert "the gateway answered 302" in capsys.readouterr().err


# --- a property: the order, whatever the nodes ------------------------------------------------

NODE_STATES = st.fixed_dictionaries({
    "online": st.booleans(),
    "trust_list_age_s": st.none() | st.floats(0, 10 * 86400),
    "clock_skew_s": st.none() | st.floats(-600, 600),
    "devices": st.dictionaries(st.sampled_from(["scanner", "thermometer", "probe"]),
                               st.sampled_from(["ok", "fault", "unplugged", "disabled"])),
    "role": st.sampled_from(list(Role)),
})  # fmt: skip


@given(st.lists(NODE_STATES, max_size=30))
def test_fleet_order__problems_first_worst_first__property(states: list[dict[str, object]]) -> None:
    rows = sorted(
        (fleet_node(record(node=f"n{i:02d}", **fields), expected=True, faults=[], limits=LIMITS,
                    now=NOW) for i, fields in enumerate(states)),
        key=fleet_order,
    )  # fmt: skip
    worst = [PROBLEMS.index(r.problems[0]) if r.problems else len(PROBLEMS) for r in rows]
    assert worst == sorted(worst)  # no well node before one with a problem, worst first
    for row in rows:
        assert row.problems == [p for p in PROBLEMS if p in row.problems]  # in order, once each
