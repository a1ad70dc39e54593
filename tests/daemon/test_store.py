"""Tests for the glosmsd/daemon/store package against real SQLite files on disk."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from glosmsd.core import migrations
from glosmsd.core.errors import BadInput, NotFound, SchemaTooNew, StoreError
from glosmsd.daemon.store import (
    EMOJI_RECENTS,
    EVENT_HORIZON_SECONDS,
    SCHEMA,
    SCHEMA_VERSION,
    STEPS,
    AsyncStore,
    LocalEvent,
    Store,
)
from glosmsd.daemon.store import base as store_base
from glosmsd.daemon.store.unread import count_all

OWN = "+15550001001"
BOB = "+15557654321"
CAROL = "+15551112222"
SHA = "ab" * 32


def msg(
    mid: int,
    text: str = "hi",
    *,
    direction: str = "in",
    remote: str = BOB,
    client_id: str | None = None,
    state: str = "sent",
    at: float | None = None,
    sender: dict[str, Any] | None = None,
    files: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": mid,
        "client_id": client_id,
        "number": OWN,
        "remote": remote,
        "direction": direction,
        "text": text,
        "state": state,
        "reason": None,
        "at": float(mid) if at is None else at,
        "files": files or [],
        "sender": sender,
    }


def ev(seq: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "at": 1000.0 + seq, **fields}


def mev(seq: int, m: dict[str, Any]) -> dict[str, Any]:
    return ev(seq, "message", message=m)


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every synced table, for before/after comparisons (events excluded: they log calls)."""
    conn = sqlite3.connect(db)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("meta", "conversations", "messages", "outbox")
        }
    finally:
        conn.close()


