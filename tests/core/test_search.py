"""Tests for glosmsd/core/search.py: the FTS5 query builder, against a real FTS5 table too."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glosmsd.core.search import (
    MAX_TERM_CHARS,
    MAX_TERMS,
    digits_of,
    fold,
    fts_query,
    phone_digits,
    phone_needles,
    phone_tail,
    terms,
)


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE t USING fts5 (body, tokenize = 'unicode61 remove_diacritics 2', "
        "prefix = '2 3')"
    )
    conn.executemany(
        "INSERT INTO t (body) VALUES (?)",
        [
            ("hello world",),
            ("say NEAR the door",),
            ("café au lait",),
            ("call me at 555-1234",),
            ('she said "hi" (twice)',),
        ],
    )
    yield conn
    conn.close()


def match(conn: sqlite3.Connection, text: str) -> list[str]:
    q = fts_query(text)
    if q is None:
        return []
    return [r[0] for r in conn.execute("SELECT body FROM t WHERE t MATCH ? ORDER BY rowid", (q,))]


def test_terms_are_quoted_and_last_is_prefix() -> None:
    assert fts_query("hello wor") == '"hello" "wor"*'
    assert fts_query('say "hi" NEAR(x') == '"say" "hi" "NEAR" "x"*'


@pytest.mark.parametrize(
    "text",
    ["", "   ", '"', "()", "*", "^", ":", "-", "AND", "\x00", "\x01\x02", "😀🎉", '""""', "+-*/"],
)
def test_nothing_searchable_gives_none_or_a_safe_query(text: str) -> None:
    q = fts_query(text)
    if q is not None:
        # Only the operator words survive, and as plain quoted strings.
        assert q.startswith('"')
    if text in ("AND",):
        assert q == '"AND"*'
    else:
        assert q is None


def test_operators_are_text(fts: sqlite3.Connection) -> None:
    assert match(fts, "say NEAR") == ["say NEAR the door"]
    assert match(fts, "NEAR(say door)") == ["say NEAR the door"]
    assert match(fts, "hello OR nothing") == []  # implicit AND: "or" and "nothing" must be there
    assert match(fts, "body:hello") == []  # "body" is a word here, not a column filter
    assert match(fts, "hello NOT") == []
    assert match(fts, '"hi" (twice') == ['she said "hi" (twice)']


def test_prefix_and_diacritics(fts: sqlite3.Connection) -> None:
    assert match(fts, "wo") == ["hello world"]
    assert match(fts, "cafe") == ["café au lait"]
    assert match(fts, "CAFÉ") == ["café au lait"]
    assert match(fts, "555 12") == ["call me at 555-1234"]


def test_limits() -> None:
    many = " ".join(f"w{i}" for i in range(100))
    assert len(terms(many)) == MAX_TERMS
    assert terms("x" * 1000) == ["x" * MAX_TERM_CHARS]


def test_fold() -> None:
    assert fold("ÉMILE Zoë") == "émile zoë"
    assert fold("Stra\u00dfe") == "strasse"
    assert fold("e\u0301") == "é"


def test_digits() -> None:
    assert digits_of("+1 (555) 765-4321") == "15557654321"
    assert digits_of("٥٥٥") == "555"
    assert digits_of("no digits") == ""
    assert phone_digits("+1 (555) 76") == "155576"
    assert phone_digits("555") == "555"
    assert phone_digits("55") is None
    assert phone_digits("room 101") is None
    assert phone_digits("") is None
    assert phone_needles("+1 (555) 76") == ["155576", "55576", "5576", "576"]
    assert phone_needles("555 76") == ["55576"]
    assert phone_needles("hello") == []
    assert phone_tail("+1 555 765 4321") == phone_tail("(555) 765-4321") == "5557654321"


@given(st.text(max_size=200))
def test_fts_query_never_makes_sqlite_raise(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5 (body, tokenize = 'unicode61')")
        conn.execute("INSERT INTO t (body) VALUES ('hello world')")
        q = fts_query(text)
        if q is None:
            assert terms(text) == []
            return
        conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (q,)).fetchone()
    finally:
        conn.close()


@given(
    st.lists(
        st.sampled_from(
            [
                '"',
                "(",
                ")",
                "*",
                ":",
                "^",
                "-",
                "+",
                " ",
                "AND",
                "OR",
                "NOT",
                "NEAR",
                "NEAR(",
                "a",
                "b1",
                "\x00",
                "{",
                "}",
                ",",
            ]
        ),
        max_size=30,
    )
)
def test_fts_query_safe_on_fts_syntax_soup(parts: list[str]) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5 (a, b)")
        q = fts_query("".join(parts))
        if q is not None:
            conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (q,)).fetchone()
    finally:
        conn.close()
