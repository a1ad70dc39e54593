"""Drafts in the SMS window's composer (composer.js) in real Chromium against a real daemon:
a draft stays with its conversation when another is opened and after the window is closed
and opened again; it is saved on a pause in typing, not on every keystroke.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.desktop.window.composerpage import fresh_composer
from tests.support.daemonproc import wait_until
from tests.support.ipcworld import BOB_MOBILE, CY
from tests.support.windowpage import WindowWorld

pytestmark = pytest.mark.usefixtures(fresh_composer.__name__)


def message_box(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_role("region", name="Compose").get_by_role("textbox", name="Message")


def open_in_list(page: Page, name: str) -> None:
    page.get_by_role("listbox", name="Conversations").get_by_role(
        "option", name=re.compile(name)
    ).click()


def test_a_draft_survives_switching_conversations_and_is_saved_on_a_pause(
    window: WindowWorld,
) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    calls: list[str] = []

    def watch(ws: WebSocket) -> None:
        ws.on(
            "framesent",
            lambda payload: (
                calls.append(json.loads(payload).get("method", ""))
                if isinstance(payload, str)
                else None
            ),
        )

    page.on("websocket", watch)
    page.reload()  # so the page's WebSocket is watched from its start
    page.wait_for_selector("html[data-ready]", state="attached")
    message_box(page).click()
    page.keyboard.type("Half a thought for Bob", delay=15)
    bob = window.daemon.call("messages", conversation=BOB_MOBILE, limit=1)["conversation"]["id"]
    wait_until(
        lambda: (
            window.daemon.call("draft_get", conversation=bob)["text"] == "Half a thought for Bob"
        ),
        10,
        "the draft saved after the pause",
    )
    # Playwright hands over frame events while it talks to the page: talk until it has.
    wait_until(lambda: page.evaluate("0") == 0 and "draft_set" in calls, 10, "the draft_set frame")
    assert calls.count("draft_set") <= 3  # 22 keystrokes, saved on pauses only
    open_in_list(page, "Cy Ng")
    expect(page).to_have_url(re.compile(r"#/c/\d+$"))
    expect(message_box(page)).to_have_value("")
    message_box(page).fill("Something for Cy")
    open_in_list(page, "Bob Roe")
    expect(message_box(page)).to_have_value("Half a thought for Bob")
    open_in_list(page, "Cy Ng")
    expect(message_box(page)).to_have_value("Something for Cy")
    cy = window.daemon.call("messages", conversation=CY, limit=1)["conversation"]["id"]
    assert window.daemon.call("draft_get", conversation=cy)["text"] == "Something for Cy"


def test_pagehide_saves_the_draft_without_waiting_for_a_pause(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    bob = window.daemon.call("messages", conversation=BOB_MOBILE, limit=1)["conversation"]["id"]
    # The text is there but no input event started the pause's timer: only pagehide saves.
    message_box(page).evaluate(
        """(el) => {
          el.value = "Saved as the window went";
          window.dispatchEvent(new Event("pagehide"));
        }"""
    )
    wait_until(
        lambda: (
            window.daemon.call("draft_get", conversation=bob)["text"] == "Saved as the window went"
        ),
        10,
        "the draft saved on pagehide",
    )


def test_a_draft_survives_closing_and_reopening_the_window(window: WindowWorld) -> None:
    page = window.open_page(conversation=CY)
    message_box(page).fill("Typed, then the window closed")
    cy = window.daemon.call("messages", conversation=CY, limit=1)["conversation"]["id"]
    wait_until(
        lambda: (
            window.daemon.call("draft_get", conversation=cy)["text"]
            == "Typed, then the window closed"
        ),
        10,
        "the draft saved",
    )
    page.close(run_before_unload=True)
    again = window.open_page(conversation=CY)
    expect(message_box(again)).to_have_value("Typed, then the window closed")
    # Sending clears it, here and in the daemon.
    again.get_by_role("region", name="Compose").get_by_role("button", name="Send").click()
    expect(message_box(again)).to_have_value("")
    wait_until(
        lambda: window.daemon.call("draft_get", conversation=cy)["text"] == "",
        10,
        "the draft cleared by the send",
    )
