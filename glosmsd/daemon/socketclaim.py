"""Who may use the socket path and the data folder: one daemon at a time.

A stale socket (nobody behind it) is removed; a live one, or a data folder another daemon
holds, is refused with what to do, or asked to quit (`daemon.quit`) under `--replace` and
waited for, for a bounded time. Blocking calls: run them off the event loop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import time
from pathlib import Path

from glosmsd.core import rpc
from glosmsd.core.errors import ConfigError
from glosmsd.system import datalock

# The socket's log lines, under the name they have always had.
log = logging.getLogger("glosmsd.daemon.ipc")


def prepare_socket_dir(directory: Path) -> None:
    """Create the socket's directory 0700, or refuse one others can enter."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if st.st_uid != os.getuid():
        raise ConfigError(
            f"The socket directory {directory} belongs to another user. Set GLOSMSD_SOCKET "
            "to a path in a directory of your own."
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(directory, 0o700)


def claim_data_dir(data_dir: Path, socket_path: Path, replace: bool) -> datalock.DataLock:
    """Lock `data_dir` for this daemon. Another daemon on it (whatever its socket) is
    refused as a second daemon on one socket is, or asked to quit under `replace`."""
    lock = datalock.try_take(data_dir, socket_path)
    if lock is not None:
        return lock
    holder = datalock.read_holder(data_dir)
    where = f"socket {holder.socket}" if holder.socket else f"data {data_dir}"
    pid = f", pid {holder.pid}" if holder.pid else ""
    if not replace or holder.socket is None:
        raise ConfigError(
            f"glosmsd is already running ({where}{pid}) on the data in {data_dir}. Stop it "
            "first, or start this one with --replace to take over."
        )
    log.info("asking the daemon at %s to quit (--replace): it holds %s", holder.socket, data_dir)
    with contextlib.suppress(OSError):
        _ask_quit(Path(holder.socket))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lock = datalock.try_take(data_dir, socket_path)
        if lock is not None:
            return lock
        time.sleep(0.05)  # the old daemon is closing its store (in a thread, not the loop)
    raise ConfigError(
        f"The running glosmsd ({where}{pid}) did not let go of {data_dir} within 10 s; "
        "stop it by hand."
    )


def claim_socket_path(path: Path, replace: bool) -> None:
    """Make `path` free to bind: remove a stale socket; refuse a live one unless replacing."""
    if not os.path.lexists(path):
        return
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise ConfigError(f"{path} exists and is not a socket; move it away or set GLOSMSD_SOCKET.")
    if not _alive(path):
        log.info("removing stale socket %s (no daemon behind it)", path)
        path.unlink()
        return
    if not replace:
        raise ConfigError(
            f"glosmsd is already running (socket {path}). Stop it first, or start this one "
            "with --replace to take over."
        )
    log.info("asking the running daemon at %s to quit (--replace)", path)
    _ask_quit(path)
    for _ in range(100):
        if not _alive(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        # The old daemon is shutting down; poll its socket for a bounded time.
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.1)
            with contextlib.suppress(OSError):
                s.connect(str(path))
                s.recv(1)
    raise ConfigError(f"The running glosmsd at {path} did not quit within 10 s; stop it by hand.")


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(1)
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise
        return True


def _ask_quit(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(str(path))
        s.sendall(rpc.encode(rpc.request("daemon.quit", None, 1)))
        with contextlib.suppress(OSError):
            s.recv(4096)