@functools.cache
def store_bytes(made: str) -> bytes:
    """The file of a new store ("new") or of `prepared`'s ("prepared"), made once: the
    property tests start each example from a copy (about 1 ms) instead of creating and
    migrating a store (about 15 ms, most of an example's time). The copy is the same
    database; creating and migrating one have their own tests."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "template.db"
        s = Store.open(path)
        if made == "prepared":
            prepare(s)
        s.close()
        assert not path.with_name("template.db-wal").exists(), "the WAL is checkpointed"
        return path.read_bytes()


def copied_store(path: Path, made: str = "new") -> Store:
    path.write_bytes(store_bytes(made))
    return Store.open(path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "glosmsd.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store.open(db_path)
    yield s
    s.close()


# ---------------------------------------------------------------------------- open


def test_migrates_from_empty_and_reopens(db_path: Path) -> None:
    s = Store.open(db_path)
    assert s.schema_version() == SCHEMA_VERSION
    assert s.cursor() == 0
    assert s.account() is None
    assert not s.has_history()
    s.set_account({"extension": {"ext": "1001"}, "numbers": []})
    s.apply_sync([mev(5, msg(1))], 5)
    s.close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    s = Store.open(db_path)
    try:
        assert s.cursor() == 5
        assert s.account() == {"extension": {"ext": "1001"}, "numbers": []}
        assert s.has_history()
    finally:
        s.close()


def test_pending_ops_keep_their_order_and_move_over_from_the_v1_prefs(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    migrations.migrate(conn, dataclasses.replace(SCHEMA, steps=STEPS[:1]), str(db_path))
    ops = [
        {"method": "read", "params": {"number": "+1555", "remote": "+1666", "up_to": 4}},
        {"method": "delete_message", "params": {"id": 7}},
    ]
    conn.execute(
        "INSERT INTO prefs (key, value) VALUES ('_pending_server_ops', ?)", (json.dumps(ops),)
    )
    conn.commit()
    conn.close()
    s = Store.open(db_path)
    try:
        assert s.schema_version() == SCHEMA_VERSION
        kept = s.pending_ops()
        assert [(m, p) for _i, m, p in kept] == [(o["method"], o["params"]) for o in ops]
        assert "_pending_server_ops" not in s.prefs()
        new = s.add_pending_op("delete_conversation", {"number": "+1555", "remote": "+1666"})
        assert [i for i, _m, _p in s.pending_ops()] == [kept[0][0], kept[1][0], new]
        s.remove_pending_op(kept[0][0])
        assert [m for _i, m, _p in s.pending_ops()] == ["delete_message", "delete_conversation"]
        assert len(s.pending_ops(1)) == 1
    finally:
        s.close()


def test_a_v3_database_gets_each_conversations_newest_message(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    migrations.migrate(conn, dataclasses.replace(SCHEMA, steps=STEPS[:3]), str(db_path))
    conn.executemany(
        "INSERT INTO conversations (id, number, remote, remote_digits, remote_tail, last_at) "
        "VALUES (?, ?, ?, '', '', ?)",
        [(1, OWN, BOB, 30.0), (2, OWN, CAROL, 5.0), (3, OWN, "+15553334444", None)],
    )
    conn.executemany(
        "INSERT INTO messages (id, conversation_id, direction, text, state, at) "
        "VALUES (?, ?, 'in', ?, 'sent', ?)",
        # In conversation 1 a later time beats a larger id, and on a tie the larger id wins.
        [
            (1, 1, "a", 10.0),
            (2, 1, "b", 30.0),
            (3, 1, "c", 20.0),
            (4, 2, "d", 5.0),
            (5, 2, "e", 5.0),
        ],
    )
    conn.close()
    s = Store.open(db_path)
    try:
        assert s.schema_version() == SCHEMA_VERSION
        assert_last_messages(s)
        listed = {c.id: (c.last_message_id, c.last_text) for c in s.conversations()}
        assert listed == {1: (2, "b"), 2: (5, "e")}
    finally:
        s.close()


def test_a_v4_database_gets_resend_and_unread_marks(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    migrations.migrate(conn, dataclasses.replace(SCHEMA, steps=STEPS[:4]), str(db_path))
    conn.execute(
        "INSERT INTO conversations (id, number, remote, remote_digits, remote_tail, last_at, "
        "read_up_to, last_message_id) VALUES (1, ?, ?, '', '', 20.0, 2, 2)",
        (OWN, BOB),
    )
    conn.executemany(
        "INSERT INTO messages (id, server_id, client_id, conversation_id, direction, text, "
        "state, reason, at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)",
        [
            (1, 1, "old", "out", "went wrong", "failed", "Carrier said no", 10.0),
            (2, 2, None, "in", "hello", "sent", None, 20.0),
        ],
    )
    conn.close()
    s = Store.open(db_path)
    try:
        assert s.schema_version() == SCHEMA_VERSION >= 6
        failed = s.message(1)
        assert failed is not None
        assert (failed.state, failed.resent_as) == ("failed", None)
        copy, item = s.resend(1, "again")
        assert item is not None
        assert s.message(1).resent_as == copy.id  # type: ignore[union-attr]
        assert s.resend(1, "thrice") == (copy, None)
        assert s.mark_unread_local(1) == 1
        s.apply_sync([ev(3, "read", number=OWN, remote=BOB, up_to=2)], 3)
        assert s.unread().total == 1  # an old read, late: still unread
    finally:
        s.close()


def test_schema_too_new_leaves_the_file_untouched(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("INSERT INTO future VALUES (1)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    siblings = sorted(p.name for p in db_path.parent.iterdir())
    with pytest.raises(SchemaTooNew) as info:
        Store.open(db_path)
    assert "newer glosmsd" in info.value.message
    assert "untouched" in info.value.message
    assert db_path.read_bytes() == before
    # Not even the WAL switch ran (it would leave -wal/-shm files and a changed header).
    assert sorted(p.name for p in db_path.parent.iterdir()) == siblings


def test_not_a_database(db_path: Path) -> None:
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        Store.open(db_path)
    assert "not a glosmsd database" in info.value.message


# ---------------------------------------------------------------------------- sync


def test_apply_sync_is_idempotent(store: Store, db_path: Path) -> None:
    batch = [
        mev(1, msg(10, "hello")),
        mev(2, msg(11, "from me", direction="out", client_id="x1")),
        ev(3, "message_state", id=11, state="failed", reason="carrier said no"),
        mev(4, msg(12, "again", remote=CAROL)),
        ev(5, "read", number=OWN, remote=BOB, up_to=10),
        ev(6, "delete_message", id=12),
    ]
    first = store.apply_sync(batch, 6)
    assert [e.kind for e in first] == [
        "message",
        "message",
        "message_state",
        "message",
        "read",
        "deleted",
    ]  # no `unread`: what arrived unread was read and deleted in the same batch
    state = dump(db_path)
    assert store.apply_sync(batch, 6) == []
    assert dump(db_path) == state
    # Overlapping batches: only the new tail applies.
    more = store.apply_sync([*batch[-2:], mev(7, msg(13, "new"))], 7)
    assert [e.kind for e in more] == ["message", "unread"]
    assert store.cursor() == 7


def test_unread_counts_and_sharer_messages(store: Store) -> None:
    sharer = {"ext": "1002", "name": "Bo Diaz", "avatar": None}
    me = {"ext": "1001", "name": "Ann Lee", "avatar": None}
    store.apply_sync(
        [
            mev(1, msg(1, "in 1")),
            mev(2, msg(2, "in 2")),
            mev(3, msg(3, "sharer", direction="out", sender=sharer)),
            mev(4, msg(4, "me elsewhere", direction="out", sender=me)),
            mev(5, msg(5, "carol", remote=CAROL)),
        ],
        5,
        own_ext="1001",
    )
    summary = store.unread()
    assert summary.total == 3
    counts = {c.remote: n for c, n in summary.per_conversation}
    assert counts == {BOB: 2, CAROL: 1}
    conv = store.conversation_by_remote(OWN, BOB)
    assert conv is not None
    rows = {m.server_id: m for m in store.messages(conv.id)}
    assert rows[3].sender is not None
    assert rows[3].sender.name == "Bo Diaz"
    assert rows[4].sender is None  # the user's own message carries no sharer header
    # The server's read mark confirms; a stale lower one changes nothing.
    evs = store.apply_sync([ev(6, "read", number=OWN, remote=BOB, up_to=1)], 6)
    assert [e.kind for e in evs] == ["read", "unread"]
    assert store.unread().total == 2
    assert store.apply_sync([ev(7, "read", number=OWN, remote=BOB, up_to=0)], 7) == []


def test_merge_of_local_send_with_server_echo(store: Store) -> None:
    local = store.enqueue_send("cid-1", OWN, BOB, "on my way", now=500.0)
    assert local.state == "sending"
    assert local.server_id is None
    assert store.enqueue_send("cid-1", OWN, BOB, "on my way") == local  # no duplicate
    assert [i.client_id for i in store.outbox_items()] == ["cid-1"]
    echo = msg(42, "on my way", direction="out", client_id="cid-1", state="sending", at=501.0)
    evs = store.apply_sync([mev(1, echo)], 1)
    assert [e.kind for e in evs] == []  # nothing new for the user: the row was already there
    merged = store.message(local.id)
    assert merged is not None
    assert (merged.server_id, merged.state, merged.at) == (42, "sending", 501.0)
    assert store.outbox_items() == []  # the server has it: no resend
    # The send reply arrives late: still one row, now sent.
    done = store.outbox_done("cid-1", {**echo, "state": "sent"})
    assert done is not None
    assert done.id == local.id
    assert done.state == "sent"
    conv = store.conversation_by_remote(OWN, BOB)
    assert conv is not None
    assert [m.id for m in store.messages(conv.id)] == [local.id]
    # A stale "sending" echo cannot move it back.
    store.apply_sync([mev(2, echo)], 2)
    again = store.message(local.id)
    assert again is not None
    assert again.state == "sent"


def test_an_accepted_send_is_answered_with_the_row_as_read_back(store: Store) -> None:
    # accept_send builds its answer from what it wrote (no read-back before the reply):
    # it must be the row a read gives, files and their states included.
    store.set_file_state(SHA, "/data/cat.jpg", "done")
    files = [
        {"path": "/tmp/x.jpg", "name": "x.jpg", "mime": "image/jpeg", "size": 10},
        {"sha256": SHA, "name": "cat.jpg", "mime": "image/jpeg", "size": 48_213},
        {"sha256": "cd" * 32, "name": "doc.pdf", "size": 5},
    ]
    row, new = store.accept_send("cid-f", OWN, BOB, "files", files, now=77.0)
    assert new is True
    assert row == store.message(row.id)
    assert [(f.name, f.state, f.path) for f in row.files] == [
        ("x.jpg", "done", "/tmp/x.jpg"),
        ("cat.jpg", "done", "/data/cat.jpg"),
        ("doc.pdf", "none", None),
    ]
    assert store.accept_send("cid-f", OWN, BOB, "other text") == (row, False)


def test_outbox_reply_then_echo(store: Store) -> None:
    local = store.enqueue_send("cid-2", OWN, BOB, "x")
    done = store.outbox_done("cid-2", msg(7, "x", direction="out", client_id="cid-2"))
    assert done is not None
    assert (done.id, done.server_id, done.state) == (local.id, 7, "sent")
    assert store.outbox_items() == []
    store.apply_sync([mev(1, msg(7, "x", direction="out", client_id="cid-2", state="sending"))], 1)
    store.apply_sync([ev(2, "message_state", id=7, state="failed", reason="no route")], 2)
    row = store.message(local.id)
    assert row is not None
    assert (row.state, row.reason) == ("failed", "no route")
    conv = store.conversation_by_remote(OWN, BOB)
    assert conv is not None
    assert len(store.messages(conv.id)) == 1


def test_outbox_defer_fail_and_resend(store: Store) -> None:
    a = store.enqueue_send("a", OWN, BOB, "first", now=10.0)
    store.enqueue_send("b", OWN, BOB, "second", [{"path": "/tmp/x.jpg"}], now=11.0)
    assert [i.client_id for i in store.outbox_due(now=11.0, limit=10)] == ["a", "b"]
    store.outbox_defer("a", 100.0, "link down")
    due = store.outbox_due(now=50.0, limit=10)
    assert [i.client_id for i in due] == ["b"]
    assert due[0].files == ({"path": "/tmp/x.jpg"},)
    item = store.outbox_item("a")
    assert item is not None
    assert (item.attempts, item.last_error) == (1, "link down")
    b_row = store.message_by_client_id("b")
    assert b_row is not None
    assert b_row.files[0].name == "x.jpg"
    store.outbox_update_files("b", [{"sha256": SHA, "name": "x.jpg", "size": 3}])
    assert store.outbox_due(now=50.0, limit=10)[0].files[0]["sha256"] == SHA

    failed = store.outbox_failed("a", "The number is not valid.")
    assert failed is not None
    assert (failed.state, failed.reason) == (
        "failed",
        "The number is not valid.",
    )
    assert store.outbox_item("a") is None
    with pytest.raises(BadInput):
        store.resend(store.message_by_client_id("b").id, "b2")  # type: ignore[union-attr]
    row, item = store.resend(a.id, "a2", now=200.0)
    assert item is not None
    assert (item.message_id, item.client_id, item.text) == (a.id, "a2", "first")
    assert row == store.message(a.id)
    assert (row.state, row.client_id, row.reason, row.resent_as) == ("sending", "a2", None, a.id)
    # Asked again: the same message, nothing queued; once it fails again, it can go again.
    assert store.resend(a.id, "a3") == (row, None)
    assert [i.client_id for i in store.outbox_items()] == ["b", "a2"]
    again = store.outbox_failed("a2", "Still not valid.")
    assert again is not None
    assert (again.state, again.resent_as) == ("failed", None)
    assert store.resend(a.id, "a4")[0].client_id == "a4"
    with pytest.raises(NotFound):
        store.resend(99999, "zz")


def test_resend_of_a_server_failed_message_makes_a_new_row(store: Store) -> None:
    store.apply_sync([mev(1, msg(5, "hey", direction="out", client_id="old", state="failed"))], 1)
    old = store.message_by_client_id("old")
    assert old is not None
    copy, item = store.resend(old.id, "new")
    assert item is not None
    assert item.message_id == copy.id != old.id
    kept = store.message(old.id)
    assert kept is not None  # server history stays
    assert (kept.state, kept.resent_as) == ("failed", copy.id)
    # Asked again, also after the copy went out or failed too: that copy, nothing queued.
    assert store.resend(old.id, "newer") == (copy, None)
    store.outbox_failed("new", "Carrier said no")
    assert store.resend(old.id, "newer")[0].id == copy.id
    assert [i.client_id for i in store.outbox_items()] == []
    # The server tells its failure again: the mark stays.
    store.apply_sync([ev(2, "message_state", id=5, state="failed", reason="other words")], 2)
    assert store.message(old.id).resent_as == copy.id  # type: ignore[union-attr]
    # The copy deleted: its mark goes with it (the id may be given out again), and the
    # failed one can be resent anew.
    store.delete_message_local(copy.id)
    assert store.message(old.id).resent_as is None  # type: ignore[union-attr]
    fresh, queued = store.resend(old.id, "newest")
    assert queued is not None
    assert (fresh.client_id, fresh.state) == ("newest", "sending")
    assert store.message(old.id).resent_as == fresh.id != old.id  # type: ignore[union-attr]


def test_read_and_delete_semantics(store: Store) -> None:
    store.apply_sync([mev(i, msg(i, f"m{i}")) for i in range(1, 6)], 5)
    conv = store.conversation_by_remote(OWN, BOB)
    assert conv is not None
    assert conv.unread == 5
    store.apply_sync([ev(6, "delete_message", id=5)], 6)
    assert [m.server_id for m in store.messages(conv.id)] == [4, 3, 2, 1]
    assert store.search("m5").messages == ()
    assert store.unread().total == 4
    evs = store.apply_sync([ev(7, "delete_conversation", number=OWN, remote=BOB, up_to=3)], 7)
    assert [e.kind for e in evs] == ["deleted", "unread"]
    assert evs[0].data["conversation"] is True
    assert [m.server_id for m in store.messages(conv.id)] == [4]
    # A late copy of a deleted message does not come back; a newer one does.
    store.apply_sync([mev(8, msg(2, "m2")), mev(9, msg(9, "back"))], 9)
    assert [m.server_id for m in store.messages(conv.id)] == [9, 4]
    store.apply_sync([ev(10, "delete_conversation", number=OWN, remote=BOB, up_to=9)], 10)
    assert store.conversations() == []
    assert store.unread().total == 0


def test_local_read_and_delete_return_what_to_send(store: Store) -> None:
    store.apply_sync(
        [
            mev(1, msg(1)),
            mev(2, msg(2, direction="out")),
            mev(3, msg(3)),
            mev(4, msg(4, remote=CAROL)),
        ],
        4,
    )
    bob = store.conversation_by_remote(OWN, BOB)
    carol = store.conversation_by_remote(OWN, CAROL)
    assert bob is not None
    assert carol is not None
    marks = store.mark_read_local(bob.id)
    assert [(m.number, m.remote, m.up_to) for m in marks] == [(OWN, BOB, 3)]
    assert store.mark_read_local(bob.id) == []  # nothing unread: nothing to send
    assert store.unread().total == 1
    assert [(m.remote, m.up_to) for m in store.mark_read_local(None)] == [(CAROL, 4)]
    with pytest.raises(NotFound):
        store.mark_read_local(12345)

    sid = store.delete_message_local(store.messages(bob.id)[0].id)
    assert sid == 3
    local = store.enqueue_send("c", OWN, BOB, "pending")
    with pytest.raises(BadInput):
        store.delete_message_local(local.id)
    ref = store.delete_conversation_local(bob.id)
    # The newest it still had (3 went on its own above).
    assert (ref.number, ref.remote, ref.up_to) == (OWN, BOB, 2)
    # The send still on its way stays; everything else went.
    assert [m.id for m in store.messages(bob.id)] == [local.id]
    with pytest.raises(NotFound):
        store.delete_conversation_local(999)
    with pytest.raises(NotFound):
        store.delete_message_local(999)


def test_conversations_order_preview_and_paging(store: Store) -> None:
    store.apply_sync(
        [
            mev(1, msg(1, "old bob", at=100.0)),
            mev(2, msg(2, "carol", remote=CAROL, at=200.0)),
            mev(3, msg(3, "new bob", at=300.0)),
        ],
        3,
    )
    convs = store.conversations()
    assert [(c.remote, c.last_text, c.unread) for c in convs] == [
        (BOB, "new bob", 2),
        (CAROL, "carol", 1),
    ]
    assert [c.remote for c in store.conversations(limit=1, offset=1)] == [CAROL]
    store.enqueue_send("c1", OWN, CAROL, "reply", now=400.0)
    assert [c.remote for c in store.conversations()] == [CAROL, BOB]
    bob = convs[0]
    store.apply_sync([mev(i, msg(i, f"p{i}", at=1000.0 + i)) for i in range(10, 30)], 30)
    page1 = store.messages(bob.id, limit=8)
    page2 = store.messages(bob.id, before=page1[-1].id, limit=8)
    page3 = store.messages(bob.id, before=page2[-1].id, limit=8)
    ids = [m.server_id for m in page1 + page2 + page3]
    assert ids == [*range(29, 9, -1), 3, 1]
    with pytest.raises(NotFound):
        store.messages(bob.id, before=999999)


def test_reset_replaces_synced_state_keeps_ids_and_outbox(store: Store, db_path: Path) -> None:
    store.apply_sync([mev(1, msg(1, "keep")), mev(2, msg(2, "gone")), mev(3, msg(3))], 3)
    keep = store.messages(store.conversation_by_remote(OWN, BOB).id)[-1]  # type: ignore[union-attr]
    assert keep.server_id == 1
    pending = store.enqueue_send("p1", OWN, CAROL, "unsent")
    snapshot = [
        mev(50, msg(1, "keep")),
        mev(50, msg(3)),
        ev(50, "read", number=OWN, remote=BOB, up_to=1),
    ]
    evs = store.apply_sync(snapshot, 50, reset=True)
    assert [e.kind for e in evs] == ["reset", "unread"]
    assert store.cursor() == 50
    conv = store.conversation_by_remote(OWN, BOB)
    assert conv is not None
    rows = store.messages(conv.id)
    assert [m.server_id for m in rows] == [3, 1]
    assert rows[-1].id == keep.id  # local ids survive a reset
    assert conv.unread == 1
    assert [i.client_id for i in store.outbox_items()] == ["p1"]
    assert store.message(pending.id) is not None
    state = dump(db_path)
    store.apply_sync(snapshot, 50, reset=True)
    assert dump(db_path) == state
    # A reset to a lower cursor (the server's database was replaced) is taken as is.
    store.apply_sync([], 7, reset=True)
    assert store.cursor() == 7
    assert store.messages(conv.id) == []


def test_malformed_events_are_skipped(store: Store) -> None:
    hostile: list[Any] = [
        "nope",
        {"kind": "message"},
        ev(1, "message", message={"id": "x"}),
        ev(2, "message", message={**msg(1), "direction": "sideways"}),
        ev(3, "message", message={**msg(1), "at": float("nan")}),
        ev(4, "message", message={**msg(1), "files": [{"name": "no sha"}]}),
        ev(5, "read", number=OWN, remote=BOB, up_to=True),
        ev(6, "message_state", id=1, state="exploded"),
        ev(7, "delete_message", id=None),
        ev(8, "delete_conversation", number=OWN),
        ev(9, "some_future_kind", whatever=1),
        {"seq": True, "kind": "message", "message": msg(1)},
        mev(10, msg(1, "fine")),
    ]
    evs = store.apply_sync(hostile, 10)
    assert [e.kind for e in evs] == ["message", "unread"]
    assert store.cursor() == 10
    with pytest.raises(BadInput):
        store.apply_sync([], -1)


# ---------------------------------------------------------------------------- search


def test_search_contacts_conversations_messages(store: Store) -> None:
    kept = store.replace_contacts(
        [
            {
                "id": 1,
                "name": "Bob Stone",
                "numbers": [{"label": "mobile", "number": "(555) 765-4321"}],
            },
            {
                "id": 2,
                "name": "Café Owner",
                "numbers": [{"label": "work", "number": "+15559990000"}],
            },
            {"id": "bad"},
        ]
    )
    assert kept == 2
    store.apply_sync(
        [
            mev(1, msg(1, "Let's meet at the café")),
            mev(2, msg(2, "call 555 0100 later", remote=CAROL)),
        ],
        2,
    )
    bob = store.conversation_by_remote(OWN, BOB)
    assert bob is not None
    assert bob.name == "Bob Stone"
    assert bob.title == "Bob Stone"
    res = store.search("bob")
    assert [c.name for c in res.contacts] == ["Bob Stone"]
    assert [c.remote for c in res.conversations] == [BOB]
    res = store.search("cafe")
    assert [c.name for c in res.contacts] == ["Café Owner"]
    assert [m.server_id for m in res.messages] == [1]
    res = store.search("+1 (555) 765-43")
    assert [c.name for c in res.contacts] == ["Bob Stone"]
    assert [c.remote for c in res.conversations] == [BOB]
    assert [c.remote for c in store.search("1112222").conversations] == [CAROL]
    assert [m.server_id for m in store.search("555 01").messages] == [2]
    assert [c.name for c in store.find_contacts("")] == ["Bob Stone", "Café Owner"]
    assert [c.name for c in store.find_contacts("555999")] == ["Café Owner"]
    # Case folding beyond ASCII, in conversation names as in contacts.
    store.replace_contacts(
        [{"id": 3, "name": "ÉMILE Zoë", "numbers": [{"label": "", "number": CAROL}]}]
    )
    assert [c.remote for c in store.search("émile").conversations] == [CAROL]
    assert [c.remote for c in store.search("zoË").conversations] == [CAROL]
    assert [c.name for c in store.search("emile").contacts] == ["ÉMILE Zoë"]
    # Contacts replaced: names follow.
    store.replace_contacts([])
    bob = store.conversation_by_remote(OWN, BOB)
    assert bob is not None
    assert bob.name is None
    assert store.search("").messages == ()


@pytest.fixture(scope="module")
def search_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as d:
        s = Store.open(Path(d) / "search.db")
        s.replace_contacts([{"id": 1, "name": 'Zoë "Z" (NEAR)', "numbers": []}])
        s.apply_sync(
            [
                mev(i, msg(i, t))
                for i, t in enumerate(['AND OR NOT "quoted" (paren) col:on', "😀 emoji"], 1)
            ],
            2,
        )
        yield s
        s.close()


@given(st.text(max_size=100))
def test_search_never_raises_on_any_input(search_store: Store, text: str) -> None:
    res = search_store.search(text, limit=5)
    assert len(res.messages) <= 5


@pytest.mark.parametrize(
    "text", ['"', '"quoted"', "(paren", "col:on", "NEAR(", "AND", "*", "^x", "\x00", "😀", "NOT"]
)
def test_search_hostile_examples(search_store: Store, text: str) -> None:
    search_store.search(text)


# ---------------------------------------------------------------------------- files, prefs


def test_file_states(store: Store) -> None:
    big = {"sha256": "cd" * 32, "name": "big.mp4", "mime": "video/mp4", "size": 900_000}
    small = {"sha256": SHA, "name": "cat.jpg", "mime": "image/jpeg", "size": 48_213}
    store.apply_sync([mev(1, msg(1, "pics", files=[small, big]))], 1)
    assert [f.sha256 for f in store.pending_downloads(max_size=512_000)] == [SHA]
    assert {f.sha256 for f in store.pending_downloads()} == {SHA, "cd" * 32}
    store.set_file_state(SHA, "/data/cat.jpg", "done")
    assert store.file_state(SHA) == ("/data/cat.jpg", "done")
    assert store.pending_downloads(max_size=512_000) == []
    row = store.message(1)
    assert row is not None
    assert [(f.name, f.state, f.path) for f in row.files] == [
        ("cat.jpg", "done", "/data/cat.jpg"),
        ("big.mp4", "none", None),
    ]
    with pytest.raises(BadInput):
        store.set_file_state(SHA, None, "weird")


def test_prefs_and_emoji(store: Store) -> None:
    assert store.get_pref("notify", False) is False
    store.set_pref("notify", True)
    store.set_pref("sound", {"name": "ding", "volume": 0.5})
    assert store.prefs() == {"notify": True, "sound": {"name": "ding", "volume": 0.5}}
    store.emoji_used(["😀", "🎉"], now=1.0)
    store.emoji_used(["😀"], now=2.0)
    assert store.emoji_recent() == ["😀", "🎉"]
    store.emoji_used([chr(0x1F400 + i) for i in range(60)], now=3.0)
    recent = store.emoji_recent(100)
    assert len(recent) == EMOJI_RECENTS
    assert recent[0] == chr(0x1F400 + 59)


def test_export_rows(store: Store) -> None:
    store.apply_sync(
        [mev(1, msg(1, "a")), mev(2, msg(2, "b", remote=CAROL)), mev(3, msg(3, "c"))], 3
    )
    exported = list(store.export_rows())
    assert [(e.conversation.remote, [m.text for m in e.messages]) for e in exported] == [
        (BOB, ["a", "c"]),
        (CAROL, ["b"]),
    ]


# ---------------------------------------------------------------------------- event log


def test_event_log_replay_and_horizon(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_base, "EVENT_HORIZON_COUNT", 20)
    seen: list[LocalEvent] = []
    store.on_events = seen.extend
    for i in range(10):
        store.append_event("link", {"status": f"s{i}"})
    assert [e.id for e in seen] == list(range(1, 11))
    events, truncated = store.events_since(4, limit=3)
    assert [e.id for e in events] == [5, 6, 7]
    assert not truncated
    events, _ = store.events_since(4, up_to=6)
    assert [e.data["status"] for e in events] == ["s4", "s5"]
    for i in range(30):
        store.append_event("link", {"status": f"t{i}"})
    assert store.last_event_id() == 40
    events, truncated = store.events_since(5)
    assert truncated
    assert [e.id for e in events] == list(range(21, 41))
    events, truncated = store.events_since(20)
    assert not truncated
    assert len(events) == 20
    # An id from another database (beyond the newest) is a gap too.
    assert store.events_since(500) == ([], True)
    with pytest.raises(BadInput):
        store.append_event("nonsense", {})
    # The time horizon: events older than 7 days go even below the count limit.
    with store._write():
        store._prune_events(seen[-1].at + EVENT_HORIZON_SECONDS + 1)
    assert store.events_since(40) == ([], False)
    assert store.events_since(39)[1] is True


def test_event_ids_never_reused_after_reopen(db_path: Path) -> None:
    s = Store.open(db_path)
    s.append_event("link", {"status": "up"})
    s.close()
    s = Store.open(db_path)
    try:
        assert s.append_event("link", {"status": "down"}).id == 2
    finally:
        s.close()


# ---------------------------------------------------------------------------- crash, threads

CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from glosmsd.daemon.store import Store
    s = Store.open(Path(sys.argv[1]))
    s.enqueue_send("crash-1", "+15550001001", "+15557654321", "survive me")
    os._exit(0)  # no close, no checkpoint: like a SIGKILL right after the reply
    """
)


