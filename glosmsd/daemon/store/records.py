"""Single rows of the main tables, read and written: what the merge, the outbox, the local
changes and the reads all share.

Messages come back as `MessageRow` with the download state of their files, conversations
as `ConversationRow` with their unread count and a preview of their newest message.
`_insert_message` is the one place besides the merge's batched insert that adds a
message, and both index the text in FTS5 themselves (see there).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any, Final, TypeVar

from glosmsd.core.search import digits_of, fold, phone_tail
from glosmsd.daemon.store.base import StoreBase
from glosmsd.daemon.store.incoming import sharer_from
from glosmsd.daemon.store.rows import ConversationRow, FileRow, MessageRow

T = TypeVar("T")

# The columns are `MessageRow`'s fields, in order (`_messages_from` reads them so).
_MESSAGE_COLUMNS: Final = (
    "id",
    "conversation_id",
    "number",
    "remote",
    "server_id",
    "client_id",
    "direction",
    "text",
    "state",
    "reason",
    "at",
    "sender",
    "files",
    "resent_as",
)
MESSAGE_SELECT: Final = (
    "SELECT m.id, m.conversation_id, c.number, c.remote, m.server_id, m.client_id, "
    "m.direction, m.text, m.state, m.reason, m.at, m.sender, m.files, m.resent_as "
    "FROM messages m "
    "JOIN conversations c ON c.id = m.conversation_id "
)

_CONVERSATION_SELECT: Final = """
    SELECT c.*,
        (SELECT count(*) FROM messages u
         WHERE u.conversation_id = c.id AND u.direction = 'in'
           AND u.server_id > c.read_up_to) AS unread,
        l.id AS last_message_id, l.text AS last_text, l.direction AS last_direction
    FROM conversations c
    LEFT JOIN messages l ON l.id = c.last_message_id
"""

# The list form: no unread subquery (the counts come from the unread bookkeeping, kept up
# to date by every write) and plain tuples; at 2,000 conversations the per-row count and
# the name lookups of `sqlite3.Row` were two thirds of the time.
_LIST_SELECT: Final = """
    SELECT c.id, c.number, c.remote, c.name, c.last_at, 0, c.read_up_to, c.deleted_up_to,
        l.id, l.text, l.direction
    FROM conversations c
    LEFT JOIN messages l ON l.id = c.last_message_id
"""

# A conversation's last activity and newest message, from its messages: `_touch`.
_LAST: Final = (
    "(SELECT at, id FROM messages WHERE conversation_id = conversations.id "
    "ORDER BY at DESC, id DESC LIMIT 1)"
)


# A list query's row as it is: `ConversationRow(*row)` without the argument parsing.
_as_conversation: Final = functools.partial(tuple.__new__, ConversationRow)


def chunks(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """`values` in slices small enough for one statement's parameters."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def marks(values: Sized) -> str:
    """`?,?,...`: one placeholder per value, for an `IN (...)`."""
    return ",".join("?" * len(values))


