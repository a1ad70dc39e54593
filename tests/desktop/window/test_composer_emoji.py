"""The SMS window's emoji picker (emoji.js) in real Chromium against a real daemon: Unicode's
groups from the daemon's `emoji_catalog`, picking into the message with the daemon's recents
(shared with the popup), skin tones, search, the keyboard, Esc, and axe-core's verdict.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Locator, Page, expect

from tests.desktop.window.composerpage import fresh_composer
from tests.support.daemonproc import wait_until
from tests.support.ipcworld import BOB_MOBILE, CY
from tests.support.windowpage import WindowWorld

pytestmark = pytest.mark.usefixtures(fresh_composer.__name__)

GROUPS = [
    "Smileys & Emotion",
    "People & Body",
    "Animals & Nature",
    "Food & Drink",
    "Travel & Places",
    "Activities",
    "Objects",
    "Symbols",
    "Flags",
]


def open_picker(page: Page) -> Locator:
    page.get_by_role("region", name="Compose").get_by_role("button", name="Emoji").click()
    picker = page.get_by_role("dialog", name="Emoji")
    expect(picker.get_by_role("button", name="grinning face", exact=True).first).to_be_visible()
    return picker


def test_the_picker_has_unicodes_groups_filled_with_colour_emoji(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    picker = open_picker(page)
    for name in GROUPS:
        expect(picker.get_by_role("group", name=name)).to_be_attached()
        tabs = picker.get_by_role("toolbar", name="Emoji groups")
        expect(tabs.get_by_role("button", name=name, exact=True)).to_be_visible()
    cells = picker.get_by_role("group", name="Smileys & Emotion").get_by_role("button")
    assert cells.count() > 100
    font = cells.first.evaluate("(b) => getComputedStyle(b).fontFamily")
    assert font.startswith('"Noto Color Emoji"')
    # Filled: the visible part of the grid has no large empty area.
    filled = picker.evaluate(
        """(d) => {
          const body = d.querySelector('.emo-body').getBoundingClientRect();
          const shown = [...d.querySelectorAll('.emo-body .emo-cell')].filter((c) => {
            const r = c.getBoundingClientRect();
            return r.bottom > body.top && r.top < body.bottom;
          });
          const area = shown.reduce((a, c) => a + c.offsetWidth * c.offsetHeight, 0);
          return area / (body.width * body.height);
        }"""
    )
    assert filled > 0.6
    picker.get_by_role("toolbar").get_by_role("button", name="Flags", exact=True).click()
    expect(picker.get_by_role("button", name="chequered flag")).to_be_in_viewport()
    expect(picker.get_by_role("button", name="chequered flag")).to_be_focused()


def test_a_picked_emoji_goes_in_the_message_and_into_the_daemons_recents(
    window: WindowWorld,
) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    message = page.get_by_role("region", name="Compose").get_by_role("textbox", name="Message")
    message.fill("Thanks ")
    picker = open_picker(page)
    picker.get_by_role("button", name="red heart", exact=True).first.click()
    expect(message).to_have_value("Thanks ❤️")
    wait_until(lambda: window.daemon.call("emoji_recent", limit=5)[:1] == ["❤️"], 10, "the recent")
    recent = picker.get_by_role("group", name="Recently used")
    expect(recent.get_by_role("button").first).to_have_text("❤️")
    page.keyboard.press("Escape")
    expect(picker).to_be_hidden()
    # Another window (a fresh page) shows it in its recents at once: the daemon keeps them.
    other = window.open_page(conversation=CY)
    again = open_picker(other)
    expect(
        again.get_by_role("group", name="Recently used").get_by_role("button").first
    ).to_have_accessible_name("red heart")


def test_a_skin_tone_applies_to_the_emoji_that_take_one(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    picker = open_picker(page)
    wave = picker.get_by_role("button", name="waving hand", exact=True).first
    expect(wave).to_have_text("👋")
    tone = picker.get_by_role("radio", name="Medium-dark skin tone")
    tone.click()
    expect(tone).to_have_attribute("aria-checked", "true")
    expect(wave).to_have_text("👋🏾")
    expect(picker.get_by_role("button", name="grinning face", exact=True).first).to_have_text("😀")
    wave.click()
    message = page.get_by_role("region", name="Compose").get_by_role("textbox", name="Message")
    expect(message).to_have_value("👋🏾")
    # The choice stays for the next time the picker opens.
    page.keyboard.press("Escape")
    page.reload()
    page.wait_for_selector("html[data-ready]", state="attached")
    picker = open_picker(page)
    expect(picker.get_by_role("radio", name="Medium-dark skin tone")).to_have_attribute(
        "aria-checked", "true"
    )


def test_search_filters_by_name(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    picker = open_picker(page)
    picker.get_by_role("searchbox", name="Search emoji").fill("pizza")
    results = picker.get_by_role("group", name="Search results")
    expect(results.get_by_role("button")).to_have_count(1)
    expect(results.get_by_role("button", name="pizza")).to_have_text("🍕")
    picker.get_by_role("searchbox", name="Search emoji").fill("cat face")
    names = results.get_by_role("button").evaluate_all("(bs) => bs.map((b) => b.ariaLabel)")
    assert "cat face" in names
    assert all("cat" in n and "face" in n for n in names)
    picker.get_by_role("searchbox", name="Search emoji").fill("zzzznothing")
    expect(picker.get_by_text("No emoji found.")).to_be_visible()


def test_the_picker_works_by_keyboard_and_esc_closes_it(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    button = page.get_by_role("region", name="Compose").get_by_role("button", name="Emoji")
    button.focus()
    page.keyboard.press("Enter")
    picker = page.get_by_role("dialog", name="Emoji")
    search = picker.get_by_role("searchbox", name="Search emoji")
    expect(search).to_be_focused()
    expect(picker.get_by_role("button", name="grinning face", exact=True).first).to_be_visible()
    page.keyboard.press("ArrowDown")  # into the grid
    expect(picker.get_by_role("button", name="grinning face", exact=True).first).to_be_focused()
    page.keyboard.press("ArrowRight")
    focused = page.evaluate("() => document.activeElement.textContent")
    assert focused == "😃"
    page.keyboard.press("Enter")
    message = page.get_by_role("region", name="Compose").get_by_role("textbox", name="Message")
    expect(message).to_have_value("😃")
    page.keyboard.press("Escape")
    expect(picker).to_be_hidden()
    expect(button).to_be_focused()


def test_axe_finds_no_serious_violation_with_the_picker_open(window: WindowWorld) -> None:
    for scheme in ("light", "dark"):
        page = window.open_page(conversation=BOB_MOBILE, scheme=scheme, bypass_csp=True)
        open_picker(page)
        results = Axe().run(page, context={"include": [["#composer"]]})
        bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert bad == [], [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in bad]
