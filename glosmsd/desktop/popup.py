"""The quick-send popup (Tk): `glosms compose [TO]`, the tray's "New message…", a hotkey.

A frontend like the CLI: it talks to the daemon only through the socket
(`glosmsd.client.ipc`). Socket calls never run on Tk's thread (a send with files can take
seconds while the daemon fits the images): `Calls` runs them on a small pool and hands the
results back on Tk's thread. While a send is in flight the window says "Sending…" and the
send controls are disabled; an error keeps the text. Closing the window during a send
only hides it: the process stays until the daemon has answered (from then on the daemon
owns the message), and comes back with the text if the send was refused.

It owns the widgets: recipient with autocomplete over contacts and conversations (and a
picker for a contact with several numbers), the text (Enter is a newline, Ctrl+Enter
sends), the live counter (`glosmsd.core.rules`, pure and local, so typing never waits on the
socket), files with thumbnails and a remove control, the emoji picker, and, when opened on
a conversation, its last messages with their states.

Colour emoji fonts can crash Tk's Xft renderer on X11; when one is installed the picker
degrades to `:shortcode:` names, which are turned into emoji when the message is sent.
Emoji that no installed font can draw (Tk would show an empty box) are left out of the
picker and shown as `:shortcode:` in the conversation.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import functools
import shutil
import subprocess
import sys
import tkinter as tk
import tkinter.font
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from tkinter import filedialog, ttk
from typing import Any, Final

from glosmsd.client.ipc import Client
from glosmsd.core import rules
from glosmsd.core.errors import GlosmsdError

HISTORY: Final = 6
#: How often Tk looks for finished socket calls, only while one is in flight.
POLL_MS: Final = 20
#: How long "Sent ✓" stays before the window closes by itself.
SENT_CLOSE_MS: Final = 800
CALL_WORKERS: Final = 3
FILES_PER_ROW: Final = 5
EMOJI_FONT: Final[tuple[str, int]] = ("DejaVu Sans", 15)
THUMB: Final = 40
#: JPEG and PNG are fitted by the daemon; budget them at what a fitted image usually takes.
FITTED_IMAGE: Final = rules.FITTED_IMAGE
FITTABLE: Final = (".jpg", ".jpeg", ".png")
CATEGORIES: Final[tuple[tuple[str, tuple[tuple[int, int], ...]], ...]] = (
    ("Smileys", ((0x1F600, 0x1F64F), (0x1F910, 0x1F92F), (0x1F970, 0x1F97A))),
    ("People", ((0x1F440, 0x1F450), (0x1F466, 0x1F478), (0x1F645, 0x1F64F))),
    ("Nature", ((0x1F400, 0x1F43F), (0x1F330, 0x1F344))),
    ("Food", ((0x1F345, 0x1F37F),)),
    ("Travel", ((0x1F680, 0x1F6C5),)),
    ("Activities", ((0x1F380, 0x1F3D3),)),
    ("Objects", ((0x1F4A1, 0x1F4FF),)),
    ("Symbols", ((0x2764, 0x2764), (0x1F493, 0x1F49F), (0x2705, 0x2705), (0x274C, 0x274C))),
)
COLOUR_EMOJI_FONTS: Final = ("Noto Color Emoji", "Apple Color Emoji", "Twemoji", "JoyPixels")
#: Joiners and presentation selectors draw nothing themselves: a font need not have them.
INVISIBLE: Final = frozenset({0x200D, 0xFE0E, 0xFE0F})
PICKER_GAP: Final = 8
HELD_BACKGROUND: Final = "#ececec"
HELD_FOREGROUND: Final = "#606060"
PICKER_COLUMNS: Final = 8
#: Fewer columns when the picker shows :names: (they are six times as wide as a glyph).
PICKER_NAME_COLUMNS: Final = 4


@dataclass(frozen=True, slots=True)
class Attachment:
    path: Path
    size: int

    @property
    def budget(self) -> int:
        return rules.attach_budget(self.size, fittable=self.path.suffix.lower() in FITTABLE)


def emoji_by_category() -> list[tuple[str, list[tuple[str, str]]]]:
    """(category, [(emoji, name), ...]) for the picker, from the `emoji` package's data."""
    import emoji

    data = emoji.EMOJI_DATA
    out = []
    for name, ranges in CATEGORIES:
        items = []
        for lo, hi in ranges:
            for cp in range(lo, hi + 1):
                ch = chr(cp)
                info = data.get(ch)
                if info is not None and info.get("status", 2) <= 2:
                    items.append((ch, str(info["en"]).strip(":").replace("_", " ")))
        out.append((name, items))
    return out


