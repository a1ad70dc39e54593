"""The SMS window's left column in a real Chromium against a real daemon and server:
the conversation list, its unread badges and live updates (tests/support/windowpage.py)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.windowpage import WindowWorld


def test_the_list_shows_every_conversation_most_recent_first(window: WindowWorld) -> None:
    page = window.open_page()
    listbox = page.get_by_role("listbox", name="Conversations")
    options = listbox.get_by_role("option")
    expect(options).to_have_count(2)
    expect(options.nth(0)).to_contain_text("Bob Roe")
    expect(options.nth(1)).to_contain_text("Cy Ng")
    page.screenshot(path="/tmp/ps/list.png")
    assert page.errors == []  # type: ignore[attr-defined]
