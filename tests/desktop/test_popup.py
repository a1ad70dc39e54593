"""The quick-send popup driven through its widgets on Xvfb, against a real daemon and server.

The pure parts (counter line, file budget, emoji categories, which glyphs a font draws,
where the emoji picker goes) are tested without a display. The widgets run in this
process on the session's one Xvfb (`tk_desk`); socket calls run off Tk's thread, so the
tests pump Tk (`pump_until`) while they wait for an answer. A SIGSTOPped daemon makes a
send hang for as long as the test wants, without any timing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import tkinter as tk
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from glosmsd.core import rules
from glosmsd.desktop.popup import (
    Attachment,
    Glyphs,
    Popup,
    colour_emoji_font,
    counter_line,
    degraded_here,
    has_fc_colour_font,
    parse_charsets,
    pick_attachments,
    picker_groups,
    place_beside,
    shown_text,
)
from tests.support.daemonproc import DaemonProcess, wait_until
from tests.support.desktop import DesktopEnv
from tests.support.serverproc import ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"
SHOTS = Path(os.environ.get("GLOSMSD_SHOTS", Path(tempfile.gettempdir()) / "glosmsd-shots"))
T = TypeVar("T")


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


def test_emoji_groups_and_colour_font_detection() -> None:
    catalog = {
        "groups": [
            {"name": "Smileys & Emotion", "emoji": [{"emoji": "😀", "name": "grinning face"}]},
            {"name": "Food & Drink", "emoji": [{"emoji": "🍕", "name": "pizza"}]},
        ]
    }
    glyphs = Glyphs(parse_charsets(["20-7e 1f600-1f64f"]))
    assert picker_groups(catalog, glyphs) == [("Smileys & Emotion", [("😀", "grinning face")])]
    assert len(picker_groups(catalog, Glyphs())) == 2
    assert colour_emoji_font(["DejaVu Sans", "Noto Color Emoji"]) == "Noto Color Emoji"
    assert colour_emoji_font(["DejaVu Sans"]) is None
    # Colour emoji by name only where libXft cannot draw colour glyphs (before 2.3.5).
    assert degraded_here(["Noto Color Emoji"], 20304)
    assert not degraded_here(["Noto Color Emoji"], 20306)
    assert not degraded_here(["DejaVu Sans"], 20304)


def test_charsets_merge_and_glyph_lookup() -> None:
    ranges = parse_charsets(["20-7e a0-ff 1f600-1f64f", "41-5a 100 101-17f bogus", ""])
    assert ranges == ((0x20, 0x7E), (0xA0, 0x17F), (0x1F600, 0x1F64F))
    glyphs = Glyphs(ranges)
    assert glyphs.has("Aé😀")
    assert not glyphs.has("🍕")
    assert glyphs.has("\u2764\ufe0f") is False  # the heart itself is missing
    assert Glyphs((*ranges, (0x2764, 0x2764))).has("\u2764\ufe0f")  # the selector draws nothing
    assert Glyphs().has("🍕")  # unknown: assume it draws


def test_shown_text_names_only_what_no_font_draws() -> None:
    glyphs = Glyphs(parse_charsets(["20-7e 1f600-1f64f"]))
    assert shown_text("hi 😀 🍕", degraded=False, glyphs=glyphs) == "hi 😀 :pizza:"
    assert shown_text("hi 😀 🍕", degraded=True, glyphs=glyphs) == "hi :grinning_face: :pizza:"
    assert shown_text("plain", degraded=False, glyphs=glyphs) == "plain"


def test_the_emoji_picker_goes_beside_the_popup() -> None:
    screen = (1280, 800)
    assert place_beside((0, 0, 500, 420), (380, 400), screen) == (508, 0)
    assert place_beside((800, 10, 470, 420), (380, 400), screen) == (412, 10)
    assert place_beside((0, 0, 700, 300), (380, 400), (800, 800)) == (0, 308)
    assert place_beside((0, 400, 700, 380), (380, 300), (800, 800)) == (0, 92)


@given(
    st.tuples(*(st.integers(0, 2000) for _ in range(4))),
    st.tuples(st.integers(1, 900), st.integers(1, 900)),
    st.tuples(st.integers(900, 3000), st.integers(900, 3000)),
)
def test_the_emoji_picker_is_always_on_screen(
    window: tuple[int, int, int, int], size: tuple[int, int], screen: tuple[int, int]
) -> None:
    x, y = place_beside(window, size, screen)
    assert 0 <= x <= screen[0] - size[0]
    assert 0 <= y <= screen[1] - size[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def pump_until(root: tk.Misc, check: Callable[[], T], timeout: float, what: str) -> T:
    """Run Tk's event loop until `check()` is truthy (answers arrive through `after`)."""

    def step() -> T:
        root.update()
        return check()

    return wait_until(step, timeout, what)


