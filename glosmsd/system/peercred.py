"""Who is at the other end of a Unix socket, and who owns the files around it.

The daemon asks which uid connected (it serves only its own user); the socket client asks
which uid it reached and who owns the socket and its folder, before it sends a byte: with
`XDG_RUNTIME_DIR` unset the socket lives under `/tmp`, where any user may have made the
folder first. This module reads what the kernel says (SO_PEERCRED on Linux,
LOCAL_PEERCRED on macOS and the BSDs, `stat`) and decides nothing about what to do.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import sys
from pathlib import Path

from glosmsd.core.record import record

__all__ = ["Owner", "owner_of", "peer_uid", "user_name"]

# macOS and FreeBSD: getsockopt(SOL_LOCAL, LOCAL_PEERCRED) fills a `struct xucred`
# (u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]).
_SOL_LOCAL = 0
_LOCAL_PEERCRED = 1
_XUCRED = "IIh16I"


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket, or None where
    the OS does not say."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is not None:  # Linux
        creds = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return int(uid)
    if sys.platform == "darwin" or sys.platform.startswith("freebsd"):  # pragma: no cover
        raw = sock.getsockopt(_SOL_LOCAL, _LOCAL_PEERCRED, struct.calcsize(_XUCRED))
        _version, uid = struct.unpack_from("II", raw)
        return int(uid)
    return None  # pragma: no cover - other systems: the file checks must do


@record
class Owner:
    """What `stat` says about a path: its owner, its mode bits, and its kind."""

    uid: int
    mode: int
    is_dir: bool
    is_socket: bool

    @property
    def others_may_write(self) -> bool:
        """Group or other users may create, rename and remove entries (or write) here."""
        return bool(self.mode & (stat.S_IWGRP | stat.S_IWOTH))

    @property
    def sticky(self) -> bool:
        """Sticky (like /tmp): only an entry's owner may rename or remove it."""
        return bool(self.mode & stat.S_ISVTX)


def owner_of(path: Path) -> Owner:
    """`stat` of `path` (following links); raises what `os.stat` raises."""
    st = os.stat(path)
    return Owner(
        uid=st.st_uid,
        mode=stat.S_IMODE(st.st_mode),
        is_dir=stat.S_ISDIR(st.st_mode),
        is_socket=stat.S_ISSOCK(st.st_mode),
    )


def user_name(uid: int) -> str:
    """`mallory (uid 1001)`, or `uid 1001` when the user database does not know it."""
    try:
        import pwd  # not on Windows; only when a message needs it
    except ImportError:  # pragma: no cover
        return f"uid {uid}"
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
