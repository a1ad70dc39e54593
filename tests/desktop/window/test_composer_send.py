"""The SMS window's composer (composer.js) in real Chromium against a real daemon and server:
the counter is the daemon's `count`, sending by button, by Ctrl+Enter and by keyboard alone,
a first send to a new number, and the message reaching a second device through the server.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.desktop.window.composerpage import fresh_composer, sent_text
from tests.support.daemonproc import wait_until
from tests.support.ipcworld import BOB_MOBILE, CY
from tests.support.windowpage import WindowWorld

pytestmark = pytest.mark.usefixtures(fresh_composer.__name__)


def counter_line(window: WindowWorld, text: str) -> str:
    count = window.daemon.call("count", text=text)
    return f"{count['remaining']} characters left · {count['segments']}/4 SMS"


def test_the_counter_shows_the_daemons_count_and_send_delivers(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    section = page.get_by_role("region", name="Compose")
    message = section.get_by_role("textbox", name="Message")
    counter = section.get_by_role("status", name="Counter")
    expect(counter).to_have_text(counter_line(window, ""))
    message.fill("Lunch at one? 🙂")
    expect(counter).to_have_text(counter_line(window, "Lunch at one? 🙂"))
    long = "x" * 200
    message.fill(long)
    expect(counter).to_have_text(counter_line(window, long))
    assert "/4 SMS" in counter_line(window, long)
    assert counter_line(window, long).endswith("2/4 SMS")
    message.fill("See you at one 🙂")
    section.get_by_role("button", name="Send", exact=True).click()
    expect(message).to_have_value("")
    sent = sent_text(window, BOB_MOBILE, "See you at one 🙂", state="sent")
    assert sent["direction"] == "out"
    # The second device of the same extension gets it through the real server.
    other = window.second_device()
    wait_until(
        lambda: any(
            m["text"] == "See you at one 🙂"
            for m in other.call("messages", conversation=BOB_MOBILE)["messages"]
        ),
        20,
        "the second device to see the message",
    )
    assert page.errors == []  # type: ignore[attr-defined]


def test_enter_is_a_new_line_and_ctrl_enter_sends(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    message = page.get_by_role("region", name="Compose").get_by_role("textbox", name="Message")
    message.click()
    page.keyboard.type("first line")
    page.keyboard.press("Enter")
    page.keyboard.type("second line")
    expect(message).to_have_value("first line\nsecond line")
    page.keyboard.press("Control+Enter")
    expect(message).to_have_value("")
    assert sent_text(window, BOB_MOBILE, "first line\nsecond line")["direction"] == "out"


def test_sending_with_the_keyboard_alone(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    message = page.get_by_role("region", name="Compose").get_by_role("textbox", name="Message")
    for _ in range(60):  # Tab through the page until the message input has the focus
        if message.evaluate("(el) => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(message).to_be_focused()
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Control+Enter")
    expect(message).to_have_value("")
    sent_text(window, BOB_MOBILE, "Typed without a mouse")
    # The Send button by keyboard too: Tab from the input reaches it.
    page.keyboard.type("And by the button")
    send = page.get_by_role("region", name="Compose").get_by_role("button", name="Send")
    for _ in range(5):
        page.keyboard.press("Tab")
        if send.evaluate("(el) => el === document.activeElement"):
            break
    expect(send).to_be_focused()
    page.keyboard.press("Enter")
    sent_text(window, BOB_MOBILE, "And by the button")


def test_a_first_send_to_a_new_number_opens_its_conversation(window: WindowWorld) -> None:
    number = "+15557659999"
    page = window.open_page(hash=f"#/new/{number}")
    message = page.get_by_role("region", name="Compose").get_by_role("textbox", name="Message")
    message.fill("Hello, new friend")
    page.get_by_role("region", name="Compose").get_by_role("button", name="Send").click()
    sent = sent_text(window, number, "Hello, new friend")
    page.wait_for_url(re.compile(rf"#/c/{sent['conversation_id']}$"))
    expect(message).to_have_value("")


def test_the_counter_goes_to_mms_past_four_segments(window: WindowWorld) -> None:
    page = window.open_page(conversation=CY)
    message = page.get_by_role("region", name="Compose").get_by_role("textbox", name="Message")
    text = "y" * 700  # past 4 GSM-7 segments (612): an MMS
    message.fill(text)
    count = window.daemon.call("count", text=text)
    assert count["kind"] == "mms"
    counter = page.get_by_role("region", name="Compose").get_by_role("status", name="Counter")
    expect(counter).to_have_text(f"{count['chars_left']} characters left · MMS")
