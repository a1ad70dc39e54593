"""The quick-send popup (Tk): `glosms compose [TO]`, the tray's "New message…", a
notification's Reply, a hotkey.

A frontend like the CLI: it talks to the daemon only through the socket
(`glosmsd.client.ipc`), in a process of its own (never inside the daemon). Socket calls
never run on Tk's thread (`Calls`). While a send is in flight the window says "Sending…"
and the send controls are disabled; an error keeps the text. Closing the window during a
send only hides it: the process stays until the daemon has answered (from then on the
daemon owns the message), and comes back with the text if the send was refused.

It owns the widgets: recipient with autocomplete over contacts and conversations (one line
per number, and a picker for a contact with several numbers), the text (Enter is a
newline, Ctrl+Enter sends), the live counter (`glosmsd.core.rules`, pure and local, so
typing never waits on the socket), files with thumbnails and a remove control, the emoji
picker, and the conversation's last messages with their states, whether it was opened on
a conversation or on a number (`glosms compose NUMBER`). A typed message outlives Escape:
in the conversation's draft (the daemon's `draft_set`, shared with the SMS window), or,
where there is no conversation yet, Escape asks before throwing it away.
"""

from __future__ import annotations

import argparse
import contextlib
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

from glosmsd.client.ipc import Client
from glosmsd.core import rules
from glosmsd.core.errors import GlosmsdError
from glosmsd.desktop.popup.calls import Calls
from glosmsd.desktop.popup.dialogs import AskDiscard, NumberPicker
from glosmsd.desktop.popup.emoji import (
    EmojiPicker,
    Glyphs,
    degraded_here,
    emoji_font,
    shown_text,
    xft_version,
)

HISTORY: Final = 6
#: How long "Sent ✓" stays before the window closes by itself.
SENT_CLOSE_MS: Final = 800
FILES_PER_ROW: Final = 5
THUMB: Final = 40
#: JPEG and PNG are fitted by the daemon; budget them at what a fitted image usually takes.
FITTED_IMAGE: Final = rules.FITTED_IMAGE
FITTABLE: Final = (".jpg", ".jpeg", ".png")
HELD_BACKGROUND: Final = "#ececec"
HELD_FOREGROUND: Final = "#606060"
#: The window's width; what it shows (a status, a long name) never widens it.
WIDTH: Final = 420
#: The status line's width in characters ("Sending again…", "Which number?").
STATUS_CHARS: Final = 16


