"""The popup's small dialogs: which number of a contact with several, and whether to
throw away a typed message that has no conversation to keep it as a draft."""

from __future__ import annotations

import functools
import tkinter as tk
from collections.abc import Callable, Sequence
from tkinter import ttk
from typing import Any


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
        centre_over(self.top, root)

    def answer(self, index: int | None) -> None:
        if self._answered:
            return
        self._answered = True
        self.choice = index
        self.top.destroy()
        self.on_pick(index)


class AskDiscard:
    """Escape on a typed message that has no conversation yet (so no draft to keep it in):
    ask. `on_answer(True)` throws it away; Keep editing, Escape or closing keeps it."""

    def __init__(self, root: tk.Tk, to: str, on_answer: Callable[[bool], None]) -> None:
        self.on_answer = on_answer
        self._answered = False
        self.top = tk.Toplevel(root, borderwidth=1, relief="solid")
        self.top.title("Discard this message?")
        self.top.transient(root)
        self.top.protocol("WM_DELETE_WINDOW", lambda: self.answer(False))
        self.top.bind("<Escape>", lambda _e: self.answer(False))
        body = ttk.Frame(self.top, padding=10)
        body.pack(fill="both", expand=True)
        whom = f" to {to}" if to else ""
        ttk.Label(body, text=f"The message{whom} is not sent. Discard it?", wraplength=320).pack(
            anchor="w", pady=(0, 8)
        )
        row = ttk.Frame(body)
        row.pack(fill="x")
        self.discard = ttk.Button(row, text="Discard", command=lambda: self.answer(True))
        self.discard.pack(side="right")
        self.keep = ttk.Button(row, text="Keep editing", command=lambda: self.answer(False))
        self.keep.pack(side="right", padx=(0, 6))
        self.keep.focus_set()
        centre_over(self.top, root)

    def answer(self, discard: bool) -> None:
        if self._answered:
            return
        self._answered = True
        self.top.destroy()
        self.on_answer(discard)


def centre_over(top: tk.Toplevel, root: tk.Tk) -> None:
    """Put `top` in the middle of `root` (there may be no window manager to place it)."""
    root.update_idletasks()
    top.update_idletasks()
    w, h = top.winfo_reqwidth(), top.winfo_reqheight()
    x = root.winfo_rootx() + (root.winfo_width() - w) // 2
    y = root.winfo_rooty() + (root.winfo_height() - h) // 2
    top.geometry(f"+{max(0, x)}+{max(0, y)}")
