"""The clipboard: the only importer of pyperclip.

Copying may run a helper program (xclip, xsel, wl-copy, pbcopy): call `copy` from a
worker thread (`asyncio.to_thread`), never on the event loop.

X11 and Wayland tools stay running to own the selection, and they inherit the caller's
stdout and stderr: `$(glosms number --copy)` or `glosms number --copy | cat` would wait
for them until someone else copies. `copy(..., detach=True)` points those descriptors at
/dev/null for the moment the tool is started (for short-lived commands like the CLI).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from glosmsd.core.errors import Unsupported


class ClipboardUnavailable(Unsupported):
    """No clipboard mechanism works here."""


@contextlib.contextmanager
def _std_fds_to_devnull() -> Iterator[None]:
    """Descriptors 1 and 2 go to /dev/null inside the block (children inherit that)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = (os.dup(1), os.dup(2))
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def copy(text: str, *, detach: bool = False) -> None:
    """Put `text` on the clipboard, or raise `ClipboardUnavailable` saying what to install.

    `detach`: the clipboard tool does not inherit our stdout/stderr (a single-threaded
    command only: other threads' output is dropped while it starts).
    """
    import pyperclip

    try:
        with _std_fds_to_devnull() if detach else contextlib.nullcontext():
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