def test_outbox_survives_a_crash(db_path: Path) -> None:
    subprocess.run([sys.executable, "-c", CRASH, str(db_path)], check=True, timeout=30)
    assert db_path.with_name(db_path.name + "-wal").exists()  # it is only in the WAL
    s = Store.open(db_path)
    try:
        items = s.outbox_items()
        assert [(i.client_id, i.text) for i in items] == [("crash-1", "survive me")]
        row = s.message(items[0].message_id)
        assert row is not None
        assert row.state == "sending"
    finally:
        s.close()


def thread_of(_store: Store) -> int:
    return threading.get_ident()


def autocheckpoint_of(store: Store) -> int:
    return int(store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


async def test_async_store_runs_on_its_own_thread(db_path: Path) -> None:
    got: list[list[LocalEvent]] = []
    arrived = asyncio.Event()
    loop_thread = threading.get_ident()

    def on_events(events: list[LocalEvent]) -> None:
        assert threading.get_ident() == loop_thread  # delivered on the loop
        got.append(events)
        arrived.set()

    astore = await AsyncStore.open(db_path, on_events=on_events)
    try:
        assert astore.thread_id not in (0, loop_thread)
        assert await astore.run(thread_of) == astore.thread_id
        assert await astore.run(thread_of) == astore.thread_id
        row = await astore.run(Store.enqueue_send, "a1", OWN, BOB, "hello")
        await asyncio.wait_for(arrived.wait(), 5)
        assert got[0][0].kind == "message"
        assert got[0][0].data["message"]["id"] == row.id
        # Concurrent writers are serialized on the one thread, none lost.
        await asyncio.gather(*(astore.run(Store.set_pref, f"k{i}", i) for i in range(20)))
        assert len(await astore.run(Store.prefs)) == 20
        evs = await astore.run(Store.apply_sync, [mev(1, msg(1))], 1)
        assert [e.kind for e in evs] == ["message", "unread"]
        assert (await astore.run(Store.unread)).total == 1
        assert [c.remote for c in await astore.run(Store.conversations)] == [BOB]
        assert [e.conversation.remote async for e in astore.export_rows()] == [BOB]
        assert (await astore.run(Store.events_since, 0))[0][0].kind == "message"
    finally:
        await astore.close()


async def test_async_store_publishes_a_write_whose_caller_stopped_waiting(db_path: Path) -> None:
    # The events of a call reach `on_events` with its result (one wake-up of the loop);
    # a caller cancelled while its write runs must not take the write's events with it.
    got: list[LocalEvent] = []
    arrived = asyncio.Event()
    started, gate = threading.Event(), threading.Event()

    def on_events(events: list[LocalEvent]) -> None:
        got.extend(events)
        arrived.set()

    def slow_send(store: Store) -> Any:
        started.set()
        assert gate.wait(10)
        return store.enqueue_send("a1", OWN, BOB, "hello")

    astore = await AsyncStore.open(db_path, on_events=on_events)
    try:
        task = asyncio.create_task(astore.run(slow_send))
        assert await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        await asyncio.wait_for(arrived.wait(), 10)
        assert [e.kind for e in got] == ["message"]
        assert (await astore.run(Store.message_by_client_id, "a1")) is not None
    finally:
        gate.set()
        await astore.close()


def busy_timeout_of(store: Store) -> int:
    return int(store._conn.execute("PRAGMA busy_timeout").fetchone()[0])


async def test_run_light_writes_on_the_loop_when_the_store_thread_is_idle(db_path: Path) -> None:
    got: list[LocalEvent] = []
    astore = await AsyncStore.open(db_path, on_events=got.extend, busy_timeout=5)
    try:
        assert await astore.run_light(thread_of) == threading.get_ident()
        evs = await astore.run_light(Store.apply_sync, [mev(1, msg(1))], 1)
        # Published before the call returned: no wake-up of the loop in between.
        assert [e.kind for e in got] == [e.kind for e in evs] == ["message", "unread"]
        assert (await astore.run(Store.unread)).total == 1
        assert await astore.run(busy_timeout_of) == 5000  # nowait gave it back
    finally:
        await astore.close()


async def test_run_light_waits_its_turn_behind_calls_on_the_store_thread(db_path: Path) -> None:
    # A call still on the store's thread owns the connection, and the calls after it keep
    # their order: a light call then goes the same way.
    started, gate = threading.Event(), threading.Event()
    order: list[str] = []

    def slow(store: Store) -> int:
        started.set()
        assert gate.wait(10)
        order.append("slow")
        return threading.get_ident()

    def light(store: Store) -> int:
        order.append("light")
        return threading.get_ident()

    astore = await AsyncStore.open(db_path)
    try:
        first = asyncio.create_task(astore.run(slow))
        assert await asyncio.to_thread(started.wait, 10)
        second = asyncio.create_task(astore.run_light(light))
        await asyncio.sleep(0)
        assert order == []  # not run on the loop while `slow` holds the connection
        gate.set()
        assert await first == await second == astore.thread_id
        assert order == ["slow", "light"]
        assert await astore.run_light(thread_of) == threading.get_ident()  # idle again
    finally:
        gate.set()
        await astore.close()


@pytest.mark.timeout(20)
async def test_run_light_never_waits_for_a_lock_on_the_loop(db_path: Path) -> None:
    # Another program holds the write lock: the light call must not wait for it on the
    # loop (nothing else would run, here not even the release: the test would time out
    # first), but on the store's thread.
    astore = await AsyncStore.open(db_path, busy_timeout=60)
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.2, holder.execute, "COMMIT")

        def write(store: Store) -> int:
            store.set_pref("k", 1)
            return threading.get_ident()

        assert await astore.run_light(write) == astore.thread_id
        assert await astore.run(Store.get_pref, "k", None) == 1
        assert await astore.run(busy_timeout_of) == 60000
    finally:
        holder.close()
        await astore.close()


