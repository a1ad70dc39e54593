"""What the store answers: messages, conversations, unread, search, and the export's reads.

Search is safe for any input: words become quoted FTS5 terms (the last a prefix), and a
query that looks like a phone number also matches numbers by their digits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from glosmsd.core.errors import NotFound
from glosmsd.core.search import fold, fts_query, phone_needles, terms
from glosmsd.daemon.store.contacts import Contacts
from glosmsd.daemon.store.records import MESSAGE_SELECT
from glosmsd.daemon.store.rows import (
    ConversationRow,
    ExportedConversation,
    MessageRow,
    SearchResult,
    UnreadSummary,
)


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
        words = [fold(w) for w in terms(text)]
        needles = phone_needles(text)
        if not words and not needles:
            return []
        clauses: list[str] = []
        params: list[Any] = []
        for needle in needles:
            clauses.append("instr(c.remote_digits, ?) > 0")
            params.append(needle)
        if words:
            # Every word must be in the contact name or the number.
            per_word = " AND ".join(
                "(instr(c.name_key, ?) > 0 OR instr(c.remote, ?) > 0)" for _ in words
            )
            clauses.append(f"({per_word})")
            for w in words:
                params += [w, w]
        # `+last_at`: a plain scan of a few thousand rows beats walking the activity index.
        return self._list_conversations(
            f"WHERE +c.last_at IS NOT NULL AND ({' OR '.join(clauses)}) "
            "ORDER BY c.last_at DESC, c.id DESC LIMIT ?",
            (*params, limit),
        )

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
