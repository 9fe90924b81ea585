"""Depot tokens name their depots: made with `gatepost gateway token create --depot`, a depot
keeper's token reads and acknowledges its own depots only, and learns nothing of the others,
as the keeper and someone trying the other depots' addresses would check it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from edge.cli import main
from edge.contract.events import DepotReading, DepotReadingBatch
from gateway.access import DEPOTS_MAX, hash_token
from gateway.alarms import AlarmBook
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, load_config
from gateway.live import LiveFeed
from gateway.store import SqliteStore, SqlStore, open_store
from gateway.store.migrations import MIGRATIONS, apply_migrations
from gateway.store.records import AlarmRecord
from gateway.store.settings import StoreSection
from tests.gateway.factory import Gates
from tests.gateway.test_api_alarms import sample as sample_alarm

COLD = "cold-store-1"
# 2026-12-01 in Shanghai (UTC+8) starts at 2026-11-30 16:00 UTC; its readings at 08:00.
DAY = "2026-12-01"
READ_AT = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
CONFIG = {
    "sites": [{
        "name": "north", "gates": ["g01"], "depots": ["d01", "d02"],
        "zones": {"d01": {COLD: "cold"}, "d02": {COLD: "cold"}},
    }],
    "broker": {"url": "mqtts://127.0.0.1:8883"},  # the token commands do not connect
}  # fmt: skip


@pytest.fixture
def config_file(tmp_path: Path, store_section: StoreSection) -> Path:
    """The config, on the test's store (a SQLite file next to it, or PostgreSQL)."""
    path = tmp_path / "gateway.yaml"
    store = store_section.model_dump(mode="json", include={"path", "url"}, exclude_none=True)
    path.write_text(yaml.safe_dump({**CONFIG, "store": store}), encoding="utf-8")
    return path


