"""The dashboard's fleet view in chromium: an admin sees every node with problems first and
marked; a command-center token sees neither the link nor the view."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from edge.gate.console.server import ConsoleServer
from gateway.access import hash_token
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig
from gateway.store import SqlStore
from gateway.store.settings import StoreSection
from tests.browser import assert_chinese_renders, by_id, eventually, shows
from tests.firmware.fleet_nodes import ORDER, fleet_config, seed_fleet
from tests.gateway.test_dashboard_browser import no_missing_words

pytestmark = pytest.mark.browser

ADMIN = "gpt_fleet-admin"
COMMAND = "gpt_wall-screen"
SCREENSHOT = os.environ.get("FLEET_SCREENSHOT")  # a path: keep a picture of the view


@pytest.fixture
def gateway_config(store_section: StoreSection) -> GatewayConfig:
    """North (g01 to g04, d01) and south (g01): the nodes of tests/firmware/fleet_nodes.py."""
    return fleet_config(store_section)


@pytest.fixture
def server(gateway_context: GatewayContext, store: SqlStore) -> Iterator[ConsoleServer]:
    """The gateway app on a free port over the seeded fleet, an admin and a command token."""
    seed_fleet(store, datetime.now(UTC))
    store.add_token(hash_token(ADMIN), "technician", "admin", datetime.now(UTC))
    store.add_token(hash_token(COMMAND), "wall-screen", "command", datetime.now(UTC))
    running = ConsoleServer(create_app(gateway_context), port=0)
    running.start()
    yield running
    running.stop()


def test_fleet_view__admin_sees_problems_first_and_the_stale_node_marked(
    page: Page, server: ConsoleServer
) -> None:
    page.goto(f"{server.url}/?token={ADMIN}")
    shows(by_id(page, "link-state"), "实时")
    expect(by_id(page, "fleet")).to_be_hidden()
    by_id(page, "view-fleet").click()
    fleet = by_id(page, "fleet")
    expect(fleet).to_be_visible()
    expect(by_id(page, "sites")).to_be_hidden()

    rows = fleet.locator("tbody tr")
    expect(rows).to_have_count(len(ORDER))
    order = rows.evaluate_all("rows => rows.map(r => r.dataset.testid)")
    assert order == [f"fleet-{site}-{node}" for site, node, _ in ORDER]
    shows(by_id(page, "fleet-summary"), "共 6 个节点，5 个有问题")

    stale = by_id(page, "fleet-north-g02")
    well = by_id(page, "fleet-north-g01")
    expect(stale).to_have_attribute("data-problem", "true")
    expect(by_id(stale, "fleet-trust")).to_have_attribute("data-bad", "true")
    shows(by_id(stale, "fleet-trust"), "3天")
    shows(by_id(stale, "fleet-problems"), "⚠ 验码名单过期")
    expect(by_id(stale, "fleet-problems")).to_be_in_viewport()  # not scrolled away in its box
    expect(well).to_have_attribute("data-problem", "false")
    shows(by_id(well, "fleet-problems"), "正常")
    shows(by_id(well, "fleet-devices"), "扫码器 正常")
    shows(by_id(well, "fleet-config"), "8/c0ffeec0ffee")
    shows(by_id(page, "fleet-north-d01").locator('[data-testid="fleet-devices"]'), "无响应")
    shows(by_id(page, "fleet-north-g04"), "从未上线")
    # Marked where a person looks: the row's colour and the failing cell's, not only words.
    colour = "el => getComputedStyle(el).backgroundColor"
    assert stale.evaluate(colour) != well.evaluate(colour)
    trust_cell = "el => getComputedStyle(el).color"
    assert by_id(stale, "fleet-trust").evaluate(trust_cell) != by_id(well, "fleet-trust").evaluate(
        trust_cell
    )

    assert_chinese_renders(page, '[data-testid="fleet"]')
    no_missing_words(page)
    # On the landscape tablet the table scrolls in its box, never the page.
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)

    by_id(page, "language-toggle").click()
    shows(by_id(stale, "fleet-problems"), "trust list stale")
    shows(by_id(page, "fleet-summary"), "6 nodes, 5 with problems")
    expect(fleet).not_to_contain_text("验码", use_inner_text=True)


def test_fleet_view__the_address_opens_it_for_an_admin(page: Page, server: ConsoleServer) -> None:
    page.goto(f"{server.url}/?token={ADMIN}#fleet")
    expect(by_id(page, "fleet")).to_be_visible()
    expect(by_id(page, "view-fleet")).to_have_attribute("aria-current", "page")


def test_fleet_view__a_command_token_sees_no_link_and_no_view(
    page: Page, server: ConsoleServer
) -> None:
    refused: list[int] = []
    page.on(
        "response",
        lambda response: (
            refused.append(response.status) if "/api/nodes/fleet" in response.url else None
        ),
    )
    page.goto(f"{server.url}/?token={COMMAND}#fleet")
    shows(by_id(page, "link-state"), "实时")
    expect(by_id(page, "sites")).to_be_visible()
    eventually(lambda: refused == [403])  # the page asked once; the gateway refused the role
    expect(by_id(page, "view-fleet")).to_be_hidden()
    expect(by_id(page, "fleet")).to_be_hidden()
    expect(by_id(page, "token-form")).to_be_hidden()  # the board itself is the token's to see