@dataclass(frozen=True, slots=True)
class Attachment:
    path: Path
    size: int

    @property
    def budget(self) -> int:
        return rules.attach_budget(self.size, fittable=self.path.suffix.lower() in FITTABLE)


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
        families = tkinter.font.families(root)
        self.degraded = degraded_here(families, xft_version())
        self.emoji_font = emoji_font(families)
        self.glyphs = glyphs if glyphs is not None else Glyphs.installed()
        self.to_given = to.strip()
        self.draft_loaded = ""  # the daemon's draft put into the text at the start
        self.asking: AskDiscard | None = None
        self.remote = ""  # the shown conversation's number and title, once loaded
        self.title = ""
        root.title("New message · glosmsd")
        root.minsize(WIDTH, 300)

        self.status = tk.StringVar(master=root)
        self.error = tk.StringVar(master=root)
        self.counter = tk.StringVar(master=root)
        self.to = tk.StringVar(master=root, value=to)

        self._lay_out(root)

        self._load()
        self.update_counter()
        (self.text if to or conversation is not None else self.to_entry).focus_set()

    def _lay_out(self, root: tk.Tk) -> None:
        """The widgets, top to bottom: To, the history, the text, files, the buttons."""
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
        # Emoji in the colour emoji font (the text font draws some of them in monochrome).
        self.text.tag_configure("emoji", font=self.emoji_font)
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
        # A fixed width: "Which number?" widened the window from 420 to 465 px.
        ttk.Label(buttons, textvariable=self.status, width=STATUS_CHARS).pack(side="left", padx=4)
        self.send_button = ttk.Button(buttons, text="Send (Ctrl+Enter)", command=self.send)
        self.send_button.pack(side="right")
        root.bind("<Escape>", lambda _e: self.close())
        root.protocol("WM_DELETE_WINDOW", self.close)
        root.bind("<Destroy>", self._destroyed, add="+")

    # -- talking to the daemon (the jobs run on the pool: no widgets in them)

    def call(self, method: str, **params: Any) -> Any:
        with self.client() as c:
            return c.call(method, params or None)

    def _load(self) -> None:
        ref = self.conversation
        to = self.to_given

        def job() -> tuple[dict[str, Any], dict[str, Any] | None]:
            status = self.call("status")
            if ref is not None:
                return status, self._history(ref)
            if to:  # `glosms compose NUMBER`: its conversation, when there is one
                try:
                    return status, self._history(to)
                except GlosmsdError:
                    return status, None  # a new number, or a name with several numbers
            return status, None

        self.status.set("Loading…")
        self.calls.submit(job, self._loaded, self._load_failed)

    def _history(self, ref: int | str) -> dict[str, Any]:
        """On the pool: the last messages of `ref` and its draft."""
        got: dict[str, Any] = self.call("messages", conversation=ref, limit=HISTORY)
        cid = got["conversation"]["id"]
        got["draft"] = self.call("draft_get", conversation=cid)["text"]
        return got

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
            draft = str(got.get("draft") or "")
            if draft and not self.text.get("1.0", "end-1c").strip():
                self.text.insert("1.0", draft)
                self.draft_loaded = draft
                self.update_counter()

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
        self.remote = str(conv["remote"])
        self.title = str(conv["title"])
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
        # One line per number: a contact's number and its conversation are one choice
        # (4 lines for Bob's 2 numbers before); the contact's line, with the label, wins.
        seen: set[str] = set()
        unique = []
        for shown, number in choices:
            if number not in seen:
                seen.add(number)
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
        self._tag_emoji()
        self.update_counter()

    def _tag_emoji(self) -> None:
        """Draw the emoji of the text in the colour emoji font."""
        import emoji

        if self.degraded:
            return
        self.text.tag_remove("emoji", "1.0", "end")
        length = tk.IntVar(master=self.root)
        for e in {m["emoji"] for m in emoji.emoji_list(self.text.get("1.0", "end-1c"))}:
            start = "1.0"
            while index := self.text.search(e, start, "end", exact=True, count=length):
                line, column = index.split(".")
                end = f"{line}.{int(column) + length.get()}"
                self.text.tag_add("emoji", index, end)
                start = end

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
        """The picker at once; its groups and "Recently used" row fill in when the daemon
        answers."""
        if self.emoji is not None and self.emoji.top.winfo_exists():
            self.emoji.top.deiconify()
            self.emoji.top.lift()
            return self.emoji
        picker = EmojiPicker(
            self.root,
            self.insert_emoji,
            font=self.emoji_font,
            degraded=self.degraded,
            glyphs=self.glyphs,
        )
        self.emoji = picker
        self.calls.submit(lambda: self.call("emoji_catalog"), picker.show_catalog, self._show_error)
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
            self.text.insert("insert", ch, ("emoji",))
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
        if self.draft_loaded:  # what the draft held has gone out: no draft any more
            cid = res["message"]["conversation_id"]
            self.draft_loaded = ""
            self.calls.submit(
                lambda: self.call("draft_set", conversation=cid, text=""), _ignore, _ignore
            )
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
            self._hide()
            return
        if self.asking is not None:
            return
        text = self.message_text()
        if not text.strip() or text == self.draft_loaded:
            self.destroy()
            return
        target = self._draft_target()
        if target is None:  # no conversation to keep it in: ask first
            self.asking = AskDiscard(self.root, self.to.get().strip(), self._discard_answered)
            return
        self._hide()
        self.calls.submit(
            lambda: self.call("draft_set", conversation=target, text=text),
            lambda _res: self.destroy(),
            self._draft_failed,
        )

    def _draft_target(self) -> int | str | None:
        """The conversation a typed message is kept in as its draft: the one shown, unless
        the recipient was changed to someone else."""
        if self.conversation is None:
            return None
        to = self.to.get().strip()
        if to and to not in (self.to_given, self.remote, self.title):
            return None
        return self.conversation

    def _discard_answered(self, discard: bool) -> None:
        self.asking = None
        if discard:
            self.destroy()
        else:
            self.text.focus_set()

    def _draft_failed(self, exc: GlosmsdError) -> None:
        self._reopen_hidden()
        self.error.set(f"The draft could not be kept: {exc.message}")

    def _hide(self) -> None:
        self.root.withdraw()
        if self.emoji is not None:
            with contextlib.suppress(tk.TclError):
                self.emoji.top.destroy()

    def _reopen_hidden(self) -> None:
        self.root.deiconify()
        self.root.lift()

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
