"""The console as volunteers and officers read it, on the screens gates have (C.8, C.1, A.7).

A 10-inch tablet upright (800x1280) and a 7-inch panel (800x480); a tablet whose clock is
set to another zone than the site's; and the Chinese view read for English left in it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Playwright, expect

from edge.contract.base import Colour
from edge.contract.events import Outcome
from edge.gate.hold_rules import offered
from edge.gate.reasons import REASON_TEXT
from edge.gate.views import DecisionView, HoldResolution, Prompt, PromptKind, WaitingView
from tests.browser import (
    PANEL_7_INCH,
    TABLET_PORTRAIT,
    assert_chinese_renders,
    by_id,
    eventually,
    open_page,
    shows,
)
from tests.console.double import RecordingCheckpoint, node_view, open_hold
from tests.console.pages import Serve, english_in_chinese_view, signed_in

pytestmark = pytest.mark.browser

RED = "rgb(183, 28, 28)"  # --deny in console.css


def in_sight(page: Page, locator: Locator) -> None:
    """Wholly inside the viewport and not covered by anything else."""
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (box, size)
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"], (box, size)
    on_top = locator.evaluate(
        """(e) => { const r = e.getBoundingClientRect();
        const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return e === top || e.contains(top); }"""
    )
    assert on_top, "covered by another element"


def decided(
    outcome: Outcome, reasons: tuple[str, ...], colour: Colour | None = "green"
) -> DecisionView:
    return DecisionView(
        passage_id="P-now",
        at=datetime.now(UTC),
        outcome=outcome,
        colour=colour,
        reasons=reasons,
        credential="health-code",
        temperature_c=36.6,
        masked_name="王*",
    )


# --- the upright tablet: the person at the gate first ------------------------------------


def test_portrait_tablet__the_newest_hold_is_the_first_card_and_in_sight(
    page: Page, serve: Serve
) -> None:
    now = datetime.now(UTC)
    holds = tuple(open_hold(f"H{i:02d}", at=now - timedelta(minutes=30 - i)) for i in range(17))
    checkpoint = RecordingCheckpoint(holds=holds)
    page.set_viewport_size(TABLET_PORTRAIT)
    page.goto(signed_in(page, serve(checkpoint)))
    cards = page.locator("#hold-list > .hold")
    expect(cards).to_have_count(17)
    expect(cards.first).to_have_attribute("data-hold-id", "H16")
    in_sight(page, cards.first)
    assert_chinese_renders(page, "#hold-list > .hold:first-child")

    # A volunteer types into the newest card's re-measure; another person is held meanwhile.
    by_id(page, "resolve-released-H16").click()
    by_id(page, "remeasure-temperature-H16").fill("36.9")
    checkpoint.add_hold(open_hold("H17", reasons=("yellow-code",), masked_name="李*"))
    expect(cards.first).to_have_attribute("data-hold-id", "H17")
    in_sight(page, cards.first)
    expect(by_id(page, "remeasure-temperature-H16")).to_have_value("36.9")
    expect(by_id(page, "remeasure-temperature-H16")).to_be_focused()
    shows(by_id(page, "hold-count"), "18")


def test_vehicle_hold__shows_the_plate(page: Page, serve: Serve) -> None:
    hold = open_hold(
        "H1", reasons=("vehicle-fever",), masked_name=None, colour=None, vehicle_plate="京A12345"
    )
    page.goto(signed_in(page, serve(RecordingCheckpoint(holds=(hold,)))))
    card = by_id(page, "hold-H1")
    shows(card, "车牌")
    shows(card, "京A12345")
    shows(by_id(page, "decision-name"), "京A12345")
    shows(card, "车内有人体温异常")


# --- actions, urgency and stops by reason -------------------------------------------------

CASES: list[tuple[str, ...]] = [
    ("fever",),
    ("re-measure",),
    ("measure-temperature",),
    ("too-far",),
    ("yellow-code",),
    ("expired",),
    ("no-code",),
    ("bad-signature",),
    ("unknown-kid",),
    ("revoked",),
    ("yellow-code", "fever"),
    ("outbox-full", "fever"),
]


def test_each_hold_offers_only_the_actions_its_reasons_allow(page: Page, serve: Serve) -> None:
    holds = tuple(open_hold(f"H{i}", reasons=reasons) for i, reasons in enumerate(CASES))
    page.goto(signed_in(page, serve(RecordingCheckpoint(holds=holds))))
    expect(page.locator("#hold-list > .hold")).to_have_count(len(CASES))
    for i, reasons in enumerate(CASES):
        buttons = by_id(page, f"hold-H{i}").locator("[data-resolution]")
        shown = tuple(buttons.evaluate_all("(all) => all.map((b) => b.dataset.resolution)"))
        assert shown == offered(reasons), reasons
    # The page's rule is the node's, for every reason code on its own.
    for code in REASON_TEXT:
        in_page = page.evaluate("(reasons) => window.gatepost.offeredFor(reasons)", [str(code)])
        assert tuple(in_page) == offered([code]), code


@pytest.mark.parametrize(
    ("badge", "allowed", "shown"),
    [
        ("HC1:BADGE-S001", True, True),
        ("HC1:BADGE-S001", False, False),  # the site allows no override
        ("HC1:BADGE-V001", True, False),  # a volunteer is no supervisor
    ],
)
def test_override__offered_to_a_supervisor_for_a_refused_code_where_the_site_allows_it(
    page: Page, serve: Serve, badge: str, allowed: bool, shown: bool
) -> None:
    forged = open_hold("H1", reasons=("bad-signature",), colour=None, masked_name=None)
    fever = open_hold("H2", reasons=("fever",))
    node = node_view(volunteers=("V001", "S001")).model_copy(update={"override_allowed": allowed})
    checkpoint = RecordingCheckpoint(holds=(forged, fever), node=node)
    page.goto(signed_in(page, serve(checkpoint, "zh"), badge))
    override = by_id(page, "resolve-override-H1")
    if not shown:
        expect(override).to_be_hidden()
        return
    expect(by_id(page, "resolve-override-H2")).to_be_hidden()  # a fever is no refused code
    shows(override, "主管放行")
    override.click()
    shows(by_id(page, "message"), "已由主管放行")
    (call,) = checkpoint.calls_to("resolve_hold")
    assert call.args == ("H1", HoldResolution(resolution="released", override=True), "S001")


def test_a_forged_code_is_a_stop_and_a_red_code_is_urgent(page: Page, serve: Serve) -> None:
    forged = open_hold("H1", reasons=("bad-signature",), colour=None, masked_name=None)
    checkpoint = RecordingCheckpoint(holds=(forged,))
    page.goto(signed_in(page, serve(checkpoint)))
    decision = by_id(page, "decision")
    expect(decision).to_have_attribute("data-outcome", "hold")  # what the gate recorded
    expect(decision).to_have_attribute("data-look", "deny")  # what officers read
    expect(by_id(page, "decision-outcome")).to_have_text("✕ 禁止通行", use_inner_text=True)
    assert decision.evaluate("(e) => getComputedStyle(e).backgroundColor") == RED
    card = by_id(page, "hold-H1")
    expect(card).to_have_attribute("data-look", "deny")
    shows(card, "✕ 禁止通行")
    shows(card, "签名无效：伪造码")
    expect(card.locator('[data-resolution="released"]')).to_have_count(0)
    expect(card.locator('[data-resolution="registered"]')).to_have_count(0)

    checkpoint.change(decision=decided("deny", ("red-code",), colour="red"))
    urgent = by_id(page, "decision-urgent")
    expect(urgent).to_be_visible()
    shows(urgent, "紧急")
    assert urgent.evaluate("(e) => getComputedStyle(e).backgroundColor") == RED
    shows(by_id(page, "decision-reasons"), "红码：禁止通行，上报")
    # A fever is reported at once too; a yellow code is not urgent.
    checkpoint.change(holds=(open_hold("H2"), open_hold("H3", reasons=("yellow-code",))))
    expect(by_id(page, "hold-H2").locator(".urgent")).to_be_visible()
    expect(by_id(page, "hold-H3").locator(".urgent")).to_be_hidden()
    checkpoint.change(decision=decided("allow", ()))
    expect(urgent).to_be_hidden()


# --- the site's time, whatever the tablet's zone ------------------------------------------


def test_times_are_the_sites_whatever_zone_the_tablet_is_set_to(
    playwright_driver: Playwright, tmp_path: Path, serve: Serve
) -> None:
    at = datetime(2024, 3, 1, 0, 30, 5, tzinfo=UTC)  # 08:30:05 at a site in Shanghai
    checkpoint = RecordingCheckpoint(holds=(open_hold("H1", at=at),), node=node_view())
    with open_page(playwright_driver, tmp_path / "profile", timezone_id="UTC") as page:
        page.goto(signed_in(page, serve(checkpoint)))
        shows(by_id(page, "hold-H1"), "08:30:05")
        shows(by_id(page, "decision-meta"), "08:30:05")
        expect(by_id(page, "hold-H1")).not_to_contain_text("00:30:05")
        # The same moment at a site in Berlin.
        checkpoint.change(node=node_view(zone="Europe/Berlin"))
        shows(by_id(page, "decision-meta"), "01:30:05")


# --- the 7-inch panel ------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh", "en"])
def test_7_inch_panel__the_plate_field_and_the_answer_are_in_sight(
    page: Page, serve: Serve, language: str
) -> None:
    # The most a signed-in panel shows above a form: the alert that the node is offline.
    checkpoint = RecordingCheckpoint(node=node_view(broker_connected=False))
    page.set_viewport_size(PANEL_7_INCH)
    page.goto(signed_in(page, serve(checkpoint, language)))
    expect(by_id(page, "alerts").locator("p")).to_have_count(1)
    by_id(page, "tab-vehicle").click()
    plate = by_id(page, "field-plate")
    expect(plate).to_be_focused()
    in_sight(page, plate)
    in_sight(page, page.locator('#form-vehicle [data-words="field.plate"]'))

    checkpoint.change(node=node_view())
    expect(by_id(page, "alerts").locator("p")).to_have_count(0)
    plate.fill("京A12345")
    by_id(page, "occupant-0").fill("38.6")
    by_id(page, "vehicle-submit").click()
    answer = by_id(page, "vehicle-result-plate")
    expect(answer).to_have_text("京A12345")
    in_sight(page, answer)


# --- a code waiting for its temperature, and device prompts ---------------------------------


def test_waiting_for_a_temperature__replaces_the_last_answer_and_counts_down_live(
    page: Page, serve: Serve
) -> None:
    checkpoint = RecordingCheckpoint()  # the previous person's fever hold is on screen
    page.goto(signed_in(page, serve(checkpoint, "zh")))
    decision = by_id(page, "decision")
    shows(decision, "体温异常")
    now = datetime.now(UTC)
    waiting = WaitingView(
        scanned_at=now, deadline=now + timedelta(seconds=10), colour="green", masked_name="李*"
    )
    checkpoint.change(waiting=waiting)

    expect(decision).to_have_attribute("data-outcome", "waiting")
    expect(by_id(page, "decision-outcome")).to_have_text("请测温", use_inner_text=True)
    expect(decision).not_to_contain_text("体温异常", use_inner_text=True)
    expect(decision).not_to_contain_text("38.4", use_inner_text=True)
    shows(decision, "李*")
    countdown = by_id(page, "decision-countdown")
    shows(countdown, "还剩")
    first = int(countdown.get_attribute("data-seconds-left") or "-1")
    assert 8 <= first <= 10
    eventually(lambda: int(countdown.get_attribute("data-seconds-left") or "99") <= first - 2, 4)
    assert_chinese_renders(page, '[data-testid="decision"]')

    by_id(page, "language-toggle").click()
    expect(by_id(page, "decision-outcome")).to_have_text(
        "Measure temperature now", use_inner_text=True
    )
    shows(countdown, "s left")
    # On the 7-inch panel the answer and the time left stay in sight under a prompt.
    page.set_viewport_size(PANEL_7_INCH)
    checkpoint.change(prompt=Prompt(kind="step-closer", at=datetime.now(UTC)))
    expect(by_id(page, "prompt")).to_be_visible()
    in_sight(page, by_id(page, "decision-outcome"))
    in_sight(page, countdown)

    checkpoint.change(waiting=None, decision=decided("allow", ()))
    expect(decision).to_have_attribute("data-outcome", "allow")
    expect(countdown).to_be_hidden()
    expect(by_id(page, "decision-outcome")).to_have_text("✓ PASS", use_inner_text=True)


def test_waiting__counts_right_on_a_tablet_whose_clock_is_an_hour_off(
    page: Page, serve: Serve
) -> None:
    checkpoint = RecordingCheckpoint()
    page.clock.set_system_time(datetime.now(UTC) + timedelta(hours=1))
    page.goto(signed_in(page, serve(checkpoint)))
    expect(by_id(page, "decision")).to_have_attribute("data-outcome", "hold")
    tablet_ahead_s = page.evaluate("Date.now()") / 1000 - datetime.now(UTC).timestamp()
    assert tablet_ahead_s > 3000
    now = datetime.now(UTC)
    checkpoint.change(
        waiting=WaitingView(scanned_at=now, deadline=now + timedelta(seconds=10), colour=None)
    )
    countdown = by_id(page, "decision-countdown")
    expect(countdown).to_have_attribute("data-seconds-left", "10")
    expect(countdown).to_have_attribute("data-seconds-left", "8", timeout=4_000)


@pytest.mark.parametrize(
    ("kind", "zh", "en"),
    [
        ("scan-again", "请重新扫码", "Scan again"),
        ("step-closer", "请靠近测温", "Step closer"),
        ("step-back", "请稍后退", "Step back a little"),
    ],
)
def test_prompt__shows_for_a_few_seconds_in_both_languages(
    page: Page, serve: Serve, kind: PromptKind, zh: str, en: str
) -> None:
    checkpoint = RecordingCheckpoint()
    page.goto(signed_in(page, serve(checkpoint, "zh")))
    prompt = by_id(page, "prompt")
    expect(prompt).to_be_hidden()
    checkpoint.change(prompt=Prompt(kind=kind, at=datetime.now(UTC)))
    expect(prompt).to_have_text(zh, use_inner_text=True)
    in_sight(page, prompt)
    by_id(page, "language-toggle").click()
    expect(prompt).to_have_text(en, use_inner_text=True)
    expect(prompt).to_be_hidden(timeout=7_000)
    # Another update with the same prompt does not bring it back.
    checkpoint.change(holds=())
    expect(by_id(page, "no-holds")).to_be_visible()
    expect(prompt).to_be_hidden()


# --- the Chinese view, read for English left in it ------------------------------------------


def test_the_chinese_view_has_chinese_words_for_everything_it_shows(
    page: Page, serve: Serve
) -> None:
    reasons = [str(code) for code in REASON_TEXT]
    holds = tuple(
        open_hold(f"H{i}", reasons=(code,), at=datetime.now(UTC) - timedelta(seconds=i))
        for i, code in enumerate(reasons)
    )
    node = node_view(broker_connected=False).model_copy(
        update={
            "devices": {
                "scanner": "fault",
                "thermometer": "unplugged",
                "thermal-array": "disabled",
                "camera": "ok",
                "barrier": "ok",
                "door": "fault",
                "outbox": "ok",
            },
            "trust_list_age_s": None,
        }
    )
    checkpoint = RecordingCheckpoint(holds=holds, node=node)
    server = serve(checkpoint, "zh")
    page.goto(signed_in(page, server))
    expect(by_id(page, "hold-count")).to_have_text(str(len(reasons)))
    assert english_in_chinese_view(page) == []
    assert_chinese_renders(page)

    now = datetime.now(UTC)
    checkpoint.change(
        waiting=WaitingView(scanned_at=now, deadline=now + timedelta(seconds=10), colour="yellow"),
        prompt=Prompt(kind="scan-again", at=now),
    )
    expect(by_id(page, "prompt")).to_be_visible()
    assert english_in_chinese_view(page) == []
    checkpoint.change(node=node.model_copy(update={"outbox_depth": 90_000}))
    shows(by_id(page, "outbox"), "待上传 90,000 条，存储将满")
    assert english_in_chinese_view(page) == []

    # Each form, with its problems and refusals.
    by_id(page, "tab-shift").click()
    by_id(page, "field-badge").fill("HC1:FORGED")
    by_id(page, "shift-start").click()
    shows(by_id(page, "message"), "被拒绝：签名无效：伪造码")
    assert english_in_chinese_view(page) == []
    by_id(page, "field-badge").fill("HC1:BADGE-V001")
    by_id(page, "shift-start").click()
    shows(by_id(page, "message"), "已上岗")
    by_id(page, "tab-register").click()
    by_id(page, "field-id_number").fill("12")
    by_id(page, "registration-submit").click()
    shows(by_id(page, "form-registration"), "证件号码：应为6至18位字母或数字")
    assert english_in_chinese_view(page) == []
    by_id(page, "tab-vehicle").click()
    by_id(page, "add-occupant").click()
    by_id(page, "field-plate").fill("京A12345")
    by_id(page, "occupant-0").fill("36.5")
    by_id(page, "occupant-1").fill("99")
    by_id(page, "vehicle-submit").click()
    shows(by_id(page, "form-vehicle"), "乘车人2体温")
    assert english_in_chinese_view(page) == []
    by_id(page, "tab-disinfection").click()
    by_id(page, "disinfection-submit").click()
    shows(by_id(page, "message"), "已记录消毒：岗亭")
    assert english_in_chinese_view(page) == []

    by_id(page, "tab-gate").click()
    server.stop()
    shows(by_id(page, "alerts"), "与卡口主机断开")
    assert english_in_chinese_view(page) == []