def colour_emoji_font(families: Sequence[str]) -> bool:
    return any(f in families for f in COLOUR_EMOJI_FONTS)


def pick_attachments(files: Sequence[Attachment], limits: rules.Limits) -> rules.FilePick:
    return rules.pick_files([f.budget for f in files], limits)


def counter_line(text: str, files: Sequence[Attachment], limits: rules.Limits) -> str:
    """What the counter says: characters and segments left, or kilobytes left with files."""
    try:
        count = rules.count_text(
            text, files=len(files), file_bytes=sum(f.budget for f in files), limits=limits
        )
    except GlosmsdError as exc:
        return exc.message
    if files:
        kb = (count.bytes_left or 0) // 1024
        chars = count.chars_left if count.chars_left is not None else 0
        line = f"{kb} KB left · {chars} characters left"
    else:
        line = f"{count.remaining} characters left · {count.segments}/{limits.sms_max_segments} SMS"
    return line if count.fits else f"{line} · {count.reason}"


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


Done = Callable[[Any], None]
Failed = Callable[[GlosmsdError], None]


def as_error(exc: BaseException) -> GlosmsdError:
    if isinstance(exc, GlosmsdError):
        return exc
    return GlosmsdError(f"Something went wrong talking to glosmsd: {exc}")


class Calls:
    """Socket calls off Tk's thread.

    Tk may only be used from the thread that made it. A job runs on a small pool and must
    not touch a widget; its result (or its error) is handed to `done` (or `failed`) on
    Tk's thread, found by polling with `after` only while something is in flight, so an
    idle popup runs no timer.
    """

    def __init__(self, root: tk.Tk, *, workers: int = CALL_WORKERS) -> None:
        self.root = root
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="popup-call")
        self._waiting: list[tuple[Future[Any], Done, Failed]] = []
        self._timer: str | None = None
        self._closed = False

    def submit(self, job: Callable[[], Any], done: Done, failed: Failed) -> None:
        if self._closed:
            return
        self._waiting.append((self._pool.submit(job), done, failed))
        if self._timer is None:
            self._timer = self.root.after(POLL_MS, self._poll)

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    def _poll(self) -> None:
        self._timer = None
        finished: list[tuple[Future[Any], Done, Failed]] = []
        waiting: list[tuple[Future[Any], Done, Failed]] = []
        for item in self._waiting:
            (finished if item[0].done() else waiting).append(item)
        self._waiting = waiting
        for future, done, failed in finished:
            if self._closed:
                return
            exc = future.exception()
            try:
                if exc is None:
                    done(future.result())
                else:
                    failed(as_error(exc))
            except Exception as err:  # one broken answer must not strand the others
                self.root.report_callback_exception(type(err), err, err.__traceback__)
        # A callback above may have submitted (and so scheduled) already: one timer only.
        if self._waiting and not self._closed and self._timer is None:
            self._timer = self.root.after(POLL_MS, self._poll)

    def close(self) -> None:
        """Forget what is in flight (its results are dropped); never waits."""
        self._closed = True
        if self._timer is not None:
            with contextlib.suppress(tk.TclError):
                self.root.after_cancel(self._timer)
            self._timer = None
        self._waiting = []
        self._pool.shutdown(wait=False, cancel_futures=True)


