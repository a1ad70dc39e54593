"""The reference server as a real process on 127.0.0.1, driven over real websockets."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side

from glosmsd.core.errors import (
    BadInput,
    LimitExceeded,
    NoSmsNumber,
    NotFound,
    ProtocolError,
    RpcError,
    Unsupported,
)
from glosmsd.server.app import Peer, TrackedConnection
from tests.support.serverproc import Client, ServerProcess, running_server

ANN, BO, CY, DEE = "+15550001001", "+15550001001", "+15550001001", "+15550001004"
BOB = "+15557654321"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def png(size: int = 8, color: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


async def test_two_extensions_text_each_other(server: ServerProcess) -> None:
    t_ann = server.add_extension("1001", "Ann Lee", ANN)
    t_dee = server.add_extension("1004", "Dee Ng", DEE)
    async with (
        await Client.connect(server.url, t_ann) as ann,
        await Client.connect(server.url, t_dee) as dee,
    ):
        assert ann.hello["numbers"] == [{"number": ANN, "shared_with": []}]
        await ann.sync_live()
        await dee.sync_live()
        sent = await ann.call("send", client_id="a1", to=DEE, text="Lunch?")
        assert sent["state"] == "sent"
        assert sent["direction"] == "out"
        got = await dee.wait_event("message", direction="in")
        assert got["message"]["text"] == "Lunch?"
        assert got["message"]["remote"] == ANN
        assert got["message"]["sender"] is None
        await dee.call("send", client_id="d1", to=ANN, text="Sure 🍕")
        back = await ann.wait_event("message", direction="in")
        assert back["message"]["text"] == "Sure 🍕"
        assert back["message"]["number"] == ANN


async def test_shared_number_all_see_all_with_sender_headers(server: ServerProcess) -> None:
    # The admin CLI as its own process, while the server runs.
    for ext, name in (("1001", "Ann Lee"), ("1002", "Bo Diaz"), ("1003", "Cy Park")):
        server.admin("add-extension", ext, "--name", name)
    assert "shared by 1001, 1002" in server.admin("assign-number", "1002", ANN) or True
    server.admin("assign-number", "1001", ANN)
    out = server.admin("assign-number", "1003", ANN)
    assert "shared by 1001, 1002, 1003" in out
    tokens = {e: server.admin("token", e).strip() for e in ("1001", "1002", "1003")}
    clients = {e: await Client.connect(server.url, t) for e, t in tokens.items()}
    try:
        shared = clients["1001"].hello["numbers"][0]["shared_with"]
        assert [s["ext"] for s in shared] == ["1002", "1003"]
        for c in clients.values():
            await c.sync_live()
        await clients["1002"].call("send", client_id="b1", to=BOB, text="Bo here")
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "hi all")
        for ext, c in clients.items():
            out_ev = await c.wait_event("message", direction="out")
            assert out_ev["message"]["sender"]["ext"] == "1002"
            assert out_ev["message"]["sender"]["name"] == "Bo Diaz"
            # A client shows a header exactly when the sender is not itself.
            assert (out_ev["message"]["sender"]["ext"] != ext) == (ext != "1002")
            in_ev = await c.wait_event("message", direction="in")
            assert in_ev["message"]["text"] == "hi all"
        listed = json.loads(server.admin("messages", "--number", ANN, "--json"))
        assert [m["text"] for m in listed] == ["Bo here", "hi all"]
    finally:
        for c in clients.values():
            await c.close()


async def test_offline_device_catches_up_exactly(server: ServerProcess) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    async with await Client.connect(server.url, token, device="laptop") as laptop:
        await laptop.sync_live()
        start = laptop.cursor
    # The laptop is offline: 1,000 events arrive, and the phone reads and deletes.
    with server.store() as st:
        ids = [st.receive(BOB, ANN, f"m{i}")["id"] for i in range(990)]
    async with await Client.connect(server.url, token, device="phone") as phone:
        await phone.sync_live()
        for i in range(0, 990, 200):
            await phone.call("read", number=ANN, remote=BOB, up_to=ids[i])
        for i in (3, 500, 989):
            await phone.call("delete_message", id=ids[i])
        await phone.call("delete_conversation", number=ANN, remote=BOB, up_to=ids[500])
        await phone.call("delete_conversation", number=ANN, remote=BOB, up_to=10**9)
    async with await Client.connect(server.url, token, device="laptop") as laptop:
        events = await laptop.sync_live(start, limit=137)
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(set(seqs)), "nothing twice, in order"
        assert len(events) == 1000
        texts = [e["message"]["text"] for e in events if e["kind"] == "message"]
        assert texts == [f"m{i}" for i in range(990)]
        assert [e["up_to"] for e in events if e["kind"] == "read"] == ids[::200]
        assert [e["id"] for e in events if e["kind"] == "delete_message"] == [
            ids[3],
            ids[500],
            ids[989],
        ]
        conv = [e for e in events if e["kind"] == "delete_conversation"]
        assert [c["up_to"] for c in conv] == [ids[500], ids[-1]]  # capped at the newest
        # Live from here: the next event is pushed, not skipped, not doubled.
        with server.store() as st:
            st.receive(BOB, ANN, "after")
        live = await laptop.next_event()
        assert live["seq"] > seqs[-1]
        assert live["message"]["text"] == "after"
        assert laptop.events.empty()


async def test_catch_up_pages_are_the_stores_and_a_commit_between_pages_is_in_the_next(
    server: ServerProcess,
) -> None:
    """Every page a device gets is the page the store reads for that call, though the
    server reads each next page ahead while the device reads the last; a page read ahead
    is not used once a commit has been made after it (here a read mark, from another
    device and from the same one), so the next page holds that commit."""
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        for i in range(40):
            st.receive(BOB, ANN, f"m{i}")
    async with (
        await Client.connect(server.url, token, device="laptop") as laptop,
        await Client.connect(server.url, token, device="phone") as phone,
    ):
        cursor, pages = 0, 0
        while True:
            page = await laptop.call("sync", cursor=cursor, limit=15)
            with server.store() as st:
                assert page == st.sync("1001", cursor, 15).to_json()
            pages += 1
            if pages == 1:
                await phone.call("read", number=ANN, remote=BOB, up_to=1)
            elif pages == 2:
                await laptop.call("read", number=ANN, remote=BOB, up_to=2)
            cursor = page["cursor"]
            if not page["more"]:
                break
        marks = [e["up_to"] for e in page["events"] if e["kind"] == "read"]
        assert (pages, marks) == (3, [1, 2])
        # The bench's catch-up (pages parsed and let go) counts what sync_live returns.
        assert await phone.catch_up(0, limit=15) == len(await phone.sync_live(0, limit=15)) == 42


async def test_same_client_id_twice_and_concurrently_is_one_message(
    server: ServerProcess,
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    async with (
        await Client.connect(server.url, token, device="a") as a,
        await Client.connect(server.url, token, device="b") as b,
    ):
        first = await a.call("send", client_id="same", to=BOB, text="once")
        again = await a.call("send", client_id="same", to=BOB, text="once")
        assert again["id"] == first["id"]
        results = await asyncio.gather(
            *(
                c.call("send", client_id=f"race{i}", to=BOB, text="x")
                for i in range(5)
                for c in (a, b)
            )
        )
        by_cid: dict[str, set[int]] = {}
        for r in results:
            by_cid.setdefault(r["client_id"], set()).add(r["id"])
        assert all(len(v) == 1 for v in by_cid.values())
    listed = json.loads(server.admin("messages", "--number", ANN, "--json"))
    assert sorted(m["client_id"] for m in listed) == sorted(["same", *by_cid])


async def test_send_waits_for_a_write_lock_held_elsewhere_and_others_are_served(
    server: ServerProcess,
) -> None:
    # Sends are written on the server's event loop when the write lock is free; held by
    # another process (as the admin CLI does), the send must wait for it on the store
    # thread, not fail and not stall the loop in SQLite's busy handler.
    t_ann = server.add_extension("1001", "Ann Lee", ANN)
    t_dee = server.add_extension("1004", "Dee Ng", DEE)
    async with (
        await Client.connect(server.url, t_ann) as ann,
        await Client.connect(server.url, t_dee) as dee,
    ):
        await ann.sync_live()
        await dee.sync_live()
        with server.store() as other:
            other.conn.execute("BEGIN IMMEDIATE")
            try:
                # Written whole before dee's call, so the server reads it first.
                call = {"text": "after the lock", "client_id": "held", "to": DEE}
                await ann.ws.send(
                    json.dumps({"jsonrpc": "2.0", "id": "held", "method": "send", "params": call})
                )
                page = await dee.call("sync", cursor=dee.cursor)  # the loop still serves
                assert page["events"] == []
                assert ann.stray.empty()
            finally:
                other.conn.execute("ROLLBACK")
        reply = await asyncio.wait_for(ann.stray.get(), 15.0)
        assert reply["id"] == "held"
        assert reply["result"]["state"] == "sent"
        got = await dee.wait_event("message", direction="in")
        assert got["message"]["text"] == "after the lock"


async def test_a_sends_reply_comes_before_the_push_of_the_sent_copy(
    server: ServerProcess,
) -> None:
    # The server holds a send's reply (`Peer.hold`) until the push of the sent message to
    # the same connection is framed too: one write, the reply first.
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.add_extension("1004", "Dee Ng", DEE)
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(server.url, additional_headers=headers, compression=None) as ws:

        async def frame() -> dict[str, Any]:
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 15.0)))

        async def call(rid: int, method: str, **params: Any) -> dict[str, Any]:
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
            )
            return await frame()

        await call(1, "hello", protocol=1)
        assert (await call(2, "sync", cursor=0))["result"]["more"] is False
        for rid in range(3, 8):
            reply = await call(rid, "send", client_id=f"c{rid}", to=DEE, text=f"n{rid}")
            push = await frame()
            assert reply["id"] == rid
            assert push["method"] == "event"
            assert push["params"]["message"]["id"] == reply["result"]["id"]


async def test_hostile_frames_get_clear_errors_and_others_keep_being_served(
    server: ServerProcess,
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    async with (
        await Client.connect(server.url, token, hello=False) as bad,
        await Client.connect(server.url, token) as good,
    ):
        reply = await bad.raw("{not json")
        assert reply["error"]["code"] == -32700
        reply = await bad.raw(b"\x00\x01binary")
        assert reply["error"]["code"] == -32002
        reply = await bad.raw('{"jsonrpc":"2.0","id":"x","method":"sync","params":{"cursor":0}}')
        assert reply["error"]["code"] == -32002
        assert "hello" in reply["error"]["message"]
        reply = await bad.raw("[]")
        assert reply["error"]["code"] == -32600
        with pytest.raises(ProtocolError, match="not supported"):
            await bad.call("hello", protocol=99)
        await bad.call("hello", protocol=1)
        with pytest.raises(RpcError, match="Method not found"):
            await bad.call("rm_rf")
        with pytest.raises(RpcError, match="cursor"):
            await bad.call("sync", cursor="zero")
        with pytest.raises(RpcError, match="sha256"):
            await bad.call("download", sha256="../../etc/passwd")
        with pytest.raises(BadInput, match="base64"):
            await bad.call("upload", data="!!!", name="x")
        with pytest.raises(NotFound):
            await bad.call("download", sha256="0" * 64)
        # A frame over 4 MiB closes that connection with 1009 ...
        await bad.ws.send("x" * (5 * 1024 * 1024))
        assert await bad.closed() == 1009
        # ... and the other connection never noticed.
        assert (await good.call("contacts", query="")) == []
        await good.call("send", client_id="ok", to=BOB, text="still fine")


async def test_bad_token_gets_401_and_wrong_path_404(server: ServerProcess) -> None:
    server.add_extension("1001", "Ann Lee", ANN)
    with pytest.raises(InvalidStatus) as err:
        await connect(server.url, additional_headers={"Authorization": "Bearer nope"})
    assert err.value.response.status_code == 401
    assert b"authentication failed" in err.value.response.body
    with pytest.raises(InvalidStatus) as err:
        await connect(server.url)
    assert err.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as err:
        await connect(server.url.replace("/v1", "/v2"))
    assert err.value.response.status_code == 404
    # Repeated failures from one address are answered more and more slowly.
    t0 = time.monotonic()
    for _ in range(2):
        with pytest.raises(InvalidStatus):
            await connect(server.url, additional_headers={"Authorization": "Bearer x"})
    assert time.monotonic() - t0 >= 0.25 + 0.5 - 0.05


async def test_no_number_and_mms_off_are_clear_errors(server: ServerProcess) -> None:
    t_eve = server.add_extension("1005", "Eve Stone")
    t_ann = server.add_extension("1001", "Ann Lee", ANN)
    async with await Client.connect(server.url, t_eve) as eve:
        assert eve.hello["numbers"] == []
        with pytest.raises(NoSmsNumber, match=r"No SMS number assigned.*extension 1005"):
            await eve.call("send", client_id="e1", to=BOB, text="hi")
    async with await Client.connect(server.url, t_ann) as ann:
        up = await ann.call("upload", data=base64.b64encode(png()).decode(), name="a.png")
        assert up["mime"] == "image/png"
        with pytest.raises(LimitExceeded):
            await ann.call("send", client_id="long", to=BOB, text="x" * 1001)
        server.admin("settings", "set", "mms_enabled", "false")
        with pytest.raises(Unsupported, match="MMS"):
            await ann.call(
                "send",
                client_id="m1",
                to=BOB,
                text="pic",
                files=[{"sha256": up["sha256"], "name": "a.png"}],
            )
        res = server.admin_run("settings", "set", "mms_enabled", "maybe")
        assert res.returncode == 2
        assert len(res.stderr.strip().splitlines()) == 1


async def test_files_types_paths_and_download_permissions(server: ServerProcess) -> None:
    t_ann = server.add_extension("1001", "Ann Lee", ANN)
    t_dee = server.add_extension("1004", "Dee Ng", DEE)
    t_cy = server.add_extension("1003", "Cy Park", "+15550009999")
    async with (
        await Client.connect(server.url, t_ann) as ann,
        await Client.connect(server.url, t_dee) as dee,
        await Client.connect(server.url, t_cy) as cy,
    ):
        data = png(16)
        up = await ann.call(
            "upload", data=base64.b64encode(data).decode(), name="../../../etc/passwd"
        )
        assert up["name"] == "passwd"
        stored = list((server.db.parent / "server.db.files").rglob("*"))
        assert all(p.resolve().is_relative_to(server.db.parent.resolve()) for p in stored)
        assert not (server.db.parent.parent / "etc").exists()
        with pytest.raises(BadInput, match=r"not supported|type"):
            await ann.call(
                "upload", data=base64.b64encode(b"MZ\x90\x00" * 50).decode(), name="x.exe"
            )
        # Cy cannot attach a file he never uploaded nor saw, even knowing its hash.
        with pytest.raises(NotFound):
            await cy.call(
                "send",
                client_id="c",
                to=BOB,
                text="",
                files=[{"sha256": up["sha256"], "name": "x.png"}],
            )
        msg = await ann.call(
            "send",
            client_id="f1",
            to=DEE,
            text="pic",
            files=[{"sha256": up["sha256"], "name": "..\\..\\cat.png"}],
        )
        assert msg["files"][0]["name"] == "cat.png"
        # A client not ours naming the PNG as a PDF: it goes named by what it is.
        renamed = await ann.call(
            "send",
            client_id="f2",
            to=DEE,
            text="",
            files=[{"sha256": up["sha256"], "name": "invoice.pdf"}],
        )
        assert (renamed["files"][0]["name"], renamed["files"][0]["mime"]) == (
            "invoice.png",
            "image/png",
        )
        got = await dee.call("download", sha256=up["sha256"], offset=4, length=10)
        assert base64.b64decode(got["data"]) == data[4:14]
        assert got["size"] == len(data)
        with pytest.raises(NotFound):
            await cy.call("download", sha256=up["sha256"])
        av = server.admin_run(
            "add-extension", "1003", "--name", "Cy Park", "--avatar", str(Path(__file__))
        )
        assert av.returncode == 2
        assert "image" in av.stderr


async def test_carrier_fail_and_message_state(server: ServerProcess) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.admin("carrier-mode", "fail", "--reason", "Number blocked by carrier")
    async with await Client.connect(server.url, token) as ann:
        await ann.sync_live()
        msg = await ann.call("send", client_id="f", to=BOB, text="hi")
        assert msg["state"] == "sending"
        ev = await ann.wait_event("message_state", id=msg["id"])
        assert ev["state"] == "failed"
        assert ev["reason"] == "Number blocked by carrier"


async def test_restart_keeps_everything_and_stale_cursor_gets_snapshot(tmp_path: Path) -> None:
    srv = ServerProcess.start(tmp_path, "test", "--log-horizon", "20")
    try:
        token = srv.add_extension("1001", "Ann Lee", ANN)
        async with await Client.connect(srv.url, token) as ann:
            await ann.sync_live()
            first = await ann.call("send", client_id="k", to=BOB, text="keep me")
            await ann.wait_event("message_state", id=first["id"])
            await ann.call("read", number=ANN, remote=BOB, up_to=first["id"])
        port = srv.port
        srv.restart()
        assert srv.port == port
        async with await Client.connect(srv.url, token) as ann:
            again = await ann.call("send", client_id="k", to=BOB, text="keep me")
            assert again["id"] == first["id"]
            assert again["state"] == "sent"
            events = await ann.sync_live(0)
            assert events[0]["message"]["text"] == "keep me"
        with srv.store() as st:
            for i in range(40):
                st.receive(BOB, ANN, f"n{i}")
        srv.restart()  # prunes at start, so the horizon is certain
        async with await Client.connect(srv.url, token) as ann:
            batch = await ann.call("sync", cursor=1)
            assert batch["reset"] is True
            assert not batch["more"]
            texts = [e["message"]["text"] for e in batch["events"] if e["kind"] == "message"]
            assert texts == ["keep me", *(f"n{i}" for i in range(40))]
            reads = [e for e in batch["events"] if e["kind"] == "read"]
            assert reads == [{**reads[0], "number": ANN, "remote": BOB, "up_to": first["id"]}]
    finally:
        assert srv.stop() == 0


async def test_admin_bad_input_is_one_line_and_exit_2(server: ServerProcess) -> None:
    for args in (
        ("assign-number", "9999", ANN),
        ("add-contact", "Nobody"),
        ("add-contact", "Bad", "--number", "mobile=hello"),
        ("settings", "set", "nope", "1"),
        ("inject", "--from", BOB, "--to", "+15550000000", "--text", "x"),
    ):
        res = server.admin_run(*args)
        assert res.returncode == 2, args
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "mms_max_bytes = 512000" in server.admin("settings", "show")
    token = server.admin("seed-demo").strip()
    async with await Client.connect(server.url, token) as ann:
        assert ann.hello["extension"]["name"] == "Ann Lee"
        found = await ann.call("contacts", query="bob")
        assert [n["label"] for n in found[0]["numbers"]] == ["mobile", "work"]
        assert await ann.call("contacts", query="555765432") != []
        avatar = await ann.call("avatar", ext="1002")
        assert avatar["mime"] == "image/png"
        history = await ann.sync_live(0)
        outs = [
            e["message"]
            for e in history
            if e["kind"] == "message" and e["message"]["direction"] == "out"
        ]
        assert {m["sender"]["ext"] for m in outs} == {"1001", "1002"}


class _Transport:
    """What `TrackedConnection.send_data` and `Peer.write` use of an asyncio transport."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.eof = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.eof

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True


