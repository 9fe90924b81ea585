"""The dashboard in chromium, as the command center uses it, over a real gateway app and store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import CDPSession, Page, expect

from edge.contract.events import CheckpointCounts, DeviceFault
from edge.contract.topics import AlertKind
from edge.gate.console.server import ConsoleServer
from edge.gate.daily import daily_report_fields
from gateway.access import hash_token
from gateway.alarms import draft
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.api.routes_dashboard import render_page
from gateway.reports import BOM, day_of_report_date, period_of_day
from gateway.store import SqlStore
from gateway.store.records import AlarmDraft, InboundEvent
from gateway.web import words
from tests.browser import assert_chinese_renders, by_id, eventually, shows
from tests.gateway.factory import Gates
from tests.gateway.test_api_alarms import SAMPLES, sample

pytestmark = pytest.mark.browser

TOKEN = "gpt_wall-screen"
TOKEN_KEY = "gatepost.dashboard.token"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the conftest site's zone
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def server(gateway_context: GatewayContext) -> Iterator[ConsoleServer]:
    """The gateway app on a free port, with a command token named `wall-screen`."""
    store = gateway_context.store
    store.add_token(hash_token(TOKEN), "wall-screen", "command", datetime.now(UTC))
    running = ConsoleServer(create_app(gateway_context), port=0)
    running.start()
    yield running
    running.stop()


def no_missing_words(page: Page) -> None:
    """Every text on the page came from the catalogue, in both languages."""
    missing = page.eval_on_selector_all(
        "[data-missing-word]", "nodes => [...new Set(nodes.map(n => n.dataset.missingWord))]"
    )
    assert missing == [], f"keys without both languages in the catalogue: {missing}"


def browser_zone(page: Page, zone: str) -> CDPSession:
    """Run the page's clock in `zone` (keep the session: detaching ends the override)."""
    session = page.context.new_cdp_session(page)
    session.send("Emulation.setTimezoneOverride", {"timezoneId": zone})
    return session


def open_dashboard(page: Page, server: ConsoleServer) -> None:
    page.goto(f"{server.url}/?token={TOKEN}")
    shows(by_id(page, "link-state"), "实时")


def test_live_passage_alarm_acknowledged_and_both_languages(
    page: Page, server: ConsoleServer, gateway_context: GatewayContext, gates: Gates
) -> None:
    store = gateway_context.store
    page.goto(f"{server.url}/?token={TOKEN}")
    expect(page).to_have_url(f"{server.url}/")  # the token left the address bar…
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == TOKEN  # …for the tab
    shows(by_id(page, "link-state"), "实时")
    g02 = by_id(page, "gate-north-g02")
    shows(g02, "离线")
    shows(g02, "从未上线")
    expect(by_id(page, "total-persons-north").locator("b")).to_have_text("0")
    page.evaluate("window.notReloaded = true")

    store.write(
        [
            gates.passage(
                "g01", outcome="deny", colour="red", reasons=("red-code",), temperature_c=36.7
            )
        ]
    )
    gateway_context.live.changed()

    ticker = by_id(page, "passages")
    shows(ticker, "禁止")
    shows(ticker, "红码：禁止通行，上报")
    shows(ticker, "36.7 °C")
    expect(by_id(page, "total-persons-north").locator("b")).to_have_text("1")
    expect(by_id(page, "gate-north-g01").locator(".persons")).to_have_text("1")

    fever = draft(
        AlertKind.FEVER, "fever", "north", "g01", "critical", subject="p1", temperature="38.4"
    )
    alarm = gateway_context.alarms.raise_alarm(fever)
    assert alarm is not None
    item = by_id(page, f"alarm-{alarm.alarm_id}")
    shows(item, "紧急")
    shows(item, "体温异常")
    shows(item.locator(".text"), "g01 卡口体温异常 38.4 °C，已暂留")
    shows(by_id(page, "alarm-count"), "1")

    by_id(page, f"acknowledge-{alarm.alarm_id}").click()

    eventually(lambda: store.alarm(alarm.alarm_id).state == "acknowledged")
    assert store.alarm(alarm.alarm_id).acknowledged_by == "wall-screen"
    shows(item, "wall-screen 已确认")
    expect(by_id(page, f"acknowledge-{alarm.alarm_id}")).to_have_count(0)
    expect(by_id(page, "alarm-count")).to_be_hidden()
    assert_chinese_renders(page, "body")

    by_id(page, "language-toggle").click()
    shows(item, "Acknowledged by wall-screen")
    shows(item.locator(".text"), "Fever 38.4 °C at g01, held")
    shows(ticker, "Red code: stop and report")
    shows(g02, "Offline")
    expect(page.locator("h1")).to_have_text("Command center", use_inner_text=True)
    expect(ticker).not_to_contain_text("禁止", use_inner_text=True)
    by_id(page, "language-toggle").click()
    expect(page.locator("h1")).to_have_text("指挥中心", use_inner_text=True)
    shows(item, "已确认")
    assert page.evaluate("window.notReloaded") is True


