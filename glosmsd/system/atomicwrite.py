"""Writing a file so that a reader, a crash or a power cut never sees half of it.

One way for every writer of glosmsd (the config and the token, the device id, the
autostart files, outgoing and downloaded files, exports, the server's uploads): the
bytes go to a temporary file with a name no other writer can pick (`mkstemp`: O_EXCL, a
random part), in the same directory, with the mode asked for whatever the umask; the
file is fsynced, renamed over (or linked to) its name, and the directory is fsynced so
the rename itself survives a power cut. Twenty writers of the same path at once each
write their own temporary file: the last rename wins and every reader sees one whole
version.

This module only writes the one file it is given (and its temporary sibling); it never
creates directories, never follows a name to decide anything, and never reads.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["fsync_dir", "write_atomic", "write_new"]


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new name in `directory` durable (a no-op where the OS can't)."""
    if sys.platform == "win32":  # pragma: no cover - NTFS journals renames itself
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _staged(path: Path, data: bytes | str, mode: int) -> str:
    """A fsynced temporary file beside `path` holding `data` with `mode`; its name."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if sys.platform != "win32":
                os.fchmod(fh.fileno(), mode)  # exactly `mode`: the umask does not apply
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if sys.platform == "win32":  # pragma: no cover
            os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: Path | str, data: bytes | str, *, mode: int) -> None:
    """Put `data` (str is written as UTF-8) at `path` with `mode`, replacing what was there.

    A reader sees the old file or the new one, never a mix; after it returns the new one
    survives a crash. The parent directory must exist.
    """
    path = Path(path)
    tmp = _staged(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_new(path: Path | str, data: bytes | str, *, mode: int) -> None:
    """Like `write_atomic`, but raise `FileExistsError` when `path` exists: never replace.

    The whole file appears under its name at once (a hard link of the finished temporary
    file), so a reader never sees it half written. On a file system without hard links it
    falls back to creating `path` with O_EXCL and writing into it.
    """
    path = Path(path)
    tmp = _staged(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        # FAT, some FUSE and network file systems have no hard links: no clobbering still.
        _write_exclusive(path, data, mode)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def _write_exclusive(path: Path, data: bytes | str, mode: int) -> None:
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            if sys.platform != "win32":
                os.fchmod(fh.fileno(), mode)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