async def test_run_light_after_close_goes_by_the_thread(db_path: Path) -> None:
    astore = await AsyncStore.open(db_path)
    await astore.close()
    with pytest.raises(RuntimeError):  # the executor is shut down, as for `run`
        await astore.run_light(thread_of)


async def test_async_store_open_error(db_path: Path) -> None:
    db_path.write_bytes(b"garbage" * 200)
    with pytest.raises(StoreError):
        await AsyncStore.open(db_path)


def test_fts_index_stays_in_step_with_messages(store: Store, db_path: Path) -> None:
    store.apply_sync([mev(i, msg(i, f"word{i} common")) for i in range(1, 30)], 29)
    local = store.enqueue_send("e1", OWN, BOB, "local text")
    store.outbox_done("e1", msg(40, "server edited text", direction="out", client_id="e1"))
    store.apply_sync([ev(41, "delete_message", id=3)], 41)
    store.apply_sync([ev(42, "delete_conversation", number=OWN, remote=BOB, up_to=10)], 42)
    failed = store.enqueue_send("e2", OWN, CAROL, "will fail")
    store.outbox_failed("e2", "no")
    store.resend(failed.id, "e3")
    store.apply_sync(
        [
            mev(50, msg(2, "snapshot")),
            mev(50, msg(40, "server edited text", direction="out", client_id="e1")),
        ],
        50,
        reset=True,
    )
    conn = sqlite3.connect(db_path)
    try:
        # FTS5 compares its index with the content table and raises on any difference.
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()
    assert [m.id for m in store.search("server edited").messages] == [local.id]
    assert store.search("local").messages == ()
    assert [m.text for m in store.search("common").messages] == []
    assert [m.client_id for m in store.search("will fail").messages] == ["e3"]


