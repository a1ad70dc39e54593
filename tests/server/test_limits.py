"""The reference server's limits, against the real server process on 127.0.0.1.

Each limit of docs/protocol.md's table: what a client past it gets, and that the server
keeps serving everyone else. Sizes stay small enough for a shared CI machine (a few MB).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from glosmsd.core import wire
from glosmsd.core.errors import LimitExceeded
from glosmsd.server import frames
from glosmsd.server.db import ServerStore
from tests.support.serverproc import Client, ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"
MIB = 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def frame_bytes(obj: Any) -> int:
    """What `obj` takes as a frame (the server sends UTF-8 JSON, non-ASCII unescaped)."""
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


async def sync_all(c: Client, cursor: int, **params: Any) -> list[dict[str, Any]]:
    """Every page from `cursor`, checking each reply's size; the pages' replies."""
    pages = []
    while True:
        reply = await c.request("sync", {"cursor": cursor, **params})
        assert frame_bytes(reply) < wire.SYNC_PAGE_BYTES + wire.MAX_EVENT_BYTES
        result = reply["result"]
        pages.append(result)
        if not result["more"]:
            return pages
        cursor = result["cursor"]


# --------------------------------------------------------------------------- sync pages


async def test_sync_pages_stop_at_a_megabyte_of_events(server: ServerProcess) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        for i in range(60):  # 80 KB of UTF-8 each: 4.8 MB in all, once one page
            st.receive(BOB, ANN, f"{i:02d}" + "🙂" * (wire.MAX_TEXT - 2))
    async with await Client.connect(server.url, token) as ann:
        pages = await sync_all(ann, 0, limit=500)
        assert len(pages) >= 5
        texts = [e["message"]["text"][:2] for p in pages for e in p["events"]]
        assert texts == [f"{i:02d}" for i in range(60)]
        seqs = [e["seq"] for p in pages for e in p["events"]]
        assert seqs == sorted(set(seqs))
        assert pages[-1]["cursor"] == seqs[-1]


async def test_an_event_stored_too_big_for_any_frame_still_passes(
    server: ServerProcess,
) -> None:
    # An older server stored an event past today's bounds (5 MB of text): it goes out cut
    # to the bounds, and the events after it follow, in a sync page and pushed live.
    token = server.add_extension("1001", "Ann Lee", ANN)

    def store_big(st: ServerStore, text: str) -> None:
        # One statement, so a live pusher never sees the event before it is big.
        msg = {**st.receive(BOB, ANN, "big"), "text": text}
        st.conn.execute(
            "INSERT INTO events (number, kind, at, body) VALUES (?, 'message', 1.0, ?)",
            (ANN, json.dumps({"message": msg})),
        )
        st.receive(BOB, ANN, "after")

    with server.store() as st:
        store_big(st, "x" * (5 * MIB))
    async with await Client.connect(server.url, token) as ann:
        events = [e for p in await sync_all(ann, 0) for e in p["events"]]
        assert [len(e["message"]["text"]) for e in events] == [3, wire.MAX_TEXT, 5]
        with server.store() as st:
            store_big(st, "y" * (5 * MIB))
        pushed = [await ann.next_event() for _ in range(3)]
        assert [len(e["message"]["text"]) for e in pushed] == [3, wire.MAX_TEXT, 5]


# --------------------------------------------------------------------------- batches


async def test_a_batch_of_more_than_fifty_calls_is_refused_whole(server: ServerProcess) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    async with await Client.connect(server.url, token) as ann:
        flood = [
            {"jsonrpc": "2.0", "id": i, "method": "sync", "params": {"cursor": 0}}
            for i in range(1000)
        ]
        reply = await ann.raw(json.dumps(flood))
        assert reply["id"] is None
        assert reply["error"]["code"] == -32600
        assert "at most 50 calls" in reply["error"]["message"]
        fifty = await ann.raw(json.dumps(flood[:50]))
        assert [r["id"] for r in fifty] == list(range(50))
        assert all("result" in r for r in fifty)


async def test_replies_past_two_mebibytes_are_refused_unrun(server: ServerProcess) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        for i in range(40):
            st.receive(BOB, ANN, f"{i:02d}" + "🙂" * (wire.MAX_TEXT - 2))
    async with await Client.connect(server.url, token) as ann:
        calls = [
            {"jsonrpc": "2.0", "id": i, "method": "sync", "params": {"cursor": 0}}
            for i in range(10)
        ] + [
            {
                "jsonrpc": "2.0",
                "id": "send",
                "method": "send",
                "params": {"client_id": "c1", "to": BOB, "text": "must not go"},
            }
        ]
        replies = await ann.raw(json.dumps(calls))
        assert frame_bytes(replies) < wire.MAX_FRAME
        answered = [r for r in replies if "result" in r]
        refused = [r for r in replies if "error" in r]
        assert 1 <= len(answered) <= 3
        assert [r["id"] for r in replies] == [*range(10), "send"]
        assert {r["error"]["code"] for r in refused} == {LimitExceeded.code}
        assert "smaller batch" in refused[0]["error"]["message"]
        # A refused call was never run: the send did not happen.
        assert json.loads(server.admin("messages", "--number", ANN, "--json"))[-1]["text"] != (
            "must not go"
        )
        # The connection goes on.
        assert await ann.call("contacts", query="") == []


async def test_a_reply_past_64_kib_goes_out_in_fragments(server: ServerProcess) -> None:
    """Written whole, the batch flood's 2 MiB reply held the server's loop for one long
    turn (encode, framing, one 2 MiB send) and every other connection waited (issue 13's
    soak). It goes out as WebSocket fragments, one a loop turn; a client's library joins
    them into the one JSON text the protocol promises."""
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        for i in range(30):  # 20 KB each: 600 KB in all
            st.receive(BOB, ANN, f"{i:02d}" + "y" * (wire.MAX_TEXT - 2))
    calls = [{"jsonrpc": "2.0", "id": i, "method": "sync", "params": {"cursor": 0}} for i in (1, 2)]
    async with (
        await Client.connect(server.url, token) as other,
        connect(
            server.url,
            additional_headers={"Authorization": f"Bearer {token}"},
            compression=None,
            max_size=wire.MAX_FRAME,
        ) as ws,
    ):
        hello = {"jsonrpc": "2.0", "id": 0, "method": "hello", "params": {"protocol": 1}}
        await ws.send(json.dumps(hello))
        assert "result" in json.loads(await ws.recv())
        await ws.send(json.dumps(calls))
        pieces = ws.recv_streaming()
        first = await anext(pieces)
        assert isinstance(first, str)
        assert len(first) == frames.FRAGMENT
        # Another connection is served while this reply is still being read.
        assert await other.call("contacts", query="") == []
        rest = [piece async for piece in pieces]
        assert all(len(piece) <= frames.FRAGMENT for piece in rest)
        replies = json.loads(first + "".join(map(str, rest)))
        assert [r["id"] for r in replies] == [1, 2]
        events = [r["result"]["events"] for r in replies]
        assert [e["message"]["text"][:2] for e in events[0]] == [f"{i:02d}" for i in range(30)]
        assert events[0] == events[1]
        # A small reply is still one frame.
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "contacts"}))
        assert [piece async for piece in ws.recv_streaming()] == [
            '{"jsonrpc":"2.0","result":[],"id":3}'
        ]
