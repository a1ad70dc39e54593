"""One process per data directory: an advisory lock on a file inside it.

Two daemons on one store (a second one started with another `GLOSMSD_SOCKET`) each
believed the outbox theirs: a message queued by one stayed `[sending]` in the other. The
daemon holds `flock(LOCK_EX)` on `glosmsd.lock` in its data dir for as long as it runs;
the kernel drops the lock when the process ends however it ends (SIGKILL included), so a
crash never leaves a stale lock. The file names the holder (pid and socket) so a refusal
can say which daemon to stop, and `--replace` which one to ask to quit.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

LOCK_NAME: Final = "glosmsd.lock"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a data dir's lock, as it wrote itself down (either may be unknown)."""

    pid: int | None
    socket: str | None


class DataLock:
    """The held lock; `release()` (or the process ending) lets the next daemon in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor drops the flock


def try_take(data_dir: Path, socket: Path | str | None = None) -> DataLock | None:
    """Lock `data_dir` for this process, or None at once (no waiting) when another
    process holds it: `read_holder(data_dir)` then says which."""
    path = data_dir / LOCK_NAME
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        if not _try_lock(fd):
            os.close(fd)
            return None
        record = json.dumps({"pid": os.getpid(), "socket": str(socket) if socket else None})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode() + b"\n", 0)
    except BaseException:
        os.close(fd)
        raise
    return DataLock(path, fd)


def read_holder(data_dir: Path) -> Holder:
    """What the holder of `data_dir`'s lock wrote about itself."""
    path = data_dir / LOCK_NAME
    try:
        obj = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return Holder(None, None)
    if not isinstance(obj, dict):
        return Holder(None, None)
    pid, sock = obj.get("pid"), obj.get("socket")
    return Holder(
        pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        sock if isinstance(sock, str) else None,
    )


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # msvcrt's byte-range lock does the same job there
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
