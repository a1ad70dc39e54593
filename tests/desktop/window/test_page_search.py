"""Search and starting conversations in a real Chromium against a real daemon and server:
the Search field filters contacts, conversations and message text with the matches
highlighted; a contact with several numbers asks "Which number?"; "New conversation" by
name or by number. Tests run in file order."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.ipcworld import BOB_MOBILE, BOB_WORK, CY
from tests.support.windowpage import WindowWorld


def results(page: Page, section: str):  # type: ignore[no-untyped-def]
    return page.get_by_role("region", name=section)


def test_search_filters_message_text_with_the_match_highlighted(window: WindowWorld) -> None:
    page = window.open_page()
    search = page.get_by_role("searchbox", name="Search")
    search.fill("lunch")
    found = results(page, "Messages")
    expect(found.get_by_role("button")).to_have_count(1)
    expect(found.get_by_role("button")).to_contain_text("Hi Ann, lunch at noon?")
    expect(found.locator("mark")).to_have_text(["lunch"])
    expect(page.get_by_role("listbox", name="Conversations")).to_be_hidden()
    found.get_by_role("button").click()
    bob = window.daemon.call("messages", conversation=BOB_MOBILE, limit=1)["conversation"]
    expect(page).to_have_url(re.compile(rf"#/c/{bob['id']}$"))
    # Esc in the field clears it and the list is back.
    search.fill("nothing-like-this")
    expect(page.get_by_text("Nothing matches “nothing-like-this”.")).to_be_visible()
    search.press("Escape")
    expect(search).to_have_value("")
    expect(page.get_by_role("listbox", name="Conversations")).to_be_visible()


def test_search_finds_contacts_and_conversations(window: WindowWorld) -> None:
    page = window.open_page()
    page.get_by_role("searchbox", name="Search").fill("Cy")
    expect(results(page, "Contacts").get_by_role("button")).to_contain_text(["Cy Ng"])
    expect(results(page, "Conversations").get_by_role("button")).to_contain_text(["Cy Ng"])
    expect(results(page, "Contacts").locator("mark").first).to_have_text("Cy")


def test_a_contact_with_several_numbers_asks_which_one(window: WindowWorld) -> None:
    page = window.open_page()
    page.get_by_role("searchbox", name="Search").fill("Bob Roe")
    results(page, "Contacts").get_by_role("button", name=re.compile("Bob Roe")).click()
    ask = page.get_by_role("dialog", name="Which number?")
    expect(ask.get_by_role("button")).to_have_text(
        [f"mobile{BOB_MOBILE}", f"work{BOB_WORK}", "Cancel"]
    )
    # The work number has no conversation yet: a new one, named, a draft until sent.
    ask.get_by_role("button", name=re.compile("work")).click()
    expect(page).to_have_url(re.compile(rf"#/new/{re.escape(BOB_WORK)}$"))
    expect(page.locator("#bar")).to_contain_text("Bob Roe")
    expect(page.locator("#bar")).to_contain_text(BOB_WORK)
    expect(page.get_by_role("log", name="Messages")).to_contain_text("No messages with Bob Roe")
    # The mobile number has one: it opens.
    page.get_by_role("searchbox", name="Search").fill("Bob Roe")
    results(page, "Contacts").get_by_role("button", name=re.compile("Bob Roe")).click()
    page.get_by_role("dialog", name="Which number?").get_by_role(
        "button", name=re.compile("mobile")
    ).click()
    bob = window.daemon.call("messages", conversation=BOB_MOBILE, limit=1)["conversation"]
    expect(page).to_have_url(re.compile(rf"#/c/{bob['id']}$"))


def test_new_conversation_by_name_or_by_number(window: WindowWorld) -> None:
    page = window.open_page()
    page.get_by_role("button", name="New conversation").click()
    dialog = page.get_by_role("dialog", name="New conversation")
    field = dialog.get_by_role("textbox", name="Name or number")
    expect(field).to_be_focused()
    field.fill("Cy")
    dialog.get_by_role("button", name=re.compile("Cy Ng")).click()
    cy = window.daemon.call("messages", conversation=CY, limit=1)["conversation"]
    expect(page).to_have_url(re.compile(rf"#/c/{cy['id']}$"))
    page.get_by_role("button", name="New conversation").click()
    dialog = page.get_by_role("dialog", name="New conversation")
    dialog.get_by_role("textbox", name="Name or number").fill("+1 555 765 9999")
    dialog.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"#/new/\+15557659999$"))
    expect(page.locator("#bar")).to_contain_text("+15557659999")
    # A name nobody has: said in the dialog, which stays open.
    page.get_by_role("button", name="New conversation").click()
    dialog = page.get_by_role("dialog", name="New conversation")
    dialog.get_by_role("textbox", name="Name or number").fill("Nobody Atall")
    dialog.get_by_role("button", name="Start").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "No contact named “Nobody Atall”. Type a phone number instead."
    )
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
