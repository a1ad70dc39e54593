"""Which local user is at the other end of a loopback TCP connection (Linux).

A Unix socket tells its peer's uid (SO_PEERCRED); TCP does not, and every user of the
machine can connect to 127.0.0.1. The kernel knows, though: its socket diagnostics
(`NETLINK_SOCK_DIAG`, what `ss -e` uses) look up one socket by its addresses and ports
and report the uid that owns it. The SMS window refuses a connection whose client socket
belongs to another user, so a token read from another user's `ps` output is worth
nothing to them. An exact lookup costs ~15 µs; reading /proc/net/tcp walks the kernel's
whole socket hash (~5 ms here), so that is not used.

Where the lookup is not available (another OS, a kernel without inet_diag), `probe` says
so once at start and the window relies on its token and cookie alone.

This module only asks the kernel; it holds no policy.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from typing import Final

NETLINK_SOCK_DIAG: Final = 4
SOCK_DIAG_BY_FAMILY: Final = 20
NLM_F_REQUEST: Final = 0x01
NLMSG_ERROR: Final = 2
_NO_COOKIE: Final = 0xFFFFFFFF
_ALL_STATES: Final = 0xFFFFFFFF
_HEADER: Final = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_REQ: Final = struct.Struct("=BBBBI")  # inet_diag_req_v2: family, protocol, ext, pad, states
# inet_diag_msg: family, state, timer, retrans, then the 48-byte sockid, expires, rqueue,
# wqueue, uid, inode.
_UID_OFFSET: Final = 4 + 48 + 12

Address = tuple[str, int]


class LookupUnavailableError(Exception):
    """The kernel cannot answer this kind of question here."""


def sockid(src: Address, dst: Address) -> bytes:
    """inet_diag_sockid for an IPv4 TCP socket from `src` to `dst`: ports and addresses in
    network order, no interface, no cookie."""
    (sip, sport), (dip, dport) = src, dst
    return (
        struct.pack("!HH", sport, dport)
        + socket.inet_aton(sip).ljust(16, b"\0")
        + socket.inet_aton(dip).ljust(16, b"\0")
        + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)
    )


def request(src: Address, dst: Address, seq: int = 1) -> bytes:
    """The netlink message asking for the one TCP socket from `src` to `dst`."""
    body = _REQ.pack(socket.AF_INET, socket.IPPROTO_TCP, 0, 0, _ALL_STATES) + sockid(src, dst)
    return _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, 0) + body


def parse_reply(data: bytes) -> int | None:
    """The uid in a sock_diag reply; None when the kernel found no such socket.

    Raises `LookupUnavailableError` when the kernel does not do this lookup at all.
    """
    if len(data) < _HEADER.size:
        raise LookupUnavailableError("short netlink reply")
    _length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data)
    if kind == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", data, _HEADER.size)
        if -err == errno.ENOENT:
            return None
        raise LookupUnavailableError(f"sock_diag refused: {errno.errorcode.get(-err, -err)}")
    if kind != SOCK_DIAG_BY_FAMILY or len(data) < _HEADER.size + _UID_OFFSET + 4:
        raise LookupUnavailableError(f"unexpected netlink reply type {kind}")
    (uid,) = struct.unpack_from("=I", data, _HEADER.size + _UID_OFFSET)
    return int(uid)


def socket_uid(src: Address, dst: Address) -> int | None:
    """The uid owning the TCP socket from `src` to `dst` on this machine, or None when
    there is none (it closed). Raises `LookupUnavailableError` off Linux or without inet_diag."""
    if not sys.platform.startswith("linux"):
        raise LookupUnavailableError(f"no socket diagnostics on {sys.platform}")
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            nl.send(request(src, dst))
            data = nl.recv(65536)
    except OSError as exc:
        raise LookupUnavailableError(f"sock_diag: {exc}") from exc
    return parse_reply(data)


def peer_uid(local: Address, remote: Address) -> int | None:
    """The uid of the client of an accepted connection (`local` is our end): the owner of
    its socket, which goes from `remote` to `local`."""
    return socket_uid(remote, local)


def probe(listening: Address) -> int | None:
    """Whether lookups work here: the uid the kernel reports for our own listening socket
    (its peer end is 0.0.0.0:0). Raises `LookupUnavailableError` when it cannot tell."""
    uid = socket_uid(listening, ("0.0.0.0", 0))  # noqa: S104 - a lookup key, not a bind
    if uid is None:
        raise LookupUnavailableError("sock_diag does not find our own listening socket")
    return uid
