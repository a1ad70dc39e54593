"""The SMS window's left column in a real Chromium against a real daemon and server: the
conversation list, its unread badges, the "Unread messages" menu and "Mark all as read",
and "Copy my number" (tests/support/windowpage.py). Tests run in file order; those about
unread counts set their own first (`unread_state`), so each also runs again (--count)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Playwright, expect

from tests.support.daemonproc import wait_until
from tests.support.desktop import DesktopEnv, require_desktop
from tests.support.ipcworld import ANN, BOB_MOBILE, CY
from tests.support.windowpage import CHROMIUM, WindowWorld


def settle_read(window: WindowWorld) -> None:
    """Wait until the server's echo of Ann's read of Bob is behind the daemon.

    The daemon's `mark_unread` is local and the server's read marks only move forward, so
    the echo of the read the opening sent, coming back after it, reads it again (a race
    in the daemon, not the page). A message arriving after the echo and seen by the
    daemon proves the echo was applied: events come in order.
    """
    msgs = window.daemon.call("messages", conversation=BOB_MOBILE)["messages"]
    newest = max(m["server_id"] for m in msgs if m["direction"] == "in")

    def server_has_it() -> bool:
        with window.server.store() as st:
            row = st.conn.execute(
                "SELECT up_to FROM reads WHERE ext = '1001' AND remote = ?", (BOB_MOBILE,)
            ).fetchone()
        return row is not None and row[0] >= newest

    wait_until(server_has_it, 15, "the read mark on the server")
    window.receive(CY, "A marker after the read")
    wait_until(
        lambda: any(
            m["text"] == "A marker after the read"
            for m in window.daemon.call("messages", conversation=CY, limit=5)["messages"]
        ),
        15,
        "the daemon past the read's echo",
    )


def unread_state(window: WindowWorld, bob: int, cy: int) -> None:
    """Exactly `bob` unread from Bob and `cy` from Cy, whatever the tests before left (or
    this test's earlier run, under pytest --count): all read, then that many arrive."""
    window.daemon.call("mark_read")
    wait_until(lambda: window.daemon.call("status")["unread"] == 0, 15, "everything read")
    tag = os.urandom(3).hex()
    for n in range(cy):
        window.receive(CY, f"Unread from Cy {n} {tag}")
    for n in range(bob):  # Bob's last: his conversation is the most recent, as at the start
        window.receive(BOB_MOBILE, f"Unread from Bob {n} {tag}")
    wait_until(
        lambda: window.daemon.call("status")["unread"] == bob + cy, 15, "the arrivals unread"
    )


def test_the_list_shows_every_conversation_most_recent_first(window: WindowWorld) -> None:
    page = window.open_page()
    listbox = page.get_by_role("listbox", name="Conversations")
    options = listbox.get_by_role("option")
    expect(options).to_have_count(2)
    expect(options.nth(0)).to_have_accessible_name(
        re.compile(r"^Bob Roe, 2 unread, Bo here: I will join you too, ")
    )
    expect(options.nth(1)).to_have_accessible_name(
        re.compile(r"^Cy Ng, 1 unread, The scans, as promised, ")
    )
    expect(options.nth(0).locator(".badge")).to_have_text("2")
    expect(page.locator("#me")).to_contain_text("Ann Lee")
    expect(page.locator("#me")).to_contain_text(ANN)
    assert page.errors == []  # type: ignore[attr-defined]


def test_copy_my_number_copies_it_and_says_so(window: WindowWorld) -> None:
    page = window.open_page()
    page.get_by_role("button", name="Copy my number").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == ANN
    expect(page.locator("#announce")).to_have_text(f"Your number {ANN} was copied")


def test_the_unread_menu_lists_conversations_and_opens_one(window: WindowWorld) -> None:
    unread_state(window, bob=2, cy=1)
    page = window.open_page()
    button = page.get_by_role("button", name="Unread messages")
    expect(button.locator(".count")).to_have_text("3")
    button.click()
    menu = page.get_by_role("menu", name="Unread messages")
    expect(menu.get_by_role("menuitem")).to_have_text(
        ["Bob Roe (2)", "Cy Ng (1)", "Mark all as read"]
    )
    menu.get_by_role("menuitem", name="Bob Roe (2)").click()
    expect(menu).to_have_count(0)
    bob = window.daemon.call("messages", conversation=BOB_MOBILE, limit=1)["conversation"]
    expect(page).to_have_url(re.compile(rf"#/c/{bob['id']}$"))
    expect(button.locator(".count")).to_have_text("1")  # Bob's are read now


def test_mark_all_as_read_clears_the_badge(window: WindowWorld) -> None:
    unread_state(window, bob=0, cy=1)
    page = window.open_page()
    button = page.get_by_role("button", name="Unread messages")
    expect(button.locator(".count")).to_have_text("1")
    button.click()
    page.get_by_role("menu", name="Unread messages").get_by_role(
        "menuitem", name="Mark all as read"
    ).click()
    expect(button.locator(".count")).to_be_hidden()
    expect(page.get_by_role("option", name=re.compile("unread"))).to_have_count(0)
    assert window.daemon.call("status")["unread"] == 0
    # At zero the menu says so, and an arrival brings the red circle back.
    window.receive(BOB_MOBILE, "One more")
    expect(button.locator(".count")).to_have_text("1")


def test_mark_as_unread_in_the_conversation_menu(window: WindowWorld) -> None:
    unread_state(window, bob=1, cy=0)
    page = window.open_page(conversation=BOB_MOBILE)
    button = page.get_by_role("button", name="Unread messages")
    expect(button.locator(".count")).to_be_hidden()
    settle_read(window)
    page.get_by_role("button", name="Conversation menu").click()
    page.get_by_role("menu", name="Conversation").get_by_role(
        "menuitem", name="Mark as unread"
    ).click()
    expect(page).to_have_url(re.compile("#/$"))
    expect(page.get_by_role("option", name=re.compile(r"^Bob Roe, 1 unread"))).to_have_count(1)
    expect(button.locator(".count")).to_have_text("2")  # Bob's 1 and the marker from Cy


def test_copy_my_number_reaches_the_desktop_clipboard(
    window: WindowWorld, playwright: Playwright, tmp_path: Path
) -> None:
    """In a visible Chromium on a real X display: the number is on X's CLIPBOARD, read
    back with xclip as any other program would paste it."""
    require_desktop()
    with DesktopEnv.start(tmp_path / "desk", tray=False, notifications=False) as desk:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox"],
            headless=False,
            env={**os.environ, **desk.env},
        )
        try:
            ctx = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
            page = ctx.new_page()
            page.goto(window.url())
            page.wait_for_selector("html[data-ready]", state="attached")
            page.get_by_role("button", name="Copy my number").click()
            expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
            wait_until(lambda: desk.clipboard() == ANN, 10, "the number on X's clipboard")
        finally:
            browser.close()
