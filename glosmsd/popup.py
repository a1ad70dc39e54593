"""The quick-send popup (Tk): `glosms compose [TO]`, the tray's "New message…", a hotkey.

A frontend like the CLI: it talks to the daemon only through the socket
(`glosmsd.ipc_client`), one short call at a time on Tk's thread. It owns the widgets:
recipient with autocomplete over contacts and conversations (and a picker for a contact
with several numbers), the text (Enter is a newline, Ctrl+Enter sends), the live counter
(`glosmsd.rules`, pure and local, so typing never waits on the socket), files with
thumbnails and a remove control, the emoji picker, and, when opened on a conversation,
its last messages with their states. Errors are shown in words and the typed text stays.

Colour emoji fonts can crash Tk's Xft renderer on X11; when one is installed the picker
degrades to `:shortcode:` names, which are turned into emoji when the message is sent.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import tkinter as tk
import tkinter.font
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from tkinter import filedialog, ttk
from typing import Any, Final

from glosmsd import rules
from glosmsd.errors import GlosmsdError
from glosmsd.ipc_client import Client

HISTORY: Final = 6
FILES_PER_ROW: Final = 5
EMOJI_FONT: Final[tuple[str, int]] = ("DejaVu Sans", 15)
THUMB: Final = 40
#: JPEG and PNG are fitted by the daemon; budget them at what a fitted image usually takes.
FITTED_IMAGE: Final = 48 * 1024
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


@dataclass(frozen=True, slots=True)
class Attachment:
    path: Path
    size: int

    @property
    def budget(self) -> int:
        fittable = self.path.suffix.lower() in FITTABLE
        return min(self.size, FITTED_IMAGE) if fittable else self.size


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
    ) -> None:
        self.root = root
        self.client = client
        self.close_on_send = close_on_send
        self.files: list[Attachment] = []
        self.limits = rules.Limits()
        self.number: str | None = None
        self.conversation = conversation
        self._thumbs: list[Any] = []
        self._choices: list[tuple[str, str]] = []  # (shown, recipient)
        self.picker: NumberPicker | None = None
        self.degraded = colour_emoji_font(tkinter.font.families(root))
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

        self.file_row = ttk.Frame(top)
        self.file_row.pack(fill="x", pady=(4, 0))

        ttk.Label(top, textvariable=self.error, foreground="#b00020", wraplength=400).pack(fill="x")
        ttk.Label(top, textvariable=self.counter, anchor="e").pack(fill="x")
        buttons = ttk.Frame(top)
        buttons.pack(fill="x", pady=(4, 0))
        ttk.Button(buttons, text="Attach…", command=self.choose_files).pack(side="left")
        ttk.Button(buttons, text="Emoji", command=self.open_emoji).pack(side="left", padx=4)
        ttk.Label(buttons, textvariable=self.status).pack(side="left", padx=4)
        self.send_button = ttk.Button(buttons, text="Send (Ctrl+Enter)", command=self.send)
        self.send_button.pack(side="right")
        root.bind("<Escape>", lambda _e: root.destroy())

        self._load()
        self.update_counter()
        (self.text if to or conversation is not None else self.to_entry).focus_set()

    # -- talking to the daemon

    def call(self, method: str, **params: Any) -> Any:
        with self.client() as c:
            return c.call(method, params or None)

    def _load(self) -> None:
        try:
            status = self.call("status")
            self.number = status.get("number")
            self.limits = rules.Limits.from_settings(status.get("settings") or {})
            if not self.number:
                self.error.set("No SMS number assigned: sending SMS is not possible.")
            if self.conversation is not None:
                self.show_conversation(self.conversation)
        except GlosmsdError as exc:
            self.error.set(exc.message)

    def show_conversation(self, ref: int | str) -> None:
        got = self.call("messages", conversation=ref, limit=HISTORY)
        conv = got["conversation"]
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
        self.mark_read(ref)

    def mark_read(self, ref: int | str) -> None:
        try:
            self.call("mark_read", conversation=ref)
        except GlosmsdError as exc:
            self.error.set(exc.message)

    def _resend(self, msg_id: int) -> None:
        try:
            self.call("resend", id=msg_id)
            self.status.set("Sending again…")
        except GlosmsdError as exc:
            self.error.set(exc.message)

    def _shown_text(self, text: str) -> str:
        if not self.degraded:
            return text
        import emoji

        return str(emoji.demojize(text))

    # -- recipient

    def _typed_recipient(self, _event: Any = None) -> None:
        query = self.to.get().strip()
        self._choices = []
        if len(query) >= 1 and not query.startswith("+"):
            try:
                for c in self.call("contacts", query=query, limit=8):
                    for n in c["numbers"]:
                        self._choices.append(
                            (f"{c['name']} · {n['label']} {n['number']}", n["number"])
                        )
                for conv in self.call("search", query=query, limit=5)["conversations"]:
                    self._choices.append((f"{conv['title']} · {conv['remote']}", conv["remote"]))
            except GlosmsdError as exc:
                self.error.set(exc.message)
        self.suggest.delete(0, "end")
        seen: set[str] = set()
        unique = []
        for shown, number in self._choices:
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
        text = self.text.get("1.0", "end-1c")
        if self.degraded:
            import emoji

            text = str(emoji.emojize(text, language="alias"))
        return text

    def _modified(self, _event: Any = None) -> None:
        self.text.edit_modified(False)
        self.update_counter()

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
        recent: list[str] = []
        try:
            recent = self.call("emoji_recent", limit=16)
        except GlosmsdError as exc:
            self.error.set(exc.message)
        return EmojiPicker(self, recent)

    def insert_emoji(self, ch: str, name: str) -> None:
        if self.degraded:
            self.text.insert("insert", f":{name.replace(' ', '_')}:")
        else:
            self.text.insert("insert", ch)
        self.update_counter()

    # -- sending

    def _send_key(self, _event: Any = None) -> str:
        self.send()
        return "break"

    def send(self) -> bool:
        to = self.to.get().strip()
        text = self.message_text().strip()
        if not to:
            self.error.set("Who is it for? Type a name or a number.")
            return False
        self.error.set("")
        self.status.set("Sending…")
        self.root.update_idletasks()
        params: dict[str, Any] = {
            "to": to,
            "text": text,
            "files": [str(f.path) for f in self.files],
        }
        try:
            try:
                res = self.call("send", **params)
            except GlosmsdError as exc:
                data = exc.data or {}
                if data.get("choices"):
                    res = self._pick_and_send(str(data.get("contact")), data["choices"], params)
                    if res is None:
                        self.status.set("")
                        return False
                else:
                    raise
        except GlosmsdError as exc:
            self.status.set("")
            self.error.set(f"Not sent: {exc.message}")
            return False
        if res.get("notice"):
            self.error.set(res["notice"])
        self.status.set("Sent ✓" if res["message"]["state"] != "failed" else "Failed")
        self.text.delete("1.0", "end")
        self.files = []
        self._show_files()
        self.update_counter()
        if self.close_on_send:
            self.root.after(800, self.root.destroy)
        return True

    def _pick_and_send(
        self, name: str, choices: Sequence[dict[str, Any]], params: dict[str, Any]
    ) -> Any:
        """A contact with several numbers: ask which one, then send to it."""
        picker = NumberPicker(self.root, name, choices)
        self.picker = picker
        self.root.wait_window(picker.top)
        if picker.choice is None:
            return None
        return self.call("send", **{**params, "pick": picker.choice})


class NumberPicker:
    def __init__(self, root: tk.Misc, name: str, choices: Sequence[dict[str, Any]]) -> None:
        self.choice: int | None = None
        self.top = tk.Toplevel(root)
        self.top.title(f"Which number of {name}?")
        ttk.Label(self.top, text=f"{name} has several numbers:").pack(padx=8, pady=4)
        self.buttons = []
        for c in choices:
            b = ttk.Button(
                self.top,
                text=f"{c['label']}: {c['number']}",
                command=functools.partial(self._pick, int(c["pick"])),
            )
            b.pack(fill="x", padx=8, pady=2)
            self.buttons.append(b)

    def _pick(self, index: int) -> None:
        self.choice = index
        self.top.destroy()


class EmojiPicker:
    """Tabs by category; the recently used ones in a row at the bottom."""

    def __init__(self, popup: Popup, recent: Sequence[str]) -> None:
        import emoji

        self.popup = popup
        self.top = tk.Toplevel(popup.root)
        self.top.title("Emoji")
        root = popup.root
        root.update_idletasks()
        # Beside the popup, not over it (there may be no window manager to place it).
        self.top.geometry(f"+{root.winfo_rootx() + root.winfo_width() + 8}+{root.winfo_rooty()}")
        tabs = ttk.Notebook(self.top)
        tabs.pack(fill="both", expand=True)
        self.buttons: dict[str, tk.Button] = {}
        for category, items in emoji_by_category():
            frame = ttk.Frame(tabs, padding=4)
            tabs.add(frame, text=category)
            self._grid(frame, items[:64])
        bottom = ttk.LabelFrame(self.top, text="Recently used", padding=4)
        bottom.pack(fill="x", side="bottom")
        named = [(e, str(emoji.demojize(e)).strip(":").replace("_", " ")) for e in recent]
        if named:
            self._grid(bottom, named)
        else:
            ttk.Label(bottom, text="(none yet)").pack()

    def _grid(self, frame: tk.Misc, items: Sequence[tuple[str, str]]) -> None:
        for i, (ch, name) in enumerate(items):
            label = f":{name.replace(' ', '_')[:10]}:" if self.popup.degraded else ch
            b = tk.Button(
                frame,
                text=label,
                relief="flat",
                font=EMOJI_FONT if not self.popup.degraded else "TkDefaultFont",
                width=2 if not self.popup.degraded else 12,
                command=functools.partial(self.popup.insert_emoji, ch, name),
            )
            b.grid(row=i // 8, column=i % 8)
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
    conv: int | str | None = args.conversation
    if isinstance(conv, str) and conv.isdigit():
        conv = int(conv)
    Popup(root, Client, to=args.to, conversation=conv)
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
