"""For `glosmsd doctor`: is the tray icon of a running glosmsd alive, or hung?

A docked icon that nobody draws any more looks like a working one (issue 12 item 2: the
icon docked, its tooltip stuck at "glosmsd: starting", and the doctor said `ok tray`).
The tray's own X thread answers a `_GLOSMSD_PING` client message by writing the serial it
got into the `_GLOSMSD_PONG` property of its window (`glosmsd.desktop.tray`); no answer
within the wait means that thread is stuck. This module only looks: it never changes a
window but by sending it that message.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import Any, Final

#: The names the tray uses (glosmsd.desktop.tray: PING_ATOM, PONG_ATOM; the doctor may not
#: import the desktop layer).
PING_ATOM: Final = "_GLOSMSD_PING"
PONG_ATOM: Final = "_GLOSMSD_PONG"
ICON_CLASS: Final = "glosmsdSystemTrayIcon"
#: How long a live tray thread may take to answer.
ANSWER_WITHIN: Final = 1.5
#: Bounds on the window tree walk (a desktop has a few hundred windows).
MAX_DEPTH: Final = 8
MAX_WINDOWS: Final = 5000


@dataclass(frozen=True, slots=True)
class IconSeen:
    window: int
    title: str  # its tooltip, e.g. "glosmsd: 2 unread messages"
    answered: bool


def icons(display: Any) -> list[Any]:
    """The windows of glosmsd tray icons on `display` (docked or not)."""
    found: list[Any] = []
    seen = 0
    todo: list[tuple[Any, int]] = [(display.screen().root, 0)]
    while todo and seen < MAX_WINDOWS:
        window, depth = todo.pop()
        seen += 1
        try:
            wm_class = window.get_wm_class()
            if wm_class and wm_class[0] == ICON_CLASS:
                found.append(window)
                continue
            if depth < MAX_DEPTH:
                todo.extend((child, depth + 1) for child in window.query_tree().children)
        except Exception:  # noqa: S112 - a window that went away meanwhile
            continue
    return found


def ping_icons(display: Any, within: float = ANSWER_WITHIN) -> list[IconSeen]:
    """Ask every glosmsd tray icon on `display` to answer; who did within `within`."""
    from Xlib import X, Xatom
    from Xlib.protocol import event as xevent

    ping = display.intern_atom(PING_ATOM)
    pong = display.intern_atom(PONG_ATOM)
    serial = int(time.monotonic() * 1000) & 0x7FFFFFFF
    asked = []
    for window in icons(display):
        try:
            window.change_attributes(event_mask=X.PropertyChangeMask)
            message = xevent.ClientMessage(
                window=window, client_type=ping, data=(32, [serial, 0, 0, 0, 0])
            )
            window.send_event(message, event_mask=X.NoEventMask)
            asked.append(window)
        except Exception:  # noqa: S112 - gone meanwhile
            continue
    display.flush()

    def answered(window: Any) -> bool:
        try:
            prop = window.get_full_property(pong, Xatom.CARDINAL)
        except Exception:
            return False
        return prop is not None and list(prop.value)[:1] == [serial]

    pending = {w.id: w for w in asked}
    done: set[int] = set()
    deadline = time.monotonic() + within
    while pending.keys() - done:
        for wid, window in pending.items():
            if wid not in done and answered(window):
                done.add(wid)
        left = deadline - time.monotonic()
        if left <= 0 or not pending.keys() - done:
            break
        select.select([display.fileno()], [], [], min(left, 0.05))
        while display.pending_events():
            display.next_event()
    out = []
    for wid, window in pending.items():
        try:
            title = window.get_wm_name() or ""
        except Exception:
            title = ""
        if isinstance(title, bytes):
            title = title.decode("latin-1")
        out.append(IconSeen(wid, str(title), wid in done))
    return out
