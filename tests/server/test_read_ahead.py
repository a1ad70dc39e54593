"""The server's sync read-ahead (`app.ReadAhead`): what it keeps, and for how long.

The server runs in the test's own process and event loop (a real `App` on 127.0.0.1, real
websockets, a real SQLite file), so what it holds can be counted: a page read ahead must
be held only while it can still answer the call it was read for.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from glosmsd.server import app as server_app
from glosmsd.server.app import App, Peer, ReadAhead, ServerConfig
from glosmsd.server.db import ServerStore
from tests.support.daemonproc import until
from tests.support.serverproc import Client

ANN, BOB = "+15550001001", "+15557654321"
EVENTS = 60
LIMIT = 10


@dataclass
class Running:
    app: App
    url: str
    token: str

    def peer(self) -> Peer:
        """The one connection's peer."""
        [peer] = self.app._peers
        return peer


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    db = tmp_path / "server.db"
    st = ServerStore(db)
    try:
        st.add_extension("1001", "Ann Lee")
        st.assign_number("1001", ANN)
        token = st.new_token("1001")
        for i in range(EVENTS):
            st.receive(BOB, ANN, f"m{i}")
    finally:
        st.close()
    app = App(ServerConfig(db=db))
    url = await app.start()
    try:
        yield Running(app, url, token)
    finally:
        await app.aclose()


def kept(peer: Peer) -> ReadAhead | None:
    """What `peer` keeps now (a call, so mypy does not hold on to an earlier check)."""
    return peer.ahead


def live_read_aheads() -> list[ReadAhead]:
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is ReadAhead]


async def settled(c: Client) -> None:
    """Once this reply comes, the server has finished every frame before it (frames are
    answered in order, and a read-ahead starts at the end of its frame)."""
    await c.call("contacts")


async def test_a_device_paging_gets_each_next_page_read_ahead(running: Running) -> None:
    async with await Client.connect(running.url, running.token) as c:
        page = await c.call("sync", cursor=0, limit=LIMIT)
        await settled(c)
        ahead = running.peer().ahead
        assert ahead is not None
        assert (ahead.cursor, ahead.limit) == (page["cursor"], LIMIT)
        assert (await ahead.page).to_json() == await c.call(
            "sync", cursor=page["cursor"], limit=LIMIT
        )


async def test_a_catch_up_leaves_no_page_behind(running: Running) -> None:
    """Each page read ahead is let go once its call took it (its timer held it for
    READ_AHEAD_KEEP: every page of a catch-up at once)."""
    async with await Client.connect(running.url, running.token) as c:
        assert await c.catch_up(0, limit=LIMIT) == EVENTS
        await settled(c)
        assert running.peer().ahead is None
        assert live_read_aheads() == []


async def test_a_page_not_asked_for_is_let_go_when_another_is(running: Running) -> None:
    async with await Client.connect(running.url, running.token) as c:
        await c.call("sync", cursor=0, limit=LIMIT)
        await settled(c)
        first = running.peer().ahead
        assert first is not None
        await c.call("sync", cursor=0, limit=LIMIT)  # not the page read ahead: it started again
        await settled(c)
        second = running.peer().ahead
        assert second is not None
        assert second is not first
        assert first.expiry.cancelled()
        del first  # held by nothing else now
        [live] = live_read_aheads()
        assert live is second


async def test_no_page_is_kept_for_a_closed_connection(running: Running) -> None:
    async with await Client.connect(running.url, running.token) as c:
        await c.call("sync", cursor=0, limit=LIMIT)
        await settled(c)
        peer = running.peer()
        assert peer.ahead is not None
    await until(lambda: not running.app._peers, 10, "the server to let the connection go")
    assert kept(peer) is None
    assert live_read_aheads() == []


async def test_no_read_ahead_after_a_batch_frame(running: Running) -> None:
    """A batch of sync calls is no device paging through the log (the soak's flood sends
    such batches from cursor 0): nothing is read ahead for it."""
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "sync", "params": {"cursor": 0, "limit": LIMIT}}
        for i in range(3)
    ]
    async with await Client.connect(running.url, running.token) as c:
        replies = await c.raw(json.dumps(batch))
        assert [r["result"]["more"] for r in replies] == [True] * 3
        await settled(c)
        assert running.peer().ahead is None
        assert running.peer().read_next is None
        assert live_read_aheads() == []


async def test_a_page_not_asked_for_in_time_is_let_go(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_app, "READ_AHEAD_KEEP", 0.05)
    async with await Client.connect(running.url, running.token) as c:
        page = await c.call("sync", cursor=0, limit=LIMIT)
        await settled(c)
        peer = running.peer()
        await until(lambda: peer.ahead is None, 10, "the page read ahead to be let go")
        assert live_read_aheads() == []
        # The next call is answered all the same, read when it comes.
        nxt = await c.call("sync", cursor=page["cursor"], limit=LIMIT)
        assert [e["message"]["text"] for e in nxt["events"]] == [f"m{i}" for i in range(10, 20)]