def labels(frame: tk.Misc) -> list[str]:
    return [
        str(w.cget("text"))
        for line in frame.winfo_children()
        for w in line.winfo_children()
        if w.winfo_class() == "TLabel"
    ]


@contextlib.contextmanager
def frozen(daemon: DaemonProcess) -> Iterator[None]:
    """The daemon stopped (SIGSTOP): every socket call waits until the block ends."""
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        daemon.proc.send_signal(signal.SIGCONT)


def server_texts(server: ServerProcess, number: str) -> list[str]:
    with server.store() as st:
        return [str(m["text"]) for m in st.messages_of(number)]


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
            shown = pump_until(root, lambda: labels(popup.history), 10, "the last messages")
            assert any("Lunch at 12?" in s for s in shown), shown
            assert root.title() == "Bob Roe · glosmsd"
            assert popup.to.get() == BOB
            # Opening it reads it (the popup asks once the messages are shown).
            wait_until(lambda: ann.call("status")["unread"] == 0, 10, "the popup to read it")

            popup.text.insert("1.0", "See you there 🎉👍🏽 🙂 ")
            root.update()
            assert "1/4 SMS" in popup.counter.get()
            if has_fc_colour_font():  # issue 12 item 21: 🙂 stays 🙂, in the colour font
                assert not popup.degraded
                assert popup.emoji_font[0] == "Noto Color Emoji"
                assert "🙂" in popup.text.get("1.0", "end-1c")
                assert ":slightly_smiling_face:" not in popup.text.get("1.0", "end-1c")
                assert popup.text.tag_ranges("emoji")
            # Shown as a box where no font draws it: then its name stands in until sent.
            drawn = popup.glyphs.has("🎉") and not popup.degraded
            assert ("🎉" in popup.text.get("1.0", "end-1c")) is drawn
            assert popup.message_text() == "See you there 🎉👍🏽 🙂 "
            picker = popup.open_emoji()
            pump_until(
                root, lambda: len(picker.grids) >= 8, 10, f"the emoji groups {popup.error.get()}"
            )
            picker.choose("😀")
            root.update()
            assert "😀" in popup.message_text()
            # Only what a font here draws, and every group's grid filled to its edge.
            assert all(popup.glyphs.has(ch) for ch in picker.names)
            for name, grid in picker.grids.items():
                assert float(grid.yview()[1]) < 1.0 or name == "Component", name
            if has_fc_colour_font():
                assert str(picker.grids["Smileys & Emotion"].cget("font")).startswith(
                    "{Noto Color Emoji}"
                )
            tk_desk.screenshot(SHOTS / "popup-emoji.png")

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
            picker.place()  # the popup grew with the thumbnails: the picker moves aside
            root.update()
            px, _py = picker.top.winfo_rootx(), picker.top.winfo_rooty()
            assert px >= root.winfo_rootx() + root.winfo_width()
            tk_desk.screenshot(SHOTS / "popup.png")
            picker.top.destroy()
            for _ in range(9):
                popup.remove_file(0)

            # A contact with two numbers: the picker asks, the second one gets it; the
            # window keeps its width meanwhile (it widened from 420 to 465 px).
            popup.to.set("Bob Roe")
            popup.text.focus_force()
            root.update()
            width = root.winfo_width()
            popup.text.event_generate("<Control-Return>")
            number_picker = pump_until(root, lambda: popup.picker, 10, "the number picker")
            assert number_picker is not None
            assert popup.status.get() == "Which number?"
            root.update()
            assert root.winfo_width() == width
            assert popup.send_button.instate(["disabled"])
            tk_desk.screenshot(SHOTS / "popup-number-picker.png")
            number_picker.buttons[1].invoke()
            pump_until(root, lambda: popup.status.get() == "Sent ✓", 10, popup.error.get())
            assert popup.message_text() == ""
            assert not popup.sending
            assert popup.send_button.instate(["!disabled"])
            sent = ann.call("messages", conversation="+15557650000")["messages"]
            assert sent[0]["text"].startswith("See you there 🎉")

            # An error keeps what was typed and says what happened.
            popup.to.set("Nobody Here")
            popup.text.insert("1.0", "keep me")
            assert popup.send()
            pump_until(root, lambda: not popup.sending, 10, "the refusal")
            assert popup.error.get().startswith("Not sent: No contact named")
            assert popup.message_text() == "keep me"
            assert popup.status.get() == ""

            # Autocomplete over contacts and conversations: one line per number (Bob's two
            # numbers both have a conversation now; it listed 4 lines for them).
            popup.to.set("Bob")
            popup._typed_recipient()
            pump_until(root, popup.suggest.size, 10, "suggestions")
            lines = [popup.suggest.get(i) for i in range(popup.suggest.size())]
            assert len(lines) == 2, lines
            assert all("Bob Roe" in line for line in lines)
            assert sorted(number for _shown, number in popup._choices) == [
                "+15557650000",
                BOB,
            ]
        finally:
            root.destroy()


