"""glosmsd/daemon/store/convkeys.py: conversations matched in memory exactly as SQL's
`instr` matched them, and the store keeping its keys up to date.

The oracle is SQLite itself: the `instr` query the search ran before the keys were kept
in memory, on the same rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from glosmsd.daemon.store import Store
from glosmsd.daemon.store.convkeys import ConversationKeys

OWN = "+15550001001"

_KEY = st.text(alphabet="ab1\x00é+", max_size=6)
_ROWS = st.lists(st.tuples(_KEY, _KEY, st.text(alphabet="15\x00", max_size=5)), max_size=12)
_WORDS = st.lists(st.text(alphabet="ab1\x00é", min_size=1, max_size=3), max_size=3)
_NEEDLES = st.lists(st.text(alphabet="15", min_size=1, max_size=3), max_size=2)


def _instr_ids(
    rows: list[tuple[int, str, str, str]], words: list[str], needles: list[str]
) -> set[int]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, name_key, remote, remote_digits)")
    conn.executemany("INSERT INTO c VALUES (?, ?, ?, ?)", rows)
    clauses = ["instr(remote_digits, ?) > 0" for _ in needles]
    params: list[Any] = list(needles)
    if words:
        clauses.append(
            "("
            + " AND ".join("(instr(name_key, ?) > 0 OR instr(remote, ?) > 0)" for _ in words)
            + ")"
        )
        for w in words:
            params += [w, w]
    if not clauses:
        return set()
    sql = f"SELECT id FROM c WHERE {' OR '.join(clauses)}"
    found = {r[0] for r in conn.execute(sql, params)}
    conn.close()
    return found


@settings(max_examples=300)
@given(_ROWS, _WORDS, _NEEDLES)
@example([("ab", "+1", "15")] * 300, ["a"], [])  # past the find limit: tested one by one
@example([("a\x00b", "", "")], ["\x00"], [])  # a separator in a word
def test_matching_is_sqls_instr(
    keys: list[tuple[str, str, str]], words: list[str], needles: list[str]
) -> None:
    rows = [(i + 1, *k) for i, k in enumerate(keys)]
    got = ConversationKeys(rows).matching(words, needles)
    assert len(got) == len(set(got))
    assert set(got) == _instr_ids(rows, words, needles)


def msg(mid: int, remote: str, text: str = "hi") -> dict[str, Any]:
    return {
        "seq": mid,
        "kind": "message",
        "at": float(mid),
        "message": {
            "id": mid,
            "client_id": None,
            "number": OWN,
            "remote": remote,
            "direction": "in",
            "text": text,
            "state": "sent",
            "reason": None,
            "at": float(mid),
            "files": [],
            "sender": None,
        },
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "glosmsd.db")
    yield s
    s.close()


def remotes(store: Store, text: str) -> list[str]:
    return [c.remote for c in store.search(text).conversations]


def test_a_new_conversation_is_found_after_an_earlier_search(store: Store) -> None:
    store.apply_sync([msg(1, "+15557654321")], 1)
    assert remotes(store, "765") == ["+15557654321"]
    assert remotes(store, "111") == []
    store.apply_sync([msg(2, "+15551112222")], 2)
    assert remotes(store, "111") == ["+15551112222"]
    assert remotes(store, "555") == ["+15551112222", "+15557654321"]


def test_renamed_conversations_are_found_by_their_new_names(store: Store) -> None:
    store.apply_sync([msg(1, "+15557654321")], 1)
    assert remotes(store, "bob") == []
    store.replace_contacts(
        [{"id": 1, "name": "Bob", "numbers": [{"label": "", "number": "+15557654321"}]}]
    )
    assert remotes(store, "bob") == ["+15557654321"]
    store.replace_contacts([])
    assert remotes(store, "bob") == []


def test_another_connections_commit_is_seen(store: Store, tmp_path: Path) -> None:
    store.apply_sync([msg(1, "+15557654321")], 1)
    assert remotes(store, "111") == []
    other = Store.open(tmp_path / "glosmsd.db")
    try:
        other.apply_sync([msg(2, "+15551112222")], 2)
        other.replace_contacts(
            [{"id": 1, "name": "Bob", "numbers": [{"label": "", "number": "+15557654321"}]}]
        )
    finally:
        other.close()
    assert remotes(store, "111") == ["+15551112222"]
    assert remotes(store, "bob") == ["+15557654321"]


def _create_then_fail(store: Store, remote: str) -> None:
    with store._write():
        store._conversation_id(OWN, remote)
        raise RuntimeError


def test_a_rolled_back_conversation_is_not_found(store: Store) -> None:
    store.apply_sync([msg(1, "+15557654321")], 1)
    assert remotes(store, "555") == ["+15557654321"]
    with pytest.raises(RuntimeError):
        _create_then_fail(store, "+15551112222")
    assert remotes(store, "555") == ["+15557654321"]
    assert remotes(store, "111") == []


def test_many_matches_come_in_activity_order_up_to_the_limit(store: Store) -> None:
    store.apply_sync([msg(i, f"+1555{i:07d}") for i in range(1, 301)], 300)
    found = [c.remote for c in store.search("+1555", limit=20).conversations]
    assert found == [f"+1555{i:07d}" for i in range(300, 280, -1)]
    few = [c.remote for c in store.search("000001", limit=20).conversations]
    assert few == [f"+1555{i:07d}" for i in (19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 1)]