def test_every_alarm_kind_is_worded_in_the_chinese_view(
    page: Page, server: ConsoleServer, gateway_context: GatewayContext
) -> None:
    raised: dict[str, AlarmDraft] = {key: sample(key) for key in SAMPLES}
    # Messages no template matches (an older gateway's, or made by hand): the kind's own
    # words.
    raised["depot-climate"] = AlarmDraft(
        AlertKind.DEPOT_CLIMATE, "north", "d01", "", "warning", "d01 cold room at 9.1 °C"
    )
    raised["fever-older"] = AlarmDraft(
        AlertKind.FEVER, "north", "g01", "h1", "critical", "fever hold open at g01"
    )
    assert {d.kind for d in raised.values()} == set(AlertKind)  # every kind is here
    ids = {}
    for key, alarm in raised.items():
        made = gateway_context.alarms.raise_alarm(alarm)
        assert made is not None
        ids[key] = made.alarm_id
    open_dashboard(page, server)
    texts: dict[str, str] = {}
    for key, alarm_id in ids.items():
        item = by_id(page, f"alarm-{alarm_id}").locator(".text")
        expect(item).to_have_count(1)
        texts[key] = item.inner_text()
    for key, text in texts.items():
        assert HAN.search(text), f"{key}: no Chinese in {text!r}"
        assert raised[key].message not in text
    assert texts["fever-older"] == "g01 体温异常"  # the kind's words, for its place
    assert texts["trust-stale.old"] == "g02 验码名单已 50 小时未更新"
    assert texts["data-loss.hole"] == "g02 序号 42 起的数据未到达（已收到至 57）"
    no_missing_words(page)
    assert_chinese_renders(page, '[data-testid="alarms"]')

    by_id(page, "language-toggle").click()
    silent = by_id(page, f"alarm-{ids['node-offline.silent']}").locator(".text")
    expect(silent).to_have_text("g02 silent for 31 s (3 heartbeats missed)", use_inner_text=True)
    for key, alarm_id in ids.items():
        shown = by_id(page, f"alarm-{alarm_id}").locator(".text").inner_text()
        assert not HAN.search(shown), f"{key}: Chinese in the English view: {shown!r}"


def test_a_gates_open_device_faults_show_on_its_card_in_both_languages(
    page: Page, server: ConsoleServer, gateway_context: GatewayContext, gates: Gates
) -> None:
    store = gateway_context.store

    def fault(device: str, name: str, state: str = "raised") -> InboundEvent:
        return gates.inbound("g01", DeviceFault, device=device, fault=name, state=state,
                             detail="no frame for 3 s" if device == "scanner" else None)  # fmt: skip

    store.write([fault("scanner", "timeout"), fault("trust-list", "refused"),
                 fault("lidar", "dazzled")])  # fmt: skip
    open_dashboard(page, server)
    card = by_id(page, "gate-north-g01")
    scanner = by_id(card, "fault-north-g01-scanner-timeout")
    shows(scanner, "扫码器：无响应")
    expect(scanner).to_have_attribute("title", "no frame for 3 s")
    shows(by_id(card, "fault-north-g01-trust-list-refused"), "验码名单：拒收（伪造或无效）")
    shows(by_id(card, "fault-north-g01-lidar-dazzled"), "lidar：dazzled")  # as the node said
    expect(by_id(page, "gate-north-g02").locator(".faults")).to_be_hidden()
    no_missing_words(page)
    assert_chinese_renders(page, '[data-testid="gate-north-g01"]')

    by_id(page, "language-toggle").click()
    shows(scanner, "Scanner: no answer")
    store.write([fault("scanner", "timeout", "cleared")])
    gateway_context.live.changed()
    expect(by_id(card, "fault-north-g01-scanner-timeout")).to_have_count(0)
    shows(by_id(card, "fault-north-g01-trust-list-refused"), "Trust list: refused")


