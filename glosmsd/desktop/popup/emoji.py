"""The popup's emoji: which ones a font here can draw, the colour emoji font, and the
picker (Unicode's emoji groups from the daemon's `emoji_catalog`, the recently used ones
from `emoji_recent`, the same the SMS window shows).

Tk 8.6 draws colour emoji through Xft when libXft is 2.3.5 or newer (BGRA glyphs): then
the picker and the text use the colour emoji font (Noto Color Emoji and its kind). Older
libXft crashed on colour glyphs; there, with a colour font installed, emoji are shown as
their `:shortcode:` names (`degraded`) and turned back into emoji when the message is sent.
Emoji that no installed font can draw (Tk would show an empty box) are left out of the
picker and shown as their `:shortcode:` in the conversation.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import functools
import shutil
import subprocess
import tkinter as tk
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from tkinter import ttk
from typing import Any, Final

COLOUR_EMOJI_FONTS: Final = ("Noto Color Emoji", "Apple Color Emoji", "Twemoji", "JoyPixels")
#: Where no colour emoji font is installed: a text font with many emoji glyphs.
PLAIN_EMOJI_FONT: Final = "DejaVu Sans"
EMOJI_SIZE: Final = 16
#: libXft draws colour (BGRA) glyphs from this version on; older ones crashed on them.
XFT_COLOUR: Final = 20305
#: Joiners and presentation selectors draw nothing themselves: a font need not have them.
INVISIBLE: Final = frozenset({0x200D, 0xFE0E, 0xFE0F})
ZWJ: Final = "\u200d"
PICKER_GAP: Final = 8
#: The picker's grid: columns and visible rows of each group (a group scrolls past them).
PICKER_COLUMNS: Final = 10
PICKER_ROWS: Final = 7
RECENT: Final = 16


def colour_emoji_font(families: Sequence[str]) -> str | None:
    """The first colour emoji font of `families` (Tk's font families), or None."""
    return next((f for f in COLOUR_EMOJI_FONTS if f in families), None)


@functools.cache
def xft_version() -> int | None:
    """libXft's version (20306 for 2.3.6), None where it cannot be loaded."""
    name = ctypes.util.find_library("Xft") or "libXft.so.2"
    try:
        lib = ctypes.CDLL(name)
        return int(lib.XftGetVersion())
    except (OSError, AttributeError):
        return None


def degraded_here(families: Sequence[str], xft: int | None) -> bool:
    """Whether emoji must be shown by name: a colour font that this libXft cannot draw."""
    return colour_emoji_font(families) is not None and xft is not None and xft < XFT_COLOUR


def emoji_font(families: Sequence[str], size: int = EMOJI_SIZE) -> tuple[str, int]:
    return (colour_emoji_font(families) or PLAIN_EMOJI_FONT, size)


def parse_charsets(lines: Iterable[str]) -> tuple[tuple[int, int], ...]:
    """fontconfig charsets ("20-7e a0-1a9 245", one font a line) as merged (lo, hi) ranges."""
    spans: list[tuple[int, int]] = []
    for line in lines:
        for word in line.split():
            first, _dash, last = word.partition("-")
            try:
                spans.append((int(first, 16), int(last or first, 16)))
            except ValueError:
                continue
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class Glyphs:
    """Which characters some installed font can draw; `ranges=None`: unknown, assume all."""

    ranges: tuple[tuple[int, int], ...] | None = None
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.ranges is not None:
            object.__setattr__(self, "ranges", tuple(sorted(self.ranges)))
        object.__setattr__(self, "_starts", tuple(lo for lo, _hi in self.ranges or ()))

    def has(self, text: str) -> bool:
        if self.ranges is None:
            return True
        for ch in text:
            cp = ord(ch)
            if cp in INVISIBLE:
                continue
            i = bisect.bisect_right(self._starts, cp) - 1
            if i < 0 or cp > self.ranges[i][1]:
                return False
        return True

    @classmethod
    def installed(cls) -> Glyphs:
        """Ask fontconfig (one `fc-list` run, ~10 ms); unknown where there is none."""
        if shutil.which("fc-list") is None:
            return cls()
        try:
            out = subprocess.run(
                ["fc-list", "--format=%{charset}\\n"],
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return cls()
        ranges = parse_charsets(out.stdout.splitlines())
        return cls(ranges) if ranges else cls()


def shown_text(text: str, *, degraded: bool, glyphs: Glyphs) -> str:
    """Text as the popup shows it: emoji no font can draw (or all, degraded) as :names:."""
    import emoji

    if degraded:
        return str(emoji.demojize(text))

    def name(chars: str, data: dict[str, Any]) -> str:
        return chars if glyphs.has(chars) else str(data["en"])

    return str(emoji.replace_emoji(text, replace=name))


def place_beside(
    window: tuple[int, int, int, int], size: tuple[int, int], screen: tuple[int, int]
) -> tuple[int, int]:
    """Where a helper window of `size` goes next to `window` (x, y, w, h) on `screen`.

    Right of it, else left, else below, else above; where none fits, the corner of the
    screen that covers the least of the window's left part (where the text is typed).
    """
    x, y, w, h = window
    pw, ph = size
    sw, sh = screen
    if x + w + PICKER_GAP + pw <= sw:
        spot = (x + w + PICKER_GAP, y)
    elif x - PICKER_GAP - pw >= 0:
        spot = (x - PICKER_GAP - pw, y)
    elif y + h + PICKER_GAP + ph <= sh:
        spot = (x, y + h + PICKER_GAP)
    elif y - PICKER_GAP - ph >= 0:
        spot = (x, y - PICKER_GAP - ph)
    else:
        spot = (sw - pw, sh - ph)
    return max(0, min(spot[0], sw - pw)), max(0, min(spot[1], sh - ph))


def picker_groups(
    catalog: Mapping[str, Any], glyphs: Glyphs
) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group, [(emoji, name), ...]) from the daemon's `emoji_catalog`, only what a font
    here draws; a group with nothing drawable is left out. Tk does not join ZWJ sequences
    (😮‍💨 came out as 😮 and 💨 side by side): those are left out too."""
    out = []
    for group in catalog.get("groups") or ():
        items = [
            (str(e["emoji"]), str(e["name"]))
            for e in group.get("emoji") or ()
            if ZWJ not in str(e["emoji"]) and glyphs.has(str(e["emoji"]))
        ]
        if items:
            out.append((str(group["name"]), items))
    return out


def shortcode(name: str) -> str:
    return ":" + name.replace(" ", "_").replace(":", "") + ":"


class EmojiPicker:
    """A tab per Unicode emoji group, each a grid of emoji that fills the picker (and
    scrolls past it), the recently used ones in a row at the bottom. `on_pick(emoji, name)`
    inserts one."""

    def __init__(
        self,
        root: tk.Tk,
        on_pick: Callable[[str, str], None],
        *,
        font: tuple[str, int],
        degraded: bool,
        glyphs: Glyphs,
    ) -> None:
        self.root = root
        self.on_pick = on_pick
        self.font = font
        self.degraded = degraded
        self.glyphs = glyphs
        self.names: dict[str, str] = {}  # every emoji offered -> its name
        self.grids: dict[str, tk.Text] = {}  # group -> its grid
        self._cells: dict[str, list[str]] = {}  # a grid's path -> the emoji of its cells
        self._unfilled: dict[str, list[tuple[str, str]]] = {}  # a tab's grid path -> items
        self.top = tk.Toplevel(root)
        self.top.title("Emoji")
        self.tabs = ttk.Notebook(self.top)
        self.tabs.pack(fill="both", expand=True)
        self._waiting = ttk.Label(self.tabs, text="Loading the emoji…", padding=20)
        self.tabs.add(self._waiting, text="Emoji")
        self.recent_frame = ttk.LabelFrame(self.top, text="Recently used", padding=2)
        self.recent_frame.pack(fill="x", side="bottom")
        self.recent = self._grid(self.recent_frame, rows=1)
        self.recent.pack(fill="x")
        self.place()

    def show_catalog(self, catalog: Mapping[str, Any]) -> None:
        if not self.top.winfo_exists():
            return
        self.tabs.forget(self._waiting)
        self._waiting.destroy()
        for name, items in picker_groups(catalog, self.glyphs):
            frame = ttk.Frame(self.tabs)
            grid = self._grid(frame, rows=PICKER_ROWS)
            bar = ttk.Scrollbar(frame, orient="vertical", command=grid.yview)
            grid.configure(yscrollcommand=bar.set)
            bar.pack(side="right", fill="y")
            grid.pack(side="left", fill="both", expand=True)
            self.tabs.add(frame, text=name.split(" & ")[0])
            self.grids[name] = grid
            for ch, label in items:
                self.names.setdefault(ch, label)
            # Filled when its tab is first shown: all nine at once took 3 s.
            self._unfilled[str(frame)] = items
        self.tabs.bind("<<NotebookTabChanged>>", self._tab_shown)
        self._tab_shown()
        self.place()

    def _tab_shown(self, _event: Any = None) -> None:
        frame = self.tabs.select()  # type: ignore[no-untyped-call]
        items = self._unfilled.pop(str(frame), None)
        if items is None:
            return
        for grid in self.grids.values():
            if str(grid.master) == str(frame):
                self._fill(grid, items)

    def show_recent(self, recent: Sequence[str]) -> None:
        import emoji

        if not self.top.winfo_exists():
            return
        drawn = [e for e in recent if self.degraded or self.glyphs.has(e)][:RECENT]
        names = [str(emoji.demojize(e)).strip(":").replace("_", " ") for e in drawn]
        self._fill(self.recent, list(zip(drawn, names, strict=True)))
        if not drawn:
            self.recent.configure(state="normal")
            self.recent.insert("end", "(none yet)", ("none",))
            self.recent.tag_configure("none", font="TkDefaultFont")
            self.recent.configure(state="disabled")

    def choose(self, ch: str) -> None:
        """As a click on `ch` does."""
        self.on_pick(ch, self.names.get(ch, ch))

    def place(self) -> None:
        """Beside the popup, not over it (there may be no window manager to place it)."""
        root = self.root
        root.update_idletasks()
        self.top.update_idletasks()
        x, y = place_beside(
            (root.winfo_rootx(), root.winfo_rooty(), root.winfo_width(), root.winfo_height()),
            (self.top.winfo_reqwidth(), self.top.winfo_reqheight()),
            (root.winfo_screenwidth(), root.winfo_screenheight()),
        )
        self.top.geometry(f"+{x}+{y}")

    def _grid(self, parent: tk.Misc, *, rows: int) -> tk.Text:
        """A read-only Text as a grid: one emoji a cell, wrapping at PICKER_COLUMNS."""
        font: Any = "TkDefaultFont" if self.degraded else self.font
        grid = tk.Text(
            parent,
            width=PICKER_COLUMNS * (6 if self.degraded else 2),
            height=rows,
            wrap="char",
            font=font,
            cursor="hand2",
            borderwidth=0,
            highlightthickness=0,
            padx=4,
            pady=4,
            spacing1=2,
            spacing3=2,
        )
        grid.configure(state="disabled")
        grid.bind("<Button-1>", functools.partial(self._clicked, grid))
        return grid

    def _fill(self, grid: tk.Text, items: Sequence[tuple[str, str]]) -> None:
        """One cell a tag `e<i>` (an emoji may be several characters): a click finds its
        cell by the tag under the pointer (one binding, not one per emoji)."""
        grid.configure(state="normal")
        grid.delete("1.0", "end")
        cells = []
        for i, (ch, name) in enumerate(items):
            self.names.setdefault(ch, name)
            grid.insert("end", shortcode(name)[:12] + " " if self.degraded else ch, (f"e{i}",))
            cells.append(ch)
        self._cells[str(grid)] = cells
        grid.configure(state="disabled")

    def _clicked(self, grid: tk.Text, event: Any) -> str:
        cells = self._cells.get(str(grid), [])
        for tag in grid.tag_names(f"@{event.x},{event.y}"):
            if tag.startswith("e") and tag[1:].isdigit() and int(tag[1:]) < len(cells):
                self.choose(cells[int(tag[1:])])
                break
        return "break"
