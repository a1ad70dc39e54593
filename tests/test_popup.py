"""The quick-send popup driven through its widgets on Xvfb, against a real daemon and server.

The pure parts (counter line, file budget, emoji categories) are tested without a display.
"""

from __future__ import annotations

import os
import tempfile
import tkinter as tk
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from glosmsd import rules
from glosmsd.popup import (
    Attachment,
    Popup,
    colour_emoji_font,
    counter_line,
    emoji_by_category,
    pick_attachments,
)
from tests.daemonproc import DaemonProcess
from tests.desktop import DesktopEnv, wait_until
from tests.serverproc import ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"
SHOTS = Path(os.environ.get("GLOSMSD_SHOTS", Path(tempfile.gettempdir()) / "glosmsd-shots"))


def test_counter_line_sms_and_files() -> None:
    limits = rules.Limits()
    assert counter_line("hello", [], limits) == "155 characters left · 1/4 SMS"
    assert "1/4 SMS" in counter_line("🎉", [], limits)
    line = counter_line("hi", [Attachment(Path("a.pdf"), 100 * 1024)], limits)
    assert line.startswith("400 KB left")


def test_file_budget_drops_the_excess_with_the_exact_message() -> None:
    limits = rules.Limits()
    files = [Attachment(Path(f"{i}.pdf"), 1000) for i in range(11)]
    pick = pick_attachments(files, limits)
    assert len(pick.kept) == 10
    assert pick.message == "Maximum size of attached files for MMS reached."
    big = [Attachment(Path("a.pdf"), 400 * 1024), Attachment(Path("b.pdf"), 200 * 1024)]
    assert pick_attachments(big, limits).dropped == (1,)
    # JPEG/PNG are fitted by the daemon, so a big photo does not use up the budget.
    photos = [Attachment(Path(f"{i}.jpg"), 2_000_000) for i in range(3)]
    assert pick_attachments(photos, limits).dropped == ()


def test_emoji_categories_and_colour_font_detection() -> None:
    cats = dict(emoji_by_category())
    assert "😀" in [e for e, _n in cats["Smileys"]]
    assert all(items for items in cats.values())
    assert colour_emoji_font(["DejaVu Sans", "Noto Color Emoji"])
    assert not colour_emoji_font(["DejaVu Sans"])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


@pytest.mark.desktop
def test_popup_on_a_conversation_counts_attaches_picks_and_sends(
    tk_desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.admin(
        "add-contact", "Bob Roe", "--number", f"mobile={BOB}", "--number", "work=+15557650000"
    )
    server.admin("inject", "--from", BOB, "--to", ANN, "--text", "Lunch at 12? 🍕")
    with DaemonProcess.start(tmp_path / "ann", server, token) as ann:
        ann.wait_online()
        wait_until(lambda: ann.call("status")["unread"] == 1, 10, "the message to arrive")
        root = tk.Tk(screenName=tk_desk.display)
        try:
            popup = Popup(root, ann.client, conversation=BOB, close_on_send=False)
            root.update()
            shown = [
                w.cget("text")
                for line in popup.history.winfo_children()
                for w in line.winfo_children()
                if isinstance(w, tk.Widget) and w.winfo_class() == "TLabel"
            ]
            assert any("Lunch at 12?" in s for s in shown), shown
            assert ann.call("status")["unread"] == 0  # opening it reads it

            popup.text.insert("1.0", "See you there 🎉 ")
            root.update()
            assert "1/4 SMS" in popup.counter.get()
            picker = popup.open_emoji()
            root.update()
            picker.buttons["😀"].invoke()
            root.update()
            assert ("😀" in popup.message_text()) or popup.degraded

            pics = []
            for i in range(11):
                path = tmp_path / f"pic{i}.png"
                Image.new("RGB", (64, 48), (40 * (i % 6), 90, 200)).save(path)
                pics.append(path)
            popup.add_files(pics)
            root.update()
            assert len(popup.files) == 10
            assert popup.error.get() == "Maximum size of attached files for MMS reached."
            assert len(popup._thumbs) == 10
            assert "KB left" in popup.counter.get()
            popup.remove_file(0)
            root.update()
            assert len(popup.files) == 9
            assert popup.error.get() == ""
            root.update()
            tk_desk.screenshot(SHOTS / "popup.png")
            picker.top.destroy()
            for _ in range(9):
                popup.remove_file(0)

            # A contact with two numbers: the picker asks, the second one gets it.
            popup.to.set("Bob Roe")
            root.after(200, lambda: popup.picker and popup.picker.buttons[1].invoke())
            popup.text.focus_force()
            root.update()
            popup.text.event_generate("<Control-Return>")
            root.update()
            assert popup.status.get() == "Sent ✓", popup.error.get()
            assert popup.message_text() == ""
            sent = ann.call("messages", conversation="+15557650000")["messages"]
            assert sent[0]["text"].startswith("See you there 🎉")

            # An error keeps what was typed and says what happened.
            popup.to.set("Nobody Here")
            popup.text.insert("1.0", "keep me")
            assert not popup.send()
            assert popup.error.get().startswith("Not sent: No contact named")
            assert popup.message_text() == "keep me"

            # Autocomplete over contacts and conversations.
            popup.to.set("Bob")
            popup._typed_recipient()
            assert any("Bob Roe" in popup.suggest.get(i) for i in range(popup.suggest.size()))
        finally:
            root.destroy()
