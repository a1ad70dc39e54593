"""The socket's limits on a real daemon (issue 13 items 5 and 9): batch length, a line's
reply bytes, the bytes queued for a client that does not read, and connections.

The issue's numbers, bounded: one 1 MiB line of 21,399 `rpc.discover` calls blocked every
client for 24.5 s; a client that never read its batch replies grew the daemon by ~23.5 MB
a line; 300 idle connections under nofile=256 locked the others out and logged a
traceback per accept.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glosmsd.core import rpc
from glosmsd.core.errors import RpcError
from glosmsd.daemon import ipc
from tests.support.daemonproc import DaemonProcess, wait_until
from tests.support.ipcworld import ANN, World, running_world, seed, wait_seeded
from tests.support.serverproc import running_server

DISCOVER = b'{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("ipclimits")) as w:
        yield w


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Raw:
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def raw_line(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("daemon closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def line(self) -> Any:
        return json.loads(self.raw_line())

    def close(self) -> None:
        self.sock.close()


def number_answers(world: World) -> bool:
    result = world.daemon.call("number")
    assert result["number"] == ANN
    return True


def batch(n: int, call: bytes = DISCOVER) -> bytes:
    return b"[" + b",".join([call] * n) + b"]\n"


def test_a_1_mib_line_of_21399_discover_calls_is_refused_unrun(world: World) -> None:
    line = batch(21_399)
    assert len(line) <= rpc.DEFAULT_MAX_LINE  # the line: it fits the line limit
    raw = Raw(world.daemon.socket)
    try:
        raw.send(line)
        reply = raw.line()
    finally:
        raw.close()
    assert isinstance(reply, dict), "one error, not 21,399 replies"
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert reply["error"]["data"] == {"limit": ipc.MAX_BATCH}
    assert "at most 100 calls" in reply["error"]["message"]
    assert "none of them ran" in reply["error"]["message"]
    assert number_answers(world)


def test_a_full_batch_is_answered_within_the_reply_budget(world: World) -> None:
    raw = Raw(world.daemon.socket)
    try:
        raw.send(batch(ipc.MAX_BATCH))
        line = raw.raw_line()
        raw.send(b'{"jsonrpc":"2.0","id":"after","method":"number"}\n')
        after = raw.line()
    finally:
        raw.close()
    replies = json.loads(line)
    assert len(replies) == ipc.MAX_BATCH
    ran = [r for r in replies if "result" in r]
    not_run = [r for r in replies if "error" in r]
    assert ran, "the first calls ran"
    assert not_run, "the rest were refused unrun"
    assert replies[: len(ran)] == ran, "the calls run are the first ones, in order"
    sizes = [len(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode()) for r in ran]
    # The calls run stop once their replies pass the budget: at most one reply past it.
    assert sum(sizes[:-1]) <= ipc.REPLY_BUDGET < sum(sizes) + len(sizes)
    for r in not_run:
        assert r["error"]["code"] == -32008
        assert r["error"]["data"]["kind"] == "limit-exceeded"
        assert r["error"]["data"]["limit"] == ipc.REPLY_BUDGET
        assert "Not run" in r["error"]["message"]
    assert after["result"]["number"] == ANN


def settled_rss(pid: int) -> int:
    """The daemon's RSS once it stops growing (it is still working through what it read)."""
    peak, still = rss_bytes(pid), 0
    while still < 4:
        threading.Event().wait(0.5)
        now = rss_bytes(pid)
        still = still + 1 if now <= peak else 0
        peak = max(peak, now)
    return peak


def test_a_client_that_never_reads_batch_replies_keeps_the_daemon_small(world: World) -> None:
    """60 lines of full batches, never read: ~23.5 MB a line before (1.4 GB here).

    Each line is padded with JSON whitespace to 256 KB, so the kernel's buffers cannot
    take all 60: the sender stalls once the daemon stops reading it, and that is the
    state the test waits for (or all 60 read, as before the fix)."""
    pid = world.daemon.proc.pid  # type: ignore[union-attr]
    before = rss_bytes(pid)
    stuck = socket.socket(socket.AF_UNIX)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(str(world.daemon.socket))
    line = batch(ipc.MAX_BATCH)
    line = line[:-2] + b" " * (256 * 1024 - len(line)) + b"]\n"
    sent = 0
    done = threading.Event()

    def flood() -> None:
        nonlocal sent
        with contextlib.suppress(OSError):
            for _ in range(60):
                stuck.sendall(line)
                sent += 1
        done.set()

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        for _ in range(20):  # the daemon answers others all along
            assert number_answers(world)
        last = -1
        while not done.wait(2.0) and sent != last:
            last = sent
        grown = settled_rss(pid) - before
        assert grown < 48 * 1024 * 1024, f"the daemon grew {grown / 1e6:.1f} MB after {sent} lines"
        assert sent < 60, "the daemon stopped reading a client that does not read"
        assert number_answers(world)
    finally:
        with contextlib.suppress(OSError):
            stuck.shutdown(socket.SHUT_RDWR)  # wakes the sender blocked in sendall
        flooder.join(30)
        stuck.close()
    assert number_answers(world)


