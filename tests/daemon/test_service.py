"""The service layer in-process, over the real composition root: a real store file, the
real link to a real server process. Only what the socket tests do not already show."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from glosmsd.core.errors import (
    AmbiguousRecipient,
    BadInput,
    InvalidNumber,
    NoSmsNumber,
    NotFound,
    Unsupported,
)
from glosmsd.daemon.config import Config
from glosmsd.daemon.root import Daemon
from glosmsd.daemon.service import Service
from glosmsd.daemon.store import Store
from glosmsd.system.paths import Paths
from tests.daemon.test_link import Peer, peer
from tests.support.daemonproc import until
from tests.support.serverproc import ServerProcess, running_server

ANN = "+15550001001"
BOB_MOBILE = "+15557654321"
BOB_WORK = "+15557654322"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        with srv.store() as st:
            st.add_contact("Bob Roe", [("mobile", BOB_MOBILE), ("work", BOB_WORK)])
            st.add_contact("Rob Stone", [("mobile", "+15557650001")])
            st.add_contact("Robin Hood", [("mobile", "+15557650002")])
        yield srv


async def started(server: ServerProcess, ext: str, number: str | None) -> Daemon:
    token = server.add_extension(ext, f"User {ext}", number)
    config = Config(
        server=server.url, token=token, device_id="svc", paths=Paths.default(), ping_interval=5
    )
    return Daemon(config)


@pytest.fixture
async def daemon(server: ServerProcess) -> AsyncIterator[Daemon]:
    d = await started(server, "1001", ANN)
    task = asyncio.create_task(d.run())
    await until(lambda: d.service is not None and d.service.account.number, 20, "hello")
    svc = d.service
    assert svc is not None
    await until(lambda: svc.contacts("Bob"), 20, "the contacts cache")
    yield d
    d.request_stop()
    await asyncio.wait_for(task, 20)


def svc_of(d: Daemon) -> Service:
    assert d.service is not None
    return d.service


async def test_recipients_by_number_and_by_contact(daemon: Daemon) -> None:
    svc = svc_of(daemon)
    assert await svc.resolve_recipient("+1 (555) 765-4321") == BOB_MOBILE
    assert await svc.resolve_recipient(" 12345 ") == "12345"  # a short code
    # Without a country code, in the country of the user's own number (+1).
    assert await svc.resolve_recipient("555-765-4321") == BOB_MOBILE
    assert await svc.resolve_recipient("0044 20 7946 0958") == "+442079460958"
    with pytest.raises(InvalidNumber, match="too short"):
        await svc.resolve_recipient("12")
    with pytest.raises(InvalidNumber, match=r"like \+1 201-555-0123"):
        await svc.resolve_recipient("555-765-43")
    with pytest.raises(AmbiguousRecipient, match="2 numbers") as info:
        await svc.resolve_recipient("bob roe")
    assert info.value.data is not None
    assert [c["number"] for c in info.value.data["choices"]] == [BOB_MOBILE, BOB_WORK]
    assert await svc.resolve_recipient("Bob Roe", pick=2) == BOB_WORK
    with pytest.raises(BadInput, match="pick 1 to 2"):
        await svc.resolve_recipient("Bob Roe", pick=3)
    assert await svc.resolve_recipient("Rob Stone") == "+15557650001"
    with pytest.raises(AmbiguousRecipient, match="several contacts") as several:
        await svc.resolve_recipient("Rob")
    assert several.value.data is not None
    assert len(several.value.data["contacts"]) >= 2
    with pytest.raises(NotFound, match="No contact named"):
        await svc.resolve_recipient("Zed Zed")


async def test_prefs_are_checked_and_sms_enabled_follows_the_server_version(
    daemon: Daemon, server: ServerProcess
) -> None:
    svc = svc_of(daemon)
    prefs = await svc.prefs_get()
    assert prefs["notify"] is False
    with pytest.raises(BadInput, match="Unknown preference"):
        await svc.prefs_set("volume", 3)
    with pytest.raises(BadInput, match="takes bool"):
        await svc.prefs_set("notify", 3)
    assert (await svc.prefs_set("notify", "on"))["notify"] is True
    assert svc.account.pbx_major is not None
    assert svc.account.pbx_major >= 7
    with pytest.raises(Unsupported, match="older than version 7"):
        await svc.prefs_set("sms_enabled", False)

    server.admin("settings", "set", "pbx_version", "6.5")
    assert daemon.link is not None
    daemon.link.set_token(daemon.config.token)  # reconnect: a new hello
    await until(lambda: svc.account.pbx_major == 6, 20, "the new hello")
    assert (await svc.prefs_set("sms_enabled", False))["sms_enabled"] is False
    with pytest.raises(Unsupported, match="switched off"):
        await svc.send(BOB_MOBILE, "hi")
    await svc.prefs_set("sms_enabled", True)
    assert (await svc.send(BOB_MOBILE, "hi"))["message"]["state"] == "sending"


def _trace_statements(into: list[str] | None) -> Callable[[Store], None]:
    def install(store: Store) -> None:
        store._conn.set_trace_callback(into.append if into is not None else None)

    return install


async def test_a_send_reads_no_pref_and_not_the_outbox_row_it_just_wrote(
    daemon: Daemon,
) -> None:
    """On the way to the server a send makes no store trip the floor does not: the
    `sms_enabled` pref is read once, not on every send, and the first attempt takes the
    outbox row as it was committed instead of reading it back (issue 16)."""
    svc = svc_of(daemon)
    await svc.send(BOB_MOBILE, "warm up", client_id="svc-warm")
    await until(lambda: len(svc.sender.core) == 0, 20, "the first send to go out")
    statements: list[str] = []
    await svc.store.run(_trace_statements(statements))
    try:
        reply = await svc.send(BOB_MOBILE, "hello", client_id="svc-traced")
        await until(lambda: len(svc.sender.core) == 0, 20, "the send to go out")
    finally:
        await svc.store.run(_trace_statements(None))
    assert reply["message"]["state"] == "sending"
    assert not [s for s in statements if "prefs" in s], statements
    assert not [s for s in statements if s.lstrip().startswith("SELECT * FROM outbox")]
    sent = await svc.sent("svc-traced")
    assert sent["message"] is not None
    assert sent["message"]["server_id"] is not None  # the server has it, once
    assert await svc.store.run(Store.outbox_items) == []


async def test_a_repeated_client_id_returns_its_message_even_where_a_new_send_is_refused(
    daemon: Daemon, server: ServerProcess
) -> None:
    """The same client id again gets the message it made, once, whatever the repeat
    says: another text, nothing to send, or SMS switched off since (the lookup now runs
    in `accept_send`'s transaction, or after a refusal, not before every send)."""
    svc = svc_of(daemon)
    first = (await svc.send(BOB_MOBILE, "the one", client_id="svc-once"))["message"]
    again = await svc.send(BOB_MOBILE, "another text", client_id="svc-once")
    assert again == {"message": again["message"], "dropped": [], "notice": None}
    assert again["message"]["id"] == first["id"]
    assert again["message"]["text"] == "the one"
    empty = await svc.send(BOB_MOBILE, "", client_id="svc-once")
    assert empty["message"]["id"] == first["id"]
    server.admin("settings", "set", "pbx_version", "6.5")
    assert daemon.link is not None
    daemon.link.set_token(daemon.config.token)
    await until(lambda: svc.account.pbx_major == 6, 20, "the new hello")
    await svc.prefs_set("sms_enabled", False)
    switched_off = await svc.send(BOB_MOBILE, "the one", client_id="svc-once")
    assert switched_off["message"]["id"] == first["id"]
    with pytest.raises(Unsupported, match="switched off"):
        await svc.send(BOB_MOBILE, "the one", client_id="svc-new")
    await until(lambda: len(svc.sender.core) == 0, 20, "the send to go out")
    rows = await svc.store.run(Store.messages, first["conversation_id"], None, 50)
    assert [m.text for m in rows].count("the one") == 1


async def test_a_text_arriving_starts_no_download_scan_and_a_file_is_fetched(
    daemon: Daemon, server: ServerProcess
) -> None:
    """Only an incoming message with files starts the automatic downloads: each message
    event read the auto_download pref and scanned every incoming file on the store
    thread, behind a text the user waits for (issue 16)."""
    svc = svc_of(daemon)

    async def unread() -> int:
        return (await svc.store.run(Store.unread)).total

    before = await unread()
    statements: list[str] = []
    await svc.store.run(_trace_statements(statements))
    try:
        with server.store() as st:
            st.receive(BOB_MOBILE, ANN, "plain words arriving")

        async def arrived() -> bool:
            return await unread() > before

        await until(arrived, 20, "the text")
    finally:
        await svc.store.run(_trace_statements(None))
    assert not [s for s in statements if "json_each" in s or "prefs" in s], statements
    data = b"some notes\n"
    with server.store() as st:
        st.receive(BOB_MOBILE, ANN, "a file for you", [(data, "notes.txt")])

    async def fetched() -> bool:
        _path, state = await svc.store.run(Store.file_state, hashlib.sha256(data).hexdigest())
        return state == "done"

    await until(fetched, 20, "the file to be fetched on its own")


async def test_count_uses_the_servers_limits(daemon: Daemon, server: ServerProcess) -> None:
    svc = svc_of(daemon)
    default = await svc.count("hi", files=1, bytes=1024)
    assert default["bytes_left"] == 500 * 1024 - 1024
    server.admin("settings", "set", "mms_max_bytes", "300000")
    assert daemon.link is not None
    daemon.link.set_token(daemon.config.token)
    await until(lambda: svc.account.limits.mms_max_bytes == 300000, 20, "the new limits")
    assert (await svc.count("hi", files=1, bytes=1000))["bytes_left"] == 299000
    over = await svc.count("hi", files=1, bytes=400000)
    assert over["fits"] is False
    assert "Maximum size" in over["reason"]
    sms = await svc.count("x" * 161)
    assert (sms["segments"], sms["encoding"]) == (2, "GSM-7")


async def test_files_from_data_uris_and_bad_files(daemon: Daemon, tmp_path: Path) -> None:
    svc = svc_of(daemon)
    payload = base64.b64encode(b"a note\n").decode()
    sent = await svc.send(BOB_MOBILE, "", [f"data:text/plain;name=my%20note.txt;base64,{payload}"])
    assert [f["name"] for f in sent["message"]["files"]] == ["my note.txt"]
    plain = await svc.send(BOB_MOBILE, "", ["data:text/plain,hello%20there"])
    assert [f["size"] for f in plain["message"]["files"]] == [11]
    with pytest.raises(BadInput, match="not valid base64"):
        await svc.send(BOB_MOBILE, "x", ["data:text/plain;base64,@@@"])
    with pytest.raises(BadInput, match="needs a comma"):
        await svc.send(BOB_MOBILE, "x", ["data:text/plain;base64"])

    with pytest.raises(BadInput, match="No such file"):
        await svc.send(BOB_MOBILE, "x", [str(tmp_path / "missing.jpg")])
    with pytest.raises(BadInput, match="is a directory"):
        await svc.send(BOB_MOBILE, "x", [str(tmp_path)])
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="not a regular file"):  # never blocks on reading it
        await svc.send(BOB_MOBILE, "x", [str(fifo)])
    huge = tmp_path / "huge.bin"
    with huge.open("wb") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(BadInput, match="too big"):
        await svc.send(BOB_MOBILE, "x", [str(huge)])
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.txt"
        locked.write_text("secret")
        locked.chmod(0)
        with pytest.raises(BadInput, match="permission denied"):
            await svc.send(BOB_MOBILE, "x", [str(locked)])
    damaged = tmp_path / "photo.jpg"
    damaged.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    with pytest.raises(BadInput, match=r"photo\.jpg"):
        await svc.send(BOB_MOBILE, "x", [str(damaged)])
    with pytest.raises(BadInput, match="Nothing to send"):
        await svc.send(BOB_MOBILE, "")
    # None of the refused sends left anything behind.
    outgoing = [m for m in (await svc.messages(BOB_MOBILE))["messages"] if m["direction"] == "out"]
    assert len(outgoing) == 2


