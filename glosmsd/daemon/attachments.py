"""The files a send attaches: read from a path or a data: URI, kept for the outbox.

Owns refusing what cannot be attached before any work is done (missing, unreadable, not a
regular file, far too big, a malformed data: URI) and writing a prepared file, named by
its content, where the outbox finds it again after a crash. Fitting files into an MMS is
`glosmsd.daemon.media`'s; this module only reads and keeps bytes. Blocking: callers run it
off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from glosmsd.core.errors import BadInput
from glosmsd.system.atomicwrite import write_atomic

if TYPE_CHECKING:
    from glosmsd.daemon import media

#: Reading an attachment stops here: far beyond anything that can be fitted into an MMS.
MAX_SOURCE_FILE: Final = 64 * 1024 * 1024


def read_source(ref: str) -> tuple[str, bytes]:
    """(name, bytes) of a file path or a data: URI, refusing what is unreadable or huge."""
    if ref.startswith("data:"):
        return read_data_uri(ref)
    path = Path(ref).expanduser()
    try:
        return path.name, _read_regular_file(path, ref)
    except FileNotFoundError as exc:
        raise BadInput(f"No such file: {ref}") from exc
    except PermissionError as exc:
        raise BadInput(f"Cannot read {ref}: permission denied.") from exc
    except IsADirectoryError as exc:
        raise BadInput(f"{ref} is a directory, not a file.") from exc


def _read_regular_file(path: Path, ref: str) -> bytes:
    """The bytes of `path`, opened once: what is checked is the file that is read.

    Checking the path and then reading it lets a symlink flipped in between (to /dev/zero,
    say) be read until memory runs out. So: open once (non-blocking, so a FIFO cannot hang
    the open), `fstat` the open file, and read at most the limit plus one byte, which also
    catches a file that grows after the check.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(ref)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"{ref} is not a regular file.")
        if st.st_size > MAX_SOURCE_FILE:
            raise BadInput(_too_big(path, st.st_size))
        data = f.read(MAX_SOURCE_FILE + 1)  # a buffered read: to EOF or the limit
    if len(data) > MAX_SOURCE_FILE:
        raise BadInput(_too_big(path, len(data)))
    return data


def _too_big(path: Path, size: int) -> str:
    return f"{path.name} is {size // (1024 * 1024)} MiB: too big to attach, even compressed."


def read_data_uri(uri: str) -> tuple[str, bytes]:
    """(name, bytes) of a data: URI (`;name=` gives the file name, else "file")."""
    header, sep, payload = uri.partition(",")
    if not sep:
        raise BadInput("A data: URI needs a comma before its payload (data:image/png;base64,...).")
    params = header[5:].split(";")
    name = "file"
    for p in params:
        if p.startswith("name="):
            name = urllib.parse.unquote(p[5:]) or name
    if len(payload) > MAX_SOURCE_FILE * 4 // 3 + 4:
        raise BadInput("The data: URI is too big to attach.")
    try:
        data = (
            base64.b64decode(payload, validate=True)
            if "base64" in params
            else urllib.parse.unquote_to_bytes(payload)
        )
    except (binascii.Error, ValueError) as exc:
        raise BadInput("The data: URI is not valid base64.") from exc
    return name, data


def decode_head(index: int, head: str) -> bytes:
    """The first bytes of the `index`th file `attach_check` is offered (base64)."""
    try:
        return base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(
            f"files[{index}].head is not valid base64: send the file's first bytes, base64-encoded."
        ) from exc


def keep_outgoing(files_dir: Path, att: media.PreparedFile) -> dict[str, Any]:
    """Write a prepared file where the outbox finds it again after a crash; the outbox
    item's record of it (not uploaded yet)."""
    sha = hashlib.sha256(att.data).hexdigest()
    out = files_dir / "outgoing"
    out.mkdir(parents=True, exist_ok=True)
    path = out / sha
    if not path.exists():
        # Named by content: sends of the same file at once each stage their own
        # temporary file (unique names) and the renames all put the same bytes there.
        write_atomic(path, att.data, mode=0o600)
    return {
        "sha256": sha,
        "name": att.name,
        "mime": att.mime,
        "size": att.size,
        "path": str(path),
        "uploaded": False,
    }
