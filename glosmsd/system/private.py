"""Files and directories only their user may read: message history, tokens, uploads.

Whatever the umask (022 made the data dir `drwxr-xr-x` and the database `-rw-r--r--`,
so every local user could read the history), a directory made here is 0700 and a
database 0600 with its `-wal`, `-shm` and `-journal` beside it; ones that already exist
with looser modes are tightened at start (a log line says so). Nothing here reads or
writes a file's contents.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

TYPE_CHECKING = False  # typing costs `glosms` ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Final

#: What SQLite writes beside a database; it gives them the database file's own mode.
SIDE_FILES: Final = ("-wal", "-shm", "-journal")


def private_dir(directory: Path) -> None:
    """Create `directory` (and missing parents) 0700, or tighten our own to 0700."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(directory, 0o700)


def private_database(path: Path) -> None:
    """Make `path` exist as a 0600 file before SQLite opens it (SQLite creates a new one
    with 0644 less the umask, and its side files with the same mode), and tighten it and
    its side files if they are looser."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        os.close(fd)
    _tighten(path, 0o600)
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            _tighten(side, 0o600)


def _tighten(path: Path, mode: int) -> None:
    """chmod `path` to `mode` when others or the group have more; only ours, never
    through a symlink (a link's target is not ours to change)."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
        return
    current = stat.S_IMODE(st.st_mode)
    if current & ~mode & 0o077:
        os.chmod(path, mode)
        import logging  # only here: `glosms` reaches this module and logs nothing

        logging.getLogger(__name__).info(
            "%s was mode %o: now %o (readable by this user only)", path, current, mode
        )
