"""Drafts: what the user typed in a conversation and has not sent, one per conversation.

Kept here, on this device only (never sent to the server), so a draft outlives the SMS
window and the quick-send popup being closed. A blank text removes the draft; deleting
the conversation deletes it too (`local.LocalChanges.delete_conversation_local`).
"""

from __future__ import annotations

import time

from glosmsd.core.errors import NotFound
from glosmsd.daemon.store.records import Records
from glosmsd.daemon.store.rows import Draft


class Drafts(Records):
    def draft(self, conversation_id: int) -> Draft:
        """The conversation's draft (empty text and no time when there is none)."""
        row = self._conn.execute(
            "SELECT text, at FROM drafts WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        if row is not None:
            return Draft(conversation_id, row[0], row[1])
        self._require_conversation(conversation_id)
        return Draft(conversation_id, "", None)

    def set_draft(self, conversation_id: int, text: str, *, now: float | None = None) -> Draft:
        """Keep `text` as the conversation's draft; an empty (or blank) text removes it."""
        when = time.time() if now is None else now
        with self._write() as db:
            self._require_conversation(conversation_id)
            if not text.strip():
                db.execute("DELETE FROM drafts WHERE conversation_id = ?", (conversation_id,))
                return Draft(conversation_id, "", None)
            db.execute(
                "INSERT INTO drafts (conversation_id, text, at) VALUES (?, ?, ?) "
                "ON CONFLICT (conversation_id) DO UPDATE SET text = excluded.text, "
                "at = excluded.at",
                (conversation_id, text, when),
            )
            return Draft(conversation_id, text, when)

    def drafts(self) -> list[Draft]:
        """Every draft, the most recently typed first."""
        rows = self._conn.execute(
            "SELECT conversation_id, text, at FROM drafts ORDER BY at DESC, conversation_id"
        ).fetchall()
        return [Draft(r[0], r[1], r[2]) for r in rows]

    def _require_conversation(self, conversation_id: int) -> None:
        found = self._conn.execute(
            "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if found is None:
            raise NotFound(f"No conversation {conversation_id}.")