REMOTES = (BOB, CAROL, "+15553334444")
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("in"), st.integers(0, 2)),
        st.tuples(st.just("out"), st.integers(0, 2)),
        st.tuples(st.just("read"), st.integers(0, 2), st.integers(0, 30)),
        st.tuples(st.just("del_msg"), st.integers(1, 30)),
        st.tuples(st.just("del_conv"), st.integers(0, 2), st.integers(0, 30)),
        st.tuples(st.just("local_read"), st.one_of(st.none(), st.integers(0, 2))),
        st.tuples(st.just("local_del"), st.integers(1, 40)),
        st.tuples(st.just("reset"), st.integers(0, 30)),
        # Sends (accepted here, the server's time for them later or earlier than ours) and
        # batches of several messages whose times are out of order.
        st.tuples(st.just("send"), st.integers(0, 2), st.floats(-5, 5)),
        st.tuples(st.just("batch"), st.lists(st.tuples(st.integers(0, 2), st.integers(-9, 9)))),
    ),
    max_size=25,
)


def assert_last_messages(s: Store) -> None:
    """Every conversation's kept newest message and last activity are those of its rows."""
    rows = s._conn.execute(
        "SELECT c.id, c.last_message_id, c.last_at, (SELECT id FROM messages m "
        "WHERE m.conversation_id = c.id ORDER BY at DESC, id DESC LIMIT 1), "
        "(SELECT max(at) FROM messages m WHERE m.conversation_id = c.id) FROM conversations c"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(r[0], r[3], r[4]) for r in rows]


