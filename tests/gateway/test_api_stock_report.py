"""The daily stock report as keepers submit it and the command center reads it: versions,
idempotency, late flags, roles and depot scoping, the CSV and the printable page, and the
deadline alarm in the gateway's tick with a moved clock."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from edge.contract import catalogue, topics
from edge.contract.command import Alert
from edge.contract.topics import AlertKind
from edge.gate.console.server import ConsoleServer
from gateway.access import hash_token
from gateway.alarms import AlarmBook, words_of
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import AlarmSection, GatewayConfig, HttpSection, SiteSection
from gateway.live import LiveFeed
from gateway.stock.catalogue import StockItem
from gateway.stock.cover import StockSection
from gateway.stock.daily_report import (
    DepotFigures,
    StockReportRules,
    StockReportSection,
    SubmissionDraft,
)
from gateway.store import open_store
from gateway.store.records import AccessRole
from gateway.store.settings import StoreSection
from gateway.store.sql import INTEGRITY_ERRORS
from simulators.broker import PrivateBroker
from tests.browser import assert_chinese_renders
from tests.conftest import Subscriber, gateway_broker, identity, running_gateway
from tests.gateway.factory import look_inside

DAY = "2026-12-05"
MORNING = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
DEADLINE = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)  # 17:30 in Shanghai
TOKENS: dict[str, tuple[AccessRole, tuple[str, ...]]] = {
    "keeper": ("depot", ("north/d01",)),
    "keeper-south": ("depot", ("south/s01",)),
    "command": ("command", ()),
    "registrar": ("registrar", ()),
    "admin": ("admin", ()),
}
OWN_ITEM = StockItem(key="rice-noodles", category="necessities", unit="kg",
                     name_zh="米粉<b>", name_en="Rice <i>noodles</i>", storage_class="room")  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = MORNING

    def __call__(self) -> datetime:
        return self.now


class Rig:
    """The API over a real store, as each token's holder calls it, and the tick's rule."""

    def __init__(self, section: StoreSection, report: StockReportSection | None = None) -> None:
        self.clock = Clock()
        north = SiteSection(name="north", gates=("g01",), depots=("d01", "d02"),
                            stock_items=(OWN_ITEM,))  # fmt: skip
        south = SiteSection(name="south", depots=("s01",))
        self.config = GatewayConfig(
            sites=(north, south), store=section,
            stock=StockSection(report=report or StockReportSection()),
        )  # fmt: skip
        self.store = open_store(section)
        self.alerts: list[Alert] = []
        live = LiveFeed()
        self.book = AlarmBook(self.store, self.alerts.append, live, self.clock)
        context = GatewayContext(config=self.config, store=self.store, alarms=self.book,
                                 live=live, clock=self.clock)  # fmt: skip
        for name, (role, depots) in TOKENS.items():
            self.store.add_token(hash_token(f"gpt_{name}-secret"), name, role, MORNING, depots)
        self.client = TestClient(create_app(context))
        self.app = context
        self.keys = itertools.count()

    def rules(self) -> StockReportRules:
        return StockReportRules(self.config, self.store, self.book, self.clock,
                                self.store.live_conditions)  # fmt: skip

    def submit(self, depot: str = "d01", day: str = DAY, *, who: str = "keeper",
               key: str | None = None, note: str = "") -> Any:  # fmt: skip
        return self.client.post(
            f"/api/stock/north/{depot}/daily-reports/{day}", json={"note": note},
            headers={"Authorization": f"Bearer gpt_{who}-secret",
                     "Idempotency-Key": key or f"report-key-{next(self.keys):06d}"},
        )  # fmt: skip

    def receive(self, depot: str, item: str, quantity: str, unit: str) -> None:
        answer = self.client.post(
            f"/api/stock/north/{depot}/receipts",
            json={"item": item, "quantity": quantity, "unit": unit, "source": "purchase"},
            headers={"Authorization": "Bearer gpt_admin-secret",
                     "Idempotency-Key": f"receipt-key-{next(self.keys):06d}"},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text

    def get(self, path: str, *, who: str = "command", **params: str) -> Any:
        return self.client.get(path, params=params or None,
                               headers={"Authorization": f"Bearer gpt_{who}-secret"})  # fmt: skip

    def report(self, who: str = "command", **params: str) -> Any:
        return ok(self.get("/api/stock/north/daily-report", who=who, **({"day": DAY} | params)))

    def raised(self) -> list[tuple[str, str | None, str]]:
        return [(a.state, a.node, a.message) for a in self.alerts
                if a.kind == AlertKind.STOCK_REPORT_MISSING and a.site == "north"]  # fmt: skip


def ok(answer: Any) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def rig(store_section: StoreSection) -> Iterator[Rig]:
    made = Rig(store_section)
    yield made
    made.store.close()


def depot_of(report: dict[str, Any], depot: str) -> Any:
    (found,) = [d for d in report["depots"] if d["depot"] == depot]
    return found


# --- submission ------------------------------------------------------------------------


def test_submit__keeps_who_when_and_the_figures_as_they_stood(rig: Rig) -> None:
    rig.receive("d01", "grain", "250.5", "kg")
    first = ok(rig.submit(note="all counted"))
    assert (first["version"], first["who"], first["late"], first["note"]) == (
        1, "keeper", False, "all counted",
    )  # fmt: skip
    assert first["at"].startswith("2026-12-05T01:00:00")
    (grain,) = first["figures"]["items"]
    assert (grain["item"], grain["receipts"], grain["closing"]) == ("grain", "250.500", "250.500")
    rig.receive("d01", "grain", "100", "kg")  # after the submission
    shown = depot_of(rig.report(), "d01")
    assert (shown["state"], shown["source"], shown["differs"]) == ("submitted", "submitted", True)
    assert shown["figures"]["items"][0]["closing"] == "250.500"  # as submitted
    audit = [a for a in rig.store.audit_log(50) if a.action == "stock-report-submit"]
    assert len(audit) == 1 and audit[0].who == "keeper"
    assert '"version": 1' in str(audit[0].detail)


def test_submit__a_second_submission_is_the_next_version_and_the_newest_counts(rig: Rig) -> None:
    ok(rig.submit())
    rig.receive("d01", "goggles", "7", "piece")
    second = ok(rig.submit(note="goggles came"))
    assert second["version"] == 2
    versions = ok(rig.get(f"/api/stock/north/d01/daily-reports/{DAY}"))
    assert [(v["version"], v["note"], len(v["figures"]["items"])) for v in versions] == [
        (1, "", 0), (2, "goggles came", 1),
    ]  # fmt: skip
    shown = depot_of(rig.report(), "d01")
    assert (shown["version"], shown["differs"], shown["submitted_by"]) == (2, False, "keeper")


def test_submit__the_same_key_answers_the_first_and_another_note_with_it_is_a_conflict(
    rig: Rig,
) -> None:
    first = rig.submit(key="report-d01-1205", note="ok")
    again = rig.submit(key="report-d01-1205", note="ok")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    conflict = rig.submit(key="report-d01-1205", note="changed")
    assert conflict.status_code == 409
    assert conflict.json()["reason"] == "idempotency-conflict"
    assert "report-d01-1205" in conflict.json()["detail"]
    assert len(ok(rig.get(f"/api/stock/north/d01/daily-reports/{DAY}"))) == 1
    assert len([a for a in rig.store.audit_log(50) if a.action == "stock-report-submit"]) == 1


def test_submit__after_the_deadline_is_accepted_and_flagged_late(rig: Rig) -> None:
    rig.clock.now = DEADLINE
    on_time = ok(rig.submit("d02", who="admin"))  # at the deadline itself: on time
    rig.clock.now = DEADLINE + timedelta(seconds=1)
    late = ok(rig.submit())
    assert (on_time["late"], late["late"]) == (False, True)
    report = rig.report()
    assert [(d["depot"], d["state"], d["late"]) for d in report["depots"]] == [
        ("d01", "late", True), ("d02", "submitted", False),
    ]  # fmt: skip
    assert report["deadline"] == "2026-12-05T09:30:00Z"
    assert report["deadlines"] == {"demand": "11:00", "allocation": "17:00", "report": "17:30"}


def test_report__before_the_deadline_a_depot_is_due_after_it_missing(rig: Rig) -> None:
    assert [d["state"] for d in rig.report()["depots"]] == ["due", "due"]
    rig.clock.now = DEADLINE
    report = rig.report()
    assert [d["state"] for d in report["depots"]] == ["missing", "missing"]
    assert report["closed"] is False
    rig.clock.now = DEADLINE + timedelta(days=1)
    assert rig.report()["closed"] is True
    assert rig.report(day="2026-12-06")["depots"][0]["state"] == "missing"


@pytest.mark.parametrize(
    ("who", "depot", "status", "reason"),
    [
        ("command", "d01", 403, "role-forbidden"),  # the command center watches
        ("registrar", "d01", 403, "role-forbidden"),
        ("keeper", "d02", 404, "unknown-depot"),  # not the keeper's depot
        ("keeper-south", "d01", 404, "unknown-depot"),
        ("keeper", "d09", 404, "unknown-depot"),  # not in the config
    ],
)
def test_submit__roles_and_depots(rig: Rig, who: str, depot: str, status: int, reason: str) -> None:
    answer = rig.submit(depot, who=who)
    assert answer.status_code == status, answer.text
    assert answer.json()["reason"] == reason
    assert rig.store.stock_reports_submitted("north", datetime(2026, 12, 5).date()) == set()


@pytest.mark.parametrize(
    ("day", "body", "key", "field"),
    [
        ("2026-12-06", {}, "report-key-000001", "path.day"),  # not begun in Shanghai
        ("2026-13-01", {}, "report-key-000001", "path.day"),
        ("1999-12-31", {}, "report-key-000001", "path.day"),
        (DAY, {"note": "x" * 201}, "report-key-000001", "body.note"),
        (DAY, {}, "short", "header.Idempotency-Key"),
        (DAY, {}, None, "header.Idempotency-Key"),
    ],
)
def test_submit__bad_input_names_its_field_and_keeps_nothing(
    rig: Rig, day: str, body: dict[str, str], key: str | None, field: str
) -> None:
    headers = {"Authorization": "Bearer gpt_keeper-secret"} | (
        {"Idempotency-Key": key} if key else {}
    )
    answer = rig.client.post(f"/api/stock/north/d01/daily-reports/{day}", json=body,
                             headers=headers)  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert [f["field"] for f in answer.json()["fields"]] == [field]
    assert rig.store.stock_report_versions("north", "d01", datetime(2026, 12, 5).date()) == []


def test_submit__keepers_submitting_at_once_get_versions_one_to_n(rig: Rig) -> None:
    figures = DepotFigures(depot="d01", categories=[], items=[])

    def submit(n: int) -> int:
        draft = SubmissionDraft(site="north", depot="d01", day=MORNING.date(),
                                key=f"report-key-{n:06d}", who="keeper", at=MORNING,
                                deadline=DEADLINE, note=f"n{n}", figures=figures)  # fmt: skip
        return rig.store.stock_report_submit(draft)[0].version

    with ThreadPoolExecutor(8) as pool:
        versions = sorted(pool.map(submit, range(16)))
    assert versions == list(range(1, 17))


def test_submit__a_depots_day_takes_at_most_versions_max(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.store.daily_reports.VERSIONS_MAX", 2)
    ok(rig.submit())
    ok(rig.submit())
    third = rig.submit()
    assert third.status_code == 409 and third.json()["reason"] == "too-many-versions"
    assert third.json()["detail"].startswith("day: d01's report of 2026-12-05")
    assert len(ok(rig.get(f"/api/stock/north/d01/daily-reports/{DAY}"))) == 2
    ok(rig.submit("d02", who="admin"))  # another depot's day is its own


def test_submit__a_kept_version_cannot_be_changed_or_deleted(rig: Rig) -> None:
    ok(rig.submit(note="first"))
    for sql in (
        "UPDATE stock_daily_reports SET note = 'changed'",
        "DELETE FROM stock_daily_reports",
    ):
        with pytest.raises(INTEGRITY_ERRORS, match="submitted stock reports are immutable"):
            look_inside(rig.store, sql)
    assert [v["note"] for v in ok(rig.get(f"/api/stock/north/d01/daily-reports/{DAY}"))] == [
        "first"
    ]


# --- reading ---------------------------------------------------------------------------


def test_report__a_depot_token_sees_its_depots_rows_only(rig: Rig) -> None:
    assert [d["depot"] for d in rig.report(who="keeper")["depots"]] == ["d01"]
    assert [d["depot"] for d in rig.report()["depots"]] == ["d01", "d02"]
    answer = rig.get("/api/stock/north/daily-report", who="keeper-south")
    assert answer.status_code == 404 and answer.json()["reason"] == "unknown-site"
    versions = rig.get(f"/api/stock/north/d02/daily-reports/{DAY}", who="keeper")
    assert versions.status_code == 404 and versions.json()["reason"] == "unknown-depot"
    assert rig.get("/api/stock/north/daily-report", who="registrar").status_code == 403
    assert rig.get("/api/stock/east/daily-report").json()["reason"] == "unknown-site"


def test_report__bad_query_names_its_field(rig: Rig) -> None:
    for params, field in (({"day": "5.12.2026"}, "day"), ({"day": "2026-12-06"}, "day"),
                          ({"format": "xlsx"}, "format")):  # fmt: skip
        answer = rig.get("/api/stock/north/daily-report", **params)
        assert answer.status_code == 422
        assert [f["field"] for f in answer.json()["fields"]] == [f"query.{field}"]


def test_csv__bom_bilingual_heads_and_a_row_per_category_and_item(rig: Rig) -> None:
    rig.receive("d01", "grain", "40", "kg")
    rig.receive("d01", "goggles", "3", "piece")
    ok(rig.submit())
    answer = rig.get("/api/stock/north/daily-report", day=DAY, format="csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="gatepost-stock-north-{DAY}.csv"' in answer.headers["content-disposition"]
    text = answer.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    head = rows[0]
    assert head[:4] == ["站点 site", "日期 day", "仓库 depot", "报送状态 state"]
    assert "期初库存 opening" in head and "可保障天数 days of cover" in head
    lines = [dict(zip(head, r, strict=True)) for r in rows[1:]]
    assert [(r["仓库 depot"], r["层级 level"], r["物资 item"] or r["类别 category"])
            for r in lines] == [
        ("d01", "category", "protective"), ("d01", "category", "necessities"),
        ("d01", "item", "goggles"), ("d01", "item", "grain"), ("d02", "", ""),
    ]  # fmt: skip
    grain = lines[3]
    assert (grain["名称 name"], grain["入库 receipts"], grain["期末库存 closing"]) == (
        "成品粮", "40.000", "40.000",
    )  # fmt: skip
    assert (grain["报送状态 state"], grain["版本 version"]) == ("submitted", "1")
    assert (lines[4]["报送状态 state"], lines[4]["版本 version"]) == ("due", "")


def test_html__chinese_first_with_english_escaped_and_its_style_allowed(rig: Rig) -> None:
    rig.receive("d01", "rice-noodles", "12", "kg")
    rig.clock.now = DEADLINE + timedelta(minutes=5)
    ok(rig.submit())
    answer = rig.get("/api/stock/north/daily-report", day=DAY, format="html")
    assert answer.status_code == 200
    page = answer.text
    assert "<title>每日库存报告（12月5日） Daily stock report (2026-12-05)</title>" in page
    assert "逾期报送 Submitted late" in page and "✕ 未报送 ✕ MISSING" in page
    assert "期初库存<br><small>opening</small>" in page
    assert "米粉&lt;b&gt;" in page and "Rice &lt;i&gt;noodles&lt;/i&gt;" in page
    assert "<b>" not in page.replace("<b>≠", "")  # no value unescaped
    assert "'sha256-" in answer.headers["content-security-policy"]


# --- the deadline alarm ----------------------------------------------------------------


def test_alarm__not_before_the_deadline_raised_at_it_once_and_cleared_by_a_submission(
    rig: Rig,
) -> None:
    rules = rig.rules()
    rig.clock.now = DEADLINE - timedelta(seconds=1)
    ok(rig.submit("d02", who="admin"))
    rules.check()
    assert rig.raised() == []
    rig.clock.now = DEADLINE
    rules.check()
    rules.check()
    rig.rules().check()  # a restarted gateway: the alarm is in the store, not raised twice
    assert rig.raised() == [
        ("raised", "d01", "north/d01 has not submitted its daily stock report for 2026-12-05 "
                          "(due 17:30)"),
    ]  # fmt: skip
    alarm = rig.store.live_alarm(AlertKind.STOCK_REPORT_MISSING, "north", "d01", DAY)
    assert alarm is not None and alarm.severity == "warning"
    assert words_of(alarm).key == "stock-report-missing"
    assert words_of(alarm).values["deadline"] == "17:30"
    rig.clock.now = DEADLINE + timedelta(hours=1)
    ok(rig.submit())  # late, still clears it
    rules.check()
    assert [s for s, _, _ in rig.raised()] == ["raised", "cleared"]
    assert rig.store.live_alarm(AlertKind.STOCK_REPORT_MISSING, "north", "d01", DAY) is None


def test_alarm__yesterdays_stays_until_yesterdays_report_and_today_has_its_own(rig: Rig) -> None:
    rules = rig.rules()
    rig.clock.now = DEADLINE
    ok(rig.submit("d02", who="admin"))
    rules.check()
    rig.clock.now = DEADLINE + timedelta(days=1)  # the 6th, 17:30: d01 owes both days
    ok(rig.submit("d02", "2026-12-06", who="admin"))
    rules.check()
    assert live(rig) == {("d01", DAY), ("d01", "2026-12-06")}
    ok(rig.submit("d01", DAY))
    rules.check()
    assert live(rig) == {("d01", "2026-12-06")}


def live(rig: Rig) -> set[tuple[str | None, str]]:
    return {(a.node, a.subject) for a in rig.store.alarms() if a.state != "cleared"
            and a.site == "north" and a.kind == AlertKind.STOCK_REPORT_MISSING}  # fmt: skip


def test_alarm__disabled_raises_nothing(store_section: StoreSection) -> None:
    rig = Rig(store_section, StockReportSection(enabled=False))
    rig.clock.now = DEADLINE + timedelta(hours=1)
    rig.rules().check()
    assert rig.raised() == []


def test_alarm__the_deadline_is_the_configured_local_time(store_section: StoreSection) -> None:
    rig = Rig(store_section, StockReportSection(demand="08:00", allocation="09:00",
                                                    report="10:00"))  # fmt: skip
    rig.clock.now = datetime(2026, 12, 5, 1, 59, tzinfo=UTC)  # 09:59 in Shanghai
    rig.rules().check()
    assert rig.raised() == []
    rig.clock.now = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    rig.rules().check()
    assert [(s, n) for s, n, _ in rig.raised()] == [("raised", "d01"), ("raised", "d02")]
    assert rig.store.live_alarm(AlertKind.STOCK_REPORT_MISSING, "south", "s01", DAY) is not None


def test_alarm__the_running_gateways_tick_sends_it_on_mqtt_and_a_submission_clears_it(
    broker: PrivateBroker, store_section: StoreSection
) -> None:
    clock = Clock()
    clock.now = DEADLINE - timedelta(seconds=2)
    config = GatewayConfig(
        sites=(SiteSection(name="north", depots=("d01",)),),
        broker=gateway_broker(broker, "gw-stock-report"),
        store=store_section, http=HttpSection(port=0),
        alarms=AlarmSection(check_every_s=0.2),
    )  # fmt: skip
    watcher = Subscriber.connect(identity(broker, "command-report"), "command-report")
    watcher.subscribe(f"{topics.Site('north').root}/alert/{AlertKind.STOCK_REPORT_MISSING}")
    try:
        with running_gateway(config, clock) as gateway:
            gateway.store.add_token(hash_token("gpt_keeper-secret"), "keeper", "depot", MORNING,
                                    ("north/d01",))  # fmt: skip
            with pytest.raises(AssertionError, match="no message"):
                watcher.next(1)  # ticks before the deadline: nothing
            clock.now = DEADLINE
            raised = watcher.next(10)
            answer = httpx.post(
                f"{gateway.url}/api/stock/north/d01/daily-reports/{DAY}", json={},
                headers={"Authorization": "Bearer gpt_keeper-secret",
                         "Idempotency-Key": "report-d01-20261205"}, timeout=10,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            cleared = watcher.next(10)
    finally:
        watcher.close()
    alerts = [catalogue.decode(m.topic, m.payload).payload for m in (raised, cleared)]
    assert [(a.state, a.severity, a.node) for a in alerts if isinstance(a, Alert)] == [
        ("raised", "warning", "d01"), ("cleared", "warning", "d01"),
    ]  # fmt: skip
    assert isinstance(alerts[0], Alert)
    assert alerts[0].message == (
        "north/d01 has not submitted its daily stock report for 2026-12-05 (due 17:30)"
    )


# --- the printable page in a browser ----------------------------------------------------


@pytest.fixture
def server(rig: Rig) -> Iterator[ConsoleServer]:
    running = ConsoleServer(create_app(rig.app), port=0)
    running.start()
    yield running
    running.stop()


@pytest.mark.browser
def test_browser__the_printable_report_draws_its_chinese(
    rig: Rig, server: ConsoleServer, page: Page
) -> None:
    rig.receive("d01", "grain", "40", "kg")
    ok(rig.submit())
    page.set_extra_http_headers({"Authorization": "Bearer gpt_command-secret"})
    page.goto(f"{server.url}/api/stock/north/daily-report?day={DAY}&format=html")
    expect(page.locator("h1")).to_contain_text("每日库存报告（12月5日）")
    expect(page.locator('section[data-depot="d01"] tr[data-item="grain"]')).to_contain_text(
        "成品粮"
    )
    assert_chinese_renders(page, "body")