def test_a_key_without_chinese_is_marked_on_the_page(
    page: Page, server: ConsoleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What no_missing_words() looks for: a site that emptied an entry's Chinese.
    edited = {**words.catalogue(), "page.alarms": ("", "Alarms")}
    monkeypatch.setattr("gateway.api.routes_dashboard.catalogue", lambda: edited)
    render_page.cache_clear()
    try:
        open_dashboard(page, server)
        marked = page.locator('[data-missing-word="page.alarms"]')
        expect(marked.first).to_be_visible()
        with pytest.raises(AssertionError, match=r"page\.alarms"):
            no_missing_words(page)
    finally:
        render_page.cache_clear()


def test_every_time_is_the_sites_whatever_the_browsers_zone(
    page: Page, server: ConsoleServer, gateway_context: GatewayContext, gates: Gates
) -> None:
    zone = browser_zone(page, "America/New_York")  # an office PC set elsewhere
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    gateway_context.store.write([gates.passage("g01", node_time=at)])
    alarm = gateway_context.alarms.raise_alarm(sample("gate-unattended", node="g01"))
    assert alarm is not None
    open_dashboard(page, server)
    assert page.evaluate("new Date().getTimezoneOffset()") in {240, 300}  # New York's

    site_time = at.astimezone(SHANGHAI).strftime("%H:%M:%S")
    browser_time = at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M:%S")
    passage = by_id(page, "passages").locator(".time").first
    expect(passage).to_have_text(site_time, use_inner_text=True)
    raised = alarm.raised_at.astimezone(SHANGHAI).strftime("%H:%M:%S")
    shows(by_id(page, f"alarm-{alarm.alarm_id}").locator(".meta"), raised)
    shows(by_id(page, "site-north").locator(".since"), "自 00:00 起")  # the site's midnight
    clock = by_id(page, "clock")
    shows(clock, "北京时间")
    shown = clock.inner_text()
    now = datetime.now(SHANGHAI)
    minutes = {(now + timedelta(seconds=s)).strftime("%H:%M") for s in (-60, 0, 60)}
    assert any(minute in shown for minute in minutes), f"{shown!r} is not Beijing time"
    assert browser_time not in page.locator("body").inner_text()
    by_id(page, "language-toggle").click()
    shows(clock, "Beijing time")
    zone.detach()


def test_daily_report_opens_on_today_so_far_and_shows_a_closed_day_with_its_missing_gate(
    page: Page,
    server: ConsoleServer,
    gateway_context: GatewayContext,
    store: SqlStore,
    gates: Gates,
) -> None:
    site = gateway_context.config.sites[0]  # cut-off at midnight, Asia/Shanghai
    today = datetime.now(SHANGHAI).date()
    yesterday = today - timedelta(days=1)
    closed = period_of_day(day_of_report_date(yesterday, 0), site.cutoff_hour, site.zone)
    counts = CheckpointCounts(person_checks=5, allowed=5, green=5)
    store.write(
        [
            gates.daily_report("g01", dict(daily_report_fields(closed, counts))),
            gates.passage("g01", node_time=datetime.now(UTC)),
        ]
    )
    open_dashboard(page, server)

    # At once, without asking: today so far, said to be open, nobody missing.
    summary = by_id(page, "report-summary")
    expect(by_id(page, "report-title")).to_have_text(
        f"卡口日报（{today.month}月{today.day}日）", use_inner_text=True
    )
    expect(by_id(page, "report-period")).to_have_text(
        f"统计时段：{today.year}年{today.month}月{today.day}日0时至24时（北京时间）",
        use_inner_text=True,
    )
    shows(by_id(page, "report-open"), "未截止")
    expect(by_id(page, "report-day")).to_have_value(today.isoformat())
    for gate in ("g01", "g02"):
        line = by_id(page, f"report-gate-{gate}")
        expect(line).to_have_attribute("data-status", "open")
        shows(line, "未截止")
    expect(page.locator('#report-rows [data-status="missing"]')).to_have_count(0)
    expect(summary).not_to_contain_text("未报告 1", use_inner_text=True)
    expect(by_id(page, "report-gate-g01").locator("td").nth(2)).to_have_text("1")  # so far
    no_missing_words(page)

    by_id(page, "report-day").fill(yesterday.isoformat())
    by_id(page, "report-load").click()

    expect(by_id(page, "report-title")).to_have_text(
        f"卡口日报（{yesterday.month}月{yesterday.day}日）", use_inner_text=True
    )
    missing = by_id(page, "report-gate-g02")
    shows(missing, "未报告")
    expect(missing).to_have_attribute("data-status", "missing")
    reported = by_id(page, "report-gate-g01")
    shows(reported, "已报告")
    shows(reported, "系统统计 0")  # the gateway has none of the five passages: they differ
    shows(reported, "与系统统计不符")
    shows(summary, "未报告 1")
    no_missing_words(page)
    assert_chinese_renders(page, '[data-testid="report"]')

    with page.expect_download() as download_info:
        by_id(page, "report-csv").click()
    download = download_info.value
    assert download.suggested_filename == f"gatepost-north-{yesterday.isoformat()}.csv"
    text = download.path().read_text(encoding="utf-8")
    assert text.startswith(BOM)
    assert f"north,{yesterday.isoformat()},{today.isoformat()}," in text
    assert ",g02,True,missing," in text

    with page.context.expect_page() as printable_info:
        by_id(page, "report-print").click()
    printable = printable_info.value
    expect(printable.locator("h1")).to_have_text(
        f"卡口日报（{yesterday.month}月{yesterday.day}日）"
    )
    body = printable.locator("body")
    expect(body).to_contain_text(
        f"统计时段：{yesterday.year}年{yesterday.month}月{yesterday.day}日0时至24时（北京时间）"
    )
    expect(printable.locator('tr.missing[data-gate="g02"]')).to_contain_text("✕ 未报告")
    expect(printable.locator("thead")).to_contain_text("测温人次")
    shown = body.inner_text()
    for english in ("MISSING", "Daily report", "Period", "Generated", "Person checks", "differ"):
        assert english not in shown, f"{english!r} in the Chinese report"
    assert_chinese_renders(printable, "body")