@given(OPS)
def test_unread_bookkeeping_matches_a_full_count(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        s = copied_store(Path(d) / "u.db")
        try:
            sent: list[dict[str, Any]] = []
            events: list[LocalEvent] = []
            s.on_events = events.extend
            for seq, op in enumerate(ops, start=1):
                events.clear()
                kind = op[0]
                if kind in ("in", "out"):
                    m = msg(seq, direction=kind, remote=REMOTES[op[1]])
                    sent.append(m)
                    s.apply_sync([mev(seq, m)], seq)
                elif kind == "read":
                    s.apply_sync(
                        [ev(seq, "read", number=OWN, remote=REMOTES[op[1]], up_to=op[2])], seq
                    )
                elif kind == "del_msg":
                    s.apply_sync([ev(seq, "delete_message", id=op[1])], seq)
                elif kind == "del_conv":
                    s.apply_sync(
                        [
                            ev(
                                seq,
                                "delete_conversation",
                                number=OWN,
                                remote=REMOTES[op[1]],
                                up_to=op[2],
                            )
                        ],
                        seq,
                    )
                elif kind == "local_read":
                    conv = None if op[1] is None else s.conversation_by_remote(OWN, REMOTES[op[1]])
                    if op[1] is None or conv is not None:
                        s.mark_read_local(None if conv is None else conv.id)
                elif kind == "local_del":
                    if s.message(op[1]) is not None:
                        s.delete_message_local(op[1])
                elif kind == "send":
                    local = s.enqueue_send(f"c{seq}", OWN, REMOTES[op[1]], "out", now=seq)
                    assert_last_messages(s)
                    m = msg(1000 + seq, "out", direction="out", remote=REMOTES[op[1]])
                    m.update(client_id=f"c{seq}", at=seq + op[2])
                    sent.append(m)
                    assert s.outbox_done(f"c{seq}", m) is not None
                    assert s.message(local.id) is not None
                elif kind == "batch":
                    batch = []
                    for k, (remote, shift) in enumerate(op[1]):
                        m = msg(2000 + seq * 20 + k, direction="in", remote=REMOTES[remote])
                        m["at"] = seq + shift
                        sent.append(m)
                        batch.append(mev(seq, m))
                    s.apply_sync(batch, seq)
                else:
                    keep = [m for m in sent if m["id"] <= op[1]]
                    s.apply_sync([mev(seq, m) for m in keep], seq, reset=True)
                assert_last_messages(s)
                full = count_all(s._conn)
                assert s._unread.cached in (None, full)
                for e in events:
                    if e.kind == "unread":
                        assert {c["id"]: c["count"] for c in e.data["conversations"]} == full
                        assert e.data["total"] == sum(full.values())
                # The list takes its counts from the bookkeeping, one conversation from SQL.
                listed = s.conversations(limit=10)
                assert [(c.id, c.unread) for c in listed] == [
                    (c.id, c.unread) for c in map(s.conversation, (c.id for c in listed)) if c
                ]
                assert listed == list(s.search("+1555", 10).conversations)
            assert s.unread().total == sum(count_all(s._conn).values())
        finally:
            s.close()


# ---------------------------------------------------------------------------- checkpoints


def wal_frames(db_path: Path) -> int:
    """Frames in the WAL now, seen from another connection (a PASSIVE checkpoint reports
    them; it also copies them back, which is harmless here)."""
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def big_batches(count: int, first: int = 1) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Sync batches of 100 messages of ~2 kB each: about 1000 WAL pages per 1,500 messages."""
    for start in range(first, first + count, 100):
        seqs = range(start, min(start + 100, first + count))
        yield [mev(i, msg(i, f"m{i} " + "x" * 2000, remote=REMOTES[i % 3])) for i in seqs], seqs[-1]


def test_deferred_checkpoints_never_run_inside_a_commit(db_path: Path) -> None:
    # SQLite's automatic checkpoint would have copied the WAL back inside the commit that
    # crossed 1000 pages, and a later write would have started it over: the WAL would hold
    # fewer frames than written. Deferred, every commit only appends.
    s = Store.open(db_path)
    try:
        commits: list[None] = []
        s.defer_checkpoints(lambda: commits.append(None))
        for batch, cursor in big_batches(3000):
            s.apply_sync(batch, cursor)
        s.enqueue_send("a1", OWN, BOB, "hello")
        assert len(commits) == 31
        assert wal_frames(db_path) > 2000
    finally:
        s.close()


def test_the_writer_checkpoints_a_wal_past_the_limit(db_path: Path) -> None:
    # A checkpoint thread that never runs (writes that never pause): the WAL stays bounded.
    s = Store.open(db_path)
    s.wal_limit = 1024 * 1024
    try:
        s.defer_checkpoints(lambda: None)
        wal = Path(f"{db_path}-wal")
        sizes = []
        for batch, cursor in big_batches(6000):
            s.apply_sync(batch, cursor)
            sizes.append(wal.stat().st_size)
        # One batch writes ~700 kB (text, FTS, event log): the WAL never grows past the
        # limit by more than that, where all 6,000 messages take about 40 MB.
        assert max(sizes) < 2 * 1024 * 1024
        assert s.cursor() == 6000
    finally:
        s.close()


def test_a_write_rereads_what_another_connection_changed(db_path: Path) -> None:
    # The cursor, the event log's pruning state and the unread counts are kept between
    # writes; another connection's commit (a restored backup, a second process) makes the
    # next write read them again instead of trusting what this one last wrote.
    s = Store.open(db_path)
    try:
        s.apply_sync([mev(1, msg(1)), mev(2, msg(2))], 2)
        assert s.unread().total == 2
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute("UPDATE meta SET value = '5' WHERE key = 'cursor'")
            other.execute("UPDATE conversations SET read_up_to = 2")
            other.execute("DELETE FROM events")
            other.execute(
                "INSERT INTO meta (key, value) VALUES ('events_pruned_up_to', '100') "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )
        finally:
            other.close()
        got = s.apply_sync([mev(3, msg(3)), mev(6, msg(6))], 6)
        assert [e.data["message"]["server_id"] for e in got if e.kind == "message"] == [6]
        assert s.unread().total == 1
        assert s.events_since(0)[1] is True  # pruned past 0, as the other connection said
    finally:
        s.close()


async def test_async_store_checkpoints_in_the_background(db_path: Path) -> None:
    astore = await AsyncStore.open(db_path)
    try:
        checkpointer = astore._checkpointer
        assert checkpointer is not None
        autocheckpoint = await astore.run(autocheckpoint_of)
        assert autocheckpoint == 0
        for first in (1, 3001):  # twice: the WAL starts over while the daemon writes
            for batch, cursor in big_batches(3000, first=first):
                await astore.run(Store.apply_sync, batch, cursor)
            await astore.run(Store.enqueue_send, f"a{first}", OWN, BOB, "hello")
            # The writes pause: the thread copies the whole WAL back...
            assert await asyncio.to_thread(checkpointer.wait_covered, checkpointer.commits, 20)
            assert checkpointer.last is not None
            busy, frames, copied = checkpointer.last
            assert (busy, copied) == (0, frames)
            # ...so the next write starts the WAL over instead of growing it.
            await astore.run(Store.set_pref, "after", first)
            assert wal_frames(db_path) < 50
        assert await astore.run(Store.cursor) == 6000
    finally:
        await astore.close()
    # The store's connection closed last: SQLite checkpointed and removed the WAL.
    assert not Path(f"{db_path}-wal").exists()


# ---------------------------------------------------------------------------- batched merge

SYNC_OPS = st.lists(
    st.one_of(
        # A server message: (server id, remote, direction, with the client id of a local send)
        st.tuples(
            st.just("msg"),
            st.integers(1, 12),
            st.integers(0, 2),
            st.sampled_from(["in", "out"]),
            st.booleans(),
        ),
        st.tuples(st.just("del_msg"), st.integers(1, 12)),
        st.tuples(st.just("del_conv"), st.integers(0, 2), st.integers(0, 12)),
        st.tuples(st.just("read"), st.integers(0, 2), st.integers(0, 12)),
        st.tuples(
            st.just("bad"),
        ),
    ),
    max_size=30,
)


def sync_events(ops: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for seq, op in enumerate(ops, start=10):  # after the history `prepared` synced
        if op[0] == "msg":
            _, sid, r, direction, own = op
            client_id = f"local{sid}" if own and direction == "out" else None
            m = msg(sid, f"text {sid}", direction=direction, remote=REMOTES[r], client_id=client_id)
            out.append(mev(seq, m))
        elif op[0] == "del_msg":
            out.append(ev(seq, "delete_message", id=op[1]))
        elif op[0] == "del_conv":
            out.append(
                ev(seq, "delete_conversation", number=OWN, remote=REMOTES[op[1]], up_to=op[2])
            )
        elif op[0] == "read":
            out.append(ev(seq, "read", number=OWN, remote=REMOTES[op[1]], up_to=op[2]))
        else:
            out.append(ev(seq, "message", message={"id": "not a message"}))
    return out


def prepare(s: Store) -> None:
    """History, a deleted stretch, and local sends waiting for their echo."""
    s.apply_sync([mev(1, msg(1, remote=BOB)), mev(2, msg(2, remote=CAROL))], 2)
    s.apply_sync([ev(3, "delete_conversation", number=OWN, remote=CAROL, up_to=4)], 3)
    for sid in (3, 5, 9):
        s.enqueue_send(f"local{sid}", OWN, REMOTES[sid % 3], f"local {sid}", now=100.0 + sid)


def prepared(path: Path) -> tuple[Store, list[LocalEvent]]:
    """A store as `prepare` leaves it (a copy of one made once), and the events it logs
    from now on."""
    s = copied_store(path, "prepared")
    events: list[LocalEvent] = []
    s.on_events = events.extend
    return s, events


@contextlib.contextmanager
def store_errors() -> Iterator[list[logging.LogRecord]]:
    """The ERROR records the store logs meanwhile (hypothesis tests cannot take caplog)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.ERROR)
    logger = logging.getLogger("glosmsd.daemon.store")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


