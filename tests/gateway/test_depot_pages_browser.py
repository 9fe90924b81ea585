"""The depot pages in chromium, as a depot keeper and the command center use them, over a real
gateway app and store whose depot readings went through the excursion rules."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, Playwright, expect

from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.topics import AlertKind
from edge.gate.console.server import ConsoleServer
from gateway.access import hash_token
from gateway.alarms import draft
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection
from gateway.depot_rules import ExcursionRules
from gateway.store import SqlStore
from gateway.store.settings import StoreSection
from tests.browser import assert_chinese_renders, by_id, eventually, open_page, shows
from tests.console.test_chinese_fonts import DEJAVU, fontconfig
from tests.gateway.factory import Gates
from tests.gateway.test_dashboard_browser import no_missing_words

pytestmark = pytest.mark.browser

COMMAND = "gpt_cold-chain-desk"
DEPOT = "gpt_depot-keeper"
SHANGHAI = ZoneInfo("Asia/Shanghai")
COLD = "cold-store-1"
DRY = "dry-store"
MASKS = "mask-store"
FREEZER = "freezer-1"
OTHER_COLD = "cold-store-2"  # d02's
STEP = timedelta(minutes=10)

# Reads the chart's canvas: how many pixels are (about) each colour, as the legend's
# swatches show them (the swatch's computed background, alpha included).
COUNT_PIXELS = """() => {
  const canvas = document.querySelector('[data-testid="zone-chart"] canvas');
  if (!canvas) return null;
  const rgba = (css) => {
    const [r, g, b, a = 1] = css.match(/[\\d.]+/g).map(Number);
    return [r, g, b, Math.round(a * 255)];
  };
  const swatch = (name) => rgba(getComputedStyle(
    document.querySelector(`[data-testid="zone-legend"] .swatch.${name}`)).backgroundColor);
  const wanted = { line: swatch("line"), band: swatch("band"), excursion: swatch("excursion") };
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = { line: 0, band: 0, excursion: 0, painted: 0 };
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0) counts.painted++;
    for (const [name, [r, g, b, a]] of Object.entries(wanted)) {
      if (Math.abs(data[i + 3] - a) <= 2 && Math.abs(data[i] - r) <= 8
          && Math.abs(data[i + 1] - g) <= 8 && Math.abs(data[i + 2] - b) <= 8) counts[name]++;
    }
  }
  return { ...counts, width: canvas.width, height: canvas.height, wanted };
}"""


@pytest.fixture
def gateway_config(store_section: StoreSection) -> GatewayConfig:
    """Site `north` with depot d01: a cold store (cold class), a dry store (room), a mask
    store (humidity) and a freezer (the site's own class, deep-freeze); and depot d02, a
    cold store of its own (another keeper's)."""
    site = SiteSection.model_validate({
        "name": "north", "gates": ["g01"], "depots": ["d01", "d02"],
        "zones": {"d01": {COLD: "cold", DRY: "room", MASKS: "humidity", FREEZER: "deep-freeze"},
                  "d02": {OTHER_COLD: "cold"}},
        "storage_classes": {"deep-freeze": {"conditions": [
            {"name": "thaw", "direction": "above", "threshold": -15.0, "delay_min": 60},
        ]}},
    })  # fmt: skip
    return GatewayConfig(sites=(site,), store=store_section)


@pytest.fixture
def server(gateway_context: GatewayContext) -> Iterator[ConsoleServer]:
    """The gateway app on a free port, with a command token and a depot token of d01."""
    store = gateway_context.store
    store.add_token(hash_token(COMMAND), "cold-chain-desk", "command", datetime.now(UTC))
    store.add_token(hash_token(DEPOT), "depot-keeper", "depot", datetime.now(UTC),
                    ("north/d01",))  # fmt: skip
    running = ConsoleServer(create_app(gateway_context), port=0)
    running.start()
    yield running
    running.stop()


def temperature_at(at: datetime, now: datetime, yesterday: date) -> float:
    """Yesterday (the site's) 06:00 to 08:00 a two-hour excursion at 9 °C, too short to
    alarm; 9 °C again for the last 11 hours up to now, which alarms (8 °C for 10 h)."""
    local = at.astimezone(SHANGHAI)
    if local.date() == yesterday and 6 <= local.hour < 8:
        return 9.0
    return 9.0 if at > now - timedelta(hours=11) else 5.0


@pytest.fixture
def cold_store(gateway_context: GatewayContext, store: SqlStore) -> dict[str, Any]:
    """Readings of the cold store every 10 min from yesterday's midnight (the site's) to
    now, stored and evaluated by the excursion rules as a gateway does on arrival."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    yesterday = now.astimezone(SHANGHAI).date() - timedelta(days=1)
    at = datetime.combine(yesterday, time(), tzinfo=SHANGHAI).astimezone(UTC)
    readings = []
    while at <= now:
        readings.append(DepotReading(
            sensor=COLD, bus_address=1, at=at, status="ok",
            temperature_c=temperature_at(at, now, yesterday), humidity_pct=55.0,
        ))  # fmt: skip
        at += STEP
    gates = Gates("north", now=now)
    batches = [
        gates.inbound("d01", DepotReadingBatch, readings=tuple(readings[i : i + 100]))
        for i in range(0, len(readings), 100)
    ]
    store.write(batches)
    ExcursionRules(gateway_context.config, store, gateway_context.alarms).on_stored(batches)
    return {"now": now, "yesterday": yesterday, "readings": readings}


def of_day(readings: list[DepotReading], day: date) -> list[DepotReading]:
    return [r for r in readings if r.at.astimezone(SHANGHAI).date() == day]


def excursions(day: list[DepotReading]) -> int:
    """Runs of readings at or above 8 °C (the band's top; the cold class's freeze is far)."""
    outs = [r.temperature_c is not None and r.temperature_c >= 8.0 for r in day]
    return sum(1 for i, out in enumerate(outs) if out and (i == 0 or not outs[i - 1]))


def pixels(page: Page) -> dict[str, Any]:
    counted: dict[str, Any] | None = page.evaluate(COUNT_PIXELS)
    assert counted is not None, "no chart canvas"
    return counted


def open_depots(page: Page, server: ConsoleServer, token: str) -> None:
    page.goto(f"{server.url}/?token={token}#depots")
    expect(by_id(page, "depots")).to_be_visible()
    expect(by_id(page, f"zone-north-d01-{COLD}")).to_be_visible()


def test_a_zones_day_charted_with_its_band_and_excursions_and_its_alarm_acknowledged(
    page: Page, server: ConsoleServer, store: SqlStore, cold_store: dict[str, Any]
) -> None:
    (alarm,) = store.alarms()
    assert (alarm.kind, alarm.subject, alarm.state) == ("depot-climate", f"{COLD}/heat", "raised")
    open_depots(page, server, COMMAND)
    expect(page.locator(".board")).to_be_hidden()  # the gates' view is the other tab
    expect(by_id(page, "view-depots")).to_have_attribute("aria-current", "page")

    # At a glance: each zone's value, its state in words (and by colour), its class's band.
    cold = by_id(page, f"zone-north-d01-{COLD}")
    expect(cold).to_have_attribute("data-state", "alarm")
    shows(by_id(cold, "zone-state"), "✕ 告警")
    shows(by_id(cold, "zone-value"), "9.0 °C · 55.0 %RH")
    shows(cold, "冷藏 · -0.5 至 8.0 °C 之间")
    dry = by_id(page, f"zone-north-d01-{DRY}")
    expect(dry).to_have_attribute("data-state", "no-data")
    shows(by_id(dry, "zone-state"), "无数据")
    shows(dry, "常温 · 低于 25.0 °C · 低于 75.0 %RH")
    assert page.eval_on_selector(
        f'[data-testid="zone-north-d01-{COLD}"]', "e => getComputedStyle(e).borderTopColor"
    ) != page.eval_on_selector(
        f'[data-testid="zone-north-d01-{DRY}"]', "e => getComputedStyle(e).borderTopColor"
    )
    shows(by_id(page, "depot-north-d01"), "从未上线")

    # The zone's day: today at first, then yesterday by the day picker.
    cold.click()
    detail = by_id(page, "zone-detail")
    shows(by_id(detail, "zone-title"), f"d01 · {COLD}")
    today = cold_store["now"].astimezone(SHANGHAI).date()
    expect(by_id(page, "zone-day")).to_have_value(today.isoformat())
    todays = of_day(cold_store["readings"], today)
    shows(by_id(page, "legend-line"), f"温度（°C），{len(todays)} 个读数")
    yesterday = cold_store["yesterday"]
    by_id(page, "zone-day").fill(yesterday.isoformat())
    by_id(page, "zone-load").click()
    day = of_day(cold_store["readings"], yesterday)
    assert len(day) == 144
    shows(by_id(page, "legend-line"), f"温度（°C），{len(day)} 个读数")
    shows(by_id(page, "legend-band"), "允许范围：-0.5 至 8.0 °C 之间")
    shows(by_id(page, "legend-excursions"), f"超出范围：{excursions(day)} 次")
    shows(by_id(page, "legend-range"), "当日 5.0 至 9.0 °C")
    expect(by_id(page, "zone-chart")).to_have_attribute("data-points", "144")

    # The canvas: the line, the band and the excursions in the legend's colours.
    painted = pixels(page)
    area = painted["width"] * painted["height"]
    assert painted["line"] > painted["width"] // 2, painted  # a line across the day
    assert painted["band"] > area // 20, painted  # the band, a wide strip
    assert painted["excursion"] > area // 200, painted  # 06:00 to 08:00 at least, shaded
    # The cursor over the chart reads the reading under it.
    box = page.locator('[data-testid="zone-chart"] .u-over').bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 7 / 24, box["y"] + box["height"] / 2)
    shows(by_id(page, "legend-cursor"), "9.0 °C")  # about 07:00: inside the excursion

    # The day in figures: 12 readings at 9 °C from 06:00 stand 10 min each, plus the
    # alarming one if it began yesterday. A reading stands until the next one, within the
    # day: yesterday's last one (23:50) until today's first, when the test runs just
    # after the site's midnight and it is already 9 °C.
    day_end = datetime.combine(yesterday + timedelta(days=1), time(), tzinfo=SHANGHAI)
    minutes_out = round(sum(
        (min(after.at, day_end) - r.at).total_seconds() / 60
        for r, after in pairwise(cold_store["readings"])
        if r in day and r.temperature_c is not None and r.temperature_c >= 8.0
    ))  # fmt: skip
    shows(by_id(page, "summary-out"), f"{minutes_out} 分钟")
    shows(by_id(page, "summary-min"), "5.0 °C")
    shows(by_id(page, "summary-max"), "9.0 °C")
    shows(by_id(page, "summary-readings"), "144")
    # Mean kinetic temperature: above the mean, as warm hours weigh more.
    mean = float(by_id(page, "summary-mean").locator("td").inner_text().split()[0])
    assert float(by_id(page, "summary-mkt").locator("td").inner_text().split()[0]) > mean
    with page.expect_download() as download_info:
        by_id(page, "zone-csv").click()
    download = download_info.value
    assert download.suggested_filename == f"gatepost-north-d01-{COLD}-{yesterday}.csv"
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8-sig"))))
    assert len(rows) == 144
    assert {r["zone"] for r in rows} == {COLD}

    # The zone's open alarm, acknowledged here; the store says so.
    item = by_id(detail, f"depot-alarm-{alarm.alarm_id}")
    shows(item, "仓库温湿度异常")
    shows(item.locator(".text"), f"d01 库区 {COLD} 9.0 °C：已达 8.0 °C 或以上")
    assert_chinese_renders(page, '[data-testid="depots"]')
    no_missing_words(page)
    by_id(item, f"depot-alarm-acknowledge-{alarm.alarm_id}").click()
    eventually(lambda: store.alarm(alarm.alarm_id).state == "acknowledged")
    assert store.alarm(alarm.alarm_id).acknowledged_by == "cold-chain-desk"
    shows(by_id(detail, f"depot-alarm-{alarm.alarm_id}"), "cold-chain-desk 已确认")
    expect(by_id(page, f"depot-alarm-acknowledge-{alarm.alarm_id}")).to_have_count(0)

    by_id(page, "language-toggle").click()
    shows(by_id(cold, "zone-state"), "ALARM")
    shows(by_id(page, "legend-band"), "Allowed: between -0.5 and 8.0 °C")
    shows(by_id(page, "summary-out"), f"{minutes_out} min")
    shows(by_id(page, "legend-excursions"), f"Excursions: {excursions(day)}")
    shows(by_id(detail, f"depot-alarm-{alarm.alarm_id}"), "Acknowledged by cold-chain-desk")


def test_a_humidity_zone_is_charted_in_rh_and_a_sites_own_class_named_as_it_is(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    now = datetime.now(UTC)
    yesterday = now.astimezone(SHANGHAI).date() - timedelta(days=1)
    start = datetime.combine(yesterday, time(), tzinfo=SHANGHAI)
    readings = [
        DepotReading(
            sensor=MASKS, bus_address=3, at=start + i * STEP, status="ok", temperature_c=20.0,
            humidity_pct=82.0 if 60 <= i < 72 else 60.0,  # wet from 10:00 to 12:00
        )
        for i in range(144)
    ]  # fmt: skip
    gates = Gates("north", now=now)
    store.write([gates.inbound("d01", DepotReadingBatch, readings=tuple(readings[i : i + 72]))
                 for i in (0, 72)])  # fmt: skip
    open_depots(page, server, COMMAND)
    freezer = by_id(page, f"zone-north-d01-{FREEZER}")
    shows(freezer, "deep-freeze · 低于 -15.0 °C")  # no words for it: its name
    shows(by_id(freezer, "zone-state"), "无数据")
    masks = by_id(page, f"zone-north-d01-{MASKS}")
    shows(masks, "防潮 · 低于 75.0 %RH")
    masks.click()
    by_id(page, "zone-day").fill(yesterday.isoformat())
    by_id(page, "zone-load").click()
    shows(by_id(page, "legend-line"), "湿度（%RH），144 个读数")
    shows(by_id(page, "legend-band"), "允许范围：低于 75.0 %RH")
    shows(by_id(page, "legend-excursions"), "超出范围：1 次")
    shows(by_id(page, "legend-range"), "当日 60.0 至 82.0 %RH")
    shows(by_id(page, "summary-out"), "120 分钟")
    painted = pixels(page)
    assert painted["line"] > painted["width"] // 2, painted
    assert painted["band"] > painted["width"] * painted["height"] // 20, painted
    assert painted["excursion"] > painted["width"] * painted["height"] // 200, painted
    no_missing_words(page)


def test_a_depot_token_sees_its_depot_only_and_acknowledges_its_alarm(
    page: Page, server: ConsoleServer, gateway_context: GatewayContext, store: SqlStore,
    cold_store: dict[str, Any],
) -> None:  # fmt: skip
    (alarm,) = store.alarms()
    others = gateway_context.alarms.raise_alarm(draft(
        AlertKind.DEPOT_SENSOR_STALE, "depot-sensor-stale", "north", "d02", "warning",
        subject=OTHER_COLD, zone=OTHER_COLD, silent_min="45",
    ))  # fmt: skip
    assert others is not None
    page.goto(f"{server.url}/?token={DEPOT}")  # the gates' view asked for; refused to it
    expect(by_id(page, f"zone-north-d01-{COLD}")).to_be_visible()
    expect(page.locator(".board")).to_be_hidden()
    expect(by_id(page, "view-gates")).to_be_hidden()
    expect(by_id(page, "token-form")).to_be_hidden()
    # Its depot, not the other keeper's (which a command token sees beside it).
    expect(page.locator('[data-testid^="depot-north-"]')).to_have_count(1)
    expect(by_id(page, "depot-north-d02")).to_have_count(0)
    expect(by_id(page, f"zone-north-d02-{OTHER_COLD}")).to_have_count(0)
    expect(by_id(page, f"depot-alarm-{others.alarm_id}")).to_have_count(0)
    expect(by_id(page, "no-depots")).to_be_hidden()
    by_id(page, f"zone-north-d01-{COLD}").click()
    item = by_id(page, f"depot-alarm-{alarm.alarm_id}")
    shows(item, "仓库温湿度异常")
    expect(by_id(page, "zone-chart").locator("canvas")).to_have_count(1)
    assert_chinese_renders(page, '[data-testid="depots"]')
    no_missing_words(page)
    by_id(item, f"depot-alarm-acknowledge-{alarm.alarm_id}").click()
    eventually(lambda: store.alarm(alarm.alarm_id).state == "acknowledged")
    assert store.alarm(alarm.alarm_id).acknowledged_by == "depot-keeper"
    shows(by_id(page, f"depot-alarm-{alarm.alarm_id}"), "depot-keeper 已确认")
    expect(by_id(page, f"depot-alarm-acknowledge-{alarm.alarm_id}")).to_have_count(0)
    (entry,) = store.audit_log()
    assert (entry.who, entry.role, entry.action) == ("depot-keeper", "depot", "acknowledge")
    assert store.alarm(others.alarm_id).state == "raised"
    # The command center sees both depots.
    open_depots(page, server, COMMAND)
    expect(by_id(page, f"zone-north-d02-{OTHER_COLD}")).to_be_visible()


def test_a_depot_token_that_names_no_depot_is_told_so(
    page: Page, server: ConsoleServer, store: SqlStore
) -> None:
    # As a depot token made before tokens named their depots is.
    store.add_token(hash_token("gpt_old-keeper"), "old-keeper", "depot", datetime.now(UTC))
    page.goto(f"{server.url}/?token=gpt_old-keeper")
    expect(by_id(page, "depots")).to_be_visible()
    shows(by_id(page, "no-depots"), "此令牌未指定可查看的仓库")
    expect(page.locator('[data-testid^="depot-north-"]')).to_have_count(0)
    by_id(page, "language-toggle").click()
    shows(by_id(page, "no-depots"), "This token names no depot it may see")


def test_the_view_follows_the_live_alarms_and_says_one_escalated(
    page: Page, server: ConsoleServer, gateway_context: GatewayContext, store: SqlStore,
    cold_store: dict[str, Any],
) -> None:  # fmt: skip
    (alarm,) = store.alarms()
    open_depots(page, server, COMMAND)
    shows(by_id(page, "link-state"), "实时")
    by_id(page, f"zone-north-d01-{COLD}").click()
    item = by_id(page, f"depot-alarm-{alarm.alarm_id}")
    shows(item, "仓库温湿度异常")
    expect(item).not_to_have_attribute("data-escalated", "true")

    # Not acknowledged in time: escalated. The board's live frame brings it here at once
    # (the view's own refresh is every 15 s; expect waits 5 s at most).
    escalated = gateway_context.alarms.escalate(datetime.now(UTC))
    assert [a.alarm_id for a in escalated] == [alarm.alarm_id]
    expect(item).to_have_attribute("data-escalated", "true")
    shows(item, "未及时确认，已于")
    silent = gateway_context.alarms.raise_alarm(draft(
        AlertKind.DEPOT_SENSOR_STALE, "depot-sensor-stale", "north", "d01", "warning",
        subject=DRY, zone=DRY, silent_min="45",
    ))  # fmt: skip
    assert silent is not None
    dry = by_id(page, f"zone-north-d01-{DRY}")
    expect(dry).to_have_attribute("data-state", "alarm")
    dry.click()
    shows(by_id(page, f"depot-alarm-{silent.alarm_id}").locator(".text"),
          f"d01 库区 {DRY} 已 45 分钟无读数")  # fmt: skip
    by_id(page, "language-toggle").click()
    shows(by_id(page, f"depot-alarm-{silent.alarm_id}"), "Depot sensor silent")


def test_opened_on_the_depots_without_a_token_they_come_once_it_is_given(
    page: Page, server: ConsoleServer, cold_store: dict[str, Any]
) -> None:
    page.goto(f"{server.url}/#depots")
    shows(by_id(page, "token-form"), "请输入访问令牌")
    expect(by_id(page, f"zone-north-d01-{COLD}")).to_have_count(0)
    by_id(page, "token-input").fill(COMMAND)
    by_id(page, "token-input").press("Enter")
    shows(by_id(by_id(page, f"zone-north-d01-{COLD}"), "zone-state"), "告警")
    expect(by_id(page, "token-form")).to_be_hidden()
    by_id(page, "view-gates").click()
    expect(by_id(page, "view-gates")).to_have_attribute("aria-current", "page")
    expect(page.locator(".board")).to_be_visible()
    expect(by_id(page, "depots")).to_be_hidden()
    expect(page).to_have_url(f"{server.url}/#gates")


def test_without_a_cjk_font_the_depot_page_fails_the_tofu_check(
    playwright_driver: Playwright, tmp_path: Path, server: ConsoleServer
) -> None:
    # The check is the one tests/console/test_chinese_fonts.py proves; here it sees the page.
    env = fontconfig(tmp_path / "fontconfig", [DEJAVU])  # a fresh Debian: no CJK font
    with open_page(playwright_driver, tmp_path / "profile", env=env) as page:
        open_depots(page, server, COMMAND)  # drawn: no tile is replaced while it is probed
        with pytest.raises(pytest.fail.Exception, match="missing-glyph boxes"):
            assert_chinese_renders(page, '[data-testid="depots"]')
