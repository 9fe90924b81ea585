"""The dashboard in chromium, as the command center uses it, over a real gateway app and store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Locator, Page, expect

from edge.contract.events import CheckpointCounts
from edge.contract.topics import AlertKind
from edge.gate.console.server import ConsoleServer
from edge.gate.daily import daily_report_fields
from gateway.access import hash_token
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.reports import BOM, last_closed_day, period_of_day
from gateway.store import SqliteStore
from gateway.store.records import AlarmDraft
from tests.gateway.factory import Gates

pytestmark = pytest.mark.browser

TOKEN = "gpt_wall-screen"
TOKEN_KEY = "gatepost.dashboard.token"


@pytest.fixture
def server(gateway_context: GatewayContext) -> Iterator[ConsoleServer]:
    """The gateway app on a free port, with a command token named `wall-screen`."""
    store = gateway_context.store
    store.add_token(hash_token(TOKEN), "wall-screen", "command", datetime.now(UTC))
    running = ConsoleServer(create_app(gateway_context), port=0)
    running.start()
    yield running
    running.stop()


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def by_id(on: Page | Locator, testid: str) -> Locator:
    return on.locator(f'[data-testid="{testid}"]')


def shows(locator: Locator, text: str) -> None:
    """The text as rendered (innerText): the other language's hidden spans do not count."""
    expect(locator).to_contain_text(text, use_inner_text=True)


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

    draft = AlarmDraft(
        kind=AlertKind.FEVER, site="north", node="g01", subject="h1", severity="critical",
        message="fever hold open at g01",
    )  # fmt: skip
    alarm = gateway_context.alarms.raise_alarm(draft)
    assert alarm is not None
    item = by_id(page, f"alarm-{alarm.alarm_id}")
    shows(item, "体温异常")
    shows(item, "fever hold open at g01")
    shows(by_id(page, "alarm-count"), "1")

    by_id(page, f"acknowledge-{alarm.alarm_id}").click()

    eventually(lambda: store.alarm(alarm.alarm_id).state == "acknowledged")
    assert store.alarm(alarm.alarm_id).acknowledged_by == "wall-screen"
    shows(item, "wall-screen 已确认")
    expect(by_id(page, f"acknowledge-{alarm.alarm_id}")).to_have_count(0)
    expect(by_id(page, "alarm-count")).to_be_hidden()

    by_id(page, "language-toggle").click()
    shows(item, "Acknowledged by wall-screen")
    shows(ticker, "Red code: stop and report")
    shows(g02, "Offline")
    expect(page.locator("h1")).to_have_text("Command center", use_inner_text=True)
    expect(ticker).not_to_contain_text("禁止", use_inner_text=True)
    by_id(page, "language-toggle").click()
    expect(page.locator("h1")).to_have_text("指挥中心", use_inner_text=True)
    shows(item, "已确认")
    assert page.evaluate("window.notReloaded") is True


def test_without_a_token_the_page_asks_for_one(page: Page, server: ConsoleServer) -> None:
    page.goto(server.url)
    form = by_id(page, "token-form")
    shows(form, "请输入访问令牌")
    by_id(page, "token-input").fill("gpt_wrong")
    form.locator("button").click()
    shows(by_id(page, "token-problem"), "令牌无效或已撤销")
    by_id(page, "token-input").fill(TOKEN)
    form.locator("button").click()
    expect(form).to_be_hidden()
    shows(by_id(page, "link-state"), "实时")
    shows(by_id(page, "gate-north-g01"), "离线")


def test_daily_report_marks_the_missing_gate_and_exports_csv(
    page: Page,
    server: ConsoleServer,
    gateway_context: GatewayContext,
    store: SqliteStore,
    gates: Gates,
) -> None:
    site = gateway_context.config.sites[0]
    day = last_closed_day(site, datetime.now(UTC))
    period = period_of_day(day, site.cutoff_hour, site.zone)
    counts = CheckpointCounts(person_checks=5, allowed=5, green=5)
    store.write([gates.daily_report("g01", dict(daily_report_fields(period, counts)))])
    page.goto(f"{server.url}/?token={TOKEN}")
    shows(by_id(page, "link-state"), "实时")

    by_id(page, "report-load").click()

    expect(by_id(page, "report-day")).to_have_value(day.isoformat())
    missing = by_id(page, "report-gate-g02")
    shows(missing, "未报告")
    expect(missing).to_have_attribute("data-status", "missing")
    reported = by_id(page, "report-gate-g01")
    shows(reported, "已报告")
    shows(reported, "网关 0")  # the gateway has none of the five passages: they differ
    shows(by_id(page, "report-summary"), "未报告 1")

    with page.expect_download() as download_info:
        by_id(page, "report-csv").click()
    download = download_info.value
    assert download.suggested_filename == f"gatepost-north-{day.isoformat()}.csv"
    path = download.path()
    text = path.read_text(encoding="utf-8")
    assert text.startswith(BOM)
    assert f"north,{day.isoformat()}" in text and ",g02,True,missing," in text

    with page.context.expect_page() as printable_info:
        by_id(page, "report-print").click()
    printable = printable_info.value
    expect(printable.locator('tr.missing[data-gate="g02"]')).to_contain_text("MISSING")
    expect(printable.locator("h1")).to_contain_text(f"north · {day.isoformat()}")
