"""What a failing SQLite call means for the user, in their words: one `StoreError` each.

A locked database or a read-only data dir at start said "not a glosmsd database or is
damaged ... Move it aside", and following that advice threw away a healthy store and its
unsent outbox; at run time a full disk, a lock or a corrupt page was -32603 "Internal
error". Now each cause has its own class (code -32005, told apart by `data.kind`) and
words: locked (by which process, when this OS says; retry), read-only (which path),
disk full (how much is free; nothing lost), damaged (only when SQLite says it is).

It reads /proc (who holds the file) and the file system's flags and free space; it never
touches the database's contents.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Final

from glosmsd.core.errors import (
    DiskFull,
    StoreDamaged,
    StoreError,
    StoreLocked,
    StoreReadOnly,
)

# SQLite's primary result codes (the low byte of an extended code).
_PERM: Final = 3
_BUSY: Final = 5
_LOCKED: Final = 6
_READONLY: Final = 8
_IOERR: Final = 10
_CORRUPT: Final = 11
_FULL: Final = 13
_CANTOPEN: Final = 14
_NOTADB: Final = 26
#: Message fragments for errors raised without a code (the sqlite3 module's own).
_BY_TEXT: Final = (
    ("locked", _BUSY),
    ("readonly", _READONLY),
    ("read-only", _READONLY),
    ("disk is full", _FULL),
    ("malformed", _CORRUPT),
    ("not a database", _NOTADB),
    ("unable to open", _CANTOPEN),
)


def explain(exc: sqlite3.Error | OSError, path: Path) -> StoreError:
    """The `StoreError` for `exc`, raised by SQLite (or the OS) on the database at `path`."""
    if isinstance(exc, OSError):
        return _explain_os(exc, path)
    code = _code(exc)
    if code in (_BUSY, _LOCKED):
        return locked(path, exc)
    if code in (_READONLY, _PERM) or (code == _CANTOPEN and _read_only(path)):
        return read_only(path, exc)
    if code == _FULL or (code == _IOERR and _free(path) == 0):
        return disk_full(path)
    if code in (_CORRUPT, _NOTADB):
        return StoreDamaged(
            f"{path} is not a glosmsd database or is damaged ({exc}). Move it aside and "
            "start glosmsd again to sync a fresh copy from the server (messages not yet "
            "sent are in that file).",
            data={"path": str(path)},
        )
    if code == _CANTOPEN:
        return StoreError(
            f"Cannot open the local database {path} ({exc}): check that its folder exists "
            "and is yours.",
            data={"path": str(path)},
        )
    return StoreError(f"The local database {path} failed: {exc}.", data={"path": str(path)})


def locked(path: Path, exc: object = None) -> StoreLocked:
    holders = lock_holders(path)
    by = (
        " by " + ", ".join(f"pid {pid} ({name})" for pid, name in holders)
        if holders
        else " by another program"
    )
    return StoreLocked(
        f"The local database {path} is locked{by}: close that program (a sqlite3 shell, a "
        "backup tool?) and retry; the file itself is fine.",
        data={"path": str(path), "pids": [pid for pid, _ in holders]},
    )


def read_only(path: Path, exc: object = None) -> StoreReadOnly:
    folder = path.parent
    if _read_only(path):
        where = f"the disk holding {folder} is mounted read-only"
    elif path.exists() and not os.access(path, os.W_OK):
        where = f"{path} is read-only"
    else:
        where = f"its folder {folder} is read-only"
    return StoreReadOnly(
        f"The local database {path} cannot be written: {where}. Make it writable for you "
        f"(chmod u+w), then start glosmsd again; nothing is lost.",
        data={"path": str(folder if "folder" in where else path)},
    )


def disk_full(path: Path) -> DiskFull:
    free = _free(path)
    left = f" ({free:,} bytes free)" if free is not None else ""
    return DiskFull(
        f"The disk holding {path.parent} is full{left}: free some space, then retry. Nothing "
        "was lost: the change that did not fit was not made.",
        data={"path": str(path.parent), "free": free},
    )


def lock_holders(path: Path) -> list[tuple[int, str]]:
    """Other processes with the database (or its -wal/-shm) open, where /proc says; only
    this user's processes can be seen, which is who can lock the file anyway."""
    wanted = {str(path.resolve(strict=False))}
    wanted |= {w + suffix for w in list(wanted) for suffix in ("-wal", "-shm", "-journal")}
    found: list[tuple[int, str]] = []
    me = os.getpid()
    with contextlib.suppress(OSError), os.scandir("/proc") as procs:
        for entry in procs:
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            if _holds(entry.name, wanted):
                with contextlib.suppress(OSError):
                    name = Path(f"/proc/{entry.name}/comm").read_text().strip()
                    found.append((int(entry.name), name))
    return found[:5]


def _holds(pid: str, wanted: set[str]) -> bool:
    try:
        with os.scandir(f"/proc/{pid}/fd") as fds:
            for fd in fds:
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in wanted:
                        return True
    except OSError:
        pass
    return False


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()
    for fragment, value in _BY_TEXT:
        if fragment in text:
            return value
    return None


def _explain_os(exc: OSError, path: Path) -> StoreError:
    if exc.errno == errno.ENOSPC:
        return disk_full(path)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return read_only(path, exc)
    return StoreError(
        f"Cannot open the local database {path}: {exc.strerror or exc}.",
        data={"path": str(path)},
    )


def _read_only(path: Path) -> bool:
    """Whether the file system holding `path` is mounted read-only."""
    try:
        flags = os.statvfs(path.parent).f_flag
    except (OSError, AttributeError):
        return False
    return bool(flags & getattr(os, "ST_RDONLY", 1))


def _free(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return None
