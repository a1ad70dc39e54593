"""The server store in-process: isolation properties, idempotency, horizon, file names."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from glosmsd.core import wire
from glosmsd.core.errors import BadInput, InvalidNumber, NoSmsNumber, NotFound, SchemaTooNew
from glosmsd.server.db import SCHEMA_VERSION, ServerStore, SyncBatch, clean_file_name
from tests.support import sqltext

NUMBERS = [f"+1555000{n:04d}" for n in range(4)]
REMOTES = ["+15557654321", "+15557654322"]
EXTS = [str(1001 + i) for i in range(5)]


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (seed % 256, seed // 256 % 256, 7)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> ServerStore:
    s = ServerStore(tmp_path / "s.db")
    for ext in EXTS:
        s.add_extension(ext, f"User {ext}")
    return s


@st.composite
def worlds(draw: st.DrawFn) -> tuple[dict[str, set[str]], list[tuple[str, ...]]]:
    """Random shares (ext -> numbers) and random traffic."""
    shares = {ext: draw(st.sets(st.sampled_from(NUMBERS), max_size=2)) for ext in EXTS}
    op = st.one_of(
        st.tuples(st.just("in"), st.sampled_from(REMOTES), st.sampled_from(NUMBERS)),
        st.tuples(st.just("out"), st.sampled_from(EXTS), st.sampled_from(REMOTES + NUMBERS)),
        st.tuples(st.just("file"), st.sampled_from(EXTS), st.sampled_from(REMOTES + NUMBERS)),
    )
    return shares, draw(st.lists(op, max_size=12))


@settings(max_examples=60)
@given(world=worlds())
def test_no_extension_ever_reads_another_accounts_messages(
    world: tuple[dict[str, set[str]], list[tuple[str, ...]]],
) -> None:
    shares, ops = world
    with tempfile.TemporaryDirectory() as tmp:
        s = ServerStore(Path(tmp) / "s.db")
        try:
            for ext in EXTS:
                s.add_extension(ext, ext)
                for number in sorted(shares[ext]):
                    s.assign_number(ext, number)
            hosted = {n for ns in shares.values() for n in ns}
            counter = itertools.count()
            for op in ops:
                i = next(counter)
                if op[0] == "in" and op[2] in hosted:
                    s.receive(op[1], op[2], f"in{i}")
                elif op[0] in ("out", "file") and shares[op[1]]:
                    files = []
                    if op[0] == "file":
                        info = s.upload(op[1], png(i), f"../{i}.png")
                        files = [{"sha256": info.sha256, "name": info.name}]
                    s.send(op[1], f"c{i}", op[2], f"out{i}", files)
            every_file = {
                f["sha256"] for n in NUMBERS for m in s.messages_of(n) for f in m["files"]
            }
            for ext in EXTS:
                mine = shares[ext]
                events = s.sync(ext, 0, 1000).events
                for e in events:
                    if e["kind"] == "message":
                        assert e["message"]["number"] in mine
                    elif e["kind"] == "message_state":
                        assert s.message(e["id"])["number"] in mine
                visible_files = {
                    f["sha256"] for n in mine for m in s.messages_of(n) for f in m["files"]
                }
                for sha in every_file:
                    if sha in visible_files:
                        assert s.download(ext, sha, 0, 10)["size"] > 0
                    else:
                        with pytest.raises(NotFound):
                            s.download(ext, sha, 0, 10)
                for n in NUMBERS:
                    if n not in mine:
                        with pytest.raises(NotFound):
                            s.mark_read(ext, n, REMOTES[0], 1)
                        with pytest.raises(NotFound):
                            s.delete_conversation(ext, n, REMOTES[0])
                for m in (m for n in NUMBERS if n not in mine for m in s.messages_of(n)):
                    with pytest.raises(NotFound):
                        s.delete_message(ext, m["id"])
        finally:
            s.close()


def test_read_marks_and_deletions_are_per_extension(store: ServerStore) -> None:
    store.assign_number("1001", NUMBERS[0])
    store.assign_number("1002", NUMBERS[0])
    m = store.receive(REMOTES[0], NUMBERS[0], "hi")
    store.mark_read("1001", NUMBERS[0], REMOTES[0], m["id"])
    store.delete_message("1001", m["id"])
    kinds_1001 = [e["kind"] for e in store.sync("1001", 0, 100).events]
    kinds_1002 = [e["kind"] for e in store.sync("1002", 0, 100).events]
    assert kinds_1001 == ["message", "read", "delete_message"]
    assert kinds_1002 == ["message"]
    with pytest.raises(NotFound):
        store.delete_message("1001", m["id"])  # already hidden for 1001


def test_send_is_idempotent_per_extension(store: ServerStore) -> None:
    store.assign_number("1001", NUMBERS[0])
    store.assign_number("1002", NUMBERS[1])
    a = store.send("1001", "x", REMOTES[0], "hi", [])
    b = store.send("1001", "x", REMOTES[0], "hi again", [])
    c = store.send("1002", "x", REMOTES[0], "other ext, same id", [])
    assert a.new
    assert not b.new
    assert b.message["id"] == a.message["id"]
    assert c.new
    assert c.message["id"] != a.message["id"]
    with pytest.raises(NoSmsNumber):
        store.send("1003", "y", REMOTES[0], "hi", [])
    with pytest.raises(BadInput, match="phone number"):
        store.send("1001", "z", "call me", "hi", [])


@pytest.mark.parametrize(
    ("to", "stored"),
    [
        ("+1 (555) 765-4321", "+15557654321"),
        ("0044 20 7946 0958", "+442079460958"),  # 00: the international prefix
        ("+1\u00a0555\u2011765\u20114321", "+15557654321"),
        ("12345", "12345"),
    ],
)
def test_numbers_are_parsed_by_the_one_numbers_module(
    store: ServerStore, to: str, stored: str
) -> None:
    store.assign_number("1001", " +1 (555) 000-0000 ")
    assert store.send("1001", f"n-{to}", to, "hi", []).message["remote"] == stored


@pytest.mark.parametrize("to", ["555-765-4321", "+1 555", "+1 555 765 4321 9999", "call me"])
def test_what_is_not_a_number_is_invalid_number_with_the_form(store: ServerStore, to: str) -> None:
    store.assign_number("1001", NUMBERS[0])
    with pytest.raises(InvalidNumber, match=r"^Recipient: .*like \+44 20 7946 0958"):
        store.send("1001", "x", to, "hi", [])


def test_horizon_gives_a_snapshot(store: ServerStore) -> None:
    store.assign_number("1001", NUMBERS[0])
    ids = [store.receive(REMOTES[0], NUMBERS[0], f"t{i}")["id"] for i in range(10)]
    store.delete_message("1001", ids[0])
    assert store.prune(3) == 8
    batch = store.sync("1001", 2, 100)
    assert batch.reset
    assert [e["message"]["text"] for e in batch.events] == [f"t{i}" for i in range(1, 10)]
    assert store.sync("1001", batch.cursor, 100).events == []
    assert store.sync("1001", 10_000, 100).reset  # a cursor from another database


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/abs/path/x.jpg", "x.jpg"),
        ("..", "file"),
        ("", "file"),
        ("a\x00b\nc.png", "abc.png"),
        (".hidden", "hidden"),
    ],
)
def test_file_names_are_display_names_only(raw: str, clean: str) -> None:
    assert clean_file_name(raw) == clean


def test_blobs_live_only_under_the_file_store(store: ServerStore) -> None:
    store.assign_number("1001", NUMBERS[0])
    info = store.upload("1001", png(1), "../../../../tmp/evil.png")
    paths = [p for p in store.files_dir.rglob("*") if p.is_file()]
    assert [p.name for p in paths] == [info.sha256]
    with pytest.raises(NotFound):
        store.download("1001", "../../etc/passwd", 0, 10)
    with pytest.raises(BadInput):
        store._blob_path("../../etc/passwd")


def test_schema_too_new_is_left_untouched(tmp_path: Path) -> None:
    s = ServerStore(tmp_path / "s.db")
    s.conn.execute("PRAGMA user_version = 99")
    s.close()
    with pytest.raises(SchemaTooNew):
        ServerStore(tmp_path / "s.db")


def test_a_newer_schema_is_refused_before_anything_writes(tmp_path: Path) -> None:
    # Issue 12 item 16: the WAL switch ran before the version check, so the "left
    # untouched" file had a new header and -wal/-shm files beside it.
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("INSERT INTO future VALUES (1)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew) as info:
        ServerStore(path)
    assert "newer glosmsd-server" in info.value.message
    assert "left untouched" in info.value.message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("server-v*.sql")), ids=lambda p: p.stem)
def test_every_frozen_schema_upgrades_to_the_fresh_one(tmp_path: Path, fixture: Path) -> None:
    old = tmp_path / "old.db"
    sqltext.load(fixture.read_text(), old)
    assert sqltext.schema_of(old)["version"] <= SCHEMA_VERSION
    ServerStore(old).close()
    ServerStore(tmp_path / "fresh.db").close()
    assert sqltext.schema_of(old) == sqltext.schema_of(tmp_path / "fresh.db")
    s = ServerStore(old)
    try:
        # What the old file held is still there and still answers.
        assert [m["id"] for m in s.messages_of("+15550001001")] == [1, 2, 3, 4, 6, 7, 8]
        assert s.settings()["mms_max_bytes"] == 300_000
        batch = s.sync("1001", 0, 100)  # before the pruned horizon: a snapshot
        assert batch.reset
        assert [e["message"]["id"] for e in batch.events if e["kind"] == "message"] == [
            3,
            4,
            6,
            7,
            8,
        ]
        assert s.sync("1001", 12, 100).events[-1]["kind"] == "delete_conversation"
    finally:
        s.close()


def test_a_query_only_reader_sees_each_commit_and_cannot_write(
    store: ServerStore, tmp_path: Path
) -> None:
    """The server's read thread: a second connection, `query_only`, that sees every write
    committed before its read begins (WAL) and refuses to write itself."""
    store.assign_number(EXTS[0], NUMBERS[0])
    reader = ServerStore(tmp_path / "s.db")
    reader.query_only()
    try:
        before = reader.sync(EXTS[0], 0, 500)
        store.send(EXTS[0], "c1", REMOTES[0], "hello there", [])
        after = reader.sync(EXTS[0], before.cursor, 500)
        assert [t for t in after.texts if "hello there" in t]
        assert after.cursor > before.cursor
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.conn.execute("DELETE FROM events")
        assert reader.sync(EXTS[0], 0, 500).texts == store.sync(EXTS[0], 0, 500).texts
    finally:
        reader.close()


@settings(max_examples=40)
@given(world=worlds(), limit=st.integers(1, 4))
def test_sync_pages_are_the_visible_log_in_seq_order(
    world: tuple[dict[str, set[str]], list[tuple[str, ...]]], limit: int
) -> None:
    """Paging through the log with any page size yields exactly the events an extension
    sees (its own marks and deletions, and every event of each number it holds), in seq
    order, none twice: the page is merged from one indexed read per source."""
    shares, ops = world
    with tempfile.TemporaryDirectory() as tmp:
        s = ServerStore(Path(tmp) / "s.db")
        try:
            for ext in EXTS:
                s.add_extension(ext, ext)
                for number in sorted(shares[ext]):
                    s.assign_number(ext, number)
            hosted = {n for ns in shares.values() for n in ns}
            for i, op in enumerate(ops):
                if op[0] == "in" and op[2] in hosted:
                    s.receive(op[1], op[2], f"in{i}")
                elif op[0] in ("out", "file") and shares[op[1]]:
                    s.send(op[1], f"c{i}", op[2], f"out{i}", [])
                    mine = sorted(shares[op[1]])
                    s.mark_read(op[1], mine[0], REMOTES[0], i)
            for ext in EXTS:
                expected = [
                    seq
                    for seq, owner, number in s.conn.execute(
                        "SELECT seq, ext, number FROM events ORDER BY seq"
                    )
                    if owner == ext or number in shares[ext]
                ]
                got: list[int] = []
                cursor = 0
                while True:
                    page = s.sync(ext, cursor, limit)
                    got += [e["seq"] for e in page.events]
                    assert len(page.texts) <= limit
                    cursor = page.cursor
                    if not page.more:
                        break
                assert got == expected
        finally:
            s.close()


def _vm_steps(store: ServerStore, ext: str, cursor: int, limit: int) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store.conn.set_progress_handler(count, 1)
    try:
        store.sync(ext, cursor, limit)
    finally:
        store.conn.set_progress_handler(None, 1)
    return steps


def test_a_sync_page_costs_the_same_at_the_start_of_a_long_log_as_at_its_end(
    store: ServerStore,
) -> None:
    """A page reads about its own events, not every event after the cursor: one
    `ext = ? OR number IN (...)` query gathered and sorted the whole rest of the log for
    each page (a catch-up of 21,000 events spent 5.8 ms a page at its start). Counted in
    SQLite VM steps, not time."""
    store.assign_number(EXTS[0], NUMBERS[0])
    store.assign_number(EXTS[0], NUMBERS[1])
    for i in range(600):
        store.receive(REMOTES[0], NUMBERS[i % 2], f"in{i}")
    store.mark_read(EXTS[0], NUMBERS[0], REMOTES[0], 1)
    head = store.head()
    start = _vm_steps(store, EXTS[0], 0, 20)
    end = _vm_steps(store, EXTS[0], head - 40, 20)
    assert start < 2 * end, (start, end)


def test_a_sync_page_reads_each_source_in_index_order_and_sorts_nothing(
    store: ServerStore,
) -> None:
    """The page's query, as `sync` runs it, reads the extension's events and each
    number's from their indexes in seq order and merges them: no temporary B-tree. With
    each source a subquery with its own ORDER BY and LIMIT, SQLite sorted every source's
    page again (twice the VM steps of a page)."""
    for count in range(4):
        if count:
            store.assign_number(EXTS[0], NUMBERS[count - 1])
            store.receive(REMOTES[0], NUMBERS[count - 1], "hi")
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        try:
            store.sync(EXTS[0], 0, 20)
        finally:
            store.conn.set_trace_callback(None)
        (query,) = [s for s in statements if "FROM events" in s]
        plan = [row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {query}")]
        assert not [step for step in plan if "TEMP B-TREE" in step], plan
        assert sum("USING INDEX events_by_" in step for step in plan) == count + 1, plan


def test_sync_page_texts_are_the_stored_events_encoded_whole(store: ServerStore) -> None:
    """Byte for byte, every page's JSON is the visible events, each encoded whole from
    its stored row, in seq order: splicing them from the stored text changes nothing."""
    store.assign_number(EXTS[0], NUMBERS[0])
    store.assign_number(EXTS[0], NUMBERS[1])
    store.assign_number(EXTS[1], NUMBERS[1])
    store.assign_number(EXTS[2], NUMBERS[2])
    for i in range(40):
        store.receive(REMOTES[i % 2], NUMBERS[i % 3], f"in {i} é🙂" if i % 5 == 0 else f"in {i}")
        store.send(EXTS[i % 2], f"c{i}", REMOTES[0], f"out {i}", [])
        if i % 7 == 0:
            store.mark_read(EXTS[0], NUMBERS[0], REMOTES[0], i)
    with store._write():
        store._event("delete_message", {}, ext=EXTS[0])  # an empty body
    for ext in EXTS[:3]:
        mine = store.numbers_of(ext)
        expected = [
            wire.encode_body(wire.event(seq, kind, at, json.loads(body)))
            for seq, owner, number, kind, at, body in store.conn.execute(
                "SELECT seq, ext, number, kind, at, body FROM events ORDER BY seq"
            )
            if owner == ext or number in mine
        ]
        for limit in (1, 7, 500):
            got: list[str] = []
            cursor = 0
            while True:
                page = store.sync(ext, cursor, limit)
                assert page.to_json_text() == wire.sync_result_text(
                    expected[len(got) : len(got) + len(page.texts)],
                    cursor=page.cursor,
                    more=page.more,
                    reset=False,
                )
                got += page.texts
                cursor = page.cursor
                if not page.more:
                    break
            assert got == expected


def test_the_pushers_reads_after_a_write_share_one_transaction(store: ServerStore) -> None:
    """`sync_many` (the live pushers' reads, made right after each write) returns what
    `sync` returns for each, in one read transaction that reads the log's bounds and each
    extension's numbers once: a send read them again for every pusher (6 statements a
    pusher)."""
    store.assign_number(EXTS[0], NUMBERS[0])
    store.assign_number(EXTS[1], NUMBERS[1])
    for i in range(6):
        store.send(EXTS[0], f"c{i}", NUMBERS[1], f"hi {i}", [])
    wanted = [(EXTS[0], 0), (EXTS[0], 3), (EXTS[1], 0), (EXTS[1], 5)]
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        batches = store.sync_many(wanted, 2)
    finally:
        store.conn.set_trace_callback(None)
    assert [b.texts for b in batches] == [store.sync(e, c, 2).texts for e, c in wanted]
    assert [b.cursor for b in batches] == [store.sync(e, c, 2).cursor for e, c in wanted]
    # BEGIN, the bounds (2), each extension's numbers (2), a log read per pusher, COMMIT
    assert len(statements) == 1 + 2 + 2 + len(wanted) + 1, statements


@pytest.mark.parametrize("char", ["x", "é"])
def test_a_page_ends_with_the_event_that_crosses_its_byte_bound(
    store: ServerStore, char: str
) -> None:
    """ASCII pages are measured in characters at once, others byte by byte: either way
    a page stops at the event that brings it to `SYNC_PAGE_BYTES`, and only there."""
    store.assign_number(EXTS[0], NUMBERS[0])
    for i in range(150):
        store.receive(REMOTES[0], NUMBERS[0], f"{i:03d}" + char * (wire.MAX_TEXT // 2 - 3))
    cursor, seen = 0, []
    while True:
        page = store.sync(EXTS[0], cursor, 500)
        sizes = [wire.byte_size(t) + 1 for t in page.texts]
        if page.more:
            assert sum(sizes) >= wire.SYNC_PAGE_BYTES > sum(sizes[:-1])
        else:
            assert sum(sizes) < wire.SYNC_PAGE_BYTES
        seen += [e["message"]["text"][:3] for e in page.events]
        assert page.cursor == page.events[-1]["seq"]
        cursor = page.cursor
        if not page.more:
            break
    assert seen == [f"{i:03d}" for i in range(150)]


def test_limits_follow_settings_changed_by_another_connection(store: ServerStore) -> None:
    # `limits()` keeps the parsed settings while the stored rows are unchanged; a change
    # made elsewhere (the admin CLI's own connection) is seen by the next call.
    assert store.limits().sms_max_segments == 4
    other = ServerStore(store.path)
    try:
        other.set_setting("sms_max_segments", 2)
        assert store.limits().sms_max_segments == 2
        other.conn.execute("UPDATE settings SET value = '0' WHERE key = 'sms_max_segments'")
        for _ in range(2):  # a bad stored value is refused every time, never kept
            with pytest.raises(BadInput, match="sms_max_segments"):
                store.limits()
    finally:
        other.close()


def test_a_sends_message_text_is_the_message_its_event_carries(store: ServerStore) -> None:
    store.assign_number("1001", "+15550001001")
    sent = store.send("1001", "t1", REMOTES[0], "Sure 🍕", [])
    assert sent.message_text is not None
    assert json.loads(sent.message_text) == sent.message
    event = store.sync("1001", 0, 50).events[-1]
    assert event["message"] == sent.message
    assert store.send("1001", "t1", REMOTES[0], "Sure 🍕", []).message_text is None  # again


@st.composite
def busy_worlds(draw: st.DrawFn) -> tuple[dict[str, set[str]], list[tuple[str, ...]]]:
    """`worlds` where every extension has a number and there is more traffic."""
    shares = {ext: draw(st.sets(st.sampled_from(NUMBERS), min_size=1, max_size=2)) for ext in EXTS}
    op = st.tuples(
        st.sampled_from(["in", "out", "file"]),
        st.sampled_from(EXTS + REMOTES),
        st.sampled_from(REMOTES + NUMBERS),
    )
    return shares, draw(st.lists(op, min_size=8, max_size=24))


@settings(max_examples=100)
@given(world=busy_worlds(), again=st.lists(st.booleans(), max_size=24))
def test_the_pages_after_a_write_are_those_a_read_of_the_log_gives(
    world: tuple[dict[str, set[str]], list[tuple[str, ...]]], again: list[bool]
) -> None:
    # `sync_after_write` builds the pushers' next pages from the events the write added
    # (a cursor at the head it began from) and reads the rest: the same pages either way.
    shares, ops = world
    with tempfile.TemporaryDirectory() as tmp:
        s = ServerStore(Path(tmp) / "s.db")
        try:
            for ext in EXTS:
                s.add_extension(ext, ext)
                for number in sorted(shares[ext]):
                    s.assign_number(ext, number)
            hosted = {n for ns in shares.values() for n in ns}
            cursors = dict.fromkeys(EXTS, s.head())
            for i, op in enumerate(ops):
                head = s.head()
                s.logged.clear()
                ext = op[1] if op[1] in EXTS else EXTS[i % len(EXTS)]
                if op[0] == "in" and op[2] in hosted:
                    s.receive(REMOTES[i % len(REMOTES)], op[2], f"in{i} ü")
                elif op[0] == "out":
                    cid = "c0" if i < len(again) and again[i] else f"c{i}"  # a send again
                    s.send(ext, cid, op[2], f"out{i}", [])
                elif op[0] == "file":  # a read mark: an event its extension alone sees
                    s.mark_read(ext, sorted(shares[ext])[0], op[2], i)
                if i % 4 == 3:  # between writes: a number given to one more extension
                    s.assign_number(EXTS[i % len(EXTS)], NUMBERS[i % len(NUMBERS)])
                if i % 3 == 2:
                    s.prune(2)
                stale = (EXTS[i % len(EXTS)], i % 3)  # a pusher far behind
                wanted = sorted({*cursors.items(), *((e, head) for e in EXTS), stale})
                fast = s.sync_after_write(wanted, 500)
                assert list(map(_timeless, fast)) == list(map(_timeless, s.sync_many(wanted, 500)))
                for (ext, _), batch in zip(wanted, fast, strict=True):
                    cursors[ext] = max(cursors[ext], batch.cursor)
        finally:
            s.close()


def _timeless(batch: SyncBatch) -> SyncBatch:
    """`batch` with a snapshot's events dated 0 (a snapshot page dates them when made)."""
    if not batch.reset:
        return batch
    events = [{**e, "at": 0} for e in batch.events]
    return dataclasses.replace(batch, texts=[json.dumps(e) for e in events])


