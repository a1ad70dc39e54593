"""The SMS window by keyboard alone, in a real Chromium against a real daemon and server:
Ctrl+K / Ctrl+F to search, Tab to the list, arrows and Enter to open, Alt+Up/Down for the
previous/next conversation, the messages by arrows, the message menu by Shift+F10 or the
context-menu key, Esc to close it, the "?" sheet, the unread menu."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.ipcworld import BOB_MOBILE, CY
from tests.support.windowpage import WindowWorld


def conv(window: WindowWorld, ref: str) -> int:
    return int(window.daemon.call("messages", conversation=ref, limit=1)["conversation"]["id"])


def tab_until(page: Page, selector: str, limit: int = 25) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_search_and_open_conversations_by_keyboard(window: WindowWorld) -> None:
    page = window.open_page()
    page.keyboard.press("Control+k")
    expect(page.get_by_role("searchbox", name="Search")).to_be_focused()
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 700, "y": 400})
    page.keyboard.press("Control+f")
    expect(page.get_by_role("searchbox", name="Search")).to_be_focused()
    tab_until(page, "[role=listbox]")
    listbox = page.get_by_role("listbox", name="Conversations")
    expect(listbox).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(listbox).to_have_attribute("aria-activedescendant", f"conv-{conv(window, CY)}")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"#/c/{conv(window, CY)}$"))
    page.keyboard.press("Alt+ArrowUp")
    expect(page).to_have_url(re.compile(rf"#/c/{conv(window, BOB_MOBILE)}$"))
    page.keyboard.press("Alt+ArrowDown")
    expect(page).to_have_url(re.compile(rf"#/c/{conv(window, CY)}$"))


def test_the_message_menu_by_keyboard(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    log = page.get_by_role("log", name="Messages")
    expect(log).to_contain_text("Hi Ann")
    tab_until(page, "[role=log], [role=log] .msg")
    page.keyboard.press("ArrowUp")
    focused = page.locator(".msg:focus")
    expect(focused).to_have_count(1)
    page.keyboard.press("Shift+F10")
    menu = page.get_by_role("menu", name="Message")
    expect(menu.get_by_role("menuitem", name="Copy")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Delete")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(focused).to_have_count(1)  # the focus is back on the message
    page.keyboard.press("ContextMenu")
    expect(page.get_by_role("menu", name="Message")).to_be_visible()
    page.keyboard.press("Enter")  # Copy
    expect(page.get_by_role("menu", name="Message")).to_have_count(0)
    text = page.evaluate("navigator.clipboard.readText()")
    assert text
    assert text in log.inner_text()


def test_the_shortcuts_sheet_and_the_unread_menu_by_keyboard(window: WindowWorld) -> None:
    page = window.open_page()
    page.locator("body").click(position={"x": 700, "y": 400})
    page.keyboard.press("?")
    sheet = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(sheet).to_contain_text("Ctrl+K")
    expect(sheet).to_contain_text("Alt+Up")
    page.keyboard.press("Escape")
    expect(sheet).to_have_count(0)
    tab_until(page, "#unread")
    page.keyboard.press("Enter")
    menu = page.get_by_role("menu", name="Unread messages")
    expect(menu.get_by_role("menuitem").first).to_be_focused()
    page.keyboard.press("End")
    expect(menu.get_by_role("menuitem", name="Mark all as read")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(page.get_by_role("button", name="Unread messages")).to_be_focused()