class Cli:
    """`gatepost gateway token …` against one config, as an administrator types it."""

    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        """The exit code, stdout and stderr of `gatepost gateway token ARGS --config …`."""
        self.capsys.readouterr()
        code = main(["gateway", "token", *args, "--config", str(self.config)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def create(self, name: str, role: str, *depots: str) -> str:
        """A new token's secret; the command must succeed."""
        flags = [arg for depot in depots for arg in ("--depot", depot)]
        code, out, err = self("create", "--name", name, "--role", role, *flags, "--json")
        assert code == 0, err
        made = json.loads(out)
        assert (made["name"], made["role"], made["depots"]) == (name, role, list(depots))
        secret: str = made["token"]
        return secret

    def listed(self) -> list[list[str]]:
        code, out, err = self("list")
        assert (code, err) == (0, ""), err
        return [line.split("\t") for line in out.splitlines()]


@pytest.fixture
def cli(config_file: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(config_file, capsys)


# --- the command ---------------------------------------------------------------------------


def test_create__a_depot_token_names_its_depots_and_the_list_shows_them(cli: Cli) -> None:
    keeper = cli.create("keeper-d01", "depot", "north/d01", "north/d02")
    assert keeper.startswith("gpt_")
    cli.create("cold-chain-desk", "command")
    rows = cli.listed()
    assert rows == [
        ["cold-chain-desk", "command", "live"],
        ["keeper-d01", "depot", "live", "north/d01,north/d02"],
    ]
    assert keeper not in str(rows)
    code, _, err = cli("revoke", "--name", "keeper-d01")
    assert code == 0, err
    (revoked,) = [row for row in cli.listed() if row[0] == "keeper-d01"]
    assert revoked[1] == "depot" and revoked[2].startswith("revoked ")
    assert revoked[3] == "north/d01,north/d02"


def test_create__a_depot_named_twice_is_kept_once_and_64_are_allowed(cli: Cli) -> None:
    code, _, err = cli("create", "--name", "twice", "--role", "depot",
                       "--depot", "north/d01", "--depot", "north/d01")  # fmt: skip
    assert code == 0, err
    many = [f"north/d{n:03d}" for n in range(DEPOTS_MAX)]
    cli.create("regional-keeper", "depot", *many)
    rows = {row[0]: row for row in cli.listed()}
    assert rows["twice"][3] == "north/d01"
    assert rows["regional-keeper"][3].split(",") == many


def test_create__a_depot_the_config_does_not_name_is_allowed_with_a_warning(cli: Cli) -> None:
    code, out, err = cli("create", "--name", "new-depot", "--role", "depot",
                         "--depot", "north/d01", "--depot", "south/d09")  # fmt: skip
    assert code == 0, err
    assert out.strip().startswith("gpt_")
    assert "warning: south/d09 is not a depot in" in err
    assert "north/d01" not in err  # the known one is not warned about
    assert cli.listed() == [["new-depot", "depot", "live", "north/d01,south/d09"]]


SIXTY_FIVE = [f"north/d{n:03d}" for n in range(DEPOTS_MAX + 1)]
REFUSED = [
    pytest.param("depot", [], "at least one", id="none"),
    pytest.param("command", ["north/d01"], "only a depot token names depots", id="command"),
    pytest.param("admin", ["north/d01"], "only a depot token names depots", id="admin"),
    pytest.param("registrar", ["north/d01"], "only a depot token names depots", id="registrar"),
    pytest.param("depot", SIXTY_FIVE, "at most 64 depots, not 65", id="65"),
    pytest.param("depot", ["north"], "'north': give it as SITE/NODE", id="no-node"),
    pytest.param("depot", ["North/d01"], "give it as SITE/NODE", id="capital"),
    pytest.param("depot", ["north/d01/zone"], "give it as SITE/NODE", id="three-parts"),
    pytest.param("depot", ["/d01"], "give it as SITE/NODE", id="no-site"),
    pytest.param("depot", ["north/"], "give it as SITE/NODE", id="empty-node"),
    pytest.param("depot", ["north/d01\n"], "give it as SITE/NODE", id="newline"),
    pytest.param("depot", ["north/" + "d" * 64], "give it as SITE/NODE", id="too-long"),
    pytest.param("depot", ["north/d01", "x" * 500], "…", id="long-cut"),  # shown cut short
]


@pytest.mark.parametrize(("role", "depots", "message"), REFUSED)
def test_create__refused_with_the_reason_and_nothing_stored(
    cli: Cli, role: str, depots: list[str], message: str
) -> None:
    flags = [arg for depot in depots for arg in ("--depot", depot)]
    code, out, err = cli("create", "--name", "bad", "--role", role, *flags)
    assert (code, out) == (1, "")
    assert "gatepost gateway: error: --depot: " in err
    assert message in err, err
    assert len(err) < 400  # a long entry is not echoed whole
    assert cli.listed() == []


@pytest.mark.parametrize(
    "name",
    ["", "x" * 65, "keeper\td01", "keeper\nd01", " keeper", "keeper\x1b[2J"],
    ids=["empty", "65", "tab", "newline", "space", "escape"],
)
def test_create__a_name_that_would_break_the_list_or_log_is_refused(cli: Cli, name: str) -> None:
    code, out, err = cli("create", "--name", name, "--role", "depot", "--depot", "north/d01")
    assert (code, out) == (1, "")
    assert "--name: 1 to 64 printable characters" in err
    assert cli.listed() == []
    cli.create("x" * 64, "command")  # 64 is allowed, and so are other scripts
    cli.create("冷链-值班", "command")
    assert [row[0] for row in cli.listed()] == ["x" * 64, "冷链-值班"]


# --- the API, with tokens made by the command ---------------------------------------------------


@pytest.fixture
def config(config_file: Path) -> GatewayConfig:
    return load_config(config_file)


@pytest.fixture
def store(config: GatewayConfig) -> Iterator[SqlStore]:
    opened = open_store(config.store)
    yield opened
    opened.close()


@pytest.fixture
def book(store: SqlStore) -> AlarmBook:
    return AlarmBook(store, lambda alert: None, LiveFeed())


@pytest.fixture
def tokens(cli: Cli) -> dict[str, str]:
    """keeper: a depot token of north/d01; desk: a command token."""
    return {
        "keeper": cli.create("keeper-d01", "depot", "north/d01"),
        "desk": cli.create("cold-chain-desk", "command"),
    }


@pytest.fixture
def api(
    config: GatewayConfig, store: SqlStore, book: AlarmBook, tokens: dict[str, str]
) -> TestClient:
    """The gateway's API over the config and store the tokens were made in; both depots
    sent a reading of their cold store."""
    gates = Gates("north", now=READ_AT)
    for node, temperature in (("d01", 4.0), ("d02", 6.0)):
        reading = DepotReading(sensor=COLD, bus_address=1, at=READ_AT, status="ok",
                               temperature_c=temperature, humidity_pct=50.0)  # fmt: skip
        store.write([gates.inbound(node, DepotReadingBatch, readings=(reading,))])
    return TestClient(create_app(GatewayContext(config=config, store=store, alarms=book,
                                                live=LiveFeed())))  # fmt: skip


def as_(tokens: dict[str, str], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


def test_overview__the_keeper_sees_their_depot_the_desk_every_one(
    api: TestClient, tokens: dict[str, str]
) -> None:
    mine = api.get("/api/depots", headers=as_(tokens, "keeper"))
    assert mine.status_code == 200, mine.text
    overview = mine.json()
    assert [(d["site"], d["node"]) for d in overview["depots"]] == [("north", "d01")]
    assert (overview["may_acknowledge"], overview["sees_all"]) == (True, False)
    assert "d02" not in mine.text
    every = api.get("/api/depots", headers=as_(tokens, "desk")).json()
    assert [d["node"] for d in every["depots"]] == ["d01", "d02"]
    assert (every["may_acknowledge"], every["sees_all"]) == (True, True)


ROLLUPS = "from=2026-11-30T16:00:00Z&to=2026-12-01T16:00:00Z&resolution=hour"
READS = [
    f"readings?day={DAY}",
    f"readings?day={DAY}&format=csv",
    f"readings?day={DAY}&zone={COLD}",
    f"summary?day={DAY}",
    f"rollups?{ROLLUPS}",
    f"rollups?{ROLLUPS}&format=csv",
]


@pytest.mark.parametrize("what", READS)
def test_reads__another_depot_is_answered_as_one_that_does_not_exist(
    api: TestClient, tokens: dict[str, str], what: str
) -> None:
    keeper = as_(tokens, "keeper")
    own = api.get(f"/api/depots/north/d01/{what}", headers=keeper)
    assert own.status_code == 200, own.text
    other = api.get(f"/api/depots/north/d02/{what}", headers=keeper)
    missing = api.get(f"/api/depots/north/d99/{what}", headers=keeper)
    no_site = api.get(f"/api/depots/south/d02/{what}", headers=keeper)
    for answer in (other, missing, no_site):
        assert answer.status_code == 404, answer.text
        assert answer.json()["reason"] == "unknown-depot"
    assert other.json() == {"reason": "unknown-depot",
                            "detail": "'d02' is not a depot of site 'north'"}  # fmt: skip
    assert missing.json()["detail"] == other.json()["detail"].replace("d02", "d99")
    assert other.headers.keys() == missing.headers.keys()
    assert "6.0" not in other.text  # d02's reading
    # The command center reads d02, and is told a site is unknown.
    desk = as_(tokens, "desk")
    assert api.get(f"/api/depots/north/d02/{what}", headers=desk).status_code == 200
    assert api.get(f"/api/depots/south/d02/{what}", headers=desk).json()["reason"] == (
        "unknown-site"
    )


def test_reads__the_keeper_reads_their_own_depots_day(
    api: TestClient, tokens: dict[str, str]
) -> None:
    answer = api.get(f"/api/depots/north/d01/readings?day={DAY}", headers=as_(tokens, "keeper"))
    assert [(r["node"], r["temperature_c"]) for r in answer.json()] == [("d01", 4.0)]
    (zone,) = api.get(f"/api/depots/north/d01/summary?day={DAY}",
                      headers=as_(tokens, "keeper")).json()  # fmt: skip
    assert (zone["zone"], zone["readings"], zone["temperature_max_c"]) == (COLD, 1, 4.0)


# --- alarms ---------------------------------------------------------------------------------


@pytest.fixture
def alarms(book: AlarmBook) -> dict[str, AlarmRecord]:
    """A climate alarm of each depot's cold store, d01 lost its link, and a gate's alarm."""
    raised = {
        "d01": book.raise_alarm(sample_alarm("depot-climate.temperature-above", node="d01")),
        "d01-offline": book.raise_alarm(sample_alarm("node-offline.lost", node="d01")),
        "d02": book.raise_alarm(sample_alarm("depot-climate.temperature-above", node="d02")),
        "g01": book.raise_alarm(sample_alarm("node-offline.lost", node="g01")),
    }
    found = {name: alarm for name, alarm in raised.items() if alarm is not None}
    assert len(found) == len(raised)
    return found


def test_acknowledge__the_keeper_acknowledges_their_depots_alarms_audited(
    api: TestClient, tokens: dict[str, str], store: SqlStore, alarms: dict[str, AlarmRecord]
) -> None:
    keeper = as_(tokens, "keeper")
    for name in ("d01", "d01-offline"):
        alarm_id = alarms[name].alarm_id
        done = api.post(f"/api/alarms/{alarm_id}/acknowledge", headers=keeper)
        assert done.status_code == 200, done.text
        assert (done.json()["state"], done.json()["acknowledged_by"]) == (
            "acknowledged", "keeper-d01",
        )  # fmt: skip
        assert store.alarm(alarm_id).acknowledged_by == "keeper-d01"
    log = list(reversed(store.audit_log()))
    assert [(e.who, e.role, e.action, e.resource) for e in log] == [
        ("keeper-d01", "depot", "acknowledge", "alarms"),
    ] * 2
    assert [json.loads(e.detail or "{}")["alarm_id"] for e in log] == [
        alarms["d01"].alarm_id, alarms["d01-offline"].alarm_id,
    ]  # fmt: skip
    # The overview shows it acknowledged, by the keeper.
    (depot,) = api.get("/api/depots", headers=keeper).json()["depots"]
    (zone,) = depot["zones"]
    assert [(a["alarm_id"], a["acknowledged_by"]) for a in depot["alarms"] + zone["alarms"]] == [
        (alarms["d01-offline"].alarm_id, "keeper-d01"), (alarms["d01"].alarm_id, "keeper-d01"),
    ]  # fmt: skip


def test_acknowledge__anything_else_is_not_found_and_nothing_changes(
    api: TestClient, tokens: dict[str, str], store: SqlStore, alarms: dict[str, AlarmRecord]
) -> None:
    keeper = as_(tokens, "keeper")
    nowhere = api.post("/api/alarms/no-such-alarm/acknowledge", headers=keeper)
    assert nowhere.status_code == 404
    for name in ("d02", "g01"):
        alarm_id = alarms[name].alarm_id
        answer = api.post(f"/api/alarms/{alarm_id}/acknowledge", headers=keeper)
        assert answer.status_code == 404, answer.text
        assert answer.json() == {
            "reason": "unknown-alarm",
            "detail": nowhere.json()["detail"].replace("no-such-alarm", alarm_id),
        }
        assert store.alarm(alarm_id).state == "raised"
    assert store.audit_log() == []


def test_acknowledge__the_keeper_clears_nothing_and_lists_no_alarms_elsewhere(
    api: TestClient, tokens: dict[str, str], store: SqlStore, alarms: dict[str, AlarmRecord]
) -> None:
    keeper = as_(tokens, "keeper")
    own = alarms["d01"].alarm_id
    cleared = api.post(f"/api/alarms/{own}/clear", headers=keeper)
    assert cleared.status_code == 403
    assert cleared.json()["reason"] == "role-forbidden"
    assert store.alarm(own).state == "raised"
    # Every other place that lists alarms is the command center's: refused to the keeper.
    for path in ("/api/alarms", f"/api/alarms/{own}", "/api/dashboard"):
        answer = api.get(path, headers=keeper)
        assert answer.status_code == 403, path
        assert alarms["d02"].alarm_id not in answer.text
    stream = api.get("/api/stream", params={"access_token": tokens["keeper"]})
    assert stream.status_code == 403
    # The command center clears it, audited as such.
    assert api.post(f"/api/alarms/{own}/clear", headers=as_(tokens, "desk")).status_code == 200
    (entry,) = store.audit_log()
    assert (entry.who, entry.role, entry.action) == ("cold-chain-desk", "command", "clear")
    assert json.loads(entry.detail or "{}") == {
        "alarm_id": own, "kind": "depot-climate", "site": "north", "node": "d01",
        "state": "cleared",
    }  # fmt: skip


def test_acknowledge__the_desk_acknowledges_any_depots_alarm(
    api: TestClient, tokens: dict[str, str], alarms: dict[str, AlarmRecord]
) -> None:
    for name in ("d01", "d02", "g01"):
        answer = api.post(f"/api/alarms/{alarms[name].alarm_id}/acknowledge",
                          headers=as_(tokens, "desk"))  # fmt: skip
        assert answer.json()["acknowledged_by"] == "cold-chain-desk"


# --- depot tokens made before tokens named depots ------------------------------------------


# SQLite-only: a SQLite file from before migration 0013, migrated forward.
@pytest.mark.parametrize("store_section", ["sqlite"], indirect=True)
def test_a_depot_token_made_before_sees_no_depot_until_made_again(
    tmp_path: Path, config: GatewayConfig, cli: Cli
) -> None:
    # A store as it was before 0013, with a depot token in it.
    conn = sqlite3.connect(config.store.path)
    apply_migrations(conn, tuple(m for m in MIGRATIONS if m.name < "0013"))
    old = "gpt_old-depot-token"
    conn.execute(
        "INSERT INTO tokens (token_hash, name, role, created_at) VALUES (?, ?, ?, ?)",
        (hash_token(old), "old-keeper", "depot", "2026-11-01T00:00:00Z"),
    )
    conn.commit()
    conn.close()
    store = SqliteStore(config.store.path)  # migrates
    try:
        book = AlarmBook(store, lambda alert: None, LiveFeed())
        alarm = book.raise_alarm(sample_alarm("depot-climate.temperature-above", node="d01"))
        assert alarm is not None
        api = TestClient(create_app(GatewayContext(config=config, store=store, alarms=book,
                                                   live=LiveFeed())))  # fmt: skip
        headers = {"Authorization": f"Bearer {old}"}
        overview = api.get("/api/depots", headers=headers).json()
        assert (overview["depots"], overview["sees_all"]) == ([], False)
        answer = api.get(f"/api/depots/north/d01/readings?day={DAY}", headers=headers)
        assert answer.json()["reason"] == "unknown-depot"
        answer = api.post(f"/api/alarms/{alarm.alarm_id}/acknowledge", headers=headers)
        assert answer.status_code == 404
        assert cli.listed() == [["old-keeper", "depot", "live"]]  # no depots to show
        # Made again with its depot: it sees it.
        assert cli("revoke", "--name", "old-keeper")[0] == 0
        again = cli.create("keeper-d01", "depot", "north/d01")
        overview = api.get("/api/depots", headers={"Authorization": f"Bearer {again}"}).json()
        assert [d["node"] for d in overview["depots"]] == ["d01"]
    finally:
        store.close()


def test_a_token_record_keeps_its_depots_across_a_reopen(config: GatewayConfig) -> None:
    store = open_store(config.store)
    store.add_token(hash_token("gpt_x"), "keeper", "depot", datetime.now(UTC) - timedelta(1),
                    ("north/d01", "north/d02"))  # fmt: skip
    store.close()
    store = open_store(config.store)
    try:
        record = store.token(hash_token("gpt_x"))
        assert record is not None
        assert record.depots == ("north/d01", "north/d02")
    finally:
        store.close()