# Issue 12 item 1: the same server id twice in one catch-up batch, the first an echo of a
# local send, failed the batch with "UNIQUE constraint failed: messages.server_id".
@example(ops=[("msg", 1, 0, "in", False), ("msg", 3, 0, "out", True), ("msg", 3, 0, "in", False)])
@given(SYNC_OPS)
def test_a_batch_merges_as_its_events_one_by_one(ops: list[tuple[Any, ...]]) -> None:
    # apply_sync merges runs of message events together; the result must be what the
    # same events give one batch at a time: rows, ids, search index and logged events,
    # without falling back to one by one (the store logs an error when it has to).
    batch = [*sync_events(ops), mev(100, msg(50, "last"))]
    assert all(e["seq"] > 3 for e in batch)
    with tempfile.TemporaryDirectory() as d, store_errors() as errors:
        one, one_events = prepared(Path(d) / "one.db")
        each, each_events = prepared(Path(d) / "each.db")
        try:
            one.apply_sync(batch, 100)
            for e in batch:
                each.apply_sync([e], e["seq"])
            assert [r.getMessage() for r in errors] == []
            assert one.skipped_events()["count"] == 0
            assert dump(Path(d) / "one.db") == dump(Path(d) / "each.db")

            def logged(events: list[LocalEvent]) -> list[tuple[str, Any]]:
                return [(e.kind, e.data) for e in events if e.kind != "unread"]

            assert logged(one_events) == logged(each_events)
            assert [e.id for e in one_events] == sorted({e.id for e in one_events})
            assert one.unread().total == each.unread().total
            assert [m.id for m in one.search("text").messages] == [
                m.id for m in each.search("text").messages
            ]
        finally:
            one.close()
            each.close()


