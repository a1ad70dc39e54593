"""The server store's messages part: sending (once per client id), delivery, states,
inbound messages, read marks and deletions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from glosmsd.core import filetypes, wire
from glosmsd.core.errors import BadInput, NoSmsNumber, NotFound
from glosmsd.core.rules import check_message
from glosmsd.core.wire import clean_file_name
from glosmsd.server.db.base import VISIBLE, normalize_number
from glosmsd.server.db.files import FilesDb
from glosmsd.server.db.records import FileInfo, Outbound, Sent

#: How `wire.encode_body` starts a `message` event's body: the MESSAGE's JSON follows.
_BODY_HEAD: Final = '{"message":'


class MessagesDb(FilesDb):
    """Messages and what each extension did with them."""

    # ------------------------------------------------------------------ messages

    def _files_of(self, message_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """The files of each message (only those that have any), in one query."""
        out: dict[int, list[dict[str, Any]]] = {}
        for chunk in range(0, len(message_ids), 500):
            ids = message_ids[chunk : chunk + 500]
            marks = ",".join("?" * len(ids))
            # Only "?" placeholders are spliced in.
            query = (
                "SELECT f.message_id, f.sha256, f.name, x.mime, x.size FROM message_files f "  # noqa: S608
                f"JOIN files x ON x.sha256 = f.sha256 WHERE f.message_id IN ({marks}) "
                "ORDER BY f.message_id, f.pos"
            )
            for r in self.conn.execute(query, ids):
                out.setdefault(r[0], []).append(wire.file_ref(r[1], r[2], r[3], r[4]))
        return out

    def _render(self, rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
        """MESSAGE objects of message rows: their files in one query, each sender once."""
        files = self._files_of([int(r["id"]) for r in rows])
        people: dict[str, dict[str, Any] | None] = {}
        out = []
        for row in rows:
            sender = None
            if row["direction"] == "out":
                ext = row["sender_ext"]
                if ext not in people:
                    people[ext] = self._person(ext)
                sender = people[ext]
            out.append(
                wire.message(
                    id=row["id"],
                    client_id=row["client_id"],
                    number=row["number"],
                    remote=row["remote"],
                    direction=row["direction"],
                    text=row["text"],
                    state=row["state"],
                    reason=row["reason"],
                    at=row["at"],
                    files=files.get(int(row["id"]), []),
                    sender=sender,
                )
            )
        return out

    def message(self, message_id: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(f"No message {message_id}.")
        return self._render([row])[0]

    def _insert_message(
        self,
        *,
        number: str,
        remote: str,
        direction: str,
        text: str,
        state: str,
        sender_ext: str | None,
        client_id: str | None,
        files: Sequence[FileInfo],
        at: float,
    ) -> tuple[dict[str, Any], str]:
        """Insert a message and its `message` event: (the MESSAGE, its JSON text as the
        event carries it, which a send's reply reuses instead of encoding it again)."""
        mid = int(
            self.conn.execute(
                "INSERT INTO messages (number, remote, direction, text, state, at, sender_ext, "
                "client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (number, remote, direction, text, state, at, sender_ext, client_id),
            ).lastrowid
            or 0
        )
        if files:
            self.conn.executemany(
                "INSERT INTO message_files (message_id, pos, sha256, name) VALUES (?, ?, ?, ?)",
                [(mid, i, f.sha256, f.name) for i, f in enumerate(files)],
            )
        # What `message(mid)` would read back (`_render`), built from what was just
        # written: reading it back cost two or three queries a message.
        msg = wire.message(
            id=mid,
            client_id=client_id,
            number=number,
            remote=remote,
            direction=direction,
            text=text,
            state=state,
            reason=None,
            at=at,
            # As stored (a blob first stored by another path keeps its first type).
            files=self._files_of([mid]).get(mid, []) if files else [],
            sender=self._person(sender_ext) if direction == "out" else None,
        )
        body = wire.encode_body(wire.message_body(msg))
        self._event_text("message", body, number=number, at=at)
        return msg, body[len(_BODY_HEAD) : -1]

    def _hosted(self, number: str) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM numbers WHERE number = ? LIMIT 1", (number,)
            ).fetchone()
            is not None
        )

    def send(
        self,
        ext: str,
        client_id: str,
        to: str,
        text: str,
        files: Sequence[Mapping[str, str]],
        *,
        from_: str | None = None,
    ) -> Sent:
        """Store a message from `ext` (once per client_id) and deliver it if it is local."""
        existing = self.conn.execute(
            "SELECT * FROM messages WHERE sender_ext = ? AND client_id = ?", (ext, client_id)
        ).fetchone()
        if existing is not None:
            return Sent(self._render([existing])[0], None, new=False)
        own = self.numbers_of(ext)
        if not own:
            raise NoSmsNumber(
                f"No SMS number assigned: ask your administrator to assign one to extension {ext}."
            )
        number = own[0] if from_ is None else from_
        if number not in own:
            raise NotFound(f"{number} is not one of your SMS numbers ({', '.join(own)}).")
        remote = normalize_number(to, what="recipient")
        infos = [self._attachment(ext, f) for f in files]
        check_message(text, [f.size for f in infos], self.limits())
        now = time.time()
        try:
            with self._write():
                local = self._hosted(remote)
                msg, msg_text = self._insert_message(
                    number=number,
                    remote=remote,
                    direction="out",
                    text=text,
                    state="sent" if local else "sending",
                    sender_ext=ext,
                    client_id=client_id,
                    files=infos,
                    at=now,
                )
                if local:
                    self._insert_message(
                        number=remote,
                        remote=number,
                        direction="in",
                        text=text,
                        state="sent",
                        sender_ext=None,
                        client_id=None,
                        files=infos,
                        at=now,
                    )
        except sqlite3.IntegrityError:
            # A concurrent send with the same client_id won the UNIQUE constraint.
            row = self.conn.execute(
                "SELECT * FROM messages WHERE sender_ext = ? AND client_id = ?", (ext, client_id)
            ).fetchone()
            if row is None:
                raise
            return Sent(self._render([row])[0], None, new=False)
        outbound = None if local else Outbound(msg["id"], number, remote, text, tuple(infos))
        return Sent(msg, outbound, new=True, message_text=msg_text)

    def _attachment(self, ext: str, ref: Mapping[str, str]) -> FileInfo:
        sha = str(ref.get("sha256", ""))
        # Usable: what this extension uploaded, or a file it can already see (a forward).
        row = self.conn.execute("SELECT mime, size FROM files WHERE sha256 = ?", (sha,)).fetchone()
        mine = self.conn.execute(
            "SELECT 1 FROM uploads WHERE ext = ? AND sha256 = ?", (ext, sha)
        ).fetchone()
        if row is None or (mine is None and not self.can_download(ext, sha)):
            raise NotFound(f"File {sha[:12]}... was not uploaded: call upload first.")
        name = _named_by_type(str(ref.get("name", "file")), row["mime"])
        return FileInfo(sha, name, row["mime"], int(row["size"]))

    def set_state(self, message_id: int, state: str, reason: str | None) -> None:
        with self._write() as db:
            row = db.execute("SELECT number FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return
            db.execute(
                "UPDATE messages SET state = ?, reason = ? WHERE id = ?",
                (state, reason, message_id),
            )
            self._event(
                "message_state",
                wire.state_body(message_id, state, reason),
                number=row["number"],
            )

    def pending_outbound(self) -> list[Outbound]:
        """Messages still `sending` (e.g. the server stopped before the carrier answered)."""
        rows = self.conn.execute(
            "SELECT * FROM messages WHERE state = 'sending' AND direction = 'out' ORDER BY id"
        ).fetchall()
        files = self._files_of([int(r["id"]) for r in rows])
        return [
            Outbound(
                r["id"],
                r["number"],
                r["remote"],
                r["text"],
                tuple(FileInfo(**f) for f in files.get(int(r["id"]), [])),
            )
            for r in rows
        ]

    def receive(
        self, sender: str, to: str, text: str, files: Sequence[tuple[bytes, str]] = ()
    ) -> dict[str, Any]:
        """An inbound message from the carrier for a hosted number."""
        if len(text) > wire.MAX_TEXT:
            raise BadInput(
                f"The text is {len(text):,} characters; a message carries at most "
                f"{wire.MAX_TEXT:,}."
            )
        if len(files) > wire.MAX_FILES:
            raise BadInput(f"{len(files)} files; a message carries at most {wire.MAX_FILES}.")
        remote = normalize_number(sender, what="sender")
        number = normalize_number(to, what="recipient")
        with self._write():
            if not self._hosted(number):
                raise NotFound(f"{number} is not hosted on this server: assign it first.")
            infos = []
            for data, name in files:
                sha, mime = self.store_inbound_file(data)
                infos.append(FileInfo(sha, _named_by_type(name, mime), mime, len(data)))
            msg, _ = self._insert_message(
                number=number,
                remote=remote,
                direction="in",
                text=text,
                state="sent",
                sender_ext=None,
                client_id=None,
                files=infos,
                at=time.time(),
            )
            return msg

    def messages_of(self, number: str) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM messages WHERE number = ? ORDER BY id", (number,)
            ).fetchall()
            return self._render(rows)

    # ------------------------------------------------------------------ marks

    def _own_number(self, ext: str, number: str) -> None:
        if number not in self.numbers_of(ext):
            raise NotFound(f"{number} is not one of your SMS numbers.")

    def mark_read(self, ext: str, number: str, remote: str, up_to: int) -> int:
        with self._write() as db:
            self._own_number(ext, number)
            db.execute(
                "INSERT INTO reads (ext, number, remote, up_to) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET up_to = MAX(up_to, excluded.up_to)",
                (ext, number, remote, up_to),
            )
            return self._event("read", wire.mark_body(number, remote, up_to), ext=ext)

    def delete_message(self, ext: str, message_id: int) -> int:
        with self._write() as db:
            row = db.execute(
                f"SELECT id FROM messages m WHERE id = :id AND {VISIBLE}",  # noqa: S608
                {"id": message_id, "ext": ext},
            ).fetchone()
            if row is None:
                raise NotFound(f"No message {message_id} in your conversations.")
            db.execute("INSERT OR IGNORE INTO hidden_messages VALUES (?, ?)", (ext, message_id))
            return self._event("delete_message", wire.delete_body(message_id), ext=ext)

    def delete_conversation(
        self, ext: str, number: str, remote: str, up_to: int | None = None
    ) -> tuple[int, int]:
        """Hide the conversation for `ext` up to message `up_to` (default: its newest).

        A device that deleted while offline sends the newest id it had seen, so messages
        that arrived in the meantime stay.
        """
        with self._write() as db:
            self._own_number(ext, number)
            top = db.execute(
                "SELECT MAX(id) FROM messages WHERE number = ? AND remote = ?", (number, remote)
            ).fetchone()[0]
            if top is None:
                raise NotFound(f"No conversation between {number} and {remote}.")
            up_to = top if up_to is None else min(int(up_to), int(top))
            db.execute(
                "INSERT INTO hidden_conversations VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET up_to = MAX(up_to, excluded.up_to)",
                (ext, number, remote, up_to),
            )
            seq = self._event("delete_conversation", wire.mark_body(number, remote, up_to), ext=ext)
            return seq, int(up_to)


def _named_by_type(name: str, mime: str) -> str:
    """A file's name made safe and saying the type its content was found to be: a client
    not ours (or a carrier) naming a PDF `pdf.png` does not make phones open it as one."""
    return clean_file_name(filetypes.name_for(clean_file_name(name), mime))
