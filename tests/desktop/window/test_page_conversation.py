"""The open conversation in a real Chromium against a real daemon and server: bubbles,
sharer headers, marking read on every device, live arrival, the message menu (Copy,
Delete), Delete conversation (asked first, synced), Resend after a failure (once: the
failed message then shows it was resent), attachments.

The tests share one world (tests/support/windowpage.py), but none uses what another left
behind: each brings in the messages (and the conversation) it reads or changes, with text
of its own per run (`tag`), so `pytest --count N` repeats any of them in any order.
"""

from __future__ import annotations

import os
import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.support.daemonproc import DaemonProcess
from tests.support.ipcworld import BIG_FILE, BOB_MOBILE, CY
from tests.support.photos import photo_jpeg
from tests.support.windowpage import WindowWorld


def conv_id(window: WindowWorld, ref: str) -> int:
    return int(window.daemon.call("messages", conversation=ref, limit=1)["conversation"]["id"])


def tag() -> str:
    """Text no earlier run wrote: a bubble found by it is this run's only one."""
    return os.urandom(3).hex()


def has(daemon: DaemonProcess, remote: str, text: str) -> bool:
    return any(m["text"] == text for m in daemon.call("messages", conversation=remote)["messages"])


def arrive(
    window: WindowWorld, remote: str, text: str, files: list[tuple[bytes, str]] | None = None
) -> dict[str, Any]:
    """A message from `remote` reaches the server; returns once Ann's daemon has it."""
    got = window.receive(remote, text, files or [])
    window.daemon.wait_until(lambda: has(window.daemon, remote, text), 20, f"{text!r} arriving")
    return got


def log(page: Page) -> Locator:
    return page.get_by_role("log", name="Messages")


def bubble(page: Page, text: str) -> Locator:
    return log(page).get_by_role("article").filter(has_text=text)


def test_opening_a_conversation_marks_it_read_on_every_device(window: WindowWorld) -> None:
    other = window.second_device()
    bob = conv_id(window, BOB_MOBILE)
    window.daemon.call("mark_read", conversation=BOB_MOBILE)  # two unread: this run's own
    t = tag()
    first = f"Lunch at noon, Ann? {t}"
    arrive(window, BOB_MOBILE, first)
    arrive(window, BOB_MOBILE, f"Or at one {t}")
    other.wait_until(
        lambda: (
            [c["unread"] for c in other.call("conversations") if c["remote"] == BOB_MOBILE] == [2]
        ),
        20,
        "Bob's two messages unread on the second device",
    )
    page = window.open_page()
    option = page.get_by_role("option", name="Bob Roe")
    expect(option).to_have_accessible_name(re.compile(r"^Bob Roe, 2 unread, "))
    option.click()
    expect(page).to_have_url(re.compile(rf"#/c/{bob}$"))
    expect(bubble(page, first)).to_have_class(re.compile(r"\bin\b"))
    expect(page.locator("#bar")).to_contain_text("Bob Roe")
    expect(page.locator("#bar")).to_contain_text(BOB_MOBILE)
    expect(option).not_to_have_accessible_name(re.compile("unread"))
    other.wait_until(
        lambda: all(
            c["unread"] == 0 for c in other.call("conversations") if c["remote"] == BOB_MOBILE
        ),
        20,
        "the read mark on the second device",
    )
    assert page.errors == []  # type: ignore[attr-defined]


def test_other_sharers_messages_carry_their_name_and_avatar_and_own_ones_none(
    window: WindowWorld,
) -> None:
    t = tag()
    window.daemon.call("send", to=BOB_MOBILE, text=f"Ann here, see you both {t}")
    window.sharer_sends(BOB_MOBILE, f"Bo again: running late {t}")
    page = window.open_page(conversation=BOB_MOBILE)
    bo = bubble(page, f"Bo again: running late {t}")
    expect(bo.locator(".sharer")).to_have_text("BDBo Diaz")
    expect(bo).to_have_class(re.compile(r"\bout\b"))
    mine = bubble(page, f"Ann here, see you both {t}")
    expect(mine).to_have_class(re.compile(r"\bout\b"))
    expect(mine.locator(".sharer")).to_have_count(0)
    # The shared number: who shares it.
    page.get_by_role("button", name="Multiple users share this number").click()
    dialog = page.get_by_role("dialog", name="Multiple users share this number")
    expect(dialog.get_by_role("list", name="Sharers")).to_contain_text("Bo Diaz")
    expect(dialog).to_contain_text("extension 1002")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_another_sharers_message_shows_the_state_the_server_gives_it(
    window: WindowWorld,
) -> None:
    t = tag()
    table, cake_text = f"Bo: booking the table {t}", f"Bo: and the cake {t}"
    page = window.open_page(conversation=BOB_MOBILE)
    server_id = window.sharer_sends(BOB_MOBILE, table, state=None)
    bo = bubble(page, table)
    expect(bo.locator(".state")).to_have_text("Sending…")  # the server has no verdict yet
    window.sharer_state(server_id, "sent")
    expect(bo.locator(".state")).to_have_text("Sent")
    server_id = window.sharer_sends(BOB_MOBILE, cake_text, state=None)
    window.sharer_state(server_id, "failed", "Carrier refused it")
    cake = bubble(page, cake_text)
    expect(cake.locator(".state")).to_have_text("Failed: Carrier refused it")
    expect(cake.get_by_role("button", name="Resend")).to_have_count(0)  # Bo's to resend
    # Each state as the daemon has it from the server, for every device.
    states = {
        m["text"]: m["state"]
        for m in window.daemon.call("messages", conversation=BOB_MOBILE)["messages"]
    }
    assert states[table] == "sent"
    assert states[cake_text] == "failed"


