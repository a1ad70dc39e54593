"""How the SMS window looks and what axe-core finds, in a real Chromium against a real
daemon and server: the list, an open conversation on a shared number with emoji and a
photo, the dialogs, light and dark, 1280x800 and 420 px wide. No serious or critical
violation anywhere.

Set GLOSMSD_SCREENSHOTS=DIR to keep the screenshots (to look at them; docs/window.png is
the 1280x800 light one of the open conversation).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page, expect

from tests.support.ipcworld import BOB_MOBILE
from tests.support.photos import photo_jpeg
from tests.support.windowpage import Scheme, WindowWorld

AXE = Axe()
SIZES = {"wide": (1280, 800), "narrow": (420, 800)}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("GLOSMSD_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.mktemp("shots")


@pytest.fixture(scope="module")
def lively(window_world: WindowWorld) -> WindowWorld:
    """A conversation worth looking at: a shared number, emoji, a link, a photo."""
    w = window_world
    with w.server.store() as st:  # the seed's message from Bo: the carrier took it
        bo = st.conn.execute("SELECT id FROM messages WHERE client_id = 'bo-1'").fetchone()[0]
    w.sharer_state(int(bo), "sent")
    w.receive(BOB_MOBILE, "Great, the table is booked for 12:30 🍝🎉")
    w.sharer_sends(BOB_MOBILE, "I'll bring the slides 👍 see https://example.com/deck")
    w.daemon.call("send", to=BOB_MOBILE, text="Perfect, see you both there 😀")
    view = photo_jpeg("astronaut", 480, 360, 80)
    w.receive(BOB_MOBILE, "Here's the view from the terrace", [(view, "terrace.jpg")])
    return w


def serious(page: Page) -> list[str]:
    found = AXE.run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']][:5]}"
        for v in found
        if v.get("impact") in ("serious", "critical")
    ]


def look(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"))
    assert serious(page) == [], name


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_the_list_and_an_open_conversation(
    lively: WindowWorld, shots: Path, scheme: Scheme, size: str
) -> None:
    width, height = SIZES[size]
    page = lively.open_page(width=width, height=height, scheme=scheme)
    expect(page.get_by_role("option").first).to_be_visible()
    look(page, shots, f"list-{size}-{scheme}")
    page.get_by_role("option", name=re.compile("^Bob Roe")).click()
    log = page.get_by_role("log", name="Messages")
    expect(log.get_by_role("button", name="Show terrace.jpg large")).to_be_visible()
    page.wait_for_function(
        "[...document.querySelectorAll('.thumb img')].every((i) => i.complete && i.naturalWidth)"
    )
    look(page, shots, f"conversation-{size}-{scheme}")
    lively.close_contexts()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_dialogs_and_menus(lively: WindowWorld, shots: Path, scheme: Scheme) -> None:
    page = lively.open_page(conversation=BOB_MOBILE, scheme=scheme)
    page.get_by_role("button", name="Delete conversation").click()
    expect(page.get_by_role("dialog", name="Delete conversation")).to_be_visible()
    look(page, shots, f"dialog-delete-{scheme}")
    page.keyboard.press("Escape")
    page.get_by_role("searchbox", name="Search").fill("Bob")
    page.get_by_role("region", name="Contacts").get_by_role("button").first.click()
    expect(page.get_by_role("dialog", name="Which number?")).to_be_visible()
    look(page, shots, f"dialog-which-{scheme}")
    page.keyboard.press("Escape")
    page.get_by_role("searchbox", name="Search").fill("table")
    expect(page.get_by_role("region", name="Messages").locator("mark")).to_have_count(1)
    look(page, shots, f"search-{scheme}")
    page.get_by_role("searchbox", name="Search").fill("")
    page.get_by_role("log", name="Messages").get_by_role("article").last.click(button="right")
    expect(page.get_by_role("menu", name="Message")).to_be_visible()
    look(page, shots, f"menu-message-{scheme}")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Unread messages").click()
    expect(page.get_by_role("menu", name="Unread messages")).to_be_visible()
    look(page, shots, f"menu-unread-{scheme}")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="New conversation").click()
    expect(page.get_by_role("dialog", name="New conversation")).to_be_visible()
    look(page, shots, f"dialog-new-{scheme}")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Multiple users share this number").click()
    look(page, shots, f"dialog-sharers-{scheme}")
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 700, "y": 300})
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    look(page, shots, f"dialog-shortcuts-{scheme}")
    assert page.errors == []  # type: ignore[attr-defined]
