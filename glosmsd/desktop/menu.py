"""The tray's menu on plain X11 trays (pystray's xorg backend has none): a small Tk popup
menu, run in a process of its own.

Why a process: Tk (libX11, Xft) and the tray's python-xlib connection in one process made
the daemon crash (issue 12 item 3: a segmentation fault after the tray menu had been posted
a few times around popups and notifications). The daemon never loads Tk; it starts
`python -m glosmsd.desktop.menu`, writes the entries and the icon's place as one JSON
object on its stdin, and reads back the index of the entry chosen (nothing: none). The
tray's X loop keeps running meanwhile (it watches the child's stdout with select()).

`MenuEntry` and `menu_position` are pure and shared with `glosmsd.desktop.tray`; nothing
here touches the store, the link or the socket.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

log = logging.getLogger(__name__)

#: Never hold a menu open longer than this (a menu nobody closes would hold the grab).
MENU_SECONDS: Final = 120


@dataclass(frozen=True, slots=True)
class MenuCommand:
    """What a menu click asks the daemon to do. `kind` is one of the names below."""

    kind: str  # copy_number | open | mark_all_read | compose | toggle_pref | quit
    arg: Any = None


@dataclass(frozen=True, slots=True)
class MenuEntry:
    """One menu line. No command and not a separator: an information line (disabled)."""

    label: str = ""
    command: MenuCommand | None = None
    enabled: bool = True
    checked: bool | None = None
    separator: bool = False
    key: str | None = None  # keyboard accelerator in the Tk menu (a letter of the label)
    children: tuple[MenuEntry, ...] = field(default=())

    @property
    def active(self) -> bool:
        return self.enabled and self.command is not None and not self.separator


def menu_position(
    icon: tuple[int, int, int, int], menu: tuple[int, int], screen: tuple[int, int]
) -> tuple[int, int]:
    """Where the menu's top-left goes for a tray icon at (x, y, w, h): under the icon (a
    top panel), or above it when there is no room below (a bottom panel), never over it."""
    x, y, _w, h = icon
    mw, mh = menu
    sw, sh = screen
    top = y + h if y + h + mh <= sh or y - mh < 0 else y - mh
    return max(0, min(x, sw - mw)), max(0, min(top, sh - mh))


# --------------------------------------------------------------------------- the wire


def request(entries: Sequence[MenuEntry], icon: tuple[int, int, int, int]) -> bytes:
    """What the tray writes to the menu process: the lines and where the icon is."""
    lines = [
        {
            "label": e.label,
            "separator": e.separator,
            "active": e.active,
            "checked": e.checked,
            "key": e.key,
        }
        for e in entries
    ]
    return json.dumps({"entries": lines, "icon": list(icon)}).encode()


def chosen(entries: Sequence[MenuEntry], answer: bytes) -> MenuCommand | None:
    """The command of the entry the menu process answered with (None: nothing chosen, or
    an answer that names no active entry)."""
    text = answer.decode(errors="replace").strip()
    if not text.isdigit():
        return None
    index = int(text)
    if index >= len(entries) or not entries[index].active:
        return None
    return entries[index].command


# --------------------------------------------------------------------------- Tk (child)


def build_tk_menu(parent: Any, lines: Sequence[dict[str, Any]], pick: Callable[[int], None]) -> Any:
    """A Tk menu for the wire's lines; choosing line i calls `pick(i)`."""
    import tkinter as tk

    menu = tk.Menu(parent, tearoff=False)
    keep: list[tk.BooleanVar] = []  # check item variables must outlive this function
    for i, line in enumerate(lines):
        if line.get("separator"):
            menu.add_separator()
            continue
        label = str(line.get("label") or "")
        state: Literal["normal", "disabled"] = "normal" if line.get("active") else "disabled"
        key = line.get("key")
        underline = label.find(key) if key else -1

        def picked(i: int = i) -> None:
            pick(i)

        if line.get("checked") is not None:
            var = tk.BooleanVar(master=parent, value=bool(line["checked"]))
            menu.add_checkbutton(
                label=label, variable=var, state=state, command=picked, underline=underline
            )
            keep.append(var)
        else:
            menu.add_command(label=label, state=state, command=picked, underline=underline)
    menu.bind("<Destroy>", lambda _e: keep.clear())
    return menu


def post(lines: Sequence[dict[str, Any]], icon: tuple[int, int, int, int]) -> int | None:
    """Show the menu by the icon at (x, y, w, h) until it closes; the line chosen."""
    import tkinter as tk

    picked: list[int] = []
    root = tk.Tk(className="glosmsd-menu")
    root.withdraw()
    try:
        menu = build_tk_menu(root, lines, picked.append)
        menu.bind("<Unmap>", lambda _e: root.after_idle(root.quit))
        root.after(MENU_SECONDS * 1000, root.quit)
        menu.update_idletasks()
        x, y = menu_position(
            icon,
            (menu.winfo_reqwidth(), menu.winfo_reqheight()),
            (root.winfo_screenwidth(), root.winfo_screenheight()),
        )
        menu.tk_popup(x, y)
        # Keys go to the menu even when the pointer is not over it (it opens beside the
        # icon; without a window manager X sends keys to the window under the pointer).
        menu.focus_force()
        root.mainloop()
    finally:
        root.destroy()
    return picked[0] if picked else None


def main() -> int:
    try:
        asked = json.loads(sys.stdin.buffer.read())
        lines = list(asked["entries"])
        icon = tuple(int(v) for v in asked["icon"])
    except (ValueError, KeyError, TypeError) as exc:
        print(f"glosmsd menu: bad request ({exc})", file=sys.stderr)
        return 2
    try:
        index = post(lines, (icon[0], icon[1], icon[2], icon[3]))
    except Exception as exc:  # said in one line; the tray logs it
        print(f"glosmsd menu: cannot show the menu ({exc})", file=sys.stderr)
        return 1
    if index is not None:
        sys.stdout.write(f"{index}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