def test_a_message_arriving_shows_at_once_without_a_reload(window: WindowWorld) -> None:
    window.daemon.call("mark_read")  # what an earlier run left unread (Bob's live one)
    t = tag()
    arrive(window, CY, f"Cy, before the page {t}")
    page = window.open_page(conversation=CY)
    expect(bubble(page, f"Cy, before the page {t}")).to_be_visible()
    page.evaluate("window.__same_page = true")
    window.receive(CY, f"Live from Cy 🎉 {t} https://example.com/x")
    arrived = bubble(page, f"Live from Cy 🎉 {t}")
    expect(arrived).to_be_visible()
    expect(arrived.get_by_role("link", name="https://example.com/x")).to_be_visible()
    cy = page.get_by_role("option", name=re.compile("^Cy Ng"))
    expect(cy).to_contain_text(f"Live from Cy 🎉 {t}")
    # Open and visible: read at once, on the daemon too.
    expect(cy).not_to_have_accessible_name(re.compile("unread"))
    window.daemon.wait_until(
        lambda: all(c["unread"] == 0 for c in window.daemon.call("conversations")),
        10,
        "the arrival read",
    )
    # In the list, a message for another conversation moves it to the top.
    window.receive(BOB_MOBILE, f"Bob, live {t}")
    first = page.get_by_role("listbox", name="Conversations").get_by_role("option").first
    expect(first).to_have_accessible_name(re.compile(rf"^Bob Roe, 1 unread, Bob, live {t}"))
    assert page.evaluate("window.__same_page") is True
    expect(page.locator("#announce")).to_have_text(re.compile(r"[Nn]ew messages? from .*Bob Roe"))