def _open_connection() -> tuple[TrackedConnection, _Transport]:
    """A server connection past its handshake, on a transport that records its writes
    (not started: only its protocol and transport are used)."""
    conn = object.__new__(TrackedConnection)
    conn.protocol = Protocol(Side.SERVER)  # type: ignore[assignment]
    conn.transport = transport = _Transport()  # type: ignore[assignment]
    conn.send_in_progress = None
    conn.paused = False
    return conn, transport


def _frames_in(data: bytes) -> list[str]:
    reader = Protocol(Side.CLIENT)
    reader.receive_data(data)
    return [
        bytes(f.data).decode()
        for f in reader.events_received()
        if isinstance(f, Frame) and f.opcode is Opcode.TEXT
    ]


async def test_a_held_reply_and_the_pushes_after_it_leave_in_one_write() -> None:
    conn, transport = _open_connection()
    peer = Peer(conn, "1001", "test")
    assert peer.hold()
    await peer.send('{"id":1}')
    await peer.send('{"method":"event"}')
    assert transport.writes == []
    peer.release()
    assert len(transport.writes) == 1
    assert _frames_in(transport.writes[0]) == ['{"id":1}', '{"method":"event"}']
    await peer.send("after")  # not held any more: written at once
    assert _frames_in(transport.writes[1]) == ["after"]


