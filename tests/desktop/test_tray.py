"""The tray menu model (pure) and its Tk rendering for the xorg backend (on Xvfb)."""

from __future__ import annotations

import tkinter as tk

import pytest

from glosmsd.desktop.icon import Look
from glosmsd.desktop.tray import (
    Command,
    PrefItem,
    Tray,
    TrayState,
    build_menu,
    build_tk_menu,
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
        "conversations": ((7, "Bob Roe", 3), (9, "+15557650000", 1)),
        "prefs": PREFS,
    }
    base.update(kw)
    return TrayState(**base)  # type: ignore[arg-type]


def test_menu_lists_number_unread_conversations_actions_prefs_quit() -> None:
    entries = build_menu(state())
    labels = menu_labels(entries)
    assert labels[0] == "My number: +15550001001 (click to copy)"
    assert entries[0].command == Command("copy_number", "+15550001001")
    assert "Bob Roe (3)" in labels
    assert "+15557650000 (1)" in labels
    assert entries[labels.index("Bob Roe (3)")].command == Command("open", 7)
    mark = entries[labels.index("Mark all as read")]
    assert mark.enabled
    assert mark.command == Command("mark_all_read")
    assert entries[labels.index("New message…")].command == Command("compose")
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
    convs = tuple((i, f"C{i}", 1) for i in range(25))
    labels = menu_labels(build_menu(state(conversations=convs)))
    assert "… and 15 more" in labels
    assert "C10 (1)" not in labels


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
        picked: list[Command] = []
        entries = build_menu(state())
        menu = build_tk_menu(root, entries, picked.append)
        labels = [
            "-" if menu.type(i) == "separator" else menu.entrycget(i, "label")
            for i in range(menu.index("end") + 1)
        ]
        assert labels == menu_labels(entries)
        i = labels.index("Bob Roe (3)")
        menu.invoke(i)
        menu.invoke(labels.index("Mark all as read"))
        menu.invoke(labels.index("Enable the SMS messaging on Desktop"))  # disabled: nothing
        assert picked == [Command("open", 7), Command("mark_all_read")]
        assert menu.entrycget(labels.index("Mark all as read"), "underline") == 0
    finally:
        root.destroy()