def test_copy_the_whole_message_or_the_selected_text(window: WindowWorld) -> None:
    text = f"Hi {tag()}, lunch at noon?"  # "lunch" (11 to 16) in the middle, clicked below
    arrive(window, BOB_MOBILE, text)
    page = window.open_page(conversation=BOB_MOBILE)
    msg = bubble(page, text)
    msg.click(button="right")
    menu = page.get_by_role("menu", name="Message")
    menu.get_by_role("menuitem", name="Copy").click()
    expect(menu).to_have_count(0)
    assert page.evaluate("navigator.clipboard.readText()") == text
    # Part of it selected: only that.
    page.evaluate(
        """(text) => {
          const t = [...document.querySelectorAll('.msg .text')]
            .find((e) => e.textContent === text).firstChild;
          const r = document.createRange(); r.setStart(t, 11); r.setEnd(t, 16);
          const s = getSelection(); s.removeAllRanges(); s.addRange(r);
        }""",
        text,
    )
    msg.locator(".text").click(button="right")
    page.get_by_role("menu", name="Message").get_by_role("menuitem", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == "lunch"


def test_deleting_a_message_reaches_the_other_device(window: WindowWorld) -> None:
    other = window.second_device()
    text = f"Hi Ann, lunch at noon? {tag()}"
    arrive(window, BOB_MOBILE, text)
    other.wait_until(lambda: has(other, BOB_MOBILE, text), 20, "the message on the second device")
    page = window.open_page(conversation=BOB_MOBILE)
    msg = bubble(page, text)
    msg.click(button="right")
    page.get_by_role("menu", name="Message").get_by_role("menuitem", name="Delete").click()
    expect(msg).to_have_count(0)
    other.wait_until(
        lambda: not has(other, BOB_MOBILE, text), 20, "the deletion on the second device"
    )


def test_a_failed_message_can_be_resent(window: WindowWorld) -> None:
    t = tag()
    arrive(window, CY, f"Cy, before the failure {t}")
    page = window.open_page(conversation=CY)
    window.carrier("fail", "The carrier is down")
    window.daemon.call("send", to=CY, text=f"This one fails first {t}")
    msg = bubble(page, f"This one fails first {t}")
    expect(msg).to_contain_text("Failed: The carrier is down")
    window.carrier("accept")
    msg.get_by_role("button", name="Resend").click()
    # The server had taken it, so the daemon sends it again as a new message (the failed
    # one stays, as the record of what happened): the newest copy goes out.
    expect(msg.last.locator(".state")).to_have_text("Sent")
    expect(msg.last.get_by_role("button", name="Resend")).to_have_count(0)


def test_a_resent_message_offers_no_resend_here_or_in_another_window(
    window: WindowWorld,
) -> None:
    text = f"Resend me once {tag()}"  # its own each run (pytest --count)
    page = window.open_page(conversation=CY)
    other = window.open_page(conversation=CY)
    window.carrier("fail", "The carrier is down")
    window.daemon.call("send", to=CY, text=text)
    for p in (page, other):
        expect(bubble(p, text)).to_contain_text("Failed: The carrier is down")
    window.carrier("accept")
    # A double click: the first one resends, the second finds nothing left to click.
    bubble(page, text).get_by_role("button", name="Resend").dblclick()
    for p in (page, other):
        msgs = bubble(p, text)
        expect(msgs).to_have_count(2)
        expect(msgs.last.locator(".state")).to_have_text("Sent")
        expect(msgs.first).to_contain_text("Failed: The carrier is down")
        expect(msgs.first.locator(".state.resent")).to_have_text("Resent")
        expect(msgs.get_by_role("button", name="Resend")).to_have_count(0)
    copies = [
        m
        for m in window.daemon.call("messages", conversation=CY, limit=100)["messages"]
        if m["text"] == text
    ]
    assert sorted(m["state"] for m in copies) == ["failed", "sent"]
    page.reload()
    page.wait_for_selector("html[data-ready]", state="attached")
    expect(bubble(page, text).first.locator(".state.resent")).to_have_text("Resent")
    expect(bubble(page, text).get_by_role("button", name="Resend")).to_have_count(0)
    assert page.errors == []  # type: ignore[attr-defined]
    assert other.errors == []  # type: ignore[attr-defined]


def test_attachments_thumbnails_large_view_and_download_on_request(window: WindowWorld) -> None:
    t = tag()
    # Over the MMS limit, with bytes of its own (a file the daemon has is not fetched again).
    scans_text = f"The scans, as promised {t}"
    arrive(window, CY, scans_text, [(BIG_FILE[:-6] + t.encode(), "scans.txt")])
    jpeg = photo_jpeg("astronaut", 400, 300, 80)
    window.receive(CY, f"A photo {t}", [(jpeg, "moon.jpg")])
    page = window.open_page(conversation=CY)
    thumb = bubble(page, f"A photo {t}").get_by_role("button", name="Show moon.jpg large")
    expect(thumb).to_be_visible()  # downloaded by itself (under 500 KB): a thumbnail
    assert page.evaluate(
        "[...document.querySelectorAll('.thumb img')].every((i) => i.complete && i.naturalWidth)"
    )
    thumb.click()
    viewer = page.get_by_role("dialog", name="moon.jpg")
    expect(viewer.get_by_role("img", name="moon.jpg")).to_be_visible()
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    # Over the MMS limit: "Download", then a chip with its name and size.
    scans = bubble(page, scans_text)
    scans.get_by_role("button", name="Download scans.txt").click()
    link = scans.get_by_role("link", name="scans.txt, 768 KB")
    expect(link).to_be_visible()
    assert link.get_attribute("href", timeout=1000) is not None


def test_delete_conversation_asks_first_and_reaches_the_other_device(window: WindowWorld) -> None:
    other = window.second_device()
    arrive(window, CY, f"Cy, before the delete {tag()}")
    other.wait_until(
        lambda: any(c["remote"] == CY for c in other.call("conversations")),
        20,
        "Cy's conversation on the second device",
    )
    page = window.open_page(conversation=CY)
    page.get_by_role("button", name="Delete conversation").click()
    ask = page.get_by_role("dialog", name="Delete conversation")
    expect(ask).to_contain_text("Cy Ng")
    ask.get_by_role("button", name="Cancel").click()
    expect(ask).to_have_count(0)
    expect(page.get_by_role("option", name=re.compile("^Cy Ng"))).to_have_count(1)
    page.get_by_role("button", name="Delete conversation").click()
    page.get_by_role("dialog", name="Delete conversation").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.get_by_role("option", name=re.compile("^Cy Ng"))).to_have_count(0)
    expect(page).to_have_url(re.compile("#/$"))
    other.wait_until(
        lambda: all(c["remote"] != CY for c in other.call("conversations")),
        20,
        "the conversation gone on the second device",
    )
