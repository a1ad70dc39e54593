"""The link adapter against the real reference server process (and, for frames the real
server never sends, a scripted WebSocket peer on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from glosmsd.core import wire
from glosmsd.core.errors import BadInput, LinkClosed, LocalProtocolError, NotFound
from glosmsd.core.protocol import AUTH_FAILED_LINE, LinkStatus, State
from glosmsd.daemon.link import Link
from tests.support.serverproc import ServerProcess, running_server

NUMBER = "+15550001001"
REMOTE = "+15557654321"
WAIT = 20.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


@dataclass
class Recorder:
    """Stands in for the store: keeps the cursor, the batches and the events it is given."""

    cursor: int = 0
    batches: list[tuple[list[dict[str, Any]], int, bool]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    hellos: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[LinkStatus] = field(default_factory=list)
    fail_batches: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def get_cursor(self) -> int:
        return self.cursor

    async def apply_batch(
        self,
        events: list[dict[str, Any]],
        cursor: int,
        reset: bool,
        *,
        snapshot: tuple[int, int | None] | None = None,
    ) -> None:
        if self.fail_batches:
            self.fail_batches -= 1
            raise RuntimeError("disk full")
        self.batches.append((events, cursor, reset))
        self.cursor = cursor
        await self._notify()

    async def on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.cursor = event["seq"]
        await self._notify()

    async def on_hello(self, hello: dict[str, Any]) -> None:
        self.hellos.append(hello)

    def on_status(self, status: LinkStatus) -> None:
        self.statuses.append(status)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, check: Callable[[], Any], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(check)

    def synced(self) -> list[dict[str, Any]]:
        return [e for events, _, _ in self.batches for e in events]

    def messages(self) -> list[dict[str, Any]]:
        return [e for e in self.synced() + self.events if e["kind"] == "message"]

    def state(self) -> State:
        return self.statuses[-1].state if self.statuses else State.DISCONNECTED


@contextlib.asynccontextmanager
async def running(
    url: str, token: str, rec: Recorder, *, ping: float = 20.0, **kw: Any
) -> AsyncIterator[Link]:
    link = Link(
        url,
        token,
        device_id="test-device",
        ping_interval=ping,
        on_event=rec.on_event,
        on_status=rec.on_status,
        get_cursor=rec.get_cursor,
        apply_batch=rec.apply_batch,
        on_hello=rec.on_hello,
        rng=random.Random(0),
        **kw,
    )
    task = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        await asyncio.wait_for(link.stop(), WAIT)
        await asyncio.wait_for(task, WAIT)


async def inject(srv: ServerProcess, text: str) -> None:
    await asyncio.to_thread(srv.admin, "inject", "--from", REMOTE, "--to", NUMBER, "--text", text)


def texts(rec: Recorder) -> list[str]:
    return [e["message"]["text"] for e in rec.messages()]


# --------------------------------------------------------------------------- real server


async def test_connect_hello_catch_up_then_live(server: ServerProcess) -> None:
    token = server.add_extension("1001", "Ann Lee", number=NUMBER)
    await inject(server, "one")
    await inject(server, "two")
    rec = Recorder()
    async with running(server.url, token, rec) as link:
        await rec.until(lambda: rec.state() is State.LIVE)
        assert texts(rec) == ["one", "two"]
        assert rec.hellos[0]["numbers"][0]["number"] == NUMBER
        assert link.hello == rec.hellos[0]
        assert link.describe() == "Online"
        seen = [s.state for s in rec.statuses]
        assert seen[:4] == [State.CONNECTING, State.HELLO_SENT, State.SYNCING, State.LIVE]

        await inject(server, "three")
        await rec.until(lambda: len(rec.events) == 1)
        assert texts(rec) == ["one", "two", "three"]
        assert rec.cursor == rec.events[0]["seq"]

        contacts = await link.call("contacts", {"query": ""})
        assert isinstance(contacts, list)
        with pytest.raises(NotFound):
            await link.call("avatar", {"ext": "9999"})
        with pytest.raises(BadInput):
            await link.call(
                "send", {"client_id": "c1", "to": "not a number", "text": "x", "files": []}
            )
    assert rec.state() is State.DISCONNECTED


async def test_bad_token_is_terminal_without_a_storm(server: ServerProcess) -> None:
    good = server.add_extension("1001", "Ann Lee", number=NUMBER)
    rec = Recorder()
    async with running(server.url, "wrong-token", rec, backoff_min=0.05) as link:
        await rec.until(lambda: rec.state() is State.AUTH_FAILED)
        assert link.describe() == AUTH_FAILED_LINE
        assert link.status.retry_at is None
        # A storm at a 0.05 s backoff would have made many attempts in this window.
        with pytest.raises(TimeoutError):
            await rec.until(lambda: rec.state() is not State.AUTH_FAILED, timeout=1.0)
        assert link.connect_attempts == 1
        assert server.log().count("auth failed from") == 1
        with pytest.raises(LinkClosed):
            await link.call("contacts", {"query": ""})

        link.set_token(good)
        await rec.until(lambda: rec.state() is State.LIVE)
        assert link.connect_attempts == 2


async def test_frozen_server_is_noticed_within_two_intervals(server: ServerProcess) -> None:
    token = server.add_extension("1001", "Ann Lee", number=NUMBER)
    rec = Recorder()
    ping = 0.5
    async with running(server.url, token, rec, ping=ping) as link:
        await rec.until(lambda: rec.state() is State.LIVE)
        pending = asyncio.create_task(link.call("contacts", {"query": ""}))
        server.sigstop()
        try:
            # A stopped process never closes its TCP side: only the keepalive can notice
            # (in two intervals, 0.95 s measured here; bench, not tests, times it).
            await rec.until(lambda: rec.state() is not State.LIVE, timeout=10)
            assert "keepalive ping timeout" in rec.statuses[-1].detail
            # A call caught in the drop fails as LinkClosed, it does not hang.
            with pytest.raises(LinkClosed):
                await asyncio.wait_for(pending, 5)
        finally:
            server.sigcont()
        await rec.until(lambda: rec.state() is State.LIVE)
        await inject(server, "after the freeze")
        await rec.until(lambda: texts(rec) == ["after the freeze"])


async def test_restart_reconnects_and_resumes_from_cursor(server: ServerProcess) -> None:
    token = server.add_extension("1001", "Ann Lee", number=NUMBER)
    await inject(server, "before")
    rec = Recorder()
    async with running(server.url, token, rec, backoff_min=0.05, backoff_max=0.5) as link:
        await rec.until(lambda: rec.state() is State.LIVE)
        await asyncio.to_thread(server.restart)
        await rec.until(lambda: link.connect_attempts >= 2 and rec.state() is State.LIVE)
        await inject(server, "after")
        await rec.until(lambda: texts(rec) == ["before", "after"])
        # The second sync started from the stored cursor: nothing came twice.
        seqs = [e["seq"] for e in rec.synced() + rec.events]
        assert len(seqs) == len(set(seqs))
        assert any(s.state is State.BACKOFF for s in rec.statuses)


async def test_call_when_not_connected_raises_link_closed() -> None:
    rec = Recorder()
    link = Link(
        "ws://127.0.0.1:9/v1",
        "t",
        device_id="d",
        on_event=rec.on_event,
        on_status=rec.on_status,
        get_cursor=rec.get_cursor,
        apply_batch=rec.apply_batch,
        on_hello=rec.on_hello,
    )
    with pytest.raises(LinkClosed, match="Not connected"):
        await link.call("contacts", {"query": ""})
    assert link.status.state is State.DISCONNECTED


async def test_unreachable_server_backs_off() -> None:
    rec = Recorder()
    async with running("ws://127.0.0.1:9/v1", "t", rec) as link:
        await rec.until(lambda: rec.state() is State.BACKOFF)
        assert link.describe().startswith("Offline: reconnecting")
        assert rec.statuses[-1].detail == "connection refused"
        with pytest.raises(LinkClosed):
            await link.call("contacts", {"query": ""})


# --------------------------------------------------------------------------- scripted peer

Script = Callable[[ServerConnection, Any], Awaitable[Any]]


@dataclass
class Peer:
    """A WebSocket peer on 127.0.0.1 that answers hello and sync as scripted."""

    sync_replies: list[dict[str, Any]]
    after_live: list[str | bytes] = field(default_factory=list)
    connections: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[Headers] = field(default_factory=list)
    reject: int = 0
    hello: list[dict[str, Any]] = field(default_factory=list)
    silent: frozenset[str] = frozenset()

    def check(self, conn: ServerConnection, request: Request) -> Response | None:
        self.headers.append(request.headers)
        if self.reject:
            self.reject -= 1
            return conn.respond(503, "busy\n")
        return None

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        replies = list(self.sync_replies)
        async for frame in ws:
            req = json.loads(frame)
            self.requests.append(req)
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": req.get("id")}
            if req.get("method") in self.silent:
                continue
            if req.get("method") == "hello" and self.hello:
                await ws.send(json.dumps(reply | self.hello.pop(0)))
                continue
            if req.get("method") == "hello":
                result: Any = {"protocol": 1, "numbers": [], "settings": {}}
            elif req.get("method") == "sync":
                result = replies.pop(0) if replies else {"events": [], "cursor": 0}
            elif "id" not in req:
                continue
            else:
                result = {"echo": req.get("params")}
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": req.get("id"), "result": result}))
            if req.get("method") == "sync" and not result.get("more"):
                for raw in self.after_live:
                    await ws.send(raw)


@contextlib.asynccontextmanager
async def peer(p: Peer) -> AsyncIterator[str]:
    async with serve(p.handle, "127.0.0.1", 0, process_request=p.check) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1"


def ev(seq: int, text: str = "x") -> dict[str, Any]:
    return wire.event(seq, "message", 1.0, {"message": message(seq, text)})


def message(mid: int, text: str = "x") -> dict[str, Any]:
    """A whole MESSAGE, as the server sends it (the link passes on only what checks)."""
    return wire.message(
        id=mid,
        client_id=None,
        number=NUMBER,
        remote=REMOTE,
        direction="in",
        text=text,
        state="sent",
        reason=None,
        at=1.0,
        files=[],
        sender=None,
    )


def notify(event: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "event", "params": event})


async def test_sync_pages_while_more_and_passes_reset() -> None:
    p = Peer(
        [
            {"events": [ev(1), ev(2)], "cursor": 2, "more": True, "reset": True},
            {"events": [ev(2), ev(3)], "cursor": 3, "more": False},
        ],
        after_live=[notify(ev(3)), notify(ev(4, "live"))],
    )
    rec = Recorder(cursor=0)
    async with peer(p) as url, running(url, "secret", rec):
        await rec.until(lambda: len(rec.events) == 1)
    assert [(b[1], b[2]) for b in rec.batches] == [(2, True), (3, False)]
    assert [e["seq"] for e in rec.synced()] == [1, 2, 3]
    assert [e["seq"] for e in rec.events] == [4]
    syncs = [r["params"] for r in p.requests if r["method"] == "sync"]
    assert syncs == [{"cursor": 0, "limit": 500}, {"cursor": 2, "limit": 500}]
    hello = next(r for r in p.requests if r["method"] == "hello")
    assert hello["params"]["protocol"] == 1
    assert p.headers[0]["Authorization"] == "Bearer secret"
    assert p.headers[0]["X-Glosmsd-Device"] == "test-device"


async def test_hostile_frames_are_ignored() -> None:
    hostile: list[str | bytes] = [
        b"\x00\x01binary",
        "not json {",
        "NaN",
        json.dumps({"hello": "world"}),
        json.dumps([1, 2, {"jsonrpc": "2.0"}]),
        json.dumps({"jsonrpc": "2.0", "id": 999, "result": 1}),
        json.dumps({"jsonrpc": "2.0", "id": [1], "result": 1}),
        json.dumps({"jsonrpc": "2.0", "id": 5, "method": "shutdown"}),
        notify({"seq": 10, "kind": "from_the_future"}),
        notify({"seq": "11", "kind": "message"}),
        notify({"seq": 12, "kind": "message", "message": "not an object"}),
        notify([1, 2]),
        "[" * 100_000,
        notify(ev(13, "good")),
    ]
    p = Peer([{"events": [], "cursor": 0, "more": False}], after_live=hostile)
    rec = Recorder()
    async with peer(p) as url, running(url, "t", rec) as link:
        await rec.until(lambda: len(rec.events) == 1)
        assert rec.events[0]["message"]["text"] == "good"
        assert rec.state() is State.LIVE
        assert await link.call("ping", {"a": 1}) == {"echo": {"a": 1}}
        with pytest.raises(LocalProtocolError, match="not JSON"):
            await link.call("x", {"bad": float("nan")})
    assert p.connections == 1
    # The server's call got a method-not-found answer.
    answered = [r for r in p.requests if r.get("id") == 5]
    assert answered
    assert answered[0]["error"]["code"] == -32601


async def test_store_failure_reconnects_and_syncs_again() -> None:
    p = Peer(
        [
            {"events": [ev(1)], "cursor": 1, "more": False},
            {"events": [ev(1)], "cursor": 1, "more": False},
        ]
    )
    rec = Recorder(fail_batches=1)
    async with (
        peer(p) as url,
        running(url, "t", rec, backoff_min=0.05) as link,
    ):
        await rec.until(lambda: rec.state() is State.LIVE)
        assert [e["seq"] for e in rec.synced()] == [1]
        assert link.connect_attempts == 2
        assert any("apply_batch failed" in s.detail for s in rec.statuses)


async def test_http_error_other_than_401_backs_off_and_retries() -> None:
    p = Peer([{"events": [], "cursor": 0}], reject=2)
    rec = Recorder()
    async with peer(p) as url, running(url, "t", rec, backoff_min=0.05) as link:
        await rec.until(lambda: rec.state() is State.LIVE)
        assert link.connect_attempts == 3
        assert any(s.detail == "server answered HTTP 503" for s in rec.statuses)


async def test_refused_or_unusable_hello_backs_off_then_recovers() -> None:
    p = Peer(
        [{"events": [], "cursor": 0}],
        hello=[
            {"error": {"code": -32002, "message": "protocol 1 not spoken", "data": {}}},
            {"error": {"code": -32603, "message": "Internal error"}},
            {"result": {"protocol": 2}},
        ],
    )
    rec = Recorder()
    async with peer(p) as url, running(url, "t", rec, backoff_min=0.05) as link:
        await rec.until(lambda: rec.state() is State.LIVE)
        assert link.connect_attempts == 4
    details = [s.detail for s in rec.statuses if s.state is State.BACKOFF]
    assert details == [
        "hello refused by the server: protocol 1 not spoken",
        "hello failed: Internal error",
        "bad hello from the server: server speaks protocol 2, we speak 1",
    ]


async def test_set_token_reconnects_with_the_new_token() -> None:
    p = Peer([{"events": [], "cursor": 0}, {"events": [], "cursor": 0}])
    rec = Recorder()
    async with peer(p) as url, running(url, "old", rec) as link:
        await rec.until(lambda: rec.state() is State.LIVE)
        link.set_token("new")
        await rec.until(lambda: link.connect_attempts == 2 and rec.state() is State.LIVE)
        with pytest.raises(LocalProtocolError, match="already running"):
            await link.run()
    assert [h["Authorization"] for h in p.headers] == ["Bearer old", "Bearer new"]


async def test_call_without_answer_times_out_as_link_closed() -> None:
    p = Peer([{"events": [], "cursor": 0}], silent=frozenset({"slow"}))
    rec = Recorder()
    async with peer(p) as url, running(url, "t", rec) as link:
        await rec.until(lambda: rec.state() is State.LIVE)
        with pytest.raises(LinkClosed, match=r"did not answer slow within 0\.2 s"):
            await link.call("slow", {}, timeout=0.2)
        assert rec.state() is State.LIVE


async def test_stop_during_a_hanging_handshake_returns_promptly() -> None:
    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, never answer the upgrade
        writer.close()

    hole = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = hole.sockets[0].getsockname()[1]
    rec = Recorder()
    try:
        async with running(f"ws://127.0.0.1:{port}/v1", "t", rec) as link:
            await rec.until(lambda: rec.state() is State.CONNECTING)
            await asyncio.wait_for(link.stop(), 5)  # never waits on the dead handshake
    finally:
        hole.close()
        await hole.wait_closed()
    assert rec.state() is State.DISCONNECTED


async def test_sync_pages_too_big_for_a_frame_shrink_until_they_pass() -> None:
    # A server (not ours) that fills every page to the `limit` the link asks for, with
    # events of 20,000 characters: 500 of them are 10 MB, past the 4 MiB frame limit.
    # The link asks for a quarter as many per page after each 1009 close, and gets through.
    events = [ev(i, f"{i:03d}" + "z" * (wire.MAX_TEXT - 3)) for i in range(1, 301)]

    async def handle(ws: ServerConnection) -> None:
        async for frame in ws:
            req = json.loads(frame)
            result: Any = {"protocol": 1, "numbers": [], "settings": {}}
            if req["method"] == "sync":
                after = [e for e in events if e["seq"] > req["params"]["cursor"]]
                page = after[: req["params"]["limit"]]
                more = len(after) > len(page)
                cursor = page[-1]["seq"] if page else req["params"]["cursor"]
                result = {"events": page, "cursor": cursor, "more": more}
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}))

    rec = Recorder()
    async with serve(handle, "127.0.0.1", 0, max_size=None) as srv:
        url = f"ws://127.0.0.1:{next(iter(srv.sockets)).getsockname()[1]}/v1"
        async with running(url, "t", rec, backoff_min=0.05, backoff_max=0.1) as link:
            await rec.until(lambda: rec.state() is State.LIVE)
            assert link.connect_attempts == 2
    assert [e["message"]["text"][:3] for e in rec.synced()] == [f"{i:03d}" for i in range(1, 301)]
    assert any("frame over 4 MiB" in s.detail for s in rec.statuses)