def test_pages_after_a_write_see_numbers_given_and_the_log_pruned_since(
    store: ServerStore,
) -> None:
    # Found quiet for 1001 from cursor 0 (the events were on a number it was not on),
    # then: 1001 is given that number, so they are its; then the log is pruned past 0.
    store.assign_number("1001", NUMBERS[0])
    store.assign_number("1002", NUMBERS[1])

    def pages(cursor: int) -> list[SyncBatch]:
        fast = store.sync_after_write([("1001", cursor)], 500)
        assert list(map(_timeless, fast)) == list(
            map(_timeless, store.sync_many([("1001", cursor)], 500))
        )
        return fast

    for i in range(3):
        store.receive(REMOTES[0], NUMBERS[1], f"not yet {i}")
        assert pages(0)[0].texts == []
    store.assign_number("1001", NUMBERS[1])
    store.receive(REMOTES[0], NUMBERS[0], "mine")
    assert len(pages(0)[0].texts) == 4
    store.unassign_number("1001", NUMBERS[1])
    store.receive(REMOTES[0], NUMBERS[1], "not mine")
    assert pages(4)[0].texts == []
    store.prune(0)  # everything so far
    store.receive(REMOTES[0], NUMBERS[1], "not mine either")
    assert pages(4)[0].reset


