"""Tests for glosmsd/desktop/window/peer.py: the kernel names the user behind a loopback
TCP connection (real sockets; a real second uid where the test runs as root)."""

from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest

from glosmsd.desktop.window import peer
from tests.support.otheruser import other_user

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sock_diag")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s


def test_our_own_connection_is_ours(listener: socket.socket) -> None:
    assert peer.probe(listener.getsockname()) == os.getuid()
    with socket.create_connection(listener.getsockname()) as client:
        accepted, _ = listener.accept()
        with accepted:
            assert peer.peer_uid(accepted.getsockname(), accepted.getpeername()) == os.getuid()
            assert client.getsockname() == accepted.getpeername()


def test_a_connection_that_is_not_there_has_no_user() -> None:
    assert peer.socket_uid(("127.0.0.1", 1), ("127.0.0.1", 2)) is None


def test_another_user_s_connection_names_that_user(listener: socket.socket) -> None:
    other = other_user()
    port = listener.getsockname()[1]
    code = f"import socket; s = socket.create_connection(('127.0.0.1', {port})); s.recv(1)"
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={other.pw_uid}", f"--regid={other.pw_gid}", "--clear-groups",
         "/usr/bin/python3", "-I", "-c", code],
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        listener.settimeout(20)
        accepted, _ = listener.accept()
        with accepted:
            uid = peer.peer_uid(accepted.getsockname(), accepted.getpeername())
            assert uid == other.pw_uid != os.getuid()
    finally:
        proc.kill()
        proc.wait(10)


def test_replies_are_read_as_the_kernel_writes_them() -> None:
    header = struct.Struct("=IHHII")
    not_found = header.pack(36, peer.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -errno.ENOENT)
    assert peer.parse_reply(not_found + b"\0" * 16) is None
    refused = header.pack(36, peer.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -errno.EPERM)
    with pytest.raises(peer.LookupUnavailableError, match="EPERM"):
        peer.parse_reply(refused + b"\0" * 16)
    body = bytes(4 + 48 + 12) + struct.pack("=II", 1234, 99)
    msg = header.pack(header.size + len(body), peer.SOCK_DIAG_BY_FAMILY, 0, 1, 0) + body
    assert peer.parse_reply(msg) == 1234
    with pytest.raises(peer.LookupUnavailableError):
        peer.parse_reply(b"\0" * 4)
    with pytest.raises(peer.LookupUnavailableError):
        peer.parse_reply(header.pack(16, 99, 0, 1, 0))


def test_the_request_asks_for_exactly_one_socket() -> None:
    req = peer.request(("127.0.0.1", 5000), ("127.0.0.1", 80))
    length, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", req)
    assert (length, kind, flags) == (len(req), peer.SOCK_DIAG_BY_FAMILY, peer.NLM_F_REQUEST)
    sport, dport = struct.unpack_from("!HH", req, 16 + 8)
    assert (sport, dport) == (5000, 80)