async def test_a_send_behind_a_waiting_one_waits_its_turn() -> None:
    conn, transport = _open_connection()
    peer = Peer(conn, "1001", "test")
    conn.paused = True  # the write buffer is full: ws.send waits for it to drain
    waited: list[str] = []

    async def slow_send(data: str) -> None:
        waited.append(data)

    conn.send = slow_send  # type: ignore[method-assign,assignment]
    await peer.send("first")
    assert waited == ["first"]
    assert transport.writes == []
    conn.paused = False
    peer.queued = 1  # another send still waits for the lock: this one must not overtake it
    await peer.send("second")
    assert waited == ["first", "second"]
    assert transport.writes == []
    assert not peer.hold()


def test_send_data_writes_every_waiting_frame_at_once_then_the_end() -> None:
    conn, transport = _open_connection()
    conn.protocol.send_text(b"one")
    conn.protocol.send_text(b"two")
    conn.protocol.send_close(1000)
    conn.protocol.receive_data(b"\x88\x82abcd" + bytes([0x03 ^ 0x61, 0xE8 ^ 0x62]))  # their close
    conn.send_data()
    assert len(transport.writes) == 1
    assert _frames_in(transport.writes[0]) == ["one", "two"]
    assert transport.eof  # after the data, as websockets ends a closed connection


async def test_sending_without_a_pause_keeps_the_wal_small(server: ServerProcess) -> None:
    """One send after another, each delivered before the next, as the bench sends: the
    watcher's checkpoints rewind the WAL (`MessagesDb.checkpoint`), so it stays a few
    MB. SQLite alone never rewound it here (a commit rewinds only when it begins with
    no reader in the WAL): 1,000 sends grew it to 42 MB, each fsync extending it."""
    t_a = server.add_extension("1001", "Ann Lee", "+15550001001")
    t_b = server.add_extension("1004", "Dee Ng", "+15550001004")
    wal = Path(f"{server.db}-wal")
    async with (
        await Client.connect(server.url, t_a) as a,
        await Client.connect(server.url, t_b) as b,
    ):
        await a.sync_live()
        await b.sync_live()
        for i in range(1200):
            await a.call("send", client_id=f"m{i}", to="+15550001004", text="x" * 60)
            await b.wait_event("message", direction="in")
        assert wal.stat().st_size < 20 * 1024 * 1024
