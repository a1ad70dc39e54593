"""Changes the user makes here: marking read and deleting, and what the server must hear.

Each takes effect here at once and returns what to tell the server; what cannot be told
yet (the server is unreachable) is kept as a pending op, in order, until it can. A send
still on its way cannot be deleted: it is on its way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from glosmsd.core.errors import BadInput, NotFound
from glosmsd.daemon.store.incoming import dumps
from glosmsd.daemon.store.records import Records
from glosmsd.daemon.store.rows import ConversationRef, ReadMark


class LocalChanges(Records):
    """Read marks and deletions made here, and the pending ops for the server."""

    def mark_read_local(self, conversation_id: int | None = None) -> list[ReadMark]:
        """Mark one conversation (or, with None, every one) read here, at once.

        Returns, for each conversation that had unread messages, what to send the
        server; its `read` event later confirms the mark on every device.
        """
        with self._write() as db:
            before = self._unread_counts()
            if conversation_id is not None:
                if (
                    db.execute(
                        "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
                    ).fetchone()
                    is None
                ):
                    raise NotFound(f"No conversation {conversation_id}.")
                targets = [conversation_id] if conversation_id in before else []
            else:
                targets = sorted(before)
            marks: list[ReadMark] = []
            for cid in targets:
                row = db.execute(
                    "SELECT c.number, c.remote, max(m.server_id) FROM conversations c "
                    "JOIN messages m ON m.conversation_id = c.id WHERE c.id = ?",
                    (cid,),
                ).fetchone()
                up_to = int(row[2])
                self._raise_read_mark(cid, up_to, here=True)
                marks.append(ReadMark(cid, row[0], row[1], up_to))
            self._settle_unread(before)
            return marks

    def mark_unread_local(self, conversation_id: int) -> int:
        """Make a conversation's newest incoming message unread again, here only (the
        server's read marks only move forward); returns the conversation's unread count.

        Opening it here clears it, and so does a read from another device that reaches
        past the read position it was marked from (a newer message read there). A read
        at or below that position arriving later (the echo of this device's own read, or
        another device's from before the mark) was already seen here and leaves it unread.
        """
        with self._write() as db:
            before = self._unread_counts()
            row = db.execute(
                "SELECT c.read_up_to, (SELECT max(server_id) FROM messages m "
                "WHERE m.conversation_id = c.id AND m.direction = 'in') "
                "FROM conversations c WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"No conversation {conversation_id}.")
            read_up_to, newest_in = row[0], row[1]
            if newest_in is None:
                raise BadInput(
                    "Nothing to mark as unread: nothing has come in in this conversation yet."
                )
            if read_up_to >= newest_in:
                # Server ids grow, so exactly the newest incoming message is above this.
                up_to = int(newest_in) - 1
                # The old mark is remembered: a read up to it was seen here before this
                # mark, so one arriving later is late, not news (`_raise_read_mark`).
                db.execute(
                    "UPDATE conversations SET read_up_to = ?, "
                    "unread_mark = max(unread_mark, read_up_to) WHERE id = ?",
                    (up_to, conversation_id),
                )
                self._unread.mark(conversation_id)
                self._append("read", {"conversation_id": conversation_id, "up_to": up_to})
            self._settle_unread(before)
            count = db.execute(
                "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "WHERE c.id = ? AND m.direction = 'in' AND m.server_id > c.read_up_to",
                (conversation_id,),
            ).fetchone()[0]
            return int(count)

    def delete_message_local(self, local_id: int) -> int | None:
        """Delete a message here at once; returns the server id to delete, if it has one.

        A message still being sent cannot be deleted yet (it is on its way).
        """
        with self._write() as db:
            before = self._unread_counts()
            row = db.execute(
                "SELECT id, conversation_id, server_id, state FROM messages WHERE id = ?",
                (local_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"No message {local_id}.")
            if row["state"] == "sending" and row["server_id"] is None:
                raise BadInput(
                    "This message is still being sent; delete it once it is sent or failed."
                )
            db.execute("DELETE FROM messages WHERE id = ?", (local_id,))
            self._unread.mark(row["conversation_id"])
            self._touch(row["conversation_id"])
            self._append(
                "deleted", {"conversation_id": row["conversation_id"], "message_ids": [local_id]}
            )
            self._settle_unread(before)
            return None if row["server_id"] is None else int(row["server_id"])

    def delete_conversation_local(self, conversation_id: int) -> ConversationRef:
        """Delete a conversation here at once; returns what to send the server.

        Every message goes except sends still on their way (they arrive after the
        deletion on the server too, so they would bring the conversation back anyway).
        """
        with self._write() as db:
            before = self._unread_counts()
            conv = db.execute(
                "SELECT number, remote FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if conv is None:
                raise NotFound(f"No conversation {conversation_id}.")
            top = db.execute(
                "SELECT max(server_id) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()[0]
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM messages WHERE conversation_id = ? AND "
                    "(server_id IS NOT NULL OR state != 'sending')",
                    (conversation_id,),
                )
            ]
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND "
                "(server_id IS NOT NULL OR state != 'sending')",
                (conversation_id,),
            )
            self._unread.mark(conversation_id)
            if top is not None:
                db.execute(
                    "UPDATE conversations SET deleted_up_to = max(deleted_up_to, ?) WHERE id = ?",
                    (top, conversation_id),
                )
            self._touch(conversation_id)
            db.execute("DELETE FROM drafts WHERE conversation_id = ?", (conversation_id,))
            self._append(
                "deleted",
                {"conversation_id": conversation_id, "message_ids": ids, "conversation": True},
            )
            self._settle_unread(before)
            return ConversationRef(
                conversation_id, conv["number"], conv["remote"], None if top is None else int(top)
            )

    # ------------------------------------------------------------------ pending server ops

    def add_pending_op(self, method: str, params: Mapping[str, Any]) -> int:
        """Keep a change the server must hear once it is reachable; returns its id."""
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO pending_ops (method, params) VALUES (?, ?)",
                (method, dumps(dict(params))),
            )
            return int(cur.lastrowid or 0)

    def pending_ops(self, limit: int = 500) -> list[tuple[int, str, dict[str, Any]]]:
        """The kept changes, oldest first: (id, method, params)."""
        return [
            (int(r[0]), str(r[1]), json.loads(r[2]))
            for r in self._conn.execute(
                "SELECT id, method, params FROM pending_ops ORDER BY id LIMIT ?", (limit,)
            )
        ]

    def remove_pending_op(self, op_id: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM pending_ops WHERE id = ?", (op_id,))
