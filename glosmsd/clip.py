"""The clipboard: the only importer of pyperclip.

Copying may run a helper program (xclip, xsel, wl-copy, pbcopy): call `copy` from a
worker thread (`asyncio.to_thread`), never on the event loop.
"""

from __future__ import annotations

from glosmsd.errors import Unsupported


class ClipboardUnavailable(Unsupported):
    """No clipboard mechanism works here."""


def copy(text: str) -> None:
    """Put `text` on the clipboard, or raise `ClipboardUnavailable` saying what to install."""
    import pyperclip

    try:
        pyperclip.copy(text)
    except pyperclip.PyperclipException as exc:
        raise ClipboardUnavailable(
            "Cannot copy to the clipboard: install xclip or xsel (X11) or wl-clipboard (Wayland)."
        ) from exc


def paste() -> str:
    """The clipboard's text (for checks and the popup)."""
    import pyperclip

    try:
        return str(pyperclip.paste())
    except pyperclip.PyperclipException as exc:
        raise ClipboardUnavailable("Cannot read the clipboard: install xclip or xsel.") from exc