def test_replies_past_the_byte_bound_wait_and_the_client_gets_all_of_them(world: World) -> None:
    """Back-pressure, not loss: a slow reader still gets every reply, in order."""
    raw = Raw(world.daemon.socket)
    try:
        n = 30
        raw.send(b"".join(batch(ipc.MAX_BATCH) for _ in range(n)))
        raw.send(b'{"jsonrpc":"2.0","id":"end","method":"number"}\n')
        for _ in range(n):
            assert len(json.loads(raw.raw_line())) == ipc.MAX_BATCH
        assert raw.line()["id"] == "end"
    finally:
        raw.close()


def test_hello_announces_the_limits(world: World) -> None:
    hello = world.daemon.call("hello")
    assert hello["max_batch"] == ipc.MAX_BATCH
    assert hello["queue_bytes"] == ipc.OUT_BYTES
    assert hello["reply_bytes"] == ipc.REPLY_BUDGET


def test_a_batch_of_the_daemon_s_own_methods_stays_whole_under_the_budget(world: World) -> None:
    small = b'{"jsonrpc":"2.0","id":1,"method":"count","params":{"text":"a"}}'
    raw = Raw(world.daemon.socket)
    try:
        raw.send(batch(ipc.MAX_BATCH, small))
        replies = raw.line()
    finally:
        raw.close()
    assert len(replies) == ipc.MAX_BATCH
    assert all("result" in r for r in replies)


def test_over_max_batch_by_one_is_refused(world: World, tmp_path: Path) -> None:
    small = b'{"jsonrpc":"2.0","id":1,"method":"count","params":{"text":"a"}}'
    raw = Raw(world.daemon.socket)
    try:
        raw.send(batch(ipc.MAX_BATCH + 1, small))
        reply = raw.line()
    finally:
        raw.close()
    assert reply["error"]["code"] == -32600
    assert reply["error"]["data"] == {"limit": ipc.MAX_BATCH}


# --------------------------------------------------------------------------- connections


def test_300_idle_connections_under_nofile_256_lock_no_one_out(tmp_path: Path) -> None:
    """Issue 13 item 9: nofile=256, 300 idle connections: the others were locked out and
    the log got a traceback per accept (17,458). Now the cap (256 - the reserve, at most
    128) closes the longest idle connection for a newcomer, and a full table is one line."""
    with running_server(tmp_path) as srv:
        token = seed(srv)
        with DaemonProcess.start(tmp_path / "ann", srv, token, nofile=256) as daemon:
            wait_seeded(daemon)
            idle: list[socket.socket] = []
            try:
                for _ in range(300):
                    s = socket.socket(socket.AF_UNIX)
                    idle.append(s)
                    # Blocking: a full listen backlog makes a non-blocking connect EAGAIN.
                    s.connect(str(daemon.socket))
                # Every idle connection is accepted or closed by now once a call that
                # connected after them is answered (the daemon accepts in order).
                for _ in range(20):
                    assert daemon.call("number")["number"] == ANN
                closed = sum(1 for s in idle if _closed_by_peer(s))
                assert closed >= 300 - ipc.MAX_CONNECTIONS
                assert daemon.call("status")["link"]["online"]
            finally:
                for s in idle:
                    s.close()
            log = daemon.log()
    assert "Traceback" not in log
    assert "out of system resource" not in log
    assert log.count("connection table full") == 1, log


def test_a_full_table_of_subscribed_clients_refuses_the_next_with_a_clear_error(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path) as srv:
        token = seed(srv)
        with DaemonProcess.start(tmp_path / "ann", srv, token, nofile=256) as daemon:
            wait_seeded(daemon)
            cap = daemon.call("hello")["max_connections"]
            subs: list[Raw] = []
            try:
                for i in range(cap):
                    r = Raw(daemon.socket)
                    r.send(b'{"jsonrpc":"2.0","id":%d,"method":"subscribe"}\n' % i)
                    assert r.line()["result"]["subscribed"] is True
                    subs.append(r)
                extra = Raw(daemon.socket)
                try:
                    err = extra.line()["error"]
                finally:
                    extra.close()
                assert err["code"] == -32008
                assert err["data"] == {"limit": cap, "kind": "limit-exceeded"}
                assert "Too many connections" in err["message"]
                subs.pop().close()
                wait_until(lambda: _served(daemon), 10, "a freed slot to serve a newcomer")
            finally:
                for r in subs:
                    r.close()


def _served(daemon: DaemonProcess) -> bool:
    try:
        return bool(daemon.call("number")["number"] == ANN)
    except RpcError:
        return False


def _closed_by_peer(s: socket.socket) -> bool:
    """Whether the daemon closed `s` (EOF), without waiting on one that stays open."""
    s.setblocking(False)
    try:
        return s.recv(1 << 16) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
