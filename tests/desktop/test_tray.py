"""The tray menu model (pure), the wire to the menu process, and the menu's Tk rendering
for the xorg backend (on Xvfb)."""

from __future__ import annotations

import json
import tkinter as tk

import pytest

from glosmsd.desktop.icon import Look
from glosmsd.desktop.menu import build_tk_menu, chosen, request
from glosmsd.desktop.tray import (
    MenuCommand,
    PrefItem,
    Tray,
    TrayState,
    build_menu,
    menu_labels,
)
from tests.support.desktop import DesktopEnv

PREFS = (
    PrefItem("notify", "Notify me when I receive a new SMS message", False),
    PrefItem("sound", "New SMS Message Received (sound)", True),
    PrefItem("sms_enabled", "Enable the SMS messaging on Desktop", True, enabled=False),
)


def state(**kw: object) -> TrayState:
    base: dict[str, object] = {
        "unread": 4,
        "look": Look.ONLINE,
        "tooltip": "glosmsd: 4 unread messages",
        "number": "+15550001001",
        "conversations": (
            (7, "Bob Roe", 3, "+15557654321"),
            (9, "+15557650000", 1, "+15557650000"),
        ),
        "prefs": PREFS,
    }
    base.update(kw)
    return TrayState(**base)  # type: ignore[arg-type]


def test_menu_lists_number_unread_conversations_actions_prefs_quit() -> None:
    entries = build_menu(state())
    labels = menu_labels(entries)
    assert labels[0] == "My number: +15550001001 (click to copy)"
    assert entries[0].command == MenuCommand("copy_number", "+15550001001")
    assert "Bob Roe (3)" in labels
    assert "+15557650000 (1)" in labels
    assert entries[labels.index("Bob Roe (3)")].command == MenuCommand("open", 7)
    mark = entries[labels.index("Mark all as read")]
    assert mark.enabled
    assert mark.command == MenuCommand("mark_all_read")
    assert entries[labels.index("New message…")].command == MenuCommand("compose")
    sms = entries[labels.index("Enable the SMS messaging on Desktop")]
    assert not sms.enabled  # server 7 or newer
    assert sms.checked is True
    assert labels[-1] == "Quit"


def test_menu_without_number_shared_and_nothing_unread() -> None:
    entries = build_menu(state(number=None, unread=0, conversations=()))
    assert entries[0].label == "No SMS number assigned"
    assert not entries[0].enabled
    labels = menu_labels(entries)
    assert "No unread messages" in labels
    assert not entries[labels.index("Mark all as read")].enabled
    shared = menu_labels(build_menu(state(sharers=("Cat Poe", "Dan Fox"))))
    i = shared.index("Multiple users share this number")
    assert shared[i + 1 : i + 3] == ["    Cat Poe", "    Dan Fox"]


def test_many_conversations_are_capped() -> None:
    convs = tuple((i, f"C{i}", 1, f"+1555000{i:04d}") for i in range(25))
    labels = menu_labels(build_menu(state(conversations=convs)))
    assert "… and 15 more" in labels
    assert "C10 (1)" not in labels


def test_two_numbers_of_one_contact_are_two_distinct_lines() -> None:
    """Issue 12 item 19: "Bob Roe (17)" and "Bob Roe (1)" were two identical-looking lines."""
    convs = (
        (3, "Bob Roe", 17, "+15557654321"),
        (4, "Bob Roe", 1, "+15557654322"),
        (5, "Cat Poe", 2, "+15557650001"),
    )
    entries = build_menu(state(conversations=convs))
    labels = menu_labels(entries)
    assert "Bob Roe · +15557654321 (17)" in labels
    assert "Bob Roe · +15557654322 (1)" in labels
    assert "Cat Poe (2)" in labels  # one number: the name is enough
    assert entries[labels.index("Bob Roe · +15557654322 (1)")].command == MenuCommand("open", 4)


def test_the_menu_process_wire_round_trip() -> None:
    entries = build_menu(state())
    asked = json.loads(request(entries, (1200, 0, 24, 32)))
    assert asked["icon"] == [1200, 0, 24, 32]
    assert [line["label"] for line in asked["entries"] if not line["separator"]] == [
        e.label for e in entries if not e.separator
    ]
    bob = menu_labels(entries).index("Bob Roe (3)")
    assert chosen(entries, f"{bob}\n".encode()) == MenuCommand("open", 7)
    assert chosen(entries, b"") is None  # closed without a choice
    assert chosen(entries, b"999\n") is None
    assert chosen(entries, b"-1") is None
    separator = menu_labels(entries).index("-")
    assert chosen(entries, str(separator).encode()) is None


def test_tray_show_never_blocks_and_keeps_the_newest() -> None:
    tray = Tray(lambda _c: None)
    for n in range(1000):
        tray.show(state(unread=n))
    assert tray.take() == state(unread=999)
    tray.stop()
    assert tray.take() is None


@pytest.mark.desktop
def test_tk_menu_shows_the_entries_and_invokes_commands(tk_desk: DesktopEnv) -> None:
    root = tk.Tk(screenName=tk_desk.display)
    try:
        picked: list[int] = []
        entries = build_menu(state())
        lines = json.loads(request(entries, (0, 0, 24, 24)))["entries"]
        menu = build_tk_menu(root, lines, picked.append)
        labels = [
            "-" if menu.type(i) == "separator" else menu.entrycget(i, "label")
            for i in range(menu.index("end") + 1)
        ]
        assert labels == menu_labels(entries)
        i = labels.index("Bob Roe (3)")
        menu.invoke(i)
        menu.invoke(labels.index("Mark all as read"))
        menu.invoke(labels.index("Enable the SMS messaging on Desktop"))  # disabled: nothing
        assert [chosen(entries, str(p).encode()) for p in picked] == [
            MenuCommand("open", 7),
            MenuCommand("mark_all_read"),
        ]
        assert menu.entrycget(labels.index("Mark all as read"), "underline") == 0
    finally:
        root.destroy()