class Popup:
    """The window. `client()` gives a connected socket client for each call."""

    def __init__(
        self,
        root: tk.Tk,
        client: Callable[[], Client],
        *,
        to: str = "",
        conversation: int | str | None = None,
        close_on_send: bool = True,
        glyphs: Glyphs | None = None,
    ) -> None:
        self.root = root
        self.client = client
        self.close_on_send = close_on_send
        self.calls = Calls(root)
        self.files: list[Attachment] = []
        self.limits = rules.Limits()
        self.number: str | None = None
        self.conversation = conversation
        self.sending = False
        self.closing = False  # closed by the user while a send was in flight
        self.closed = False
        self._thumbs: list[Any] = []
        self._choices: list[tuple[str, str]] = []  # (shown, recipient)
        self._lookup = 0  # the newest autocomplete request; older answers are dropped
        self.picker: NumberPicker | None = None
        self.emoji: EmojiPicker | None = None
        self.degraded = colour_emoji_font(tkinter.font.families(root))
        self.glyphs = glyphs if glyphs is not None else Glyphs.installed()
        root.title("New message · glosmsd")
        root.minsize(420, 300)

        self.status = tk.StringVar(master=root)
        self.error = tk.StringVar(master=root)
        self.counter = tk.StringVar(master=root)
        self.to = tk.StringVar(master=root, value=to)

        top = ttk.Frame(root, padding=8)
        top.pack(fill="both", expand=True)
        row = ttk.Frame(top)
        row.pack(fill="x")
        ttk.Label(row, text="To:").pack(side="left")
        self.to_entry = ttk.Entry(row, textvariable=self.to)
        self.to_entry.pack(side="left", fill="x", expand=True, padx=(4, 0))
        self.suggest = tk.Listbox(top, height=4, exportselection=False)
        self.suggest.bind("<<ListboxSelect>>", self._chosen)
        self.to_entry.bind("<KeyRelease>", self._typed_recipient)

        self.history = ttk.Frame(top)
        self.history.pack(fill="x", pady=(6, 0))

        self.text = tk.Text(top, height=6, width=48, wrap="word", undo=True)
        self.text.pack(fill="both", expand=True, pady=(6, 0))
        self.text.bind("<Control-Return>", self._send_key)
        self.text.bind("<Control-KP_Enter>", self._send_key)
        self.text.bind("<<Modified>>", self._modified)
        self._text_background = str(self.text.cget("background"))
        self._text_foreground = str(self.text.cget("foreground"))

        self.file_row = ttk.Frame(top)
        self.file_row.pack(fill="x", pady=(4, 0))

        ttk.Label(top, textvariable=self.error, foreground="#b00020", wraplength=400).pack(fill="x")
        ttk.Label(top, textvariable=self.counter, anchor="e").pack(fill="x")
        buttons = ttk.Frame(top)
        buttons.pack(fill="x", pady=(4, 0))
        self.attach_button = ttk.Button(buttons, text="Attach…", command=self.choose_files)
        self.attach_button.pack(side="left")
        ttk.Button(buttons, text="Emoji", command=self.open_emoji).pack(side="left", padx=4)
        ttk.Label(buttons, textvariable=self.status).pack(side="left", padx=4)
        self.send_button = ttk.Button(buttons, text="Send (Ctrl+Enter)", command=self.send)
        self.send_button.pack(side="right")
        root.bind("<Escape>", lambda _e: self.close())
        root.protocol("WM_DELETE_WINDOW", self.close)
        root.bind("<Destroy>", self._destroyed, add="+")

        self._load()
        self.update_counter()
        (self.text if to or conversation is not None else self.to_entry).focus_set()

    # -- talking to the daemon (the jobs run on the pool: no widgets in them)

    def call(self, method: str, **params: Any) -> Any:
        with self.client() as c:
            return c.call(method, params or None)

    def _load(self) -> None:
        ref = self.conversation

        def job() -> tuple[dict[str, Any], dict[str, Any] | None]:
            status = self.call("status")
            got = None if ref is None else self.call("messages", conversation=ref, limit=HISTORY)
            return status, got

        self.status.set("Loading…")
        self.calls.submit(job, self._loaded, self._load_failed)

    def _loaded(self, result: tuple[dict[str, Any], dict[str, Any] | None]) -> None:
        status, got = result
        if self.status.get() == "Loading…":
            self.status.set("")
        self.number = status.get("number")
        self.limits = rules.Limits.from_settings(status.get("settings") or {})
        if not self.number:
            self.error.set("No SMS number assigned: sending SMS is not possible.")
        self.update_counter()
        if got is not None:
            self._show_history(got)
            self.mark_read(got["conversation"]["id"])

    def _load_failed(self, exc: GlosmsdError) -> None:
        if self.status.get() == "Loading…":
            self.status.set("")
        self.error.set(exc.message)

    def show_conversation(self, ref: int | str) -> None:
        """Show the last messages of `ref` (when they arrive) and mark it read."""

        def job() -> Any:
            return self.call("messages", conversation=ref, limit=HISTORY)

        def shown(got: dict[str, Any]) -> None:
            self._show_history(got)
            self.mark_read(got["conversation"]["id"])

        self.calls.submit(job, shown, self._show_error)

    def _show_history(self, got: dict[str, Any]) -> None:
        conv = got["conversation"]
        self.conversation = conv["id"]
        if not self.to.get().strip():
            self.to.set(conv["remote"])
        self.root.title(f"{conv['title']} · glosmsd")
        for child in self.history.winfo_children():
            child.destroy()
        for m in reversed(got["messages"]):
            who = (
                conv["title"]
                if m["direction"] == "in"
                else (m["sender"] or {}).get("name") or "You"
            )
            state = "" if m["direction"] == "in" else f" · {m['state']}"
            line = ttk.Frame(self.history)
            line.pack(fill="x", anchor="w")
            text = self._shown_text(m["text"] or f"({len(m['files'])} files)")
            ttk.Label(line, text=f"{who}{state}: {text}", wraplength=380, justify="left").pack(
                side="left"
            )
            if m["state"] == "failed" and m["direction"] == "out":
                ttk.Button(
                    line, text="Resend", command=functools.partial(self._resend, int(m["id"]))
                ).pack(side="right")

    def mark_read(self, ref: int | str) -> None:
        self.calls.submit(
            lambda: self.call("mark_read", conversation=ref), _ignore, self._show_error
        )

    def _resend(self, msg_id: int) -> None:
        self.status.set("Sending again…")

        def resent(_res: Any) -> None:
            if self.conversation is not None:
                self.show_conversation(self.conversation)

        self.calls.submit(lambda: self.call("resend", id=msg_id), resent, self._show_error)

    def _show_error(self, exc: GlosmsdError) -> None:
        self.error.set(exc.message)

    def _shown_text(self, text: str) -> str:
        return shown_text(text, degraded=self.degraded, glyphs=self.glyphs)

    # -- recipient

    def _typed_recipient(self, _event: Any = None) -> None:
        query = self.to.get().strip()
        self._lookup += 1
        seq = self._lookup
        if not query or query.startswith("+"):
            self._suggest(seq, [])
            return

        def job() -> list[tuple[str, str]]:
            found = [
                (f"{c['name']} · {n['label']} {n['number']}", n["number"])
                for c in self.call("contacts", query=query, limit=8)
                for n in c["numbers"]
            ]
            found.extend(
                (f"{conv['title']} · {conv['remote']}", conv["remote"])
                for conv in self.call("search", query=query, limit=5)["conversations"]
            )
            return found

        self.calls.submit(job, functools.partial(self._suggest, seq), self._show_error)

    def _suggest(self, seq: int, choices: list[tuple[str, str]]) -> None:
        if seq != self._lookup:  # the user typed on; a newer lookup is coming
            return
        self.suggest.delete(0, "end")
        seen: set[str] = set()
        unique = []
        for shown, number in choices:
            if shown not in seen:
                seen.add(shown)
                unique.append((shown, number))
                self.suggest.insert("end", shown)
        self._choices = unique
        if unique:
            self.suggest.pack(fill="x", after=self.to_entry.master)
        else:
            self.suggest.pack_forget()

    def _chosen(self, _event: Any = None) -> None:
        sel = self.suggest.curselection()  # type: ignore[no-untyped-call]
        if not sel:
            return
        self.to.set(self._choices[sel[0]][1])
        self.suggest.pack_forget()
        self.text.focus_set()

    # -- text, counter, files

    def message_text(self) -> str:
        import emoji

        # Shortcodes come from the degraded picker (and from people who type them).
        return str(emoji.emojize(self.text.get("1.0", "end-1c"), language="alias"))

    def _modified(self, _event: Any = None) -> None:
        self.text.edit_modified(False)
        self._name_emoji()
        self.update_counter()

    def _name_emoji(self) -> None:
        """Typed or pasted emoji that no font draws (Tk shows a box; degraded: all of them,
        they could crash Tk) become their :name:, made emoji again when the text is sent."""
        import emoji

        found = {
            m["emoji"]
            for m in emoji.emoji_list(self.text.get("1.0", "end-1c"))
            if self.degraded or not self.glyphs.has(m["emoji"])
        }
        # Longest first: a plain emoji must not match the start of its skin-toned form.
        # The end is a column from Tk's own match length: Tk 8.6 columns count a character
        # past U+FFFF as two, while "+N chars" steps over it as one.
        length = tk.IntVar(master=self.root)
        for e in sorted(found, key=len, reverse=True):
            while index := self.text.search(e, "1.0", "end", exact=True, count=length):
                line, column = index.split(".")
                self.text.delete(index, f"{line}.{int(column) + length.get()}")
                self.text.insert(index, str(emoji.demojize(e)))

    def update_counter(self) -> None:
        self.counter.set(counter_line(self.message_text(), self.files, self.limits))

    def choose_files(self) -> None:
        names = filedialog.askopenfilenames(parent=self.root, title="Attach files")
        self.add_files([Path(n) for n in names])

    def add_files(self, paths: Sequence[Path]) -> None:
        candidates = list(self.files)
        for p in paths:
            try:
                candidates.append(Attachment(p, p.stat().st_size))
            except OSError as exc:
                self.error.set(f"Cannot attach {p.name}: {exc.strerror}")
        pick = pick_attachments(candidates, self.limits)
        self.files = [candidates[i] for i in pick.kept]
        if pick.message:
            self.error.set(pick.message)
        self._show_files()
        self.update_counter()

    def remove_file(self, index: int) -> None:
        if self.sending:
            return
        del self.files[index]
        self.error.set("")
        self._show_files()
        self.update_counter()

    def _show_files(self) -> None:
        for child in self.file_row.winfo_children():
            child.destroy()
        self._thumbs = []
        for i, f in enumerate(self.files):
            cell = ttk.Frame(self.file_row, padding=2)
            cell.grid(row=i // FILES_PER_ROW, column=i % FILES_PER_ROW, sticky="n")
            thumb = self._thumbnail(f.path)
            if thumb is not None:
                self._thumbs.append(thumb)
                ttk.Label(cell, image=thumb).pack()
            ttk.Label(cell, text=f.path.name[:14]).pack()
            ttk.Button(cell, text="✕ Remove", command=functools.partial(self.remove_file, i)).pack()

    def _thumbnail(self, path: Path) -> Any:
        try:
            from PIL import Image, ImageTk

            with Image.open(path) as img:
                img.thumbnail((THUMB, THUMB))
                return ImageTk.PhotoImage(img.convert("RGBA"), master=self.root)
        except Exception:
            return None

    # -- emoji

    def open_emoji(self) -> EmojiPicker:
        """The picker at once; its "Recently used" row fills in when the daemon answers."""
        if self.emoji is not None and self.emoji.top.winfo_exists():
            self.emoji.top.deiconify()
            self.emoji.top.lift()
            return self.emoji
        picker = EmojiPicker(self)
        self.emoji = picker
        self.calls.submit(
            lambda: self.call("emoji_recent", limit=16), picker.show_recent, self._show_error
        )
        return picker

    def insert_emoji(self, ch: str, name: str) -> None:
        if self.sending:
            return
        if self.degraded or not self.glyphs.has(ch):
            self.text.insert("insert", f":{name.replace(' ', '_')}:")
        else:
            self.text.insert("insert", ch)
        self.update_counter()

    # -- sending

    def _send_key(self, _event: Any = None) -> str:
        self.send()
        return "break"

    def send(self) -> bool:
        """Start sending what is typed; False if there is nothing to start (said why)."""
        if self.sending:
            return False
        to = self.to.get().strip()
        text = self.message_text().strip()
        if not to:
            self.error.set("Who is it for? Type a name or a number.")
            return False
        self.error.set("")
        self._start_send({"to": to, "text": text, "files": [str(f.path) for f in self.files]})
        return True

    def _start_send(self, params: dict[str, Any]) -> None:
        self._busy(True)
        self.calls.submit(
            lambda: self.call("send", **params),
            self._sent,
            functools.partial(self._send_failed, params),
        )

    def _busy(self, sending: bool) -> None:
        """While a send is in flight: say so, and hold the controls that would change it."""
        self.sending = sending
        self.status.set("Sending…" if sending else "")
        state = ["disabled"] if sending else ["!disabled"]
        self.send_button.state(state)
        self.attach_button.state(state)
        self.to_entry.state(state)
        # Held text looks held: greyed, so nobody types into it expecting it to go out.
        self.text.configure(
            state="disabled" if sending else "normal",
            background=HELD_BACKGROUND if sending else self._text_background,
            foreground=HELD_FOREGROUND if sending else self._text_foreground,
        )
        for cell in self.file_row.winfo_children():
            for child in cell.winfo_children():
                if isinstance(child, ttk.Button):
                    child.state(state)

    def _sent(self, res: dict[str, Any]) -> None:
        self._busy(False)
        if res.get("notice"):
            self.error.set(res["notice"])
        self.status.set("Sent ✓" if res["message"]["state"] != "failed" else "Failed")
        self.text.delete("1.0", "end")
        self.files = []
        self._show_files()
        self.update_counter()
        if self.closing:
            self.destroy()
        elif self.close_on_send:
            self.root.after(SENT_CLOSE_MS, self.destroy)

    def _send_failed(self, params: dict[str, Any], exc: GlosmsdError) -> None:
        data = exc.data or {}
        choices = data.get("choices")
        if choices and "pick" not in params:
            self._reopen()
            self.status.set("Which number?")
            self.picker = NumberPicker(
                self.root,
                str(data.get("contact")),
                choices,
                lambda pick: self._picked(params, pick),
            )
            return
        self._busy(False)
        self.error.set(f"Not sent: {exc.message}")
        self._reopen()

    def _picked(self, params: dict[str, Any], pick: int | None) -> None:
        self.picker = None
        if pick is None:
            self._busy(False)
            return
        self._start_send({**params, "pick": pick})

    def _reopen(self) -> None:
        """Closed during the send, but the send needs the user again: show the window."""
        if self.closing:
            self.closing = False
            self.root.deiconify()
            self.root.lift()

    # -- closing

    def close(self) -> None:
        """The window's close button and Escape. A send in flight is seen through first."""
        if self.picker is not None:  # closed instead of picking a number: nothing goes out
            self.picker.answer(None)
        if self.sending:
            self.closing = True
            self.root.withdraw()
            if self.emoji is not None:
                with contextlib.suppress(tk.TclError):
                    self.emoji.top.destroy()
            return
        self.destroy()

    def destroy(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.calls.close()
        with contextlib.suppress(tk.TclError):
            self.root.destroy()

    def _destroyed(self, event: Any) -> None:
        if event.widget is self.root:  # also when destroyed from outside
            self.closed = True
            self.calls.close()


def _ignore(_result: Any) -> None:
    return None


class NumberPicker:
    """Which number of a contact with several: `on_pick(index)`, or `on_pick(None)`."""

    def __init__(
        self,
        root: tk.Tk,
        name: str,
        choices: Sequence[dict[str, Any]],
        on_pick: Callable[[int | None], None],
    ) -> None:
        self.on_pick = on_pick
        self.choice: int | None = None
        self._answered = False
        # A border of its own: without a window manager nothing else sets it off the popup.
        self.top = tk.Toplevel(root, borderwidth=1, relief="solid")
        self.top.title(f"Which number of {name}?")
        self.top.transient(root)
        self.top.protocol("WM_DELETE_WINDOW", lambda: self.answer(None))
        self.top.bind("<Escape>", lambda _e: self.answer(None))
        body = ttk.Frame(self.top, padding=10)
        body.pack(fill="both", expand=True)
        ttk.Label(body, text=f"{name} has several numbers. Send to:").pack(anchor="w", pady=(0, 6))
        self.buttons = []
        for c in choices:
            b = ttk.Button(
                body,
                text=f"{c['label']}: {c['number']}",
                command=functools.partial(self.answer, int(c["pick"])),
            )
            b.pack(fill="x", pady=2)
            self.buttons.append(b)
        ttk.Button(body, text="Cancel", command=lambda: self.answer(None)).pack(
            anchor="e", pady=(6, 0)
        )
        if self.buttons:
            self.buttons[0].focus_set()
        self._centre(root)

    def _centre(self, root: tk.Tk) -> None:
        root.update_idletasks()
        self.top.update_idletasks()
        w, h = self.top.winfo_reqwidth(), self.top.winfo_reqheight()
        x = root.winfo_rootx() + (root.winfo_width() - w) // 2
        y = root.winfo_rooty() + (root.winfo_height() - h) // 2
        self.top.geometry(f"+{max(0, x)}+{max(0, y)}")

    def answer(self, index: int | None) -> None:
        if self._answered:
            return
        self._answered = True
        self.choice = index
        self.top.destroy()
        self.on_pick(index)


class EmojiPicker:
    """Tabs by category; the recently used ones in a row at the bottom."""

    def __init__(self, popup: Popup) -> None:
        self.popup = popup
        self.top = tk.Toplevel(popup.root)
        self.top.title("Emoji")
        tabs = ttk.Notebook(self.top)
        tabs.pack(fill="both", expand=True)
        self.buttons: dict[str, tk.Button] = {}
        for category, items in emoji_by_category():
            drawable = [(ch, name) for ch, name in items if popup.glyphs.has(ch)]
            frame = ttk.Frame(tabs, padding=4)
            tabs.add(frame, text=category)
            # No font here draws this category: its names, rather than empty boxes.
            self._grid(frame, (drawable or items)[:64], names=popup.degraded or not drawable)
        self.recent = ttk.LabelFrame(self.top, text="Recently used", padding=4)
        self.recent.pack(fill="x", side="bottom")
        self._waiting = ttk.Label(self.recent, text="…")
        self._waiting.pack()
        self.place()

    def place(self) -> None:
        """Beside the popup, not over it (there may be no window manager to place it)."""
        root = self.popup.root
        root.update_idletasks()
        self.top.update_idletasks()
        x, y = place_beside(
            (root.winfo_rootx(), root.winfo_rooty(), root.winfo_width(), root.winfo_height()),
            (self.top.winfo_reqwidth(), self.top.winfo_reqheight()),
            (root.winfo_screenwidth(), root.winfo_screenheight()),
        )
        self.top.geometry(f"+{x}+{y}")

    def show_recent(self, recent: Sequence[str]) -> None:
        import emoji

        if not self.top.winfo_exists():
            return
        self._waiting.destroy()
        named = [
            (e, str(emoji.demojize(e)).strip(":").replace("_", " "))
            for e in recent
            if self.popup.degraded or self.popup.glyphs.has(e)
        ]
        if named:
            self._grid(self.recent, named, names=self.popup.degraded)
        else:
            ttk.Label(self.recent, text="(none yet)").grid(row=0, column=0)

    def _grid(self, frame: tk.Misc, items: Sequence[tuple[str, str]], *, names: bool) -> None:
        for i, (ch, name) in enumerate(items):
            label = f":{name.replace(' ', '_')[:10]}:" if names else ch
            b = tk.Button(
                frame,
                text=label,
                relief="flat",
                font="TkDefaultFont" if names else EMOJI_FONT,
                width=12 if names else 2,
                command=functools.partial(self.popup.insert_emoji, ch, name),
            )
            columns = PICKER_NAME_COLUMNS if names else PICKER_COLUMNS
            b.grid(row=i // columns, column=i % columns, sticky="w")
            self.buttons.setdefault(ch, b)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="glosms compose", description="the quick-send popup")
    p.add_argument("to", nargs="?", default="", help="prefill the recipient")
    p.add_argument("--conversation", help="open on this conversation (id, number or name)")
    args = p.parse_args(argv)
    try:
        root = tk.Tk(className="glosmsd-popup")
    except tk.TclError as exc:
        print(f"glosms compose: cannot open a window ({exc}); use glosms send.", file=sys.stderr)
        return 1
    # As typed: the daemon decides whether it is a conversation id or a number.
    Popup(root, Client, to=args.to, conversation=args.conversation)
    root.mainloop()
    return 0


def has_fc_colour_font() -> bool:
    """Whether fontconfig knows a colour emoji font (used in tests to pick what to expect)."""
    if shutil.which("fc-list") is None:
        return False
    out = subprocess.run(
        ["fc-list", ":color=true", "family"], capture_output=True, text=True, check=False
    )
    return bool(out.stdout.strip())


if __name__ == "__main__":
    raise SystemExit(main())
