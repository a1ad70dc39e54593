"""`mark_unread` against read marks that arrive late, with real server and daemon processes.

A conversation marked unread here stays unread when a read from before the mark comes in
after it (the server's echo of the daemon's own read, another device's read that was on
its way); a read from another device past what was read here when it was marked (a newer
message read there) still reads it. Which is which comes from the read position, never
from when the event happened to arrive.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.core.errors import NotFound
from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"
CY = "+15557650000"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def unread_of(d: DaemonProcess, remote: str) -> int:
    return int(next(c["unread"] for c in d.call("conversations") if c["remote"] == remote))


def newest_in(d: DaemonProcess, remote: str) -> int:
    msgs = d.call("messages", conversation=remote)["messages"]
    return max(int(m["server_id"]) for m in msgs if m["direction"] == "in")


def events_behind(server: ServerProcess, d: DaemonProcess, text: str) -> None:
    """Every server event so far has reached the daemon: one after them has (in order)."""
    with server.store() as st:
        st.receive(CY, ANN, text)

    def arrived() -> bool:
        try:
            msgs = d.call("messages", conversation=CY)["messages"]
        except NotFound:  # Cy's conversation is not here yet
            return False
        return any(m["text"] == text for m in msgs)

    d.wait_until(arrived, 20, f"{text!r} on the daemon")


def test_the_echo_of_the_daemon_s_own_read_does_not_undo_mark_unread(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        st.receive(BOB, ANN, "are you there?")
    with DaemonProcess.start(tmp_path / "desk", server, token) as desk:
        desk.wait_online()
        desk.wait_until(lambda: desk.call("status")["unread"] == 1, 20, "1 unread")
        # The server holds the read the daemon sends, so its echo is still on its way
        # when the user marks the conversation unread.
        server.sigstop()
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                reading = pool.submit(desk.call, "mark_read", conversation=BOB)
                desk.wait_until(lambda: desk.call("status")["unread"] == 0, 20, "read here")
                assert desk.call("mark_unread", conversation=BOB)["unread"] == 1
                server.sigcont()
                reading.result(30)
        finally:
            server.sigcont()
        with server.store() as st:
            row = st.conn.execute(
                "SELECT up_to FROM reads WHERE ext = '1001' AND remote = ?", (BOB,)
            ).fetchone()
        assert tuple(row) == (newest_in(desk, BOB),)  # the server has the read, and echoed it
        events_behind(server, desk, "after the echo")
        assert unread_of(desk, BOB) == 1
        assert desk.call("status")["unread"] == 2  # Bob's, and the marker from Cy


def test_another_device_s_read_from_before_the_mark_does_not_undo_it_a_newer_one_does(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        st.receive(BOB, ANN, "lunch?")
    with DaemonProcess.start(tmp_path / "desk", server, token) as desk:
        desk.wait_online()
        desk.wait_until(lambda: desk.call("status")["unread"] == 1, 20, "1 unread")
        desk.call("mark_read", conversation=BOB)
        events_behind(server, desk, "the desk's read is behind it")
        desk.call("mark_read", conversation=CY)
        first = newest_in(desk, BOB)

        # The phone reads Bob while the desk is off; the desk, back but offline, marks
        # it unread before it hears of that read.
        desk.stop()
        with server.store() as st:
            st.mark_read("1001", ANN, BOB, first)
        server.stop()
        desk.spawn()
        assert desk.call("mark_unread", conversation=BOB)["unread"] == 1
        server.restart()
        desk.wait_online(30)
        events_behind(server, desk, "after the phone's old read")
        assert unread_of(desk, BOB) == 1

        # Bob writes again and the phone reads that: newer than the mark, so read here.
        with server.store() as st:
            st.receive(BOB, ANN, "still there?")
        desk.wait_until(lambda: unread_of(desk, BOB) == 2, 20, "Bob's new message")
        with server.store() as st:
            st.mark_read("1001", ANN, BOB, newest_in(desk, BOB))
        desk.wait_until(lambda: unread_of(desk, BOB) == 0, 20, "the phone's newer read")
