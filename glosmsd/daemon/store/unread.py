"""Unread counts per conversation, kept up to date by the writes instead of counted per read.

Unread = an incoming message whose server id is above its conversation's read mark (and
that is not deleted: deleted messages are gone from the table). A full count is a few ms
at 2,000 conversations, too much to pay for every pushed event and every conversation
list, so `UnreadBook` keeps the counts of the last commit and a write marks the
conversations whose counts it may change; only those are counted again. A write that
knows exactly what it adds (a new incoming message above its conversation's read mark)
says so with `add`, and that conversation is not counted at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

_COUNT = """SELECT c.id, (SELECT count(*) FROM messages u
       WHERE u.conversation_id = c.id AND u.direction = 'in'
         AND u.server_id > c.read_up_to) AS n
   FROM conversations c WHERE c.last_at IS NOT NULL"""


def count_all(conn: sqlite3.Connection) -> dict[int, int]:
    """Every conversation's unread count, from SQL (conversations with none left out)."""
    return {r[0]: r[1] for r in conn.execute(_COUNT).fetchall() if r[1]}


def count_some(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, int]:
    """The unread counts of the conversations `ids`, from SQL."""
    wanted = sorted(ids)
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(f"{_COUNT} AND c.id IN ({marks})", wanted).fetchall()
    return {r[0]: r[1] for r in rows}


class UnreadBook:
    """The unread counts as of the last commit, and what the open write may have changed."""

    def __init__(self) -> None:
        # None: not known (count on demand). Dirty None: any conversation may have changed.
        self.cached: dict[int, int] | None = None
        self._dirty: set[int] | None = set()
        # Unread messages this write added, by conversation (not counted again).
        self._added: dict[int, int] = {}
        self._next: dict[int, int] | None = None

    def begin(self) -> None:
        """A write transaction starts."""
        self._dirty = set()
        self._added = {}
        self._next = None

    def add(self, conversation_id: int, n: int = 1) -> None:
        """This write added `n` unread messages to a conversation, and changed nothing
        else there that counts (a conversation also `mark`ed is counted again)."""
        self._added[conversation_id] = self._added.get(conversation_id, 0) + n

    def mark(self, conversation_id: int | None) -> None:
        """This write may change the unread count of a conversation (None: of any)."""
        if conversation_id is None:
            self._dirty = None
        elif self._dirty is not None:
            self._dirty.add(conversation_id)

    def counts(self, conn: sqlite3.Connection) -> dict[int, int]:
        """Counts as of the last commit (in a write: ask before changing anything)."""
        if self.cached is None:
            self.cached = count_all(conn)
        return self.cached

    def settle(self, conn: sqlite3.Connection, before: Mapping[int, int]) -> dict[int, int] | None:
        """Count what the write changed; the new counts when they differ from `before`."""
        if self._dirty is None:
            after = count_all(conn)
        else:
            after = dict(before)
            counts = count_some(conn, self._dirty) if self._dirty else {}
            for cid in self._dirty:
                n = counts.get(cid, 0)
                if n:
                    after[cid] = n
                else:
                    after.pop(cid, None)
            for cid, n in self._added.items():
                if cid not in self._dirty:
                    after[cid] = after.get(cid, 0) + n
        self._dirty = set()
        self._added = {}
        self._next = after
        return None if after == before else after

    def committed(self) -> None:
        """The write committed: keep the settled counts, or forget what is not known."""
        if self._dirty is None or self._dirty or self._added:
            self.cached = None  # changed and not counted again: count on demand
        elif self._next is not None:
            self.cached = self._next
