"""The dashboard's snapshot and live stream: contents, no personal data, tokens, live frames."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from edge.contract.base import Colour
from edge.contract.events import Direction, HoldResolved, Outcome
from edge.contract.presence import Birth, DeviceState
from edge.contract.supply import Level
from edge.contract.topics import AlertKind, Role
from edge.gate.console.server import ConsoleServer
from edge.web.words import read_words
from gateway.access import hash_token
from gateway.alarms import MESSAGES
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.api.routes_dashboard import STATIC, DashboardView, GateStatus, dashboard_stream
from gateway.api.routes_nodes import NEVER_SEEN
from gateway.api.routes_stock import AdjustmentIn, IssueIn, ReceiptIn, ReversalIn, TransferIn
from gateway.fleet import Problem
from gateway.reports import COUNT_FIELDS, GateReportStatus
from gateway.stock.catalogue import Category, Unit
from gateway.stock.ledger import EntryKind, ReceiptSource
from gateway.store import SqlStore
from gateway.store.records import AccessRole, AlarmDraft, InboundPresence, Severity
from gateway.web.words import catalogue, date_parts, slots
from tests.console.sse import EventReader, Frame
from tests.gateway.factory import ID_HASH, Gates

# 10:00 in Shanghai; the site's cut-off is midnight (the conftest config).
NOW = datetime(2024, 3, 5, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
TOKENS: dict[AccessRole, str] = {role: f"gpt_dash-{role}" for role in ("command", "depot", "registrar", "admin")}  # fmt: skip
PLATE = "京A12345"
CAR_REF = "c1" * 32
PERSON_REF = "e5" * 32
PERSONAL = (PLATE, CAR_REF, PERSON_REF, ID_HASH, "张三", "13800138000", "cough")


def bearer(role: AccessRole = "command") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def birth(node: str, at: datetime = NOW) -> InboundPresence:
    payload = Birth(
        session=1, node_time=at, role=Role.GATE, version="1.2.0", config_hash="ab" * 8,
        heartbeat_s=10,
    )  # fmt: skip
    return InboundPresence("north", node, Role.GATE, payload, at)


@pytest.fixture
def dash_context(gateway_context: GatewayContext) -> GatewayContext:
    """The conftest context with a fixed clock and one token per role (`<role>-desk`)."""
    for role, token in TOKENS.items():
        gateway_context.store.add_token(hash_token(token), f"{role}-desk", role, NOW)
    return dataclasses.replace(gateway_context, clock=lambda: NOW)


@pytest.fixture
def app(dash_context: GatewayContext) -> Iterator[FastAPI]:
    made = create_app(dash_context)
    dashboard_stream(made, keepalive_s=0.3)  # made here, so keep-alives come quickly
    yield made
    dashboard_stream(made).close()


@pytest.fixture
def api(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def dash_gates() -> Gates:
    return Gates("north", now=NOW)


@pytest.fixture
def seeded(store: SqlStore, dash_gates: Gates) -> None:
    """g01 on duty with a car, a held person (open hold) and a registration; g09 unlisted."""
    gates = dash_gates
    yesterday = NOW - timedelta(days=1)  # before today's cut-off: on the ticker, not counted
    car = gates.passage(
        subject="vehicle", vehicle_plate=PLATE, occupants=2, subject_ref=CAR_REF,
        node_time=NOW - timedelta(minutes=5),
    )  # fmt: skip
    held = gates.passage(outcome="hold", temperature_c=38.4, subject_ref=PERSON_REF)
    old = gates.passage(outcome="hold", node_time=yesterday)
    old_hold = gates.hold(old, node_time=yesterday)
    turned_back = gates.inbound(
        "g01", HoldResolved, hold_id=old_hold.event.event_id, resolution="turned-back",
        volunteer_id="v017", note="cough", node_time=yesterday + timedelta(minutes=1),
    )  # fmt: skip
    store.write(
        [car, held, gates.hold(held, subject_ref=PERSON_REF), old, old_hold, turned_back,
         gates.registration(), gates.shift("g01"), gates.passage("g09")],
        presence=[birth("g01"), birth("g09")],
    )  # fmt: skip


def snapshot_frames(reader: EventReader, timeout_s: float = 5.0) -> Iterator[dict[str, Any]]:
    """The snapshots of a stream, skipping the retry hint and keep-alives."""
    while True:
        frame = reader.next(timeout_s)
        if frame.data is not None:
            yield json.loads(frame.data)


# --- the snapshot ------------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_snapshot__gates_counts_holds_alarms_and_ticker(
    api: TestClient, dash_context: GatewayContext
) -> None:
    draft = AlarmDraft(
        kind=AlertKind.FEVER, site="north", node="g01", subject="h1", severity="critical",
        message="fever hold open at g01",
    )  # fmt: skip
    alarm = dash_context.alarms.raise_alarm(draft)
    assert alarm is not None
    response = api.get("/api/dashboard", headers=bearer())
    assert response.status_code == 200, response.text
    body = response.json()
    (site,) = body["sites"]
    assert site["period_start"] == "2024-03-05T00:00:00+08:00"
    gates = {gate["node"]: gate for gate in site["gates"]}
    assert list(gates) == ["g01", "g02", "g09"]  # the inventory, then gates seen besides
    g01, g02, g09 = gates["g01"], gates["g02"], gates["g09"]
    assert (g01["status"], g01["volunteers_on_duty"], g01["open_holds"]) == ("online", ["v017"], 1)
    assert (g01["counts"]["person_checks"], g01["counts"]["vehicle_checks"]) == (1, 1)
    assert (g01["counts"]["fever"], g01["counts"]["held"]) == (1, 1)
    assert g01["counts"]["turned_back"] == 0  # yesterday's hold is not today's
    assert (g02["status"], g02["last_seen"], g02["offline_reason"]) == (
        "offline", None, "never-seen",
    )  # fmt: skip
    assert (g09["status"], g09["expected"]) == ("unattended", False)
    assert site["totals"]["person_checks"] == 2  # g01's person and g09's
    assert site["open_holds"] == 1
    assert [(a["alarm_id"], a["state"]) for a in body["alarms"]] == [(alarm.alarm_id, "raised")]
    ticker = body["passages"]
    assert len(ticker) == 4
    times = [datetime.fromisoformat(tick["node_time"]) for tick in ticker]
    assert times == sorted(times, reverse=True)  # newest first
    car = next(tick for tick in ticker if tick["subject"] == "vehicle")
    assert set(car) == {
        "event_id", "site", "node", "node_time", "direction", "subject", "outcome", "colour",
        "reasons", "temperature_c", "fever",
    }  # fmt: skip


def test_snapshot__ticker_holds_the_newest_twenty(
    api: TestClient, store: SqlStore, dash_gates: Gates
) -> None:
    store.write([dash_gates.passage(node_time=NOW - timedelta(seconds=n)) for n in range(25)])
    ticker = api.get("/api/dashboard", headers=bearer()).json()["passages"]
    assert len(ticker) == 20
    assert datetime.fromisoformat(ticker[0]["node_time"]) == NOW


@pytest.mark.usefixtures("seeded")
def test_personal__nothing_personal_in_the_snapshot_or_the_stream(
    api: TestClient, dash_context: GatewayContext
) -> None:
    text = api.get("/api/dashboard", headers=bearer("admin")).text
    with api.stream("GET", "/api/stream", params={"access_token": TOKENS["admin"]}) as response:
        reader = EventReader(response.iter_lines())
        frames = snapshot_frames(reader)
        next(frames)
        dash_context.live.changed()
        streamed = json.dumps(next(frames), ensure_ascii=False)
    for shown in (text, streamed):
        assert "g01" in shown  # the content is there: the check below reads something real
        for value in (*PERSONAL, "subject_ref", "vehicle_plate", "masked_name", "note"):
            assert value not in shown


# --- tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/dashboard", "/api/stream"])
@pytest.mark.parametrize(
    ("role", "status"),
    [("command", 200), ("admin", 200), ("depot", 403), ("registrar", 403)],
)
def test_roles__command_and_admin_only(
    api: TestClient, path: str, role: AccessRole, status: int
) -> None:
    # The stream's token as EventSource sends it, in the query; the snapshot's in a header.
    if path == "/api/stream":
        request = {"params": {"access_token": TOKENS[role]}}
    else:
        request = {"headers": {"Authorization": f"Bearer {TOKENS[role]}"}}
    with api.stream("GET", path, **request) as response:
        assert response.status_code == status
        if status == 403:
            assert json.loads(response.read())["reason"] == "role-forbidden"


@pytest.mark.parametrize("path", ["/api/dashboard", "/api/stream"])
@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "token-missing"), ({"Authorization": "Bearer gpt_nobody"}, "token-invalid")],
    ids=["missing", "unknown"],
)
def test_roles__invalid_token(
    api: TestClient, path: str, headers: dict[str, str], reason: str
) -> None:
    response = api.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == reason


def test_page__served_without_a_token_and_self_contained(api: TestClient) -> None:
    response = api.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for zh, en in [("指挥中心", "Command center"), ("告警", "Alarms"), ("零报告", "zero report")]:
        assert zh in page and en in page
    assert "体温异常：留观或劝返" in page  # reason words, inlined
    assert "http://" not in page and "https://" not in page
    assert "/*{{" not in page


# --- the stream ------------------------------------------------------------------------------


def test_stream__a_frame_on_connect_and_after_each_change(
    api: TestClient, store: SqlStore, dash_context: GatewayContext, dash_gates: Gates
) -> None:
    with api.stream("GET", "/api/stream", headers=bearer()) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = snapshot_frames(EventReader(response.iter_lines()))
        assert next(frames)["passages"] == []
        store.write([dash_gates.passage("g02", outcome="deny", colour="red")])
        dash_context.live.changed()
        tick = next(frames)["passages"][0]
        assert (tick["node"], tick["outcome"], tick["colour"]) == ("g02", "deny", "red")


def test_stream__keep_alive_while_nothing_changes(api: TestClient) -> None:
    with api.stream("GET", "/api/stream", headers=bearer()) as response:
        reader = EventReader(response.iter_lines())
        next(snapshot_frames(reader))
        assert reader.next(timeout_s=3).comments == ["keep-alive"]


def test_stream__a_burst_of_changes_is_folded_into_few_frames(
    api: TestClient, dash_context: GatewayContext
) -> None:
    with api.stream("GET", "/api/stream", headers=bearer()) as response:
        reader = EventReader(response.iter_lines())
        next(snapshot_frames(reader))
        started = time.monotonic()
        for _ in range(100):  # a second of busy ingest
            dash_context.live.changed()
            time.sleep(0.01)
        frames: list[Frame] = []
        while time.monotonic() - started < 2.5:
            frame = reader.next(timeout_s=2)
            if frame.data is not None:
                frames.append(frame)
        versions = [int(frame.fields["id"]) for frame in frames]
    # At most four a second, and the frames kept coming while the burst went on.
    assert 3 <= len(frames) <= 10, f"{len(frames)} frames in 2.5 s"
    assert versions == sorted(versions)
    assert versions[-1] == dash_context.live.version  # the last change was not lost


def test_stream__open_dashboards_share_one_snapshot_per_change(
    dash_context: GatewayContext, store: SqlStore, dash_gates: Gates
) -> None:
    view = DashboardView(dash_context)
    first = view.update()
    assert view.update() is first  # a second dashboard, same change: not read again
    store.write([dash_gates.passage("g02")])
    dash_context.live.changed()
    after = view.update()
    assert after is not first
    assert after.sites[0].totals.person_checks == 1


def test_stream__ends_when_the_server_stops(dash_context: GatewayContext) -> None:
    server = ConsoleServer(create_app(dash_context), port=0)
    server.start()
    with (
        httpx.Client(timeout=5) as client,
        client.stream("GET", f"{server.url}/api/stream", headers=bearer()) as response,
    ):
        reader = EventReader(response.iter_lines())
        next(snapshot_frames(reader))
        started = time.monotonic()
        server.stop()
        assert reader.ended.wait(2), "stream still open after stop()"
        assert reader.error is None, "the stream broke instead of ending"
    assert time.monotonic() - started < 2.0


# --- words -----------------------------------------------------------------------------------

# Every field of a stock movement's body: the stock view says each one's refusal in words.
STOCK_FIELDS = tuple(sorted({
    name for model in (ReceiptIn, IssueIn, TransferIn, AdjustmentIn, ReversalIn)
    for name in model.model_fields
}))  # fmt: skip
# The refusals (409, 404, 403) the stock view says next to the field, or above the form.
STOCK_REFUSALS = (
    "insufficient-stock", "idempotency-conflict", "reversal-of-reversal", "already-reversed",
    "transfer-received", "transfer-cancelled", "unknown-entry", "unknown-transfer",
    "unknown-depot", "role-forbidden",
)  # fmt: skip

# The families of keys the scripts make from data (`say(\`kind.${alarm.kind}\`)`): every
# value the data can take, so each must be in the catalogue.
DYNAMIC_KEYS: dict[str, tuple[str, ...]] = {
    "gate": get_args(GateStatus),
    "severity": get_args(Severity),
    "kind": tuple(AlertKind),
    "alarm": (*MESSAGES, "other"),
    "outcome": get_args(Outcome),
    "colour": get_args(Colour),
    "subject": ("person", "vehicle"),
    "direction": get_args(Direction),
    "link": ("live", "connecting", "lost"),
    "report": get_args(GateReportStatus),
    "error": ("alarm-cleared", "unknown-alarm", "unknown-site"),  # what the page's calls refuse
    "count": COUNT_FIELDS,
    "reason": (),  # only for a reason the gates' own words do not have
    # Open sets, the nodes' own slugs: one without an entry is shown as the node sent it.
    "device": (),
    "fault": (),
    "zone": (),  # a zone without a name of its own is said by its offset (zone.other)
    # The stock view (stock.js): the catalogue's units and categories, the ledger's kinds
    # and sources, every field a movement's body has, the refusals the ledger answers.
    "unit": get_args(Unit),
    "category": get_args(Category),
    "source": get_args(ReceiptSource),
    "stockKind": get_args(EntryKind),
    "supplyLevel": get_args(Level),
    "stockField": (*STOCK_FIELDS, "other"),
    "stockError": STOCK_REFUSALS,
    # The fleet view (fleet.js): a node's role, why it is offline, its problems and the
    # states its birth and heartbeats give its devices.
    "fleetRole": tuple(Role),
    "fleetOffline": ("lost", "shutdown", "heartbeat", NEVER_SEEN),
    "fleetProblem": get_args(Problem),
    "deviceState": get_args(DeviceState),
}


HAN = re.compile(r"[\u3400-\u9fff]")
NOT_CHINESE = {"page.otherLanguage"}  # the language button names the other language


@pytest.mark.parametrize(("key", "zh", "en"), [(k, *pair) for k, pair in catalogue().items()])
def test_words__valid(key: str, zh: str, en: str) -> None:
    # Chinese, unless the entry has no words at all ("{hh}:{mi}", "{place} {kind}").
    wordless = not re.search(r"[A-Za-z]", re.sub(r"\{\w+\}", "", zh))
    assert HAN.search(zh) or wordless or key in NOT_CHINESE, f"{key}: no Chinese in {zh!r}"
    assert en.strip(), f"{key}: no English"
    # A date is written with other parts in each language (5日, 05): those may differ.
    dates = set(date_parts(NOW))
    assert slots(zh) - dates == slots(en) - dates, f"{key}: {zh!r} and {en!r} differ"


def test_words__invalid_entry_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "words.json"
    broken.write_text(json.dumps({"page.title": ["指挥中心", ""]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"'page\.title' must be"):
        read_words(broken)


def test_words__every_key_the_page_shows_is_in_the_catalogue() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    scripts = "\n".join(
        (STATIC / name).read_text(encoding="utf-8")
        for name in ("words.js", "dashboard.js", "reports.js", "stock.js", "stock-forms.js",
                     "fleet.js")
    )  # fmt: skip
    used = set(re.findall(r'data-word="([^"]+)"', html))
    # Every quoted key-shaped text ("gate.since"), whichever function it is passed to.
    namespaces = "|".join({key.split(".", 1)[0] for key in catalogue()})
    used |= set(re.findall(rf'"((?:{namespaces})\.[\w./-]+)"', scripts))
    families = set(re.findall(r"`(\w+)\.\$\{", scripts))
    assert families <= set(DYNAMIC_KEYS), f"keys made from data, unknown here: {families}"
    used |= {f"{family}.{value}" for family in families for value in DYNAMIC_KEYS[family]}
    assert len(used) > 80  # the scan found the page's words
    missing = sorted(used - set(catalogue()))
    assert not missing, f"shown on the page, not in words.json: {missing}"


def test_words__alarm_entries_take_only_what_their_message_has() -> None:
    for key, message in MESSAGES.items():
        offered = slots(message) - {"where"} | {"site", "node", "place", "kind"}
        zh, _ = catalogue()[f"alarm.{key}"]
        assert slots(zh) <= offered, f"alarm.{key} asks for {slots(zh) - offered}"