def test_an_echo_and_a_repeat_of_its_server_id_in_one_batch(store: Store) -> None:
    # Issue 12 item 1 as a user meets it: a local send, then a catch-up holding its echo
    # and the same server id again. The batch applies (it failed on every reconnect, so
    # sync never moved past it) and the send stays one row.
    local = store.enqueue_send("local3", OWN, BOB, "on my way")
    batch = [
        mev(10, msg(1, "hi")),
        mev(11, msg(3, "on my way", direction="out", client_id="local3")),
        mev(12, msg(3, "on my way", direction="out")),
    ]
    store.apply_sync(batch, 12)
    assert store.cursor() == 12
    conv = store.conversation_by_remote(OWN, BOB)
    assert conv is not None
    rows = store.messages(conv.id)
    assert [(m.id, m.server_id) for m in rows] == [(local.id, 3), (rows[1].id, 1)]
    assert store.outbox_items() == []


# ---------------------------------------------------------------------------- poison events

SURROGATE = "\udc80"  # valid JSON ("\\udc80"), but no UTF-8 text: SQLite cannot bind it


def poison_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name == "glosmsd.daemon.store"
    ]


@pytest.mark.parametrize(
    "poison",
    [
        pytest.param(mev(2, msg(2, f"bad {SURROGATE} text")), id="text"),
        pytest.param(
            mev(2, msg(2, "file", files=[{"sha256": SHA, "name": f"{SURROGATE}.png"}])),
            id="file-name",
        ),
        pytest.param(ev(2, "read", number=OWN, remote=f"+1555{SURROGATE}", up_to=1), id="read"),
    ],
)
def test_an_event_that_cannot_be_stored_is_named_and_skipped(
    store: Store, caplog: pytest.LogCaptureFixture, poison: dict[str, Any]
) -> None:
    # Issue 12 item 1 / issue 13 item 11: one event SQLite refuses must not hold back the
    # batch (the link would reconnect and be sent the same batch forever).
    batch = [mev(1, msg(1, "before")), poison, mev(3, msg(3, "after")), mev(4, msg(4, "last"))]
    caplog.set_level(logging.ERROR, logger="glosmsd.daemon.store")
    evs = store.apply_sync(batch, 4)
    assert store.cursor() == 4
    conv = store.conversation_by_remote(OWN, BOB)
    assert conv is not None
    assert [m.text for m in store.messages(conv.id)] == ["last", "after", "before"]
    assert [e.kind for e in evs] == ["message", "message", "message", "unread"]
    skipped = store.skipped_events()
    assert skipped["count"] == 1
    assert [(s["seq"], s["kind"]) for s in skipped["last"]] == [(2, poison["kind"])]
    logs = poison_logs(caplog)
    assert len(logs) == 1
    assert f"Event 2 ({poison['kind']}) from the server could not be stored" in logs[0]
    assert "skipped" in logs[0]
    # The same batch again (a reconnect): nothing new, nothing logged.
    caplog.clear()
    assert store.apply_sync(batch, 4) == []
    assert poison_logs(caplog) == []


def test_a_poison_event_alone_or_in_a_snapshot_is_skipped(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="glosmsd.daemon.store")
    # A pushed event on its own: the cursor still moves past it.
    assert store.apply_sync([mev(5, msg(5, SURROGATE))], 5) == []
    assert store.cursor() == 5
    # A snapshot (every event has the same seq): only the one event goes.
    snapshot = [mev(9, msg(1, "one")), mev(9, msg(2, SURROGATE)), mev(9, msg(3, "three"))]
    evs = store.apply_sync(snapshot, 9, reset=True)
    assert [e.kind for e in evs] == ["reset", "unread"]
    conv = store.conversation_by_remote(OWN, BOB)
    assert conv is not None
    assert [m.server_id for m in store.messages(conv.id)] == [3, 1]
    skipped = store.skipped_events()
    assert (skipped["count"], [s["seq"] for s in skipped["last"]]) == (2, [5, 9])
    assert len(poison_logs(caplog)) == 2
    # Only the last few are kept, the count goes on.
    for seq in range(10, 40):
        store.apply_sync([mev(seq, msg(seq, SURROGATE))], seq)
    skipped = store.skipped_events()
    assert skipped["count"] == 32
    assert [s["seq"] for s in skipped["last"]] == list(range(20, 40))