def test_every_commit_is_synced_to_disk_before_it_returns(store: ServerStore) -> None:
    # synchronous=FULL: a send answered (and pushed) is on disk, not only in the WAL
    # the page cache holds (NORMAL, which a power loss takes).
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _wal_frames(store: ServerStore) -> int:
    """Frames in the WAL now (a PASSIVE checkpoint reports them and copies what it can)."""
    return int(store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def test_a_checkpoint_neither_waits_for_nor_disturbs_a_reader_or_a_writer(
    store: ServerStore, tmp_path: Path
) -> None:
    """A reader inside its snapshot, or a writer inside its transaction, when the watcher
    checkpoints: nothing waits (busy timeout 0), nothing fails, nothing is lost; the WAL
    is rewound at the next checkpoint after they finish."""
    store.assign_number(EXTS[0], NUMBERS[0])
    store.defer_checkpoints()
    reader = ServerStore(tmp_path / "s.db")
    watcher = ServerStore(tmp_path / "s.db")
    try:
        for i in range(20):
            store.send(EXTS[0], f"c{i}", REMOTES[0], f"before {i}", [])
        reader.conn.execute("BEGIN")
        seen = reader.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        watcher.checkpoint()  # copies all, cannot rewind: the reader is in the WAL
        store.send(EXTS[0], "during", REMOTES[0], "while a reader reads", [])
        assert reader.conn.execute("SELECT count(*) FROM messages").fetchone()[0] == seen
        reader.conn.execute("COMMIT")
        store.conn.execute("BEGIN IMMEDIATE")
        watcher.checkpoint()  # a writer holds the lock: returns at once
        store.conn.execute("COMMIT")
        watcher.checkpoint()
        store.send(EXTS[0], "after", REMOTES[0], "after both", [])
        assert _wal_frames(watcher) < 20
        assert watcher.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10000
        store.nowait()  # a connection that never waits keeps never waiting
        store.checkpoint()
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        texts = watcher.sync(EXTS[0], 0, 500).texts
        assert sum("before" in t for t in texts) == 20
        assert [t for t in texts if "while a reader reads" in t]
        assert [t for t in texts if "after both" in t]
    finally:
        reader.close()
        watcher.close()
