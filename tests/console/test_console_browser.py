"""The console page in chromium, as a volunteer uses it, against a recording Checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from edge.gate.views import DisinfectionRound, HoldResolution, Refusal, Registration
from tests.browser import assert_chinese_renders, by_id, eventually, shows
from tests.console.double import Call, RecordingCheckpoint, node_view, open_hold
from tests.console.pages import Serve, signed_in

pytestmark = pytest.mark.browser


def test_a_hold_in_words_then_referred_and_the_queue_follows_live(
    page: Page,
    serve: Serve,
) -> None:
    checkpoint = RecordingCheckpoint()
    page.goto(signed_in(page, serve(checkpoint, "zh")))
    decision = by_id(page, "decision")
    shows(decision, "暂留")
    shows(decision, "体温异常：留观或劝返")
    shows(decision, "38.4 °C")
    shows(decision, "张*丰")
    expect(decision).to_have_attribute("data-outcome", "hold")
    hold = by_id(page, "hold-H1")
    shows(hold, "体温异常：留观或劝返")
    page.evaluate("window.notReloaded = true")

    by_id(page, "resolve-referred-H1").click()

    expect(hold).to_have_count(0)
    eventually(lambda: len(checkpoint.calls) == 1)
    assert checkpoint.calls == [
        Call("resolve_hold", ("H1", HoldResolution(resolution="referred"), "V001"))
    ]
    shows(by_id(page, "message"), "已转留观室")
    # The node's own changes arrive through the event stream, without a reload.
    checkpoint.add_hold(open_hold("H2", reasons=("yellow-code",), masked_name="李*"))
    shows(by_id(page, "hold-H2"), "黄码：登记后放行")
    shows(decision, "李*")
    checkpoint.change(holds=())  # another console resolved it
    expect(by_id(page, "hold-H2")).to_have_count(0)
    expect(by_id(page, "no-holds")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True


def test_language_switch_changes_the_words_and_is_remembered(
    page: Page,
    serve: Serve,
) -> None:
    page.goto(signed_in(page, serve(RecordingCheckpoint(), "zh")))
    decision = by_id(page, "decision")
    shows(decision, "体温异常：留观或劝返")
    expect(by_id(page, "tab-register")).to_have_text("人工登记", use_inner_text=True)

    by_id(page, "language-toggle").click()

    shows(decision, "HOLD")
    shows(decision, "Fever: observation room or turn back")
    expect(decision).not_to_contain_text("体温异常", use_inner_text=True)
    expect(by_id(page, "tab-register")).to_have_text("Register", use_inner_text=True)
    shows(by_id(page, "resolve-turned-back-H1"), "Turn back")
    # The masked name stays Chinese in the English view: it must still be readable.
    assert_chinese_renders(page, '[data-testid="decision-name"]')
    page.reload()
    shows(decision, "Fever: observation room or turn back")


def test_registration_marks_a_wrong_id_number_and_sends_a_right_one(
    page: Page,
    serve: Serve,
) -> None:
    checkpoint = RecordingCheckpoint(holds=(open_hold("H1", reasons=("yellow-code",)),))
    page.goto(signed_in(page, serve(checkpoint, "en")))
    by_id(page, "tab-register").click()
    form = by_id(page, "form-registration")
    shows(form, "Only a keyed hash and the last 4 characters are kept")
    by_id(page, "field-name").fill("张三丰")
    by_id(page, "field-id_number").fill("12345")
    by_id(page, "field-phone").fill("13800138000")
    by_id(page, "registration-submit").click()

    error = form.locator('[data-error-for="registration.id_number"]')
    expect(error).to_have_text("ID number: 6 to 18 letters or digits", use_inner_text=True)
    expect(by_id(page, "field-id_number")).to_have_attribute("aria-invalid", "true")
    assert checkpoint.calls_to("register") == []

    by_id(page, "field-id_number").fill("110101199003077777")
    by_id(page, "registration-submit").click()

    shows(by_id(page, "message"), "Registration saved")
    expect(error).to_be_empty()
    expected = Registration(name="张三丰", id_number="110101199003077777", phone="13800138000")
    assert checkpoint.calls_to("register") == [Call("register", (expected, "V001"))]

    # The same form ends a hold as "registered" when opened from the hold's button.
    by_id(page, "tab-gate").click()
    by_id(page, "resolve-registered-H1").click()
    shows(by_id(page, "registering-hold"), "Registering the person held: 张*丰")
    by_id(page, "field-name").fill("张三丰")
    by_id(page, "field-id_number").fill("11010119900307777X")
    by_id(page, "registration-submit").click()
    expect(by_id(page, "hold-H1")).to_have_count(0)
    shows(by_id(page, "message"), "Registration saved")
    expect(by_id(page, "tab-gate")).to_have_attribute("aria-current", "page")
    registered = HoldResolution(
        resolution="registered",
        registration=Registration(name="张三丰", id_number="11010119900307777X"),
    )
    assert checkpoint.calls_to("resolve_hold") == [Call("resolve_hold", ("H1", registered, "V001"))]


def test_a_badge_signs_in_the_volunteer_who_resolves_and_the_session_ends_with_the_shift(
    page: Page,
    serve: Serve,
) -> None:
    checkpoint = RecordingCheckpoint(node=node_view(volunteers=()))
    page.goto(serve(checkpoint, "en").url)
    # Nobody signed in: the badge is asked for, and nobody's data is on the page.
    shows(by_id(page, "no-volunteer"), "Scan your badge")
    expect(by_id(page, "tab-shift")).to_have_attribute("aria-current", "page")
    expect(by_id(page, "hold-H1")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("张*丰")

    by_id(page, "field-badge").fill("HC1:FORGED")
    by_id(page, "shift-start").click()
    shows(by_id(page, "form-shift"), "Bad signature: forged code")
    by_id(page, "field-badge").fill("HC1:BADGE-V002")
    by_id(page, "shift-sign-in").click()  # not on duty yet: signing in is not starting
    shows(by_id(page, "form-shift"), "not on duty")
    by_id(page, "field-badge").fill("HC1:BADGE-V002")
    by_id(page, "shift-start").click()
    shows(by_id(page, "message"), "Shift started: 李* (V002)")
    expect(by_id(page, "field-badge")).to_have_value("")
    expect(by_id(page, "no-volunteer")).to_have_count(0)
    shows(by_id(page, "sign-out"), "李*")

    # Signed in, the holds are there, and what the volunteer does is done as V002.
    by_id(page, "tab-gate").click()
    by_id(page, "resolve-released-H1").click()
    by_id(page, "remeasure-temperature-H1").fill("36.8")
    checkpoint.refuse_next("resolve_hold", Refusal("sensor-reading-required", "typed"))
    by_id(page, "remeasure-confirm-H1").click()
    shows(by_id(page, "hold-H1"), "Thermometer works: measure again at it")
    by_id(page, "remeasure-temperature-H1").fill("")  # released on the thermometer's reading
    by_id(page, "remeasure-confirm-H1").click()
    expect(by_id(page, "hold-H1")).to_have_count(0)
    typed = HoldResolution(resolution="released", temperature_c=36.8)
    released = HoldResolution(resolution="released")
    assert checkpoint.calls_to("resolve_hold") == [
        Call("resolve_hold", ("H1", typed, "V002")),
        Call("resolve_hold", ("H1", released, "V002")),
    ]

    # The shift ends at the gate's scanner: the page's session ends with it, by itself.
    checkpoint.add_hold(open_hold("H2", masked_name="赵*"))
    shows(by_id(page, "hold-H2"), "赵*")
    checkpoint.change(node=node_view(volunteers=()))
    shows(by_id(page, "no-volunteer"), "Scan your badge")
    expect(by_id(page, "hold-H2")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("赵*")
    assert page.context.request.get(f"{page.url}api/state").status == 401


def test_vehicle_occupants_are_added_removed_and_marked(
    page: Page,
    serve: Serve,
) -> None:
    checkpoint = RecordingCheckpoint()
    page.goto(signed_in(page, serve(checkpoint, "en")))
    by_id(page, "tab-vehicle").click()
    by_id(page, "field-plate").fill("京a12345")
    by_id(page, "occupant-0").fill("36.6")
    for _ in range(2):
        by_id(page, "add-occupant").click()
    by_id(page, "occupant-1").fill("99")
    by_id(page, "occupant-2").fill("36.9")
    by_id(page, "vehicle-submit").click()
    form = by_id(page, "form-vehicle")
    shows(
        form.locator('[data-error-for="occupant_temperatures_c.1"]'),
        "Occupant 2 temperature: must be at most 45.0 °C",
    )
    assert checkpoint.calls_to("check_vehicle") == []

    by_id(page, "occupant-1").fill("38.2")
    by_id(page, "occupants").locator("li").nth(2).get_by_role("button").click()  # remove row 3
    by_id(page, "vehicle-submit").click()

    result = by_id(page, "vehicle-result")
    shows(result, "HOLD")
    shows(result, "An occupant has a fever")
    [call] = checkpoint.calls_to("check_vehicle")
    assert call.args[0].vehicle_plate == "京A12345"
    assert call.args[0].occupant_temperatures_c == (36.6, 38.2)


def test_disinfection_round_is_logged(page: Page, serve: Serve) -> None:
    checkpoint = RecordingCheckpoint()
    page.goto(signed_in(page, serve(checkpoint, "en")))
    by_id(page, "tab-disinfection").click()
    by_id(page, "form-disinfection").get_by_text("Observation room", exact=True).click()
    by_id(page, "field-agent").fill("84 disinfectant 1:100")
    by_id(page, "disinfection-submit").click()
    shows(by_id(page, "message"), "Disinfection logged: Observation room")
    expected = DisinfectionRound(area="observation-room", agent="84 disinfectant 1:100")
    assert checkpoint.calls_to("log_disinfection") == [Call("log_disinfection", (expected, "V001"))]


def test_broker_offline_and_lost_node_are_said_in_words(page: Page, serve: Serve) -> None:
    checkpoint = RecordingCheckpoint()
    server = serve(checkpoint, "en")
    page.goto(signed_in(page, server))
    shows(by_id(page, "broker-state"), "Server: connected")
    shows(by_id(page, "outbox"), "3 waiting to upload")
    shows(by_id(page, "devices"), "Thermometer ok")

    node = checkpoint.update().node
    checkpoint.change(
        node=node.model_copy(
            update={"broker_connected": False, "devices": {**node.devices, "scanner": "unplugged"}}
        )
    )
    shows(by_id(page, "broker-state"), "Offline: records are kept and uploaded later")
    shows(by_id(page, "alerts"), "Offline: records are kept and uploaded later")
    shows(by_id(page, "devices"), "Scanner unplugged")
    # The page still acts while the broker is away: the node keeps the event.
    by_id(page, "resolve-turned-back-H1").click()
    expect(by_id(page, "hold-H1")).to_have_count(0)

    server.stop()
    shows(by_id(page, "alerts"), "Lost the gate node, reconnecting")
    expect(by_id(page, "decision")).to_have_attribute("data-live", "false")


def test_readable_at_arms_length(page: Page, serve: Serve, tmp_path: Path) -> None:
    checkpoint = RecordingCheckpoint(
        holds=(open_hold("H1"), open_hold("H2", reasons=("yellow-code",), masked_name="李*"))
    )
    page.goto(signed_in(page, serve(checkpoint, "zh")))
    expect(by_id(page, "hold-H2")).to_be_visible()
    page.screenshot(path=tmp_path / "console.png", full_page=True)
    assert_chinese_renders(page, "body")

    sizes = page.evaluate(
        """() => ({
        base: parseFloat(getComputedStyle(document.body).fontSize),
        outcome: parseFloat(getComputedStyle(document.querySelector('.outcome')).fontSize),
        smallestText: Math.min(...Array.from(document.querySelectorAll('body *'))
            .filter((e) => e.offsetParent && e.childNodes.length
                && Array.from(e.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim()))
            .map((e) => parseFloat(getComputedStyle(e).fontSize))),
        lowestButton: Math.min(...Array.from(document.querySelectorAll('button'))
            .filter((b) => b.offsetParent).map((b) => b.getBoundingClientRect().height)),
    })"""
    )
    assert sizes["base"] >= 24
    assert sizes["smallestText"] >= 24
    assert sizes["outcome"] >= 4 * sizes["base"]
    assert sizes["lowestButton"] >= 64
    # Colour is not the only signal: the outcome has an icon and a word.
    expect(by_id(page, "decision-outcome")).to_have_text("⚠ 暂留", use_inner_text=True)
