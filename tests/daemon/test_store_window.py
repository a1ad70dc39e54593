"""Tests for what glosmsd/daemon/store.py keeps for the SMS window: drafts, "Mark as
unread", and the name of a file by its sha256 (real SQLite files on disk)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.core import migrations
from glosmsd.core.errors import BadInput, NotFound
from glosmsd.daemon.store import SCHEMA, SCHEMA_VERSION, STEPS, Store
from tests.daemon.test_store import BOB, CAROL, OWN, SHA, ev, mev, msg


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "glosmsd.db")
    yield s
    s.close()


def conv_id(store: Store, remote: str = BOB) -> int:
    conv = store.conversation_by_remote(OWN, remote)
    assert conv is not None
    return conv.id


def test_a_draft_is_kept_per_conversation_and_blank_removes_it(store: Store) -> None:
    store.apply_sync([mev(1, msg(1)), mev(2, msg(2, remote=CAROL))], 2)
    bob, carol = conv_id(store), conv_id(store, CAROL)
    assert store.draft(bob).to_json() == {"conversation_id": bob, "text": "", "at": None}
    store.set_draft(bob, "See you at 🕛", now=10.0)
    store.set_draft(carol, "Call me", now=20.0)
    assert store.draft(bob).text == "See you at 🕛"
    assert [(d.conversation_id, d.text) for d in store.drafts()] == [
        (carol, "Call me"),
        (bob, "See you at 🕛"),
    ]
    store.set_draft(bob, "See you at noon", now=30.0)
    assert store.draft(bob).to_json() == {
        "conversation_id": bob,
        "text": "See you at noon",
        "at": 30.0,
    }
    store.set_draft(bob, "  \n ")
    assert store.draft(bob).text == ""
    assert [d.conversation_id for d in store.drafts()] == [carol]


def test_drafts_survive_reopening_and_go_with_their_conversation(tmp_path: Path) -> None:
    path = tmp_path / "glosmsd.db"
    with_store = Store.open(path)
    with_store.apply_sync([mev(1, msg(1))], 1)
    bob = conv_id(with_store)
    with_store.set_draft(bob, "half a thought")
    with_store.close()
    again = Store.open(path)
    try:
        assert again.draft(bob).text == "half a thought"
        again.delete_conversation_local(bob)
        assert again.drafts() == []
    finally:
        again.close()


def test_a_draft_needs_a_conversation(store: Store) -> None:
    with pytest.raises(NotFound, match="No conversation 42"):
        store.set_draft(42, "hello")
    with pytest.raises(NotFound, match="No conversation 42"):
        store.draft(42)


def test_the_drafts_migration_keeps_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, dataclasses.replace(SCHEMA, steps=STEPS[:2]), str(path))
    conn.close()
    s = Store.open(path)
    try:
        assert s.schema_version() == SCHEMA_VERSION >= 3
        s.apply_sync([mev(1, msg(1))], 1)
        assert s.set_draft(conv_id(s), "kept").text == "kept"
    finally:
        s.close()


def test_mark_unread_makes_the_newest_incoming_message_unread_here(store: Store) -> None:
    store.apply_sync(
        [mev(1, msg(1)), mev(2, msg(2)), mev(3, msg(3, direction="out", client_id="c"))], 3
    )
    bob = conv_id(store)
    store.mark_read_local(bob)
    last = store.last_event_id()
    assert store.mark_unread_local(bob) == 1
    assert store.unread().total == 1
    kinds = [(e.kind, dict(e.data)) for e in store.events_since(last)[0]]
    assert kinds == [
        ("read", {"conversation_id": bob, "up_to": 1}),
        ("unread", {"total": 1, "conversations": [{"id": bob, "count": 1}]}),
    ]
    # Already unread: nothing moves, nothing is logged.
    last = store.last_event_id()
    assert store.mark_unread_local(bob) == 1
    assert store.events_since(last)[0] == []
    # Opening it here clears it, as it clears any unread message.
    assert [m.up_to for m in store.mark_read_local(bob)] == [3]
    assert store.unread().total == 0


def test_a_late_read_does_not_undo_mark_unread_and_a_newer_one_does(store: Store) -> None:
    store.apply_sync([mev(1, msg(1)), mev(2, msg(2))], 2)
    bob = conv_id(store)
    store.mark_read_local(bob)  # up to 2; the server's echo of it is still on its way
    assert store.mark_unread_local(bob) == 1
    # The echo, and another device's read from before the mark, arrive after it: the
    # server ordered them before the mark (their read position is at most what was read
    # here), so it stays unread.
    store.apply_sync([ev(3, "read", number=OWN, remote=BOB, up_to=2)], 3)
    store.apply_sync([ev(4, "read", number=OWN, remote=BOB, up_to=1)], 4)
    assert store.unread().total == 1
    assert store.conversation(bob).unread == 1  # type: ignore[union-attr]
    # A newer message read on another device after the mark reads the conversation.
    store.apply_sync([mev(5, msg(5))], 5)
    assert store.unread().total == 2
    store.apply_sync([ev(6, "read", number=OWN, remote=BOB, up_to=5)], 6)
    assert store.unread().total == 0
    # The mark went with that read: marked again, then read elsewhere past it, read.
    assert store.mark_unread_local(bob) == 1
    store.apply_sync([mev(7, msg(7)), ev(8, "read", number=OWN, remote=BOB, up_to=7)], 8)
    assert store.unread().total == 0


def test_a_snapshot_s_read_marks_replace_a_local_unread_mark(store: Store) -> None:
    store.apply_sync([mev(1, msg(1)), mev(2, msg(2))], 2)
    bob = conv_id(store)
    store.mark_read_local(bob)
    store.mark_unread_local(bob)
    store.apply_sync(
        [mev(9, msg(1)), mev(9, msg(2)), ev(9, "read", number=OWN, remote=BOB, up_to=2)],
        9,
        reset=True,
    )
    assert store.unread().total == 0


def test_mark_unread_refuses_a_conversation_with_nothing_incoming(store: Store) -> None:
    store.apply_sync([mev(1, msg(1, direction="out", client_id="c"))], 1)
    with pytest.raises(BadInput, match="Nothing to mark as unread"):
        store.mark_unread_local(conv_id(store))
    with pytest.raises(NotFound):
        store.mark_unread_local(999)


def test_file_name_is_the_newest_message_s_name_for_that_file(store: Store) -> None:
    f1 = {"sha256": SHA, "name": "scan.pdf", "mime": "application/pdf", "size": 3}
    f2 = {**f1, "name": "scan again.pdf"}
    store.apply_sync([mev(1, msg(1, files=[f1])), mev(2, msg(2, files=[f2]))], 2)
    assert store.file_name(SHA) == "scan again.pdf"
    assert store.file_name("cd" * 32) is None