class Records(StoreBase):
    """Reading and writing one message or conversation at a time."""

    # ------------------------------------------------------------------ messages

    def _file_states(self, shas: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        wanted = sorted(set(shas))
        if not wanted:
            return {}
        rows = self._conn.execute(
            f"SELECT sha256, path, state FROM files WHERE sha256 IN ({marks(wanted)})",  # noqa: S608
            wanted,
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def _messages_from(
        self, rows: Sequence[sqlite3.Row | tuple[Any, ...] | Mapping[str, Any]]
    ) -> list[MessageRow]:
        """Message rows (the columns of `MESSAGE_SELECT`, in its order, or a mapping of the
        same names for a row just written) as `MessageRow`s with their files' download
        states."""
        # sqlite3.Row and tuple are concrete types: no ABC check per row.
        values = [
            r if isinstance(r, sqlite3.Row | tuple) else tuple(r[k] for k in _MESSAGE_COLUMNS)
            for r in rows
        ]
        # Most messages have no files: their column is "[]", not worth a JSON parse.
        raw_files = [() if v[12] == "[]" else json.loads(v[12]) for v in values]
        states = self._file_states(f["sha256"] for fl in raw_files for f in fl if f.get("sha256"))
        out: list[MessageRow] = []
        for v, fl in zip(values, raw_files, strict=True):
            files: list[FileRow] = []
            for f in fl:
                sha = f.get("sha256")
                path, state = states.get(sha, (None, "none")) if sha else (None, "none")
                if f.get("path"):
                    # A file of ours: it is here since we sent it.
                    path, state = f["path"], "done"
                files.append(
                    FileRow(sha, f.get("name") or "file", f.get("mime"), f.get("size"), path, state)
                )
            # By position: MessageRow's fields are MESSAGE_SELECT's columns, in order.
            mid, cid, number, remote, sid, client_id, direction, text, state, reason, at = v[:11]
            out.append(
                MessageRow(
                    mid,
                    cid,
                    number,
                    remote,
                    sid,
                    client_id,
                    direction,
                    text,
                    state,
                    reason,
                    at,
                    sharer_from(v[11]),
                    tuple(files),
                    v[13],
                )
            )
        return out

    def _message(self, local_id: int) -> MessageRow | None:
        rows = self._conn.execute(MESSAGE_SELECT + "WHERE m.id = ?", (local_id,)).fetchall()
        found = self._messages_from(rows)
        return found[0] if found else None

    def _insert_message(
        self,
        *,
        conversation_id: int,
        direction: str,
        text: str,
        state: str,
        at: float,
        files: str,
        server_id: int | None = None,
        client_id: str | None = None,
        reason: str | None = None,
        sender: str | None = None,
        recount: bool = True,
    ) -> int:
        """Insert a message row and index its text (`recount` False: the caller tells the
        unread book what the row adds); the one place besides the merge's
        batched insert (`SyncMerge._insert_new`) that messages are inserted.

        The FTS insert is done here and not by a trigger: inside a trigger every FTS5
        write starts a savepoint, which makes FTS5 flush its pending terms row by row,
        and a 10,000-message catch-up takes 3.5 times as long. Deletes and text updates
        are rare and stay with triggers.
        """
        cur = self._conn.execute(
            "INSERT INTO messages (server_id, client_id, conversation_id, direction, text, "
            "state, reason, at, sender, files) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                server_id,
                client_id,
                conversation_id,
                direction,
                text,
                state,
                reason,
                at,
                sender,
                files,
            ),
        )
        local_id = int(cur.lastrowid or 0)
        self._conn.execute("INSERT INTO messages_fts (rowid, text) VALUES (?, ?)", (local_id, text))
        if direction == "in" and recount:
            self._unread.mark(conversation_id)
        return local_id

    def _set_state(
        self,
        row: sqlite3.Row,
        state: str,
        reason: str | None,
        *,
        quiet: bool = False,
        conversation_id: int | None = None,
    ) -> None:
        """Move a message (`row`: its id, state, reason) to `state`, logging the change;
        `conversation_id` is the message's, when the caller knows it."""
        if row["state"] == state and row["reason"] == reason:
            return
        # A message that went again as itself and fails again can be resent again: its
        # mark goes (a mark naming another message stays: that copy was sent).
        self._conn.execute(
            "UPDATE messages SET state = ?1, reason = ?2, resent_as = CASE WHEN ?1 = 'failed' "
            "AND resent_as = id THEN NULL ELSE resent_as END WHERE id = ?3",
            (state, reason, row["id"]),
        )
        if not quiet:
            cid = conversation_id
            if cid is None:
                cid = self._conn.execute(
                    "SELECT conversation_id FROM messages WHERE id = ?", (row["id"],)
                ).fetchone()[0]
            self._append(
                "message_state",
                {"id": row["id"], "conversation_id": cid, "state": state, "reason": reason},
            )

    # ------------------------------------------------------------------ conversations

    def _conversation_id(self, number: str, remote: str) -> int:
        """The local id of (number, remote), creating the conversation when new."""
        cached = self._conv_ids.get((number, remote))
        if cached is not None:
            return cached
        row = self._conn.execute(
            "SELECT id FROM conversations WHERE number = ? AND remote = ?", (number, remote)
        ).fetchone()
        if row is not None:
            self._conv_ids[(number, remote)] = int(row[0])
            return int(row[0])
        tail = phone_tail(remote)
        name_row = self._conn.execute(
            "SELECT c.name FROM contact_numbers n JOIN contacts c ON c.id = n.contact_id "
            "WHERE n.tail = ? AND n.tail != '' ORDER BY c.id LIMIT 1",
            (tail,),
        ).fetchone()
        cur = self._conn.execute(
            "INSERT INTO conversations (number, remote, remote_digits, remote_tail, name, "
            "name_key) VALUES (?, ?, ?, ?, ?, ?)",
            (
                number,
                remote,
                digits_of(remote),
                tail,
                name_row[0] if name_row else None,
                fold(name_row[0]) if name_row else "",
            ),
        )
        self._conv_ids[(number, remote)] = int(cur.lastrowid or 0)
        self._conv_keys = None
        return int(cur.lastrowid or 0)

    @staticmethod
    def _conversation_from(r: sqlite3.Row) -> ConversationRow:
        return ConversationRow(
            id=r["id"],
            number=r["number"],
            remote=r["remote"],
            name=r["name"],
            last_at=r["last_at"],
            unread=r["unread"],
            read_up_to=r["read_up_to"],
            deleted_up_to=r["deleted_up_to"],
            last_message_id=r["last_message_id"],
            last_text=r["last_text"],
            last_direction=r["last_direction"],
        )

    def _conversation(self, conversation_id: int) -> ConversationRow | None:
        row = self._conn.execute(
            _CONVERSATION_SELECT + "WHERE c.id = ?", (conversation_id,)
        ).fetchone()
        return None if row is None else self._conversation_from(row)

    def _list_conversations(self, where: str, params: Sequence[Any]) -> list[ConversationRow]:
        """Conversations (`where` and what follows it) with their unread counts; only for
        conversations with `last_at` set, and not inside a write (the counts are those of
        the last commit)."""
        counts = self._unread_counts()
        cur = self._conn.cursor()
        cur.row_factory = None
        # The columns are the row's fields, unread 0 until the counts are filled in.
        out = list(map(_as_conversation, cur.execute(_LIST_SELECT + where, params).fetchall()))
        if counts:
            for i, c in enumerate(out):
                n = counts.get(c.id)
                if n:
                    out[i] = c._replace(unread=n)
        return out

    def _touch(self, conversation_id: int) -> None:
        """Recompute the conversation's last activity and newest message (`last_at`,
        `last_message_id`) from its visible messages: after any write that adds, moves
        (`at`) or deletes one of them."""
        self._conn.execute(
            f"UPDATE conversations SET (last_at, last_message_id) = {_LAST} WHERE id = ?",  # noqa: S608
            (conversation_id,),
        )

    def _touch_all(self, conversation_ids: Iterable[int] | None = None) -> None:
        """`_touch` for several conversations in one statement (None: all of them)."""
        if conversation_ids is None:
            self._conn.execute(f"UPDATE conversations SET (last_at, last_message_id) = {_LAST}")  # noqa: S608
            return
        for part in chunks(sorted(conversation_ids)):
            self._conn.execute(
                f"UPDATE conversations SET (last_at, last_message_id) = {_LAST} "  # noqa: S608
                f"WHERE id IN ({marks(part)})",
                part,
            )

    def _raise_read_mark(
        self, cid: int, up_to: int, *, quiet: bool = False, here: bool = False
    ) -> bool:
        """Move the conversation's read mark up to `up_to`; False when it was there already.

        A read from the server (`here` False) at or below `unread_mark`, the position the
        user marked the conversation unread from, was seen here before that mark: the echo
        of this device's own read or another device's from before, late. Only a read past
        it (a newer message read) or one made here (`here`) clears the mark.
        """
        cur = self._conn.execute(
            "UPDATE conversations SET read_up_to = ?1, unread_mark = 0 "
            "WHERE id = ?2 AND read_up_to < ?1 AND (?3 OR ?1 > unread_mark)",
            (up_to, cid, here),
        )
        if cur.rowcount:
            self._unread.mark(cid)
        if cur.rowcount and not quiet:
            self._append("read", {"conversation_id": cid, "up_to": up_to})
        return bool(cur.rowcount)