async def test_a_file_goes_named_by_its_content_not_its_name(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Issue 13 item 14: a PDF called pdf.png went out as .png, HTML called script.png as
    text/plain named .png; the phone opening it trusts the name."""
    svc = svc_of(daemon)
    (tmp_path / "pdf.png").write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n")
    (tmp_path / "script.png").write_text("<html><script>alert(1)</script></html>\n")
    sent = await svc.send(BOB_MOBILE, "", [str(tmp_path / "pdf.png"), str(tmp_path / "script.png")])
    files = [(f["name"], f["mime"]) for f in sent["message"]["files"]]
    assert files == [("pdf.pdf", "application/pdf"), ("script.txt", "text/plain")]


async def test_twenty_parallel_sends_of_one_new_file_all_queue(
    daemon: Daemon, tmp_path: Path
) -> None:
    # Issue 13 item 10: they all staged `outgoing/<sha>.tmp`; one rename took the file
    # from under the others (FileNotFoundError, -32603 on the socket).
    svc = svc_of(daemon)
    for round_ in range(10):
        note = tmp_path / f"note{round_}.txt"
        note.write_bytes(f"round {round_}\n".encode() * 20_000)
        sends = [svc.send(BOB_MOBILE, f"copy {n}", [str(note)]) for n in range(20)]
        results = await asyncio.gather(*sends, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert failed == [], f"round {round_}: {len(failed)} of 20 failed: {failed[:1]!r}"
        kept = {r["message"]["files"][0]["size"] for r in results if isinstance(r, dict)}
        assert kept == {note.stat().st_size}
    outgoing = svc.files_dir / "outgoing"
    assert [p.name for p in outgoing.iterdir() if p.name.endswith(".tmp")] == []


async def test_the_servers_region_decides_numbers_without_a_country_code(
    server: ServerProcess,
) -> None:
    with server.store() as st:
        with pytest.raises(BadInput, match="ISO code"):
            st.set_setting("region", "Narnia")
        assert st.set_setting("region", "gb")["region"] == "GB"
    d = await started(server, "1006", "+15550001006")  # a +1 number, but the server says GB
    task = asyncio.create_task(d.run())
    try:
        await until(lambda: d.service is not None and d.service.account.number, 20, "hello")
        svc = svc_of(d)
        assert svc.number_region == "GB"
        assert await svc.resolve_recipient("020 7946 0958") == "+442079460958"
        assert await svc.resolve_recipient("+1 555 765 4321") == BOB_MOBILE
    finally:
        d.request_stop()
        await asyncio.wait_for(task, 20)


async def test_no_sms_number_is_a_clear_error(server: ServerProcess) -> None:
    d = await started(server, "1005", None)
    task = asyncio.create_task(d.run())
    try:
        await until(lambda: d.service is not None and d.service.account.ext, 20, "hello")
        svc = svc_of(d)
        assert (await svc.number())["message"].startswith("No SMS number assigned")
        with pytest.raises(NoSmsNumber, match="extension 1005"):
            await svc.send(BOB_MOBILE, "hi")
    finally:
        d.request_stop()
        await asyncio.wait_for(task, 20)


async def test_an_event_the_store_cannot_keep_is_skipped_not_fetched_forever(
    tmp_path: Path,
) -> None:
    # Issue 12 item 1: a batch that cannot be applied used to fail apply_batch, end the
    # session, reconnect and fetch the same batch again, forever. Now the link cleans what
    # it can (a lone surrogate becomes U+FFFD, issue 13 item 11), skips what it cannot (an
    # id past SQLite's INTEGER), counts it in status, and sync goes on, on the same
    # connection. (What the store itself cannot keep is skipped there the same way.)
    def message(seq: int, text: str) -> dict[str, Any]:
        m: dict[str, Any] = {"id": seq, "client_id": None, "number": ANN, "remote": BOB_MOBILE}
        m |= {"direction": "in", "text": text, "state": "sent", "reason": None, "at": 1.0}
        return {"seq": seq, "kind": "message", "at": 1.0, "message": m | {"files": []}}

    huge = message(5, "an id past what SQLite holds")
    huge["message"]["id"] = 2**70
    batch = [message(1, "one"), message(2, "bad \udc80"), huge, message(3, "three")]
    p = Peer(
        [{"events": batch, "cursor": 3, "more": False}],
        after_live=[
            json.dumps({"jsonrpc": "2.0", "method": "event", "params": message(4, "four")})
        ],
    )
    async with peer(p) as url:
        config = Config(
            server=url, token="t", device_id="svc", paths=Paths.default(), ping_interval=5
        )
        d = Daemon(config)
        task = asyncio.create_task(d.run())
        try:
            await until(lambda: d.service is not None, 20, "the service")
            svc = svc_of(d)

            async def four_arrived() -> bool:
                convs = await svc.conversations()
                return bool(convs) and convs[0]["last_text"] == "four"

            await until(four_arrived, 20, "the live event after the batch")
            status = await svc.status()
            assert status["skipped_events"] + status["link"]["skipped"] == 1
            assert status["link"]["state"] == "live"
            conv = (await svc.conversations())[0]
            texts = [m["text"] for m in (await svc.messages(conv["id"]))["messages"]]
            assert texts == ["four", "three", "bad \ufffd", "one"]
            assert p.connections == 1
            assert [r["params"]["cursor"] for r in p.requests if r["method"] == "sync"] == [0]
        finally:
            d.request_stop()
            await asyncio.wait_for(task, 20)
