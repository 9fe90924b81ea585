"""The stock view in chromium, as a depot keeper enters movements on a tablet and the command
center watches, over a real gateway app and its ledger (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, Playwright, Request, Route, ViewportSize, expect

from edge.gate.console.server import ConsoleServer
from gateway.access import hash_token
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection
from gateway.stock.cover import StockTarget
from gateway.stock.ledger import Movement, StockEntry
from gateway.store import SqlStore
from gateway.store.settings import StoreSection
from tests.browser import assert_chinese_renders, by_id, open_page, shows
from tests.console.test_chinese_fonts import DEJAVU, fontconfig
from tests.gateway.test_dashboard_browser import no_missing_words

pytestmark = pytest.mark.browser

KEEPER = "gpt_d01-keeper"
COMMAND = "gpt_stock-desk"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The keeper's tablet held upright and across.
PORTRAIT: ViewportSize = {"width": 768, "height": 1024}
LANDSCAPE: ViewportSize = {"width": 1024, "height": 768}


@pytest.fixture
def gateway_config(store_section: StoreSection) -> GatewayConfig:
    """Site `north`, 100 people, depots d01 (the keeper's) and d02; grain held to 15 days of
    the people's consumption (0.4 kg a day each), protective items to 7 days of issue."""
    site = SiteSection(
        name="north", gates=("g01",), depots=("d01", "d02"), population=100,
        stock_targets=(StockTarget(item="grain", days=15, per_person_daily=Decimal("0.4")),
                       StockTarget(category="protective", days=7)),
    )  # fmt: skip
    return GatewayConfig(sites=(site,), store=store_section)


@pytest.fixture
def server(gateway_context: GatewayContext) -> Iterator[ConsoleServer]:
    """The gateway app on a free port, with a depot token of d01 and a command token."""
    store = gateway_context.store
    now = datetime.now(UTC)
    store.add_token(hash_token(KEEPER), "d01-keeper", "depot", now, ("north/d01",))
    store.add_token(hash_token(COMMAND), "stock-desk", "command", now)
    running = ConsoleServer(create_app(gateway_context), port=0)
    running.start()
    yield running
    running.stop()


def ledger(store: SqlStore, depot: str = "d01") -> list[StockEntry]:
    return store.stock_entries("north", depot, None, 100)


def received(store: SqlStore, depot: str, item: str, steps: int, key: str) -> StockEntry:
    """A receipt written as the API writes it (as another keeper entered it)."""
    now = datetime.now(UTC)
    movement = Movement("receipt", "north", depot, key, item=item, unit="kg", steps=steps,
                        source="purchase")  # fmt: skip
    entry, _ = store.stock_write(movement, "other-keeper", now, now.astimezone(SHANGHAI).date())
    return entry


def open_stock(page: Page, server: ConsoleServer, token: str) -> None:
    page.goto(f"{server.url}/?token={token}#stock")
    expect(by_id(page, "stock")).to_be_visible()
    expect(by_id(page, "view-stock")).to_have_attribute("aria-current", "page")
    expect(by_id(page, "stock-depot").locator("option")).not_to_have_count(0)


def choose(page: Page, kind: str, item: str) -> None:
    by_id(page, f"stock-kind-{kind}").click()
    by_id(page, "stock-item").select_option(item)


def test_a_keeper_enters_a_receipt_and_an_issue_and_sees_the_days_of_cover_change(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    open_stock(page, server, KEEPER)
    # The keeper's depot only, and the forms.
    assert by_id(page, "stock-depot").locator("option").all_inner_texts() == ["d01"]
    expect(by_id(page, "stock-forms")).to_be_visible()
    expect(by_id(page, "stock-read-only")).to_be_hidden()
    shows(by_id(page, "stock-no-entries"), "台账暂无记录")
    # Not every depot of the site: no site totals for this token.
    shows(by_id(page, "stock-targets-hidden"), "不显示全站点合计")

    choose(page, "receipt", "grain")
    shows(by_id(page, "stock-unit"), "千克")
    expect(by_id(page, "stock-lot")).to_be_hidden()  # grain is not tracked by lot
    by_id(page, "stock-quantity").fill("1000")
    by_id(page, "stock-source").select_option("purchase")
    by_id(page, "stock-submit").click()
    shows(by_id(page, "message"), "已记入台账")
    grain = by_id(page, "cover-grain")
    shows(by_id(grain, "cover-on-hand"), "1000 千克")
    shows(by_id(grain, "cover-days"), "无消耗")  # nothing issued yet: no bound
    (receipt,) = ledger(store)
    assert (receipt.kind, receipt.item, receipt.quantity, receipt.who) == (
        "receipt", "grain", Decimal("1000.000"), "d01-keeper",
    )  # fmt: skip

    choose(page, "issue", "grain")
    expect(by_id(page, "stock-quantity")).to_have_value("")  # cleared after the receipt
    by_id(page, "stock-quantity").fill("200")
    by_id(page, "stock-applicant-unit").fill("第一社区")
    by_id(page, "stock-approver").fill("王主任")
    by_id(page, "stock-application-id").fill("APP-2026-001")
    by_id(page, "stock-submit").click()
    # 800 kg left, 200 kg issued over the 14-day window: 14.286 kg a day, 56.0 days.
    shows(by_id(grain, "cover-on-hand"), "800 千克")
    shows(by_id(grain, "cover-daily-issue"), "14.286 千克")
    shows(by_id(grain, "cover-days"), "56.0 天")
    shows(by_id(page, "category-necessities"), "生活必需品：56.0 天")
    issue, _ = ledger(store)
    assert (issue.kind, issue.quantity, issue.applicant_unit, issue.approver) == (
        "issue", Decimal("-200.000"), "第一社区", "王主任",
    )  # fmt: skip
    shows(by_id(by_id(page, f"entry-{issue.id}"), "entry-quantity"), "-200 千克")
    shows(by_id(page, f"entry-{issue.id}"), "出库")
    assert [a.action for a in store.audit_log()] == ["stock-issue", "stock-receipt"]

    assert_chinese_renders(page, '[data-testid="stock"]')
    no_missing_words(page)
    by_id(page, "language-toggle").click()
    shows(by_id(grain, "cover-days"), "56.0 days")
    shows(by_id(page, f"entry-{issue.id}"), "Issue")
    assert by_id(page, "stock-item").locator("option:checked").inner_text() == "Grain (finished)"


def test_a_lot_tracked_receipt_names_its_expiry_and_the_issue_suggests_the_first_to_expire(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    today = datetime.now(SHANGHAI).date()
    open_stock(page, server, KEEPER)
    for lot, days in (("N95-LATE", 300), ("N95-SOON", 20)):
        choose(page, "receipt", "n95-mask")
        by_id(page, "stock-quantity").fill("100")
        by_id(page, "stock-lot").fill(lot)
        by_id(page, "stock-expires-on").fill((today + timedelta(days=days)).isoformat())
        by_id(page, "stock-submit").click()
        expect(by_id(page, f"on-hand-n95-mask-{lot}")).to_be_visible()
    shows(by_id(page, "expiring-n95-mask-N95-SOON"), "剩余 20 天")
    expect(by_id(page, "expiring-n95-mask-N95-LATE")).to_have_count(0)

    choose(page, "issue", "n95-mask")
    by_id(page, "stock-quantity").fill("150")
    fefo = by_id(page, "stock-fefo")
    shows(by_id(fefo, "fefo-N95-SOON"), "批次 N95-SOON")
    shows(by_id(fefo, "fefo-N95-SOON"), "100 个")
    shows(by_id(fefo, "fefo-N95-LATE"), "50 个")
    by_id(fefo, "fefo-use-N95-SOON").click()
    expect(by_id(page, "stock-lot")).to_have_value("N95-SOON")
    expect(by_id(page, "stock-quantity")).to_have_value("100")
    by_id(page, "stock-applicant-unit").fill("发热门诊")
    by_id(page, "stock-approver").fill("李医生")
    by_id(page, "stock-application-id").fill("APP-7")
    by_id(page, "stock-submit").click()
    expect(by_id(page, "on-hand-n95-mask-N95-SOON")).to_have_count(0)  # all issued
    newest = ledger(store)[0]
    assert (newest.kind, newest.lot, newest.quantity) == ("issue", "N95-SOON", Decimal(-100))


def test_bad_input_shows_the_fields_error_and_writes_nothing(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    open_stock(page, server, KEEPER)
    choose(page, "receipt", "grain")
    for bad in ("-5", "0", "abc", "1.2345"):
        by_id(page, "stock-quantity").fill(bad)
        by_id(page, "stock-submit").click()
        shows(by_id(page, "stock-error-quantity"), "数量无效")
        expect(by_id(page, "stock-quantity")).to_have_attribute("aria-invalid", "true")
        assert ledger(store) == []
    # A lot-tracked item without its lot: the lot field says so.
    choose(page, "receipt", "n95-mask")
    by_id(page, "stock-quantity").fill("10")
    by_id(page, "stock-submit").click()
    shows(by_id(page, "stock-error-lot"), "批号有误")

    # More than on hand: the 409's field, in the page's language.
    choose(page, "issue", "grain")
    by_id(page, "stock-quantity").fill("5")
    by_id(page, "stock-applicant-unit").fill("第一社区")
    by_id(page, "stock-approver").fill("王主任")
    by_id(page, "stock-application-id").fill("APP-1")
    by_id(page, "stock-submit").click()
    shows(by_id(page, "stock-error-quantity"), "库存不足")
    by_id(page, "language-toggle").click()
    shows(by_id(page, "stock-error-quantity"), "Not enough on hand")
    assert ledger(store) == []
    assert store.audit_log() == []
    no_missing_words(page)


def test_a_double_tap_and_a_retry_after_a_lost_answer_write_one_entry(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    open_stock(page, server, KEEPER)
    choose(page, "receipt", "grain")
    by_id(page, "stock-quantity").fill("40")
    keys: list[str] = []
    page.on("request", lambda r: keys.append(r.headers["idempotency-key"])
            if r.url.endswith("/receipts") else None)  # fmt: skip
    # Two taps before the first answer: one request, one entry.
    page.eval_on_selector(
        '[data-testid="stock-entry"]', "f => { f.requestSubmit(); f.requestSubmit(); }"
    )
    shows(by_id(page, "message"), "已记入台账")
    assert len(ledger(store)) == 1

    # The next receipt reaches the gateway, but its answer is lost on the way back.
    lost: list[Request] = []

    def lose_the_answer(route: Route, request: Request) -> None:
        if lost:
            route.continue_()
            return
        lost.append(request)
        route.fetch()  # the gateway writes it...
        route.abort("connectionreset")  # ...and the tablet never hears

    page.route("**/api/stock/north/d01/receipts", lose_the_answer)
    by_id(page, "stock-quantity").fill("60")
    by_id(page, "stock-submit").click()
    shows(by_id(page, "stock-form-error"), "结果未知")
    assert len(ledger(store)) == 2
    by_id(page, "stock-submit").click()  # sent again: the same key, so the first entry
    shows(by_id(page, "message"), "此前已提交，未重复记账")
    entries = ledger(store)
    assert [e.quantity for e in entries] == [Decimal(60), Decimal(40)]
    assert len(keys) == 3 and keys[1] == keys[2] != keys[0], keys
    assert keys[1] == entries[0].idempotency_key
    shows(by_id(by_id(page, "cover-grain"), "cover-on-hand"), "100 千克")


def test_the_command_center_sees_every_depot_read_only(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    entry = received(store, "d02", "grain", 900_000, "seed-d02-000001")
    open_stock(page, server, COMMAND)
    assert by_id(page, "stock-depot").locator("option").all_inner_texts() == ["d01", "d02"]
    # The banner says the level the gateway figures now (d01 holds no grain at all).
    level = page.request.get(
        f"{server.url}/api/stock/north/supply-level", headers={"Authorization": f"Bearer {COMMAND}"}
    ).json()
    expect(by_id(page, "stock-level")).to_have_attribute("data-level", level["level"] or "none")
    expect(by_id(page, "stock-forms")).to_be_hidden()
    shows(by_id(page, "stock-read-only"), "只读")
    by_id(page, "stock-depot").select_option("d02")
    shows(by_id(by_id(page, "cover-grain"), "cover-on-hand"), "900 千克")
    shows(by_id(page, f"entry-{entry.id}"), "other-keeper")
    expect(by_id(page, f"reverse-{entry.id}")).to_have_count(0)
    # The site's targets: 900 kg for 100 people at 0.4 kg a day is 22.5 days of 15.
    target = by_id(page, "target-item:grain")
    shows(by_id(target, "target-days"), "22.5 天")
    shows(by_id(target, "target-state"), "达标")
    shows(target, "按人口消费")
    assert_chinese_renders(page, '[data-testid="stock"]')
    no_missing_words(page)


def test_a_keeper_reverses_an_entry_and_receives_a_transfer(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    now = datetime.now(UTC)
    received(store, "d02", "grain", 500_000, "seed-d02-000002")
    sent, _ = store.stock_write(
        Movement("transfer-out", "north", "d02", "seed-d02-000003", item="grain", unit="kg",
                 steps=-120_000, to_depot="d01"),
        "other-keeper", now, now.astimezone(SHANGHAI).date(),
    )  # fmt: skip
    open_stock(page, server, KEEPER)
    shows(by_id(page, f"transit-{sent.id}"), "d02 → d01")
    by_id(page, f"receive-{sent.id}").click()
    shows(by_id(by_id(page, "cover-grain"), "cover-on-hand"), "120 千克")
    expect(by_id(page, "stock-no-transit")).to_be_visible()
    (arrived,) = ledger(store)
    assert (arrived.kind, arrived.transfer_of) == ("transfer-in", sent.id)

    by_id(page, f"reverse-{arrived.id}").click()
    shows(by_id(page, "stock-reversal-title"), f"冲正记录 #{arrived.id}")
    by_id(page, "stock-reversal-submit").click()  # no reason given
    shows(by_id(page, "stock-error-reason"), "请填写原因")
    by_id(page, "stock-reversal-reason").fill("数量点错")
    by_id(page, "stock-reversal-submit").click()
    shows(by_id(page, f"entry-{arrived.id}"), "已被")
    expect(by_id(page, "stock-reversal")).to_be_hidden()
    assert [e.kind for e in ledger(store)] == ["reversal", "transfer-in"]
    shows(by_id(page, f"transit-{sent.id}"), "d02 → d01")  # on its way again


def test_a_keeper_submits_the_days_stock_report_and_the_command_center_sees_it(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    today = datetime.now(SHANGHAI).date()
    open_stock(page, server, KEEPER)
    expect(by_id(page, "stock-day")).to_have_value(today.isoformat())
    shows(by_id(page, "stock-report-state"), "本仓库该日尚未报送库存日报")
    page.eval_on_selector('[data-testid="stock-report-submit"]', "b => { b.click(); b.click(); }")
    shows(by_id(page, "message"), "库存日报已报送：第 1 版")
    shows(by_id(page, "stock-report-state"), "已报送：第 1 版")
    (submitted,) = store.stock_report_versions("north", "d01", today)
    assert submitted.who == "d01-keeper"
    by_id(page, "stock-day").fill((today + timedelta(days=1)).isoformat())  # not begun
    by_id(page, "stock-report-submit").click()
    shows(by_id(page, "message"), "该日尚未开始")
    assert len(store.stock_report_versions("north", "d01", today + timedelta(days=1))) == 0

    open_stock(page, server, COMMAND)
    expect(by_id(page, "stock-report-submit")).to_be_hidden()
    shows(by_id(page, "stock-report-state"), "已报送：第 1 版，")
    shows(by_id(page, "stock-report-state"), "d01-keeper")


def test_the_supply_level_banner_and_the_daily_report_links(
    page: Page, server: ConsoleServer
) -> None:
    level = {
        "site": "north", "level": "III", "rule": "grain-tight-3d",
        "rule_zh": "成品粮连续 3 天低于储备目标", "rule_en": "Grain below its target 3 days running",
        "since": datetime.now(UTC).isoformat(), "computed_at": datetime.now(UTC).isoformat(),
        "categories": [{"category": "necessities", "tight_days": 3, "stock_out": False}],
        "prices": [],
    }  # fmt: skip
    page.route("**/api/stock/north/supply-level", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(level)))  # fmt: skip
    asked: list[str] = []

    def report(route: Route, request: Request) -> None:
        asked.append(request.url)
        route.fulfill(status=200, content_type="text/csv", body="depot,item\r\nd01,grain\r\n")

    page.route("**/api/stock/north/daily-report?*", report)
    open_stock(page, server, COMMAND)
    banner = by_id(page, "stock-level")
    shows(by_id(banner, "stock-level-name"), "Ⅲ级 较重")
    shows(by_id(banner, "stock-level-rule"), "成品粮连续 3 天低于储备目标")
    shows(banner, "生活必需品：紧张 3 天")
    expect(banner).to_have_attribute("data-level", "III")
    by_id(page, "stock-day").fill("2026-12-05")
    with page.expect_download() as download:
        by_id(page, "stock-report-csv").click()
    assert download.value.suggested_filename == "gatepost-stock-north-2026-12-05.csv"
    assert asked[-1].endswith("/api/stock/north/daily-report?format=csv&day=2026-12-05")
    by_id(page, "language-toggle").click()
    shows(by_id(banner, "stock-level-name"), "Level III serious")
    shows(by_id(banner, "stock-level-rule"), "Grain below its target 3 days running")


def test_without_the_supply_level_route_the_banner_stays_hidden(
    page: Page, server: ConsoleServer
) -> None:
    page.route("**/api/stock/north/supply-level", lambda route: route.fulfill(
        status=404, content_type="application/json",
        body=json.dumps({"reason": "not-found", "detail": "Not Found"})))  # fmt: skip
    open_stock(page, server, KEEPER)
    expect(by_id(page, "cover-grain")).to_have_count(0)
    shows(by_id(page, "stock-no-stock"), "暂无库存")
    expect(by_id(page, "stock-level")).to_be_hidden()
    expect(by_id(page, "message")).to_be_hidden()  # quietly


@pytest.mark.parametrize("viewport", [PORTRAIT, LANDSCAPE], ids=["portrait", "landscape"])
def test_on_a_tablet_the_page_does_not_scroll_sideways_and_targets_are_large(
    playwright_driver: Playwright, tmp_path: Path, server: ConsoleServer, store: SqlStore,
    viewport: ViewportSize,
) -> None:  # fmt: skip
    received(store, "d01", "grain", 1_000_000, "seed-d01-000001")
    with open_page(playwright_driver, tmp_path / "profile", viewport=viewport) as page:
        open_stock(page, server, KEEPER)
        choose(page, "issue", "grain")
        expect(by_id(page, "cover-grain")).to_be_visible()
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        assert wide <= viewport["width"], f"the page is {wide} px wide"
        small = page.eval_on_selector_all(
            "#stock button, #stock input, #stock select, #stock a.button, .views a, #language",
            """nodes => nodes.filter(n => n.checkVisibility())
                 .map(n => [n.dataset.testid || n.name || n.tagName, n.getBoundingClientRect()])
                 .filter(([, box]) => box.height < 44 || box.width < 44)
                 .map(([name, box]) => `${name} ${box.width}x${box.height}`)""",
        )
        assert small == [], small
        # Numbers line up on the right.
        align = page.eval_on_selector(
            '[data-testid="cover-days"]', "e => getComputedStyle(e).textAlign"
        )
        assert align == "right"


def test_without_a_cjk_font_the_stock_view_fails_the_tofu_check(
    playwright_driver: Playwright, tmp_path: Path, server: ConsoleServer
) -> None:
    env = fontconfig(tmp_path / "fontconfig", [DEJAVU])  # a fresh Debian: no CJK font
    with open_page(playwright_driver, tmp_path / "profile", env=env) as page:
        open_stock(page, server, KEEPER)
        with pytest.raises(pytest.fail.Exception, match="missing-glyph boxes"):
            assert_chinese_renders(page, '[data-testid="stock"]')
