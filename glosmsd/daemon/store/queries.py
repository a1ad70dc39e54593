"""What the store answers: messages, conversations, unread, search, and the export's reads.

Search is safe for any input: words become quoted FTS5 terms (the last a prefix), and a
query that looks like a phone number also matches numbers by their digits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from glosmsd.core.errors import NotFound
from glosmsd.core.search import fold, fts_query, phone_needles, terms
from glosmsd.daemon.store.contacts import Contacts
from glosmsd.daemon.store.convkeys import ConversationKeys
from glosmsd.daemon.store.incoming import dumps
from glosmsd.daemon.store.records import MESSAGE_SELECT
from glosmsd.daemon.store.rows import (
    ConversationRow,
    ExportedConversation,
    MessageRow,
    SearchResult,
    UnreadSummary,
)

#: Conversations a search matched past which walking the activity index beats looking
#: each one up (measured at 2,000: 15 matches 0.04 against 0.23 ms, 500 0.31 against 0.11).
_LOOKUP_MAX: Final = 100


class Queries(Contacts):
    """The reads."""

    def message(self, local_id: int) -> MessageRow | None:
        return self._message(local_id)

    def message_by_client_id(self, client_id: str) -> MessageRow | None:
        row = self._conn.execute(
            "SELECT id FROM messages WHERE client_id = ?", (client_id,)
        ).fetchone()
        return None if row is None else self._message(int(row[0]))

    def conversation(self, conversation_id: int) -> ConversationRow | None:
        return self._conversation(conversation_id)

    def conversation_by_remote(self, number: str, remote: str) -> ConversationRow | None:
        row = self._conn.execute(
            "SELECT id FROM conversations WHERE number = ? AND remote = ?", (number, remote)
        ).fetchone()
        return None if row is None else self._conversation(int(row[0]))

    def conversations(self, limit: int = 50, offset: int = 0) -> list[ConversationRow]:
        """Conversations with visible messages, most recent activity first."""
        with self._read():
            return self._list_conversations(
                "WHERE c.last_at IS NOT NULL ORDER BY c.last_at DESC, c.id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )

    def messages(
        self, conversation_id: int, before: int | None = None, limit: int = 50
    ) -> list[MessageRow]:
        """A page of a conversation's messages, newest first, older than message `before`."""
        with self._read() as db:
            if before is None:
                rows = db.execute(
                    MESSAGE_SELECT
                    + "WHERE m.conversation_id = ? ORDER BY m.at DESC, m.id DESC LIMIT ?",
                    (conversation_id, limit),
                ).fetchall()
            else:
                anchor = db.execute(
                    "SELECT at FROM messages WHERE id = ? AND conversation_id = ?",
                    (before, conversation_id),
                ).fetchone()
                if anchor is None:
                    raise NotFound(f"No message {before} in conversation {conversation_id}.")
                rows = db.execute(
                    MESSAGE_SELECT + "WHERE m.conversation_id = ? AND (m.at, m.id) < (?, ?) "
                    "ORDER BY m.at DESC, m.id DESC LIMIT ?",
                    (conversation_id, anchor[0], before, limit),
                ).fetchall()
            return self._messages_from(rows)

    def unread(self) -> UnreadSummary:
        with self._read():
            counts = self._unread_counts()
            if not counts:
                return UnreadSummary(0, ())
            marks = ",".join("?" * len(counts))
            convs = self._list_conversations(
                f"WHERE c.id IN ({marks}) AND c.last_at IS NOT NULL "
                "ORDER BY c.last_at DESC, c.id DESC",
                list(counts),
            )
            return UnreadSummary(sum(counts.values()), tuple((c, c.unread) for c in convs))

    def has_history(self) -> bool:
        return bool(self._conn.execute("SELECT EXISTS (SELECT 1 FROM messages)").fetchone()[0])

    # ------------------------------------------------------------------ search

    def search(self, text: str, limit: int = 20) -> SearchResult:
        """Contacts, conversations and messages matching what the user typed.

        Safe for any input: words become quoted FTS5 terms (the last a prefix), and a
        query that looks like a phone number also matches numbers by their digits.
        """
        with self._read():
            contacts = self._find_contacts(text, limit)
            conversations = self._find_conversations(text, limit)
            messages: list[MessageRow] = []
            query = fts_query(text)
            if query is not None:
                rows = self._conn.execute(
                    MESSAGE_SELECT  # noqa: S608 (constant text)
                    + "WHERE m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? "
                    "ORDER BY rowid DESC LIMIT ?) ORDER BY m.id DESC",
                    (query, limit),
                ).fetchall()
                messages = self._messages_from(rows)
            return SearchResult(tuple(contacts), tuple(conversations), tuple(messages))

    def _find_conversations(self, text: str, limit: int) -> list[ConversationRow]:
        """Conversations with a phone needle of `text` in their number's digits, or with
        every word of it in their contact name or their number (substrings)."""
        words = [fold(w) for w in terms(text)]
        needles = phone_needles(text)
        if not words and not needles:
            return []
        ids = self._conversation_keys().matching(words, needles)
        if not ids:
            return []
        # A few: each looked up and sorted. Many: the activity index walked in order until
        # `limit` of them (`+c.id` keeps SQLite from looking each one up).
        pick = "c.id" if len(ids) <= _LOOKUP_MAX else "+c.id"
        return self._list_conversations(
            f"WHERE {pick} IN (SELECT value FROM json_each(?)) AND c.last_at IS NOT NULL "  # noqa: S608
            "ORDER BY c.last_at DESC, c.id DESC LIMIT ?",
            (dumps(ids), limit),
        )

    def _conversation_keys(self) -> ConversationKeys:
        """The search keys of every conversation (inside a read: of its snapshot)."""
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        cached = self._conv_keys
        if cached is not None and cached[0] == version:
            return cached[1]
        cur = self._conn.cursor()
        cur.row_factory = None
        keys = ConversationKeys(
            cur.execute("SELECT id, name_key, remote, remote_digits FROM conversations")
        )
        self._conv_keys = (version, keys)
        return keys

    # ------------------------------------------------------------------ export

    def export_conversation(self, conversation_id: int) -> ExportedConversation | None:
        """One conversation with all its messages, oldest first."""
        with self._read() as db:
            conv = self._conversation(conversation_id)
            if conv is None:
                return None
            rows = db.execute(
                MESSAGE_SELECT + "WHERE m.conversation_id = ? ORDER BY m.at, m.id",
                (conversation_id,),
            ).fetchall()
            return ExportedConversation(conv, tuple(self._messages_from(rows)))

    def export_ids(self) -> list[int]:
        """Ids of the conversations that have messages, most recent first."""
        return [
            r[0]
            for r in self._conn.execute(
                "SELECT id FROM conversations WHERE last_at IS NOT NULL "
                "ORDER BY last_at DESC, id DESC"
            )
        ]

    def export_rows(self) -> Iterator[ExportedConversation]:
        """Every conversation with its messages, one at a time (memory stays small)."""
        for cid in self.export_ids():
            item = self.export_conversation(cid)
            if item is not None:
                yield item