@pytest.mark.desktop
def test_a_slow_send_never_blocks_the_window_and_closing_does_not_lose_it(
    tk_desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with DaemonProcess.start(tmp_path / "ann", server, token) as ann:
        ann.wait_online()
        photo = tmp_path / "photo.png"
        Image.new("RGB", (640, 480), (200, 120, 40)).save(photo)

        root = tk.Tk(screenName=tk_desk.display)
        try:
            popup = Popup(root, ann.client, to=BOB, close_on_send=False)
            pump_until(root, lambda: popup.calls.in_flight == 0, 10, "the popup to load")
            root.update()
            assert not root.tk.call("after", "info")  # idle: no polling timer left running
            popup.text.insert("1.0", "the photo, sent while the daemon is stopped")
            popup.add_files([photo])
            root.update()
            with frozen(ann):
                assert popup.send()
                root.update()
                # The daemon cannot answer, yet the window keeps handling its events.
                assert popup.sending
                assert popup.status.get() == "Sending…"
                assert popup.send_button.instate(["disabled"])
                assert str(popup.text.cget("state")) == "disabled"
                assert not popup.send()  # no second send of the same text
                ticks: list[int] = []
                root.after(1, lambda: ticks.append(1))
                pump_until(root, lambda: ticks, 10, "Tk to run a timer during the send")
                picker = popup.open_emoji()  # its recent row waits; the picker is there now
                root.update()
                assert picker.top.winfo_ismapped()
                tk_desk.screenshot(SHOTS / "popup-sending.png")
                picker.top.destroy()
            pump_until(root, lambda: popup.status.get() == "Sent ✓", 20, "the send to finish")
            assert popup.message_text() == ""
            assert popup.files == []
            assert str(popup.text.cget("state")) == "normal"
        finally:
            root.destroy()

        # Closed while in flight: the window goes, the process stays until the daemon
        # took the message, then it ends; the server gets the message once.
        root = tk.Tk(screenName=tk_desk.display)
        try:
            popup = Popup(root, ann.client, to=BOB)
            pump_until(root, lambda: popup.calls.in_flight == 0, 10, "the popup to load")
            popup.text.insert("1.0", "closed while sending")
            with frozen(ann):
                assert popup.send()
                root.update()
                popup.close()
                root.update()
                assert root.state() == "withdrawn"
                assert not popup.closed
            pump_until(root, lambda: popup.closed, 20, "the send to finish and the popup to end")
        finally:
            with contextlib.suppress(tk.TclError):
                root.destroy()
        wait_until(
            lambda: "closed while sending" in server_texts(server, ANN), 10, "the server to get it"
        )
        assert server_texts(server, ANN).count("closed while sending") == 1

        # Closed while in flight, and then refused: the window comes back with the text.
        root = tk.Tk(screenName=tk_desk.display)
        try:
            popup = Popup(root, ann.client, to="Nobody Here")
            pump_until(root, lambda: popup.calls.in_flight == 0, 10, "the popup to load")
            popup.text.insert("1.0", "do not lose me")
            with frozen(ann):
                assert popup.send()
                root.update()
                popup.close()
                root.update()
                assert root.state() == "withdrawn"
            pump_until(root, lambda: root.state() == "normal", 20, "the window to come back")
            assert popup.error.get().startswith("Not sent: No contact named")
            assert popup.message_text() == "do not lose me"
            assert not popup.closed
            root.update()
            tk_desk.screenshot(SHOTS / "popup-refused-after-close.png")
        finally:
            root.destroy()


@pytest.mark.desktop
def test_a_daemon_that_is_not_running_is_said_in_words(tk_desk: DesktopEnv, tmp_path: Path) -> None:
    from glosmsd.client.ipc import Client

    root = tk.Tk(screenName=tk_desk.display)
    try:
        popup = Popup(root, lambda: Client(tmp_path / "nothing-here"), to=BOB)
        pump_until(root, popup.error.get, 10, "the error")
        assert "glosmsd is not running" in popup.error.get()
        popup.text.insert("1.0", "still here")
        assert popup.send()
        pump_until(root, lambda: not popup.sending, 10, "the send to fail")
        assert popup.error.get().startswith("Not sent: glosmsd is not running")
        assert popup.message_text() == "still here"
    finally:
        root.destroy()


@pytest.mark.desktop
def test_compose_on_a_number_shows_its_history_and_escape_keeps_the_draft(
    tk_desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    """Issue 12 item 21: `glosms compose NUMBER` showed no history (from the tray it did),
    and Escape threw a typed message away without asking."""
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.admin("inject", "--from", BOB, "--to", ANN, "--text", "Lunch at 12?")
    with DaemonProcess.start(tmp_path / "ann", server, token) as ann:
        ann.wait_online()
        wait_until(lambda: ann.call("status")["unread"] == 1, 10, "the message to arrive")
        root = tk.Tk(screenName=tk_desk.display)
        try:
            popup = Popup(root, ann.client, to=BOB)  # as `glosms compose +15557654321`
            shown = pump_until(root, lambda: labels(popup.history), 10, "the last messages")
            assert any("Lunch at 12?" in s for s in shown), shown
            assert root.title().endswith(" · glosmsd")
            wait_until(lambda: ann.call("status")["unread"] == 0, 10, "the popup to read it")
            popup.text.insert("1.0", "half a thought 🙂")
            root.update()
            popup.close()  # Escape: kept as the conversation's draft, shared with the window
            pump_until(root, lambda: popup.closed, 10, "the popup to close")
        finally:
            with contextlib.suppress(tk.TclError):
                root.destroy()
        assert ann.call("draft_get", conversation=BOB)["text"] == "half a thought 🙂"

        root = tk.Tk(screenName=tk_desk.display)
        try:
            popup = Popup(root, ann.client, to=BOB, close_on_send=False)
            pump_until(root, popup.message_text, 10, "the draft to come back")
            assert popup.message_text() == "half a thought 🙂"
            popup.text.insert("end", " done")
            assert popup.send()
            pump_until(root, lambda: popup.status.get() == "Sent ✓", 10, popup.error.get())
            wait_until(
                lambda: ann.call("draft_get", conversation=BOB)["text"] == "",
                10,
                "the sent draft to go",
            )
        finally:
            root.destroy()

        # A number with no conversation yet has no draft to keep the text in: Escape asks.
        root = tk.Tk(screenName=tk_desk.display)
        try:
            popup = Popup(root, ann.client, to="+15557650099")
            pump_until(root, lambda: popup.calls.in_flight == 0, 10, "the popup to load")
            popup.text.insert("1.0", "hello there")
            popup.close()  # what Escape and the close button run
            root.update()
            asking = popup.asking
            assert asking is not None
            assert asking.top.title() == "Discard this message?"
            tk_desk.screenshot(SHOTS / "popup-ask-discard.png")
            asking.keep.invoke()
            root.update()
            assert not popup.closed
            assert popup.message_text() == "hello there"
            popup.close()
            assert popup.asking is not None
            popup.asking.discard.invoke()
            assert popup.closed
        finally:
            with contextlib.suppress(tk.TclError):
                root.destroy()
