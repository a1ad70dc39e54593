"""The outbox: accepted sends, durably queued until the server has them.

An accepted send (`enqueue_send`) commits its `sending` message row and its outbox row in
one transaction with `synchronous=FULL`, before the caller answers the user; the same
client id again returns the row it already made. The outbox row goes when the server
takes the send (`outbox_done`, which merges the server's MESSAGE like a sync does, or the
echo of it in a sync batch) or refuses it (`outbox_failed`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from glosmsd.core.errors import BadInput, NotFound
from glosmsd.daemon.store.incoming import IncomingMessage, dumps, local_files, valid_message
from glosmsd.daemon.store.merge import SyncMerge
from glosmsd.daemon.store.rows import MessageRow, OutboxItem


class OutboxRows(SyncMerge):
    """The outbox's rows, and the message rows of the sends in it."""

    def enqueue_send(
        self,
        client_id: str,
        number: str,
        remote: str,
        text: str,
        files: Sequence[Mapping[str, Any]] = (),
        *,
        now: float | None = None,
    ) -> MessageRow:
        """Accept a send: a `sending` message row and its outbox row, durably committed.

        The same `client_id` again returns the row it already made, adding nothing.
        """
        return self.accept_send(client_id, number, remote, text, files, now=now)[0]

    def accept_send(
        self,
        client_id: str,
        number: str,
        remote: str,
        text: str,
        files: Sequence[Mapping[str, Any]] = (),
        *,
        now: float | None = None,
    ) -> tuple[MessageRow, bool]:
        """`enqueue_send`, and whether the row is new (False: `client_id` had one already).

        The new row is built from what was written rather than read back (the send's
        reply waits for it)."""
        if not client_id or len(client_id) > 64:
            raise BadInput("client_id must be 1 to 64 characters.")
        when = time.time() if now is None else now
        with self._write(durable=True) as db:
            row = db.execute("SELECT id FROM messages WHERE client_id = ?", (client_id,)).fetchone()
            if row is not None:
                found = self._message(int(row[0]))
                assert found is not None
                return found, False
            cid = self._conversation_id(number, remote)
            values: dict[str, Any] = {
                "conversation_id": cid,
                "client_id": client_id,
                "direction": "out",
                "text": text,
                "state": "sending",
                "at": when,
                "files": dumps(local_files(files)),
            }
            local_id = self._insert_message(**values)
            db.execute(
                "INSERT INTO outbox (client_id, message_id, number, remote, text, files, next_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client_id,
                    local_id,
                    number,
                    remote,
                    text,
                    dumps(list(map(dict, files))),
                    when,
                    when,
                ),
            )
            # `_touch` without its query: the new row is the newest unless a message has a
            # later time (the server's clock ahead of this one); on a tie its id is larger.
            db.execute(
                "UPDATE conversations SET last_message_id = CASE WHEN last_at IS NULL "
                "OR last_at <= ? THEN ? ELSE last_message_id END, "
                "last_at = max(coalesce(last_at, 0), ?) WHERE id = ?",
                (when, local_id, when, cid),
            )
            (message,) = self._messages_from(
                [
                    {
                        **values,
                        "id": local_id,
                        "number": number,
                        "remote": remote,
                        "server_id": None,
                        "reason": None,
                        "sender": None,
                        "resent_as": None,
                    }
                ]
            )
            self._append("message", {"message": message.to_json()}, at=when)
            return message, True

    @staticmethod
    def _outbox_from(r: sqlite3.Row) -> OutboxItem:
        return OutboxItem(
            client_id=r["client_id"],
            order=r["seq"],
            message_id=r["message_id"],
            number=r["number"],
            remote=r["remote"],
            text=r["text"],
            files=tuple(json.loads(r["files"])),
            attempts=r["attempts"],
            next_at=r["next_at"],
            last_error=r["last_error"],
            created_at=r["created_at"],
        )

    def outbox_items(self) -> list[OutboxItem]:
        """Every queued send, oldest first (what the outbox loads at start)."""
        rows = self._conn.execute("SELECT * FROM outbox ORDER BY seq").fetchall()
        return [self._outbox_from(r) for r in rows]

    def outbox_item(self, client_id: str) -> OutboxItem | None:
        row = self._conn.execute(
            "SELECT * FROM outbox WHERE client_id = ?", (client_id,)
        ).fetchone()
        return None if row is None else self._outbox_from(row)

    def outbox_due(self, now: float, limit: int = 50) -> list[OutboxItem]:
        """Queued sends whose next attempt is due, soonest first, then oldest first."""
        rows = self._conn.execute(
            "SELECT * FROM outbox WHERE next_at <= ? ORDER BY next_at, seq LIMIT ?", (now, limit)
        ).fetchall()
        return [self._outbox_from(r) for r in rows]

    def outbox_defer(self, client_id: str, next_at: float, error: str | None) -> None:
        """A try failed for a reason worth retrying: count it and set the next attempt."""
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? "
                "WHERE client_id = ?",
                (next_at, error, client_id),
            )

    def outbox_update_files(self, client_id: str, files: Sequence[Mapping[str, Any]]) -> None:
        """Replace a queued send's file list (e.g. with sha256s once uploaded)."""
        with self._write() as db:
            row = db.execute(
                "SELECT message_id FROM outbox WHERE client_id = ?", (client_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"No queued send with client id {client_id}.")
            db.execute(
                "UPDATE outbox SET files = ? WHERE client_id = ?",
                (dumps(list(map(dict, files))), client_id),
            )
            db.execute(
                "UPDATE messages SET files = ? WHERE id = ?",
                (dumps(local_files(files)), row[0]),
            )

    def outbox_done(
        self, client_id: str, server_message: Mapping[str, Any], *, own_ext: str | None = None
    ) -> MessageRow | None:
        """The server took the send: merge its MESSAGE (server id, state) and dequeue it.

        Returns the merged row, or None when the message is gone (deleted meanwhile).
        """
        if not valid_message(server_message):
            raise BadInput(f"send reply for {client_id} is not a MESSAGE")
        msg = IncomingMessage.parse({**server_message, "client_id": client_id}, own_ext)
        assert msg is not None  # its shape was checked above
        with self._write() as db:
            touched: set[int] = set()
            before = self._unread_counts()
            self._merge_messages([msg], touched, quiet=False)
            db.execute("DELETE FROM outbox WHERE client_id = ?", (client_id,))
            self._touch_all(touched)
            self._settle_unread(before)
            row = db.execute("SELECT id FROM messages WHERE client_id = ?", (client_id,)).fetchone()
            return None if row is None else self._message(int(row[0]))

    def outbox_failed(self, client_id: str, reason: str) -> MessageRow | None:
        """The server refused the send: the message becomes `failed` with `reason`."""
        with self._write() as db:
            db.execute("DELETE FROM outbox WHERE client_id = ?", (client_id,))
            row = db.execute(
                "SELECT id, state, reason FROM messages WHERE client_id = ?", (client_id,)
            ).fetchone()
            if row is None:
                return None
            self._set_state(row, "failed", reason)
            return self._message(int(row["id"]))

    def resend(
        self, local_id: int, client_id: str, *, now: float | None = None
    ) -> tuple[MessageRow, OutboxItem | None]:
        """Queue a failed outgoing message again, under a new `client_id`; returns the
        message that goes and its outbox row (None: nothing new was queued).

        A message the server never took keeps its row (and local id) and goes back to
        `sending`; one the server has (failed by the carrier) stays as history and a
        new row is made, since the server answers an old client id with the old result.
        Either way the failed row's `resent_as` names the message it went again as, in the
        same transaction: asked again (a second window, the command line, a double click,
        also after a restart) it answers that message and queues nothing, never a copy.
        """
        when = time.time() if now is None else now
        with self._write(durable=True) as db:
            msg = self._message(local_id)
            if msg is None:
                raise NotFound(f"No message {local_id}.")
            if msg.direction == "out" and msg.resent_as is not None:
                again = msg if msg.resent_as == msg.id else self._message(msg.resent_as)
                if again is not None and not (again is msg and msg.state == "failed"):
                    return again, None
                # The copy was deleted (or failed again as itself): the user asks anew.
            if msg.direction != "out" or msg.state != "failed":
                raise BadInput(
                    f"Message {local_id} is {msg.state}; only a failed message can be resent."
                )
            files = [
                {k: v for k, v in f.to_json().items() if k != "state" and v is not None}
                for f in msg.files
            ]
            if msg.server_id is None:
                db.execute(
                    "UPDATE messages SET client_id = ?, state = 'sending', reason = NULL, at = ?, "
                    "resent_as = id WHERE id = ?",
                    (client_id, when, local_id),
                )
                new_id = local_id
                self._append(
                    "message_state",
                    {
                        "id": local_id,
                        "conversation_id": msg.conversation_id,
                        "state": "sending",
                        "reason": None,
                        "resent_as": local_id,
                    },
                )
            else:
                new_id = self._insert_message(
                    conversation_id=msg.conversation_id,
                    client_id=client_id,
                    direction="out",
                    text=msg.text,
                    state="sending",
                    at=when,
                    files=dumps(local_files(files)),
                )
                db.execute("UPDATE messages SET resent_as = ? WHERE id = ?", (new_id, local_id))
                fresh = self._message(new_id)
                assert fresh is not None
                self._append("message", {"message": fresh.to_json()})
                self._append(
                    "message_state",
                    {
                        "id": local_id,
                        "conversation_id": msg.conversation_id,
                        "state": "failed",
                        "reason": msg.reason,
                        "resent_as": new_id,
                    },
                )
            db.execute(
                "INSERT INTO outbox (client_id, message_id, number, remote, text, files, next_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (client_id, new_id, msg.number, msg.remote, msg.text, dumps(files), when, when),
            )
            self._touch(msg.conversation_id)
            item = self.outbox_item(client_id)
            sending = self._message(new_id)
            assert item is not None
            assert sending is not None
            return sending, item
