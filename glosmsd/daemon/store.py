"""The daemon's local store: the only module of the daemon that speaks SQL.

Owns one SQLite file (WAL, foreign keys on, numbered migrations with `PRAGMA
user_version` as the schema version) holding what the daemon knows of the user's SMS:
the sync cursor and the server's hello (account), conversations with their read and
deletion marks, messages (incoming, outgoing, and local sends not yet confirmed), the
outbox of accepted sends, the contacts cache, preferences, recent emoji, the state of
downloaded files, and the local event log that the socket's subscribe/replay reads.
An FTS5 index over message text and contact names and numbers is kept in step in the
same transaction (triggers for deletes and text changes; new messages are indexed by
the two functions that insert them, which is 3.5 times faster than a trigger), so a
deleted message can no longer be found.

Rules it keeps:
- A database written by a newer schema raises `SchemaTooNew` and is left byte for
  byte as it was: the version is read through a read-only connection before anything
  (not even the WAL switch) writes to the file.
- Each server sync batch and its cursor commit in one transaction, together with the
  local events the batch caused (`apply_sync`).
- An accepted send (`enqueue_send`) commits its message row and outbox row in one
  transaction with `synchronous=FULL`: WAL with NORMAL already survives a daemon crash
  (SIGKILL), but only FULL also survives power loss, and a send the user was told
  about must not vanish. Every other write uses NORMAL; losing the last sync batch to a
  power cut only means syncing it again.
- Unread = an incoming message whose server id is above its conversation's read mark
  and that is not deleted. An outgoing message (the user's own, or a sharer's) is never
  unread.
- Deleted messages are removed from the database (and so from the search index); the
  conversation's `deleted_up_to` keeps a late copy of a deleted message from returning.
- Local ids (messages, conversations) never change, also across a server reset.
- The event log keeps at most `EVENT_HORIZON_COUNT` events and none older than
  `EVENT_HORIZON_SECONDS`; a replay from before that is reported as truncated.
- Under `AsyncStore` no commit copies the WAL back into the database (SQLite's automatic
  checkpoint did, inside whichever commit crossed 1000 pages: one send in ~130 paid
  10-20 ms of fsyncs). A checkpoint thread with its own connection does it once the
  writes pause (`CHECKPOINT_IDLE_SECONDS`) or have gone on for `CHECKPOINT_MAX_DELAY`;
  should the WAL still pass `WAL_LIMIT_BYTES`, the writer checkpoints it itself after
  its commit, so the WAL stays bounded whatever the write rate.

`Store` is synchronous and owns one connection; it must only be used from the thread
that opened it. `AsyncStore` runs a `Store` on one dedicated writer thread, so nothing
blocks the event loop and writes are serialized. Nothing outside this module imports
sqlite3 in the daemon, and this module never talks to the network or the event loop
except through `AsyncStore`'s executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeGuard, TypeVar

from glosmsd.core.errors import BadInput, NotFound, SchemaTooNew, StoreError
from glosmsd.core.search import digits_of, fold, fts_query, phone_needles, phone_tail, terms
from glosmsd.daemon.hub import Event

log = logging.getLogger(__name__)

#: A local event as the store writes it and the hub publishes it.
LocalEvent = Event

EVENT_HORIZON_COUNT: Final = 10_000
EVENT_HORIZON_SECONDS: Final = 7 * 24 * 3600.0
EMOJI_RECENTS: Final = 40
#: The checkpoint thread runs once no commit came for this long...
CHECKPOINT_IDLE_SECONDS: Final = 0.5
#: ...or this long after the first commit it has not copied back, whichever is first.
CHECKPOINT_MAX_DELAY: Final = 2.0
#: A WAL past this size is checkpointed by the writer itself, after its commit (a fallback
#: for writes so steady that the thread's checkpoints never find the WAL all copied).
#: Also SQLite's `journal_size_limit`: a WAL that grew in a burst shrinks back to it.
WAL_LIMIT_BYTES: Final = 64 * 1024 * 1024
STATES: Final = ("sending", "sent", "failed")
FILE_STATES: Final = ("none", "downloading", "done", "failed")
EVENT_KINDS: Final = (
    "message",
    "message_state",
    "read",
    "deleted",
    "unread",
    "reset",
    "link",
    "prefs",
    "export",
)

# Each entry is one migration: schema version N is reached by running MIGRATIONS[N-1].
# Never edit a released entry; append a new one.
MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: the first schema.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        number TEXT NOT NULL,
        remote TEXT NOT NULL,
        remote_digits TEXT NOT NULL,
        remote_tail TEXT NOT NULL,
        name TEXT,
        name_key TEXT NOT NULL DEFAULT '',
        last_at REAL,
        read_up_to INTEGER NOT NULL DEFAULT 0,
        deleted_up_to INTEGER NOT NULL DEFAULT 0,
        UNIQUE (number, remote)
    );
    CREATE INDEX conversations_by_activity ON conversations (last_at DESC, id DESC)
        WHERE last_at IS NOT NULL;
    CREATE INDEX conversations_by_tail ON conversations (remote_tail);

    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        server_id INTEGER UNIQUE,
        client_id TEXT UNIQUE,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        text TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'failed')),
        reason TEXT,
        at REAL NOT NULL,
        sender TEXT,
        files TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX messages_by_time ON messages (conversation_id, at, id);
    CREATE INDEX messages_unread ON messages (conversation_id, server_id)
        WHERE direction = 'in';

    CREATE VIRTUAL TABLE messages_fts USING fts5 (
        text, content = 'messages', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
    );
    -- No insert trigger: Store._insert_message indexes new rows itself (see there).
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
    END;

    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        client_id TEXT NOT NULL UNIQUE,
        message_id INTEGER NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
        number TEXT NOT NULL,
        remote TEXT NOT NULL,
        text TEXT NOT NULL,
        files TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (next_at, seq);

    CREATE TABLE files (
        sha256 TEXT PRIMARY KEY,
        path TEXT,
        state TEXT NOT NULL CHECK (state IN ('none', 'downloading', 'done', 'failed'))
    ) WITHOUT ROWID;

    CREATE TABLE contacts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        numbers TEXT NOT NULL,
        digits TEXT NOT NULL
    );
    CREATE TABLE contact_numbers (
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        number TEXT NOT NULL,
        tail TEXT NOT NULL
    );
    CREATE INDEX contact_numbers_by_tail ON contact_numbers (tail);
    CREATE INDEX contact_numbers_by_contact ON contact_numbers (contact_id);
    CREATE VIRTUAL TABLE contacts_fts USING fts5 (
        name, digits, content = 'contacts', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
        INSERT INTO contacts_fts (rowid, name, digits) VALUES (new.id, new.name, new.digits);
    END;
    CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
        INSERT INTO contacts_fts (contacts_fts, rowid, name, digits)
            VALUES ('delete', old.id, old.name, old.digits);
    END;

    CREATE TABLE prefs (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE emoji (
        emoji TEXT PRIMARY KEY, last_used REAL NOT NULL, uses INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        at REAL NOT NULL,
        payload TEXT NOT NULL
    );
    """,
    # 2: changes the server must still hear (read marks, deletions made offline), in
    # order. They used to live as one JSON list in prefs, where two writers could each
    # read the list, append, and write it back, losing one of the two.
    """
    CREATE TABLE pending_ops (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        method TEXT NOT NULL,
        params TEXT NOT NULL
    );
    INSERT INTO pending_ops (method, params)
        SELECT j.value ->> 'method', json(j.value -> 'params')
        FROM prefs p, json_each(p.value) j
        WHERE p.key = '_pending_server_ops' AND json_valid(p.value)
            AND j.value ->> 'method' IS NOT NULL
        ORDER BY j.key;
    DELETE FROM prefs WHERE key = '_pending_server_ops';
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Sender:
    """Who of the sharers of a number sent an outgoing message (never the user)."""

    ext: str
    name: str
    avatar: str | None

    def to_json(self) -> dict[str, Any]:
        return {"ext": self.ext, "name": self.name, "avatar": self.avatar}


@dataclass(frozen=True, slots=True)
class FileRow:
    """One file of a message: what the server said, plus where (if anywhere) it is here.

    `state` is the download state: none | downloading | done | failed. An outgoing
    file that was never uploaded has no `sha256` yet but has its local `path`.
    """

    sha256: str | None
    name: str
    mime: str | None
    size: int | None
    path: str | None
    state: str

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "mime": self.mime,
            "size": self.size,
            "path": self.path,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One message as the local API shows it; `id` is the stable local id.

    `sender` is set only on a message a sharer of the number sent: the user's own
    messages (from any of their devices) and incoming ones have none.
    """

    id: int
    conversation_id: int
    number: str
    remote: str
    server_id: int | None
    client_id: str | None
    direction: str
    text: str
    state: str
    reason: str | None
    at: float
    sender: Sender | None
    files: tuple[FileRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "number": self.number,
            "remote": self.remote,
            "server_id": self.server_id,
            "client_id": self.client_id,
            "direction": self.direction,
            "text": self.text,
            "state": self.state,
            "reason": self.reason,
            "at": self.at,
            "sender": self.sender.to_json() if self.sender else None,
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One conversation: own number and remote, display name, activity, unread, preview.

    `name` is the contact name of `remote` when the contacts cache knows it. `last_*`
    describe the most recent visible message (None when there is none).
    """

    id: int
    number: str
    remote: str
    name: str | None
    last_at: float | None
    unread: int
    read_up_to: int
    deleted_up_to: int
    last_message_id: int | None
    last_text: str | None
    last_direction: str | None

    @property
    def title(self) -> str:
        return self.name or self.remote

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "remote": self.remote,
            "name": self.name,
            "title": self.title,
            "last_at": self.last_at,
            "unread": self.unread,
            "last_message_id": self.last_message_id,
            "last_text": self.last_text,
            "last_direction": self.last_direction,
        }


@dataclass(frozen=True, slots=True)
class UnreadSummary:
    """Total unread and the conversations that have any, most recent first."""

    total: int
    per_conversation: tuple[tuple[ConversationRow, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "conversations": [
                {"id": c.id, "title": c.title, "count": n} for c, n in self.per_conversation
            ],
        }


@dataclass(frozen=True, slots=True)
class ContactNumber:
    label: str
    number: str

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "number": self.number}


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A contact from the server's directory, as last looked up."""

    id: int
    name: str
    numbers: tuple[ContactNumber, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "numbers": [n.to_json() for n in self.numbers]}


@dataclass(frozen=True, slots=True)
class SearchResult:
    contacts: tuple[ContactRow, ...]
    conversations: tuple[ConversationRow, ...]
    messages: tuple[MessageRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "contacts": [c.to_json() for c in self.contacts],
            "conversations": [c.to_json() for c in self.conversations],
            "messages": [m.to_json() for m in self.messages],
        }


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An accepted send waiting for the server.

    `order` is the creation order; `files` is the outbox's own JSON list (entries with
    any of sha256, name, mime, size, path), stored and returned as given.
    """

    client_id: str
    order: int
    message_id: int
    number: str
    remote: str
    text: str
    files: tuple[Mapping[str, Any], ...]
    attempts: int
    next_at: float
    last_error: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class ReadMark:
    """What to tell the server to mark a conversation read: `read(number, remote, up_to)`."""

    conversation_id: int
    number: str
    remote: str
    up_to: int


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """What to tell the server to delete a conversation: `delete_conversation(number, remote,
    up_to)`. `up_to` is the newest server id this device had; None when it had none (then
    there is nothing on the server the user has seen, so nothing to tell)."""

    conversation_id: int
    number: str
    remote: str
    up_to: int | None = None


@dataclass(frozen=True, slots=True)
class ExportedConversation:
    conversation: ConversationRow
    messages: tuple[MessageRow, ...]


EventsListener = Callable[[list[LocalEvent]], None]

P = ParamSpec("P")
T = TypeVar("T")

# ---------------------------------------------------------------------------- helpers


# One encoder for all: `json.dumps` with options builds a new encoder per call, and this
# runs several times per message in a catch-up.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _valid_file(f: Any) -> bool:
    return (
        isinstance(f, dict)
        and isinstance(f.get("sha256"), str)
        and isinstance(f.get("name", ""), str)
        and _opt_str(f.get("mime"))
        and (f.get("size") is None or _is_int(f.get("size")))
    )


def _valid_message(m: Any) -> bool:
    """The shape of a server MESSAGE; a frame that fails this is skipped, not trusted."""
    if not isinstance(m, dict):
        return False
    files = m.get("files", [])
    sender = m.get("sender")
    return (
        _is_int(m.get("id"))
        and isinstance(m.get("number"), str)
        and isinstance(m.get("remote"), str)
        and m.get("direction") in ("in", "out")
        and isinstance(m.get("text"), str)
        and m.get("state") in STATES
        and _opt_str(m.get("reason"))
        and _opt_str(m.get("client_id"))
        and _is_time(m.get("at"))
        and isinstance(files, list)
        and all(_valid_file(f) for f in files)
        and (
            sender is None
            or (
                isinstance(sender, dict)
                and isinstance(sender.get("ext"), str)
                and _opt_str(sender.get("name"))
                and _opt_str(sender.get("avatar"))
            )
        )
    )


def _server_files(files: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "sha256": f["sha256"],
            "name": f.get("name") or "file",
            "mime": f.get("mime"),
            "size": f.get("size"),
        }
        for f in files
    ]


def _local_files(files: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The message-row view of an outbox file list: whatever is known of each file."""
    out: list[dict[str, Any]] = []
    for f in files:
        path = f.get("path")
        name = f.get("name") or (Path(path).name if isinstance(path, str) else "file")
        out.append(
            {
                "sha256": f.get("sha256"),
                "name": name,
                "mime": f.get("mime"),
                "size": f.get("size"),
                "path": path if isinstance(path, str) else None,
            }
        )
    return out


def _sender_from(raw: str | None) -> Sender | None:
    if not raw:
        return None
    obj = json.loads(raw)
    return Sender(obj["ext"], obj.get("name") or "", obj.get("avatar"))


def _chunks(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """`values` in slices small enough for one statement's parameters."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _present(db: sqlite3.Connection, column: str, values: Sequence[Any]) -> set[Any]:
    """Which of `values` the messages table already holds in `column` (a fixed name)."""
    found: set[Any] = set()
    for part in _chunks(values):
        marks = ",".join("?" * len(part))
        sql = f"SELECT {column} FROM messages WHERE {column} IN ({marks})"  # noqa: S608
        found.update(r[0] for r in db.execute(sql, part))
    return found


@dataclass(frozen=True, slots=True)
class _NewMessage:
    """A server message `apply_sync` found to be new, as it will be inserted."""

    conversation_id: int
    number: str
    remote: str
    server_id: int
    client_id: str | None
    direction: str
    text: str
    state: str
    reason: str | None
    at: float
    sender: str | None
    files: list[dict[str, Any]]


def _file_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"


# ---------------------------------------------------------------------------- Store


class Store:
    """The local database. Open with `Store.open(path)`; use from one thread only."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.on_events: EventsListener | None = None
        self._pending: list[LocalEvent] = []
        # (number, remote) -> conversation id. Conversation rows are never deleted, so
        # the ids can be cached for the life of the connection.
        self._conv_ids: dict[tuple[str, str], int] = {}
        # Unread counts per conversation as of the last commit (None: not known). A write
        # marks the conversations whose counts it may change as dirty (None: all of them),
        # and only those are counted again: a full count is a few ms at 2,000
        # conversations, too much to pay twice for every pushed event.
        self._unread_cache: dict[int, int] | None = None
        self._dirty: set[int] | None = set()
        self._next_unread: dict[int, int] | None = None
        # Set by `defer_checkpoints`: called after every commit, on this thread.
        self._after_commit: Callable[[], None] | None = None
        self._wal_path = f"{path}-wal"

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, path: Path, *, on_events: EventsListener | None = None) -> Store:
        """Open (creating or migrating) the database at `path`.

        Raises `SchemaTooNew` when the file comes from a newer glosmsd (the file is not
        written to at all), `StoreError` when it is not a database or cannot be opened.
        """
        path = Path(path)
        if path.exists() and path.stat().st_size > 0:
            _check_version(path)
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the local database {path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn, path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"{path} is not a glosmsd database or is damaged ({exc}). "
                "Move it aside and start glosmsd again to sync a fresh copy."
            ) from exc
        except BaseException:
            conn.close()
            raise
        store = cls(conn, path)
        store.on_events = on_events
        with store._write():
            store._prune_events(time.time())
        return store

    def close(self) -> None:
        self._conn.close()

    def defer_checkpoints(self, after_commit: Callable[[], None]) -> None:
        """Commits no longer copy the WAL back into the database; `after_commit` is called
        after each one (on this thread) to have another thread do it.

        SQLite's automatic checkpoint runs inside whichever COMMIT crosses 1000 WAL pages
        and fsyncs twice: the send whose commit it was waited 10-20 ms instead of 0.3.
        A commit that leaves the WAL larger than `WAL_LIMIT_BYTES` still checkpoints here.
        """
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
        self._after_commit = after_commit

    def checkpoint(self) -> tuple[int, int, int]:
        """A PASSIVE checkpoint on this connection: (busy, WAL frames, frames copied)."""
        row = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def _committed(self) -> None:
        after = self._after_commit
        if after is None:
            return
        after()
        try:
            size = os.stat(self._wal_path).st_size
        except OSError:
            return
        if size > WAL_LIMIT_BYTES:
            # The checkpoint thread never found a pause to copy everything: do it here,
            # between transactions, so the next write can start the WAL over.
            try:
                self.checkpoint()
            except sqlite3.Error as exc:  # the commit stands; the next one tries again
                log.warning("checkpoint of %s failed: %s", self.path, exc)

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction; its local events go to `on_events` after the commit."""
        conn = self._conn
        if durable:
            conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._pending = []
            self._begin_unread()
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                self._pending = []
                # Conversations created in the rolled-back transaction are gone again.
                self._conv_ids.clear()
                raise
            if self._pending:
                self._prune_events(time.time())
            conn.execute("COMMIT")
            self._committed()
            if self._dirty is None or self._dirty:
                self._unread_cache = None  # changed and not counted again: count on demand
            elif self._next_unread is not None:
                self._unread_cache = self._next_unread
        finally:
            if durable:
                conn.execute("PRAGMA synchronous = NORMAL")
        events, self._pending = self._pending, []
        if events and self.on_events is not None:
            self.on_events(events)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for a read of several statements."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _get_meta(self, key: str) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set_meta(self, key: str, value: Any) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, _dumps(value)),
        )

    # ------------------------------------------------------------------ meta

    def cursor(self) -> int:
        """The seq of the last server event applied (0 before the first sync)."""
        value = self._get_meta("cursor")
        return int(value) if value is not None else 0

    def set_account(self, hello: Mapping[str, Any]) -> None:
        """Keep the server's hello result (extension, numbers and sharers, settings)."""
        with self._write():
            self._set_meta("account", dict(hello))

    def account(self) -> dict[str, Any] | None:
        value = self._get_meta("account")
        return value if isinstance(value, dict) else None

    # ------------------------------------------------------------------ event log

    def _append(self, kind: str, payload: Mapping[str, Any], at: float | None = None) -> LocalEvent:
        when = time.time() if at is None else at
        data = dict(payload)
        cur = self._conn.execute(
            "INSERT INTO events (kind, at, payload) VALUES (?, ?, ?)", (kind, when, _dumps(data))
        )
        event = LocalEvent(id=int(cur.lastrowid or 0), kind=kind, at=when, data=data)
        self._pending.append(event)
        return event

    def _append_many(self, kind: str, payloads: Sequence[dict[str, Any]]) -> None:
        """`_append` for several events of one kind, written with one `executemany`.

        The ids are the ones AUTOINCREMENT would give (one past the larger of the
        sequence and the largest id), and inserting them moves the sequence on."""
        when = time.time()
        row = self._conn.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
            "coalesce((SELECT max(id) FROM events), 0)) + 1"
        ).fetchone()
        first = int(row[0])
        ids = range(first, first + len(payloads))
        self._conn.executemany(
            "INSERT INTO events (id, kind, at, payload) VALUES (?, ?, ?, ?)",
            [(i, kind, when, _dumps(p)) for i, p in zip(ids, payloads, strict=True)],
        )
        self._pending.extend(
            LocalEvent(id=i, kind=kind, at=when, data=p) for i, p in zip(ids, payloads, strict=True)
        )

    def append_event(self, kind: str, payload: Mapping[str, Any]) -> LocalEvent:
        """Log one local event (the daemon uses this for `link` status changes)."""
        if kind not in EVENT_KINDS:
            raise BadInput(f"Unknown event kind {kind!r}; known: {', '.join(EVENT_KINDS)}.")
        with self._write():
            return self._append(kind, payload)

    def _prune_events(self, now: float) -> None:
        last = self._last_event_id()
        cut = last - EVENT_HORIZON_COUNT
        oldest = self._conn.execute("SELECT id, at FROM events ORDER BY id LIMIT 1").fetchone()
        if oldest is not None and oldest["at"] < now - EVENT_HORIZON_SECONDS:
            # Ids grow with time, so the stale events are at the head of the log.
            row = self._conn.execute(
                "SELECT max(id) FROM (SELECT id, at FROM events ORDER BY id LIMIT 5000) "
                "WHERE at < ?",
                (now - EVENT_HORIZON_SECONDS,),
            ).fetchone()
            cut = max(cut, int(row[0] or 0))
        pruned = int(self._get_meta("events_pruned_up_to") or 0)
        if cut > pruned:
            self._conn.execute("DELETE FROM events WHERE id <= ?", (cut,))
            self._set_meta("events_pruned_up_to", cut)

    def _last_event_id(self) -> int:
        row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def last_event_id(self) -> int:
        """The id of the newest local event (0 when none was ever logged)."""
        return self._last_event_id()

    def events_since(
        self, after_id: int, limit: int = 1000, up_to: int | None = None
    ) -> tuple[list[LocalEvent], bool]:
        """Events with `after_id < id <= up_to`, oldest first, at most `limit` of them.

        The flag is True when events after `after_id` were already pruned (it is older
        than the horizon) or when `after_id` is beyond the newest event (an id from
        another database): the caller missed something and should reload its view.
        """
        with self._read() as db:
            last = self._last_event_id()
            pruned = int(self._get_meta("events_pruned_up_to") or 0)
            top = last if up_to is None else min(up_to, last)
            rows = db.execute(
                "SELECT id, kind, at, payload FROM events WHERE id > ? AND id <= ? "
                "ORDER BY id LIMIT ?",
                (after_id, top, max(0, limit)),
            ).fetchall()
        truncated = after_id < pruned or after_id > last
        events = [
            LocalEvent(id=r["id"], kind=r["kind"], at=r["at"], data=json.loads(r["payload"]))
            for r in rows
        ]
        return events, truncated

    # ------------------------------------------------------------------ rows

    def _file_states(self, shas: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        wanted = sorted(set(shas))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._conn.execute(
            f"SELECT sha256, path, state FROM files WHERE sha256 IN ({marks})",  # noqa: S608
            wanted,
        ).fetchall()
        return {r["sha256"]: (r["path"], r["state"]) for r in rows}

    def _messages_from(self, rows: Sequence[sqlite3.Row]) -> list[MessageRow]:
        raw_files = [json.loads(r["files"]) for r in rows]
        states = self._file_states(f["sha256"] for fl in raw_files for f in fl if f.get("sha256"))
        out: list[MessageRow] = []
        for r, fl in zip(rows, raw_files, strict=True):
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
            sender = _sender_from(r["sender"])
            out.append(
                MessageRow(
                    id=r["id"],
                    conversation_id=r["conversation_id"],
                    number=r["number"],
                    remote=r["remote"],
                    server_id=r["server_id"],
                    client_id=r["client_id"],
                    direction=r["direction"],
                    text=r["text"],
                    state=r["state"],
                    reason=r["reason"],
                    at=r["at"],
                    sender=sender,
                    files=tuple(files),
                )
            )
        return out

    _MESSAGE_SELECT: Final = (
        "SELECT m.*, c.number, c.remote FROM messages m "
        "JOIN conversations c ON c.id = m.conversation_id "
    )

    def _message(self, local_id: int) -> MessageRow | None:
        rows = self._conn.execute(self._MESSAGE_SELECT + "WHERE m.id = ?", (local_id,)).fetchall()
        found = self._messages_from(rows)
        return found[0] if found else None

    _CONVERSATION_SELECT: Final = """
        SELECT c.*,
            (SELECT count(*) FROM messages u
             WHERE u.conversation_id = c.id AND u.direction = 'in'
               AND u.server_id > c.read_up_to) AS unread,
            l.id AS last_message_id, l.text AS last_text, l.direction AS last_direction
        FROM conversations c
        LEFT JOIN messages l ON l.id = (
            SELECT id FROM messages WHERE conversation_id = c.id ORDER BY at DESC, id DESC LIMIT 1)
    """

    # The list form: no unread subquery (the counts come from `_unread_counts`, kept up to
    # date by every write) and plain tuples; at 2,000 conversations the per-row count and
    # the name lookups of `sqlite3.Row` were two thirds of the time.
    _LIST_SELECT: Final = """
        SELECT c.id, c.number, c.remote, c.name, c.last_at, c.read_up_to, c.deleted_up_to,
            l.id, l.text, l.direction
        FROM conversations c
        LEFT JOIN messages l ON l.id = (
            SELECT id FROM messages WHERE conversation_id = c.id ORDER BY at DESC, id DESC LIMIT 1)
    """

    def _list_conversations(self, where: str, params: Sequence[Any]) -> list[ConversationRow]:
        """Conversations (`where` and what follows it) with their unread counts; only for
        conversations with `last_at` set, and not inside a write (the counts are those of
        the last commit)."""
        counts = self._unread_counts()
        cur = self._conn.cursor()
        cur.row_factory = None
        rows = cur.execute(self._LIST_SELECT + where, params).fetchall()
        return [
            ConversationRow(
                r[0], r[1], r[2], r[3], r[4], counts.get(r[0], 0), r[5], r[6], r[7], r[8], r[9]
            )
            for r in rows
        ]

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
            self._CONVERSATION_SELECT + "WHERE c.id = ?", (conversation_id,)
        ).fetchone()
        return None if row is None else self._conversation_from(row)

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
        return int(cur.lastrowid or 0)

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
    ) -> int:
        """Insert a message row and index its text; the one place besides `_insert_new`
        (a sync batch's new messages, many at once) that messages are inserted.

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
        if direction == "in":
            self._mark_dirty(conversation_id)
        return local_id

    def _touch_all(self, conversation_ids: Iterable[int]) -> None:
        """`_touch` for several conversations in one statement."""
        for part in _chunks(sorted(conversation_ids)):
            marks = ",".join("?" * len(part))
            self._conn.execute(
                "UPDATE conversations SET last_at = (SELECT max(at) FROM messages "  # noqa: S608
                f"WHERE conversation_id = conversations.id) WHERE id IN ({marks})",
                part,
            )

    def _touch(self, conversation_id: int) -> None:
        """Recompute the conversation's last activity from its visible messages."""
        self._conn.execute(
            "UPDATE conversations SET last_at = "
            "(SELECT max(at) FROM messages WHERE conversation_id = ?) WHERE id = ?",
            (conversation_id, conversation_id),
        )

    def _begin_unread(self) -> None:
        self._dirty = set()
        self._next_unread = None

    def _mark_dirty(self, conversation_id: int | None) -> None:
        """This write may change the unread count of a conversation (None: of any)."""
        if conversation_id is None:
            self._dirty = None
        elif self._dirty is not None:
            self._dirty.add(conversation_id)

    def _unread_counts(self) -> dict[int, int]:
        """Unread counts as of the last commit (in a write: call before changing anything)."""
        if self._unread_cache is None:
            self._unread_cache = self._unread_map()
        return self._unread_cache

    def _unread_for(self, ids: Iterable[int]) -> dict[int, int]:
        wanted = sorted(ids)
        marks = ",".join("?" * len(wanted))
        rows = self._conn.execute(
            f"""SELECT c.id, (SELECT count(*) FROM messages u
                   WHERE u.conversation_id = c.id AND u.direction = 'in'
                     AND u.server_id > c.read_up_to) AS n
               FROM conversations c WHERE c.last_at IS NOT NULL AND c.id IN ({marks})""",  # noqa: S608
            wanted,
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def _unread_map(self) -> dict[int, int]:
        rows = self._conn.execute(
            """SELECT c.id, (SELECT count(*) FROM messages u
                   WHERE u.conversation_id = c.id AND u.direction = 'in'
                     AND u.server_id > c.read_up_to) AS n
               FROM conversations c WHERE c.last_at IS NOT NULL"""
        ).fetchall()
        return {r[0]: r[1] for r in rows if r[1]}

    def _emit_unread_if_changed(self, before: Mapping[int, int]) -> None:
        if self._dirty is None:
            after = self._unread_map()
        else:
            after = dict(before)
            counts = self._unread_for(self._dirty) if self._dirty else {}
            for cid in self._dirty:
                n = counts.get(cid, 0)
                if n:
                    after[cid] = n
                else:
                    after.pop(cid, None)
        self._dirty = set()
        self._next_unread = after
        if after != before:
            self._append(
                "unread",
                {
                    "total": sum(after.values()),
                    "conversations": [{"id": k, "count": v} for k, v in sorted(after.items())],
                },
            )

    # ------------------------------------------------------------------ sync

    def apply_sync(
        self,
        events: Sequence[Any],
        cursor: int,
        *,
        reset: bool = False,
        own_ext: str | None = None,
    ) -> list[LocalEvent]:
        """Apply one server sync batch (or one pushed event) and its cursor in one transaction.

        Events with `seq` at or below the stored cursor are duplicates and skipped (not
        in a `reset` batch: a snapshot replaces the synced state whatever its seqs).
        Unknown kinds are ignored; malformed events are logged and skipped, so one bad
        frame cannot stall the sync. A `reset` keeps local ids, drops every synced
        message the snapshot does not list, and keeps sends the server has not
        confirmed. Returns the local events logged (also given to `on_events`).
        """
        if not _is_int(cursor) or cursor < 0:
            raise BadInput(f"sync cursor must be an integer >= 0, not {cursor!r}")
        with self._write():
            start = len(self._pending)
            before = self._unread_counts()
            stored = self.cursor()
            touched: set[int] = set()
            # Consecutive message events, merged together (see `_merge_run`).
            run: list[dict[str, Any]] = []
            if reset:
                self._reset(events)
            for ev in events:
                if not isinstance(ev, Mapping):
                    log.warning("sync: skipped a non-object event")
                    continue
                seq = ev.get("seq")
                if not _is_int(seq):
                    log.warning("sync: skipped an event without an integer seq")
                    continue
                if not reset and seq <= stored:
                    continue
                if ev.get("kind") == "message":
                    msg = ev.get("message")
                    if not _valid_message(msg):
                        log.warning("sync: skipped a malformed message event (seq %s)", seq)
                        continue
                    assert isinstance(msg, dict)
                    run.append(msg)
                    continue
                self._merge_run(run, own_ext, touched, quiet=reset)
                run = []
                self._apply_one(ev, own_ext, touched, quiet=reset)
            self._merge_run(run, own_ext, touched, quiet=reset)
            self._touch_all(touched)
            self._set_meta("cursor", cursor)
            if reset:
                self._append("reset", {"cursor": cursor})
            self._emit_unread_if_changed(before)
            return list(self._pending[start:])

    def _reset(self, events: Sequence[Any]) -> None:
        keep = [
            ev["message"]["id"]
            for ev in events
            if isinstance(ev, Mapping)
            and ev.get("kind") == "message"
            and _valid_message(ev.get("message"))
        ]
        db = self._conn
        db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_ids (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.keep_ids")
        db.executemany("INSERT OR IGNORE INTO temp.keep_ids (id) VALUES (?)", ((i,) for i in keep))
        self._mark_dirty(None)
        db.execute(
            "DELETE FROM messages WHERE server_id IS NOT NULL "
            "AND server_id NOT IN (SELECT id FROM temp.keep_ids)"
        )
        db.execute("DELETE FROM temp.keep_ids")
        db.execute("UPDATE conversations SET read_up_to = 0, deleted_up_to = 0")
        db.execute(
            "UPDATE conversations SET last_at = "
            "(SELECT max(at) FROM messages WHERE conversation_id = conversations.id)"
        )

    def _apply_one(
        self, ev: Mapping[str, Any], own_ext: str | None, touched: set[int], *, quiet: bool
    ) -> None:
        kind = ev.get("kind")
        if kind == "message":
            msg = ev.get("message")
            if not _valid_message(msg):
                log.warning("sync: skipped a malformed message event (seq %s)", ev.get("seq"))
                return
            assert isinstance(msg, dict)
            self._merge_message(msg, own_ext, touched, quiet=quiet)
        elif kind == "message_state":
            sid, state, reason = ev.get("id"), ev.get("state"), ev.get("reason")
            if not _is_int(sid) or state not in STATES or not _opt_str(reason):
                log.warning("sync: skipped a malformed message_state event")
                return
            row = self._conn.execute(
                "SELECT id, state, reason FROM messages WHERE server_id = ?", (sid,)
            ).fetchone()
            if row is not None:
                self._set_state(row, str(state), reason)
        elif kind == "read":
            number, remote, up_to = ev.get("number"), ev.get("remote"), ev.get("up_to")
            if not (isinstance(number, str) and isinstance(remote, str) and _is_int(up_to)):
                log.warning("sync: skipped a malformed read event")
                return
            assert isinstance(up_to, int)
            cid = self._conversation_id(number, remote)
            self._raise_read_mark(cid, up_to, quiet=quiet)
        elif kind == "delete_message":
            sid = ev.get("id")
            if not _is_int(sid):
                log.warning("sync: skipped a malformed delete_message event")
                return
            row = self._conn.execute(
                "SELECT id, conversation_id FROM messages WHERE server_id = ?", (sid,)
            ).fetchone()
            if row is not None:
                self._conn.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
                self._mark_dirty(row["conversation_id"])
                touched.add(row["conversation_id"])
                self._append(
                    "deleted",
                    {"conversation_id": row["conversation_id"], "message_ids": [row["id"]]},
                )
        elif kind == "delete_conversation":
            number, remote, up_to = ev.get("number"), ev.get("remote"), ev.get("up_to")
            if not (isinstance(number, str) and isinstance(remote, str) and _is_int(up_to)):
                log.warning("sync: skipped a malformed delete_conversation event")
                return
            assert isinstance(up_to, int)
            row = self._conn.execute(
                "SELECT id FROM conversations WHERE number = ? AND remote = ?", (number, remote)
            ).fetchone()
            if row is not None:
                self._hide_up_to(int(row[0]), up_to)
                touched.add(int(row[0]))
        # Other kinds are newer protocol additions: ignored, as the protocol says.

    def _merge_run(
        self,
        msgs: Sequence[Mapping[str, Any]],
        own_ext: str | None,
        touched: set[int],
        *,
        quiet: bool,
    ) -> None:
        """`_merge_message` for each of a run of (valid) messages, in order, with the
        per-message statements of new messages batched: one query finds which messages
        already have a row, and the new rows, their index entries and their events are
        written with one `executemany` each. A catch-up is almost only new messages and
        paid 5-6 statements apiece. A message that has a row (or repeats one earlier in
        the run) goes through `_merge_message` itself, after the rows before it are in."""
        if len(msgs) <= 1:
            # A pushed event: the batched form's extra queries cost more than they save.
            for msg in msgs:
                self._merge_message(msg, own_ext, touched, quiet=quiet)
            return
        db = self._conn
        known_sids = _present(db, "server_id", [int(m["id"]) for m in msgs])
        known_cids = _present(db, "client_id", [m["client_id"] for m in msgs if m.get("client_id")])
        # The conversations of the new messages, with their deletion marks in one query
        # (a run holds no event that moves them).
        run_cids = {
            self._conversation_id(m["number"], m["remote"])
            for m in msgs
            if int(m["id"]) not in known_sids and m.get("client_id") not in known_cids
        }
        hidden_up_to: dict[int, int] = {}
        for part in _chunks(sorted(run_cids)):
            marks = ",".join("?" * len(part))
            hidden_up_to.update(
                db.execute(
                    f"SELECT id, deleted_up_to FROM conversations WHERE id IN ({marks})",  # noqa: S608
                    part,
                ).fetchall()
            )
        new: list[_NewMessage] = []
        for msg in msgs:
            sid = int(msg["id"])
            client_id = msg.get("client_id")
            if sid in known_sids or (client_id and client_id in known_cids):
                self._insert_new(new, quiet=quiet)
                new = []
                self._merge_message(msg, own_ext, touched, quiet=quiet)
                continue
            known_sids.add(sid)
            if client_id:
                known_cids.add(client_id)
            number, remote = msg["number"], msg["remote"]
            cid = self._conversation_id(number, remote)
            if cid not in hidden_up_to:
                hidden_up_to[cid] = db.execute(
                    "SELECT deleted_up_to FROM conversations WHERE id = ?", (cid,)
                ).fetchone()[0]
            if sid <= hidden_up_to[cid]:
                continue
            sender = msg.get("sender")
            if sender is not None and own_ext is not None and sender.get("ext") == own_ext:
                sender = None  # the user's own message, from any of their devices
            new.append(
                _NewMessage(
                    cid,
                    number,
                    remote,
                    sid,
                    client_id,
                    msg["direction"],
                    msg["text"],
                    msg["state"],
                    msg.get("reason"),
                    float(msg["at"]),
                    _dumps(sender) if sender else None,
                    _server_files(msg.get("files") or []),
                )
            )
            touched.add(cid)
        self._insert_new(new, quiet=quiet)

    def _insert_new(self, new: Sequence[_NewMessage], *, quiet: bool) -> None:
        """Insert server messages known to be new, index them, and log their events.

        The ids are given explicitly, as SQLite would pick them (max + 1: `messages` has
        no AUTOINCREMENT), so that `executemany` can write them all."""
        if not new:
            return
        db = self._conn
        first = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM messages").fetchone()[0])
        ids = range(first, first + len(new))
        db.executemany(
            "INSERT INTO messages (id, server_id, client_id, conversation_id, direction, text, "
            "state, reason, at, sender, files) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    local_id,
                    m.server_id,
                    m.client_id,
                    m.conversation_id,
                    m.direction,
                    m.text,
                    m.state,
                    m.reason,
                    m.at,
                    m.sender,
                    _dumps(m.files),
                )
                for local_id, m in zip(ids, new, strict=True)
            ],
        )
        # Not a trigger, and one executemany: see `_insert_message`.
        db.executemany(
            "INSERT INTO messages_fts (rowid, text) VALUES (?, ?)",
            [(local_id, m.text) for local_id, m in zip(ids, new, strict=True)],
        )
        for m in new:
            if m.direction == "in":
                self._mark_dirty(m.conversation_id)
        if quiet:
            return
        states = self._file_states(f["sha256"] for m in new for f in m.files)
        payloads = []
        for local_id, m in zip(ids, new, strict=True):
            row = MessageRow(
                id=local_id,
                conversation_id=m.conversation_id,
                number=m.number,
                remote=m.remote,
                server_id=m.server_id,
                client_id=m.client_id,
                direction=m.direction,
                text=m.text,
                state=m.state,
                reason=m.reason,
                at=m.at,
                sender=_sender_from(m.sender),
                files=tuple(
                    FileRow(
                        f["sha256"],
                        f["name"],
                        f["mime"],
                        f["size"],
                        *states.get(f["sha256"], (None, "none")),
                    )
                    for f in m.files
                ),
            )
            payloads.append({"message": row.to_json()})
        self._append_many("message", payloads)

    def _merge_message(
        self, msg: Mapping[str, Any], own_ext: str | None, touched: set[int], *, quiet: bool
    ) -> None:
        db = self._conn
        sid = int(msg["id"])
        sender = msg.get("sender")
        if sender is not None and own_ext is not None and sender.get("ext") == own_ext:
            sender = None  # the user's own message, from any of their devices
        files = _server_files(msg.get("files") or [])
        client_id = msg.get("client_id")
        existing = db.execute(
            "SELECT id, state, reason, conversation_id, files FROM messages WHERE server_id = ?",
            (sid,),
        ).fetchone()
        if existing is None and client_id:
            existing = db.execute(
                "SELECT id, state, reason, conversation_id, files FROM messages "
                "WHERE client_id = ?",
                (client_id,),
            ).fetchone()
        if existing is not None:
            # Our own send coming back (or a duplicate): one row, never two. Local file
            # paths of our own files are kept.
            local = {f.get("sha256"): f.get("path") for f in json.loads(existing["files"])}
            for f in files:
                if local.get(f["sha256"]):
                    f["path"] = local[f["sha256"]]
            db.execute(
                "UPDATE messages SET server_id = ?, at = ?, sender = ?, files = ? WHERE id = ?",
                (
                    sid,
                    float(msg["at"]),
                    _dumps(sender) if sender else None,
                    _dumps(files),
                    existing["id"],
                ),
            )
            # Only when it differs: an UPDATE OF text re-indexes the row (FTS trigger).
            db.execute(
                "UPDATE messages SET text = ? WHERE id = ? AND text IS NOT ?",
                (msg["text"], existing["id"], msg["text"]),
            )
            if client_id:
                db.execute("DELETE FROM outbox WHERE client_id = ?", (client_id,))
            if not (msg["state"] == "sending" and existing["state"] != "sending"):
                self._set_state(existing, msg["state"], msg.get("reason"), quiet=quiet)
            touched.add(existing["conversation_id"])
            self._mark_dirty(existing["conversation_id"])
            return
        number, remote = msg["number"], msg["remote"]
        cid = self._conversation_id(number, remote)
        deleted_up_to = db.execute(
            "SELECT deleted_up_to FROM conversations WHERE id = ?", (cid,)
        ).fetchone()[0]
        if sid <= deleted_up_to:
            return
        sender_json = _dumps(sender) if sender else None
        local_id = self._insert_message(
            conversation_id=cid,
            server_id=sid,
            client_id=client_id,
            direction=msg["direction"],
            text=msg["text"],
            state=msg["state"],
            reason=msg.get("reason"),
            at=float(msg["at"]),
            sender=sender_json,
            files=_dumps(files),
        )
        touched.add(cid)
        if not quiet:
            # Built from what was just written rather than read back: this is the hot path
            # of a catch-up.
            states = self._file_states(f["sha256"] for f in files) if files else {}
            row = MessageRow(
                id=local_id,
                conversation_id=cid,
                number=number,
                remote=remote,
                server_id=sid,
                client_id=client_id,
                direction=msg["direction"],
                text=msg["text"],
                state=msg["state"],
                reason=msg.get("reason"),
                at=float(msg["at"]),
                sender=_sender_from(sender_json),
                files=tuple(
                    FileRow(
                        f["sha256"],
                        f["name"],
                        f["mime"],
                        f["size"],
                        *states.get(f["sha256"], (None, "none")),
                    )
                    for f in files
                ),
            )
            self._append("message", {"message": row.to_json()})

    def _set_state(
        self, row: sqlite3.Row, state: str, reason: str | None, *, quiet: bool = False
    ) -> None:
        if row["state"] == state and row["reason"] == reason:
            return
        self._conn.execute(
            "UPDATE messages SET state = ?, reason = ? WHERE id = ?", (state, reason, row["id"])
        )
        if not quiet:
            cid = self._conn.execute(
                "SELECT conversation_id FROM messages WHERE id = ?", (row["id"],)
            ).fetchone()[0]
            self._append(
                "message_state",
                {"id": row["id"], "conversation_id": cid, "state": state, "reason": reason},
            )

    def _raise_read_mark(self, cid: int, up_to: int, *, quiet: bool = False) -> bool:
        cur = self._conn.execute(
            "UPDATE conversations SET read_up_to = ? WHERE id = ? AND read_up_to < ?",
            (up_to, cid, up_to),
        )
        if cur.rowcount:
            self._mark_dirty(cid)
        if cur.rowcount and not quiet:
            self._append("read", {"conversation_id": cid, "up_to": up_to})
        return bool(cur.rowcount)

    def _hide_up_to(self, cid: int, up_to: int) -> list[int]:
        """Delete the conversation's messages the server has up to `up_to`, and remember it."""
        db = self._conn
        db.execute(
            "UPDATE conversations SET deleted_up_to = max(deleted_up_to, ?) WHERE id = ?",
            (up_to, cid),
        )
        ids = [
            r[0]
            for r in db.execute(
                "SELECT id FROM messages WHERE conversation_id = ? AND server_id <= ?",
                (cid, up_to),
            )
        ]
        db.execute(
            "DELETE FROM messages WHERE conversation_id = ? AND server_id <= ?", (cid, up_to)
        )
        self._mark_dirty(cid)
        if ids:
            self._append(
                "deleted", {"conversation_id": cid, "message_ids": ids, "conversation": True}
            )
        return ids

    # ------------------------------------------------------------------ outbox

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
        if not client_id or len(client_id) > 64:
            raise BadInput("client_id must be 1 to 64 characters.")
        when = time.time() if now is None else now
        with self._write(durable=True) as db:
            row = db.execute("SELECT id FROM messages WHERE client_id = ?", (client_id,)).fetchone()
            if row is not None:
                found = self._message(int(row[0]))
                assert found is not None
                return found
            cid = self._conversation_id(number, remote)
            local_id = self._insert_message(
                conversation_id=cid,
                client_id=client_id,
                direction="out",
                text=text,
                state="sending",
                at=when,
                files=_dumps(_local_files(files)),
            )
            db.execute(
                "INSERT INTO outbox (client_id, message_id, number, remote, text, files, next_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client_id,
                    local_id,
                    number,
                    remote,
                    text,
                    _dumps(list(map(dict, files))),
                    when,
                    when,
                ),
            )
            db.execute(
                "UPDATE conversations SET last_at = max(coalesce(last_at, 0), ?) WHERE id = ?",
                (when, cid),
            )
            message = self._message(local_id)
            assert message is not None
            self._append("message", {"message": message.to_json()}, at=when)
            return message

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
                (_dumps(list(map(dict, files))), client_id),
            )
            db.execute(
                "UPDATE messages SET files = ? WHERE id = ?",
                (_dumps(_local_files(files)), row[0]),
            )

    def outbox_done(
        self, client_id: str, server_message: Mapping[str, Any], *, own_ext: str | None = None
    ) -> MessageRow | None:
        """The server took the send: merge its MESSAGE (server id, state) and dequeue it.

        Returns the merged row, or None when the message is gone (deleted meanwhile).
        """
        if not _valid_message(server_message):
            raise BadInput(f"send reply for {client_id} is not a MESSAGE")
        msg = dict(server_message)
        msg["client_id"] = client_id
        with self._write() as db:
            touched: set[int] = set()
            before = self._unread_counts()
            self._merge_message(msg, own_ext, touched, quiet=False)
            db.execute("DELETE FROM outbox WHERE client_id = ?", (client_id,))
            for cid in touched:
                self._touch(cid)
            self._emit_unread_if_changed(before)
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

    def resend(self, local_id: int, client_id: str, *, now: float | None = None) -> OutboxItem:
        """Queue a failed outgoing message again, under a new `client_id`.

        A message the server never took keeps its row (and local id) and goes back to
        `sending`; one the server has (failed by the carrier) stays as history and a
        new row is made, since the server answers an old client id with the old result.
        """
        when = time.time() if now is None else now
        with self._write(durable=True) as db:
            msg = self._message(local_id)
            if msg is None:
                raise NotFound(f"No message {local_id}.")
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
                    "UPDATE messages SET client_id = ?, state = 'sending', reason = NULL, at = ? "
                    "WHERE id = ?",
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
                    files=_dumps(_local_files(files)),
                )
                fresh = self._message(new_id)
                assert fresh is not None
                self._append("message", {"message": fresh.to_json()})
            db.execute(
                "INSERT INTO outbox (client_id, message_id, number, remote, text, files, next_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (client_id, new_id, msg.number, msg.remote, msg.text, _dumps(files), when, when),
            )
            self._touch(msg.conversation_id)
            item = self.outbox_item(client_id)
            assert item is not None
            return item

    # ------------------------------------------------------------------ reading

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
                    self._MESSAGE_SELECT
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
                    self._MESSAGE_SELECT + "WHERE m.conversation_id = ? AND (m.at, m.id) < (?, ?) "
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
                    self._MESSAGE_SELECT  # noqa: S608 (constant text)
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

    def _contacts_by_ids(self, ids: Sequence[int]) -> list[ContactRow]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT id, name, numbers FROM contacts WHERE id IN ({marks})",  # noqa: S608
            list(ids),
        ).fetchall()
        by_id = {
            r["id"]: ContactRow(
                r["id"],
                r["name"],
                tuple(ContactNumber(n["label"], n["number"]) for n in json.loads(r["numbers"])),
            )
            for r in rows
        }
        return [by_id[i] for i in ids if i in by_id]

    def _find_contacts(self, text: str, limit: int) -> list[ContactRow]:
        ids: list[int] = []
        for needle in phone_needles(text):
            ids += [
                r[0]
                for r in self._conn.execute(
                    "SELECT id FROM contacts WHERE instr(digits, ?) > 0 ORDER BY name, id LIMIT ?",
                    (needle, limit),
                )
            ]
        query = fts_query(text)
        if query is not None:
            ids += [
                r[0]
                for r in self._conn.execute(
                    "SELECT c.id FROM contacts_fts f JOIN contacts c ON c.id = f.rowid "
                    "WHERE contacts_fts MATCH ? ORDER BY c.name, c.id LIMIT ?",
                    (query, limit),
                )
            ]
        unique = list(dict.fromkeys(ids))[:limit]
        return self._contacts_by_ids(unique)

    # ------------------------------------------------------------------ local changes

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
                self._raise_read_mark(cid, up_to)
                marks.append(ReadMark(cid, row[0], row[1], up_to))
            self._emit_unread_if_changed(before)
            return marks

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
            self._mark_dirty(row["conversation_id"])
            self._touch(row["conversation_id"])
            self._append(
                "deleted", {"conversation_id": row["conversation_id"], "message_ids": [local_id]}
            )
            self._emit_unread_if_changed(before)
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
            self._mark_dirty(conversation_id)
            if top is not None:
                db.execute(
                    "UPDATE conversations SET deleted_up_to = max(deleted_up_to, ?) WHERE id = ?",
                    (top, conversation_id),
                )
            self._touch(conversation_id)
            self._append(
                "deleted",
                {"conversation_id": conversation_id, "message_ids": ids, "conversation": True},
            )
            self._emit_unread_if_changed(before)
            return ConversationRef(
                conversation_id, conv["number"], conv["remote"], None if top is None else int(top)
            )

    # ------------------------------------------------------------------ contacts

    def replace_contacts(self, contacts: Sequence[Mapping[str, Any]]) -> int:
        """Replace the contacts cache with a server lookup result; returns how many were kept.

        Entries that are not `{"id": int, "name": str, "numbers": [{"label","number"}]}`
        are skipped. Conversation display names follow the new contacts.
        """
        with self._write() as db:
            db.execute("DELETE FROM contacts")
            kept = 0
            for c in contacts:
                if not (
                    isinstance(c, Mapping)
                    and _is_int(c.get("id"))
                    and isinstance(c.get("name"), str)
                    and isinstance(c.get("numbers", []), list)
                ):
                    log.warning("contacts: skipped a malformed entry")
                    continue
                numbers = [
                    {"label": str(n.get("label") or ""), "number": n["number"]}
                    for n in c.get("numbers", [])
                    if isinstance(n, Mapping) and isinstance(n.get("number"), str)
                ]
                all_digits = " ".join(digits_of(n["number"]) for n in numbers)
                db.execute(
                    "INSERT OR REPLACE INTO contacts (id, name, numbers, digits) "
                    "VALUES (?, ?, ?, ?)",
                    (c["id"], c["name"], _dumps(numbers), all_digits),
                )
                db.executemany(
                    "INSERT INTO contact_numbers (contact_id, label, number, tail) "
                    "VALUES (?, ?, ?, ?)",
                    [(c["id"], n["label"], n["number"], phone_tail(n["number"])) for n in numbers],
                )
                kept += 1
            db.execute(
                """UPDATE conversations SET name = (
                       SELECT c.name FROM contact_numbers n JOIN contacts c ON c.id = n.contact_id
                       WHERE n.tail = conversations.remote_tail AND n.tail != ''
                       ORDER BY c.id LIMIT 1)"""
            )
            # SQLite's lower() folds ASCII only, so the search key is folded here.
            db.executemany(
                "UPDATE conversations SET name_key = ? WHERE id = ?",
                [
                    (fold(r[1] or ""), r[0])
                    for r in db.execute("SELECT id, name FROM conversations").fetchall()
                ],
            )
            return kept

    def find_contacts(self, query: str, limit: int = 50) -> list[ContactRow]:
        """Cached contacts whose name or number matches `query` (empty query: all, by name)."""
        with self._read() as db:
            if not query.strip():
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM contacts ORDER BY name, id LIMIT ?", (limit,)
                    )
                ]
                return self._contacts_by_ids(ids)
            return self._find_contacts(query, limit)

    # ------------------------------------------------------------------ files

    def set_file_state(self, sha256: str, path: str | None, state: str) -> None:
        """Record where a downloaded file is and its download state."""
        if state not in FILE_STATES:
            raise BadInput(f"file state must be one of {', '.join(FILE_STATES)}")
        with self._write() as db:
            db.execute(
                "INSERT INTO files (sha256, path, state) VALUES (?, ?, ?) ON CONFLICT (sha256) "
                "DO UPDATE SET path = excluded.path, state = excluded.state",
                (sha256, path, state),
            )

    def file_state(self, sha256: str) -> tuple[str | None, str]:
        """(local path or None, download state) of a file known by its sha256."""
        row = self._conn.execute(
            "SELECT path, state FROM files WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return (None, "none") if row is None else (row["path"], row["state"])

    def pending_downloads(self, max_size: int | None = None, limit: int = 50) -> list[FileRow]:
        """Files of incoming messages not downloaded yet (state none), newest message first.

        With `max_size`, only files at most that big (the automatic download rule).
        """
        rows = self._conn.execute(
            """SELECT DISTINCT j.value ->> 'sha256' AS sha256, j.value ->> 'name' AS name,
                      j.value ->> 'mime' AS mime, j.value ->> 'size' AS size
               FROM messages m, json_each(m.files) j
               LEFT JOIN files f ON f.sha256 = j.value ->> 'sha256'
               WHERE m.direction = 'in' AND m.files != '[]'
                 AND coalesce(f.state, 'none') = 'none'
                 AND (? IS NULL OR coalesce(j.value ->> 'size', 0) <= ?)
               ORDER BY m.id DESC LIMIT ?""",
            (max_size, max_size, limit),
        ).fetchall()
        return [
            FileRow(r["sha256"], r["name"] or "file", r["mime"], r["size"], None, "none")
            for r in rows
        ]

    # ------------------------------------------------------------------ pending server ops

    def add_pending_op(self, method: str, params: Mapping[str, Any]) -> int:
        """Keep a change the server must hear once it is reachable; returns its id."""
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO pending_ops (method, params) VALUES (?, ?)",
                (method, _dumps(dict(params))),
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

    # ------------------------------------------------------------------ prefs, emoji

    def get_pref(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM prefs WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_pref(self, key: str, value: Any) -> None:
        """Set a preference to any JSON value."""
        encoded = _dumps(value)
        with self._write() as db:
            db.execute(
                "INSERT INTO prefs (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, encoded),
            )

    def prefs(self) -> dict[str, Any]:
        return {
            r[0]: json.loads(r[1])
            for r in self._conn.execute("SELECT key, value FROM prefs ORDER BY key")
        }

    def emoji_used(self, emojis: Sequence[str], *, now: float | None = None) -> None:
        """Remember emojis just used; only the `EMOJI_RECENTS` most recent are kept."""
        when = time.time() if now is None else now
        with self._write() as db:
            # Later in the list = used later, so it sorts first among equal timestamps.
            for i, e in enumerate(emojis):
                if not e or len(e) > 32:
                    continue
                db.execute(
                    "INSERT INTO emoji (emoji, last_used, uses) VALUES (?, ?, 1) "
                    "ON CONFLICT (emoji) DO UPDATE SET last_used = excluded.last_used, "
                    "uses = uses + 1",
                    (e, when + i * 1e-6),
                )
            db.execute(
                "DELETE FROM emoji WHERE emoji NOT IN "
                "(SELECT emoji FROM emoji ORDER BY last_used DESC LIMIT ?)",
                (EMOJI_RECENTS,),
            )

    def emoji_recent(self, limit: int = EMOJI_RECENTS) -> list[str]:
        return [
            r[0]
            for r in self._conn.execute(
                "SELECT emoji FROM emoji ORDER BY last_used DESC LIMIT ?", (limit,)
            )
        ]

    # ------------------------------------------------------------------ export

    def export_conversation(self, conversation_id: int) -> ExportedConversation | None:
        """One conversation with all its messages, oldest first."""
        with self._read() as db:
            conv = self._conversation(conversation_id)
            if conv is None:
                return None
            rows = db.execute(
                self._MESSAGE_SELECT + "WHERE m.conversation_id = ? ORDER BY m.at, m.id",
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


# ---------------------------------------------------------------------------- open helpers


def _check_version(path: Path) -> None:
    """Refuse a newer schema before anything writes to the file (read-only connection)."""
    try:
        probe = sqlite3.connect(_file_uri(path), uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot open the local database {path}: {exc}") from exc
    try:
        version = int(probe.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{path} is not a glosmsd database or is damaged ({exc}). "
            "Move it aside and start glosmsd again to sync a fresh copy."
        ) from exc
    finally:
        probe.close()
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} was written by a newer glosmsd (schema version {version}; this one "
            f"knows up to {SCHEMA_VERSION}). Upgrade glosmsd, or move the file aside to "
            "start over from the server. The file was left untouched.",
            data={"path": str(path), "version": version, "supported": SCHEMA_VERSION},
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        # Another process upgraded the file since `_check_version`: still refuse it.
        raise SchemaTooNew(
            f"{path} was written by a newer glosmsd (schema version {version}; this "
            f"one knows up to {SCHEMA_VERSION}). Upgrade glosmsd.",
            data={"path": str(path), "version": version, "supported": SCHEMA_VERSION},
        )
    for number in range(version + 1, SCHEMA_VERSION + 1):
        # executescript commits by itself, so the script carries its own transaction.
        script = (
            "BEGIN IMMEDIATE;\n"
            + MIGRATIONS[number - 1]
            + f"\nPRAGMA user_version = {number};\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


# ---------------------------------------------------------------------------- checkpoints


class _Checkpointer:
    """A thread with its own connection that copies the WAL back into the database.

    The writer calls `committed()` after each commit (cheap: it only notes the time, and
    wakes the thread when it was idle). The thread runs a PASSIVE checkpoint, which never
    waits for nor blocks the writer, once no commit came for `idle` seconds or `max_delay`
    after the first commit it has not copied back. Its fsyncs are of the database file,
    not the WAL a send's commit syncs, and happen outside every send's transaction.
    """

    def __init__(
        self,
        path: Path,
        *,
        idle: float = CHECKPOINT_IDLE_SECONDS,
        max_delay: float = CHECKPOINT_MAX_DELAY,
    ) -> None:
        self._path = path
        self._idle = idle
        self._max_delay = max_delay
        self._cond = threading.Condition()
        self._first: float | None = None  # first commit not copied back yet
        self._last = 0.0
        self._stopping = False
        #: Commits seen so far, and how many of them the finished checkpoints covered.
        self.commits = 0
        self.covered = 0
        #: Checkpoints run so far, and the last one's (busy, WAL frames, frames copied).
        self.runs = 0
        self.last: tuple[int, int, int] | None = None
        self._thread = threading.Thread(target=self._run, name="glosmsd-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        now = time.monotonic()
        with self._cond:
            self.commits += 1
            self._last = now
            if self._first is None:
                self._first = now
                self._cond.notify_all()

    def wait_covered(self, commits: int, timeout: float) -> bool:
        """Block until a checkpoint that started after the first `commits` commits has
        finished (True) or `timeout` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.covered >= commits, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _due(self) -> int | None:
        """Under the lock: wait until a checkpoint is due and return the commits it will
        cover; None when stopping."""
        while not self._stopping:
            if self._first is None:
                self._cond.wait()
                continue
            now = time.monotonic()
            due = min(self._last + self._idle, self._first + self._max_delay)
            if now >= due:
                self._first = None
                return self.commits
            self._cond.wait(due - now)
        return None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as exc:
            log.warning("checkpoint thread: cannot open %s: %s", self._path, exc)
            return
        try:
            while True:
                with self._cond:
                    covers = self._due()
                    if covers is None:
                        return
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    result = (int(row[0]), int(row[1]), int(row[2]))
                except sqlite3.Error as exc:  # e.g. disk full: the writer's limit still holds
                    log.warning("checkpoint of %s failed: %s", self._path, exc)
                    result = None
                with self._cond:
                    self.runs += 1
                    self.last = result
                    if result is not None and result[0] == 0:
                        self.covered = max(self.covered, covers)
                    self._cond.notify_all()
        finally:
            conn.close()


# ---------------------------------------------------------------------------- AsyncStore


class AsyncStore:
    """A `Store` on one dedicated writer thread, awaited from the event loop.

    Every call runs on the same thread, in call order, so writes are serialized and
    the loop never blocks on SQLite. Events go to `on_events` on the loop's thread.
    """

    def __init__(
        self, executor: ThreadPoolExecutor, store: Store, checkpointer: _Checkpointer | None = None
    ) -> None:
        self._executor = executor
        self._store = store
        self._checkpointer = checkpointer
        self.thread_id: int = 0

    @classmethod
    async def open(cls, path: Path, *, on_events: EventsListener | None = None) -> AsyncStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glosmsd-store")
        loop = asyncio.get_running_loop()

        def deliver(events: list[LocalEvent]) -> None:
            if on_events is not None:
                loop.call_soon_threadsafe(on_events, events)

        def open_store() -> tuple[Store, _Checkpointer]:
            store = Store.open(path, on_events=deliver if on_events else None)
            checkpointer: _Checkpointer | None = None
            try:
                checkpointer = _Checkpointer(store.path)
                store.defer_checkpoints(checkpointer.committed)
            except BaseException:
                if checkpointer is not None:
                    checkpointer.stop()
                store.close()
                raise
            return store, checkpointer

        try:
            store, checkpointer = await loop.run_in_executor(executor, open_store)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        astore = cls(executor, store, checkpointer)
        astore.thread_id = await loop.run_in_executor(executor, threading.get_ident)
        return astore

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` on the store's thread (for a method not mirrored here)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    @property
    def path(self) -> Path:
        return self._store.path

    async def close(self) -> None:
        try:
            if self._checkpointer is not None:
                # First, so that the store's connection is the last one and its close
                # checkpoints and removes the WAL.
                await asyncio.to_thread(self._checkpointer.stop)
            await self.call(self._store.close)
        finally:
            self._executor.shutdown(wait=True)

    async def cursor(self) -> int:
        return await self.call(self._store.cursor)

    async def apply_sync(
        self,
        events: Sequence[Any],
        cursor: int,
        *,
        reset: bool = False,
        own_ext: str | None = None,
    ) -> list[LocalEvent]:
        return await self.call(self._store.apply_sync, events, cursor, reset=reset, own_ext=own_ext)

    async def set_account(self, hello: Mapping[str, Any]) -> None:
        await self.call(self._store.set_account, hello)

    async def account(self) -> dict[str, Any] | None:
        return await self.call(self._store.account)

    async def enqueue_send(
        self,
        client_id: str,
        number: str,
        remote: str,
        text: str,
        files: Sequence[Mapping[str, Any]] = (),
        *,
        now: float | None = None,
    ) -> MessageRow:
        return await self.call(
            self._store.enqueue_send, client_id, number, remote, text, files, now=now
        )

    async def outbox_items(self) -> list[OutboxItem]:
        return await self.call(self._store.outbox_items)

    async def outbox_item(self, client_id: str) -> OutboxItem | None:
        return await self.call(self._store.outbox_item, client_id)

    async def outbox_due(self, now: float, limit: int = 50) -> list[OutboxItem]:
        return await self.call(self._store.outbox_due, now, limit)

    async def outbox_defer(self, client_id: str, next_at: float, error: str | None) -> None:
        await self.call(self._store.outbox_defer, client_id, next_at, error)

    async def outbox_update_files(self, client_id: str, files: Sequence[Mapping[str, Any]]) -> None:
        await self.call(self._store.outbox_update_files, client_id, files)

    async def outbox_done(
        self, client_id: str, server_message: Mapping[str, Any], *, own_ext: str | None = None
    ) -> MessageRow | None:
        return await self.call(self._store.outbox_done, client_id, server_message, own_ext=own_ext)

    async def outbox_failed(self, client_id: str, reason: str) -> MessageRow | None:
        return await self.call(self._store.outbox_failed, client_id, reason)

    async def resend(
        self, local_id: int, client_id: str, *, now: float | None = None
    ) -> OutboxItem:
        return await self.call(self._store.resend, local_id, client_id, now=now)

    async def message(self, local_id: int) -> MessageRow | None:
        return await self.call(self._store.message, local_id)

    async def message_by_client_id(self, client_id: str) -> MessageRow | None:
        return await self.call(self._store.message_by_client_id, client_id)

    async def conversation(self, conversation_id: int) -> ConversationRow | None:
        return await self.call(self._store.conversation, conversation_id)

    async def conversation_by_remote(self, number: str, remote: str) -> ConversationRow | None:
        return await self.call(self._store.conversation_by_remote, number, remote)

    async def conversations(self, limit: int = 50, offset: int = 0) -> list[ConversationRow]:
        return await self.call(self._store.conversations, limit, offset)

    async def messages(
        self, conversation_id: int, before: int | None = None, limit: int = 50
    ) -> list[MessageRow]:
        return await self.call(self._store.messages, conversation_id, before, limit)

    async def unread(self) -> UnreadSummary:
        return await self.call(self._store.unread)

    async def has_history(self) -> bool:
        return await self.call(self._store.has_history)

    async def search(self, text: str, limit: int = 20) -> SearchResult:
        return await self.call(self._store.search, text, limit)

    async def mark_read_local(self, conversation_id: int | None = None) -> list[ReadMark]:
        return await self.call(self._store.mark_read_local, conversation_id)

    async def delete_message_local(self, local_id: int) -> int | None:
        return await self.call(self._store.delete_message_local, local_id)

    async def delete_conversation_local(self, conversation_id: int) -> ConversationRef:
        return await self.call(self._store.delete_conversation_local, conversation_id)

    async def replace_contacts(self, contacts: Sequence[Mapping[str, Any]]) -> int:
        return await self.call(self._store.replace_contacts, contacts)

    async def find_contacts(self, query: str, limit: int = 50) -> list[ContactRow]:
        return await self.call(self._store.find_contacts, query, limit)

    async def set_file_state(self, sha256: str, path: str | None, state: str) -> None:
        await self.call(self._store.set_file_state, sha256, path, state)

    async def file_state(self, sha256: str) -> tuple[str | None, str]:
        return await self.call(self._store.file_state, sha256)

    async def pending_downloads(
        self, max_size: int | None = None, limit: int = 50
    ) -> list[FileRow]:
        return await self.call(self._store.pending_downloads, max_size, limit)

    async def add_pending_op(self, method: str, params: Mapping[str, Any]) -> int:
        return await self.call(self._store.add_pending_op, method, params)

    async def pending_ops(self, limit: int = 500) -> list[tuple[int, str, dict[str, Any]]]:
        return await self.call(self._store.pending_ops, limit)

    async def remove_pending_op(self, op_id: int) -> None:
        await self.call(self._store.remove_pending_op, op_id)

    async def get_pref(self, key: str, default: Any = None) -> Any:
        return await self.call(self._store.get_pref, key, default)

    async def set_pref(self, key: str, value: Any) -> None:
        await self.call(self._store.set_pref, key, value)

    async def prefs(self) -> dict[str, Any]:
        return await self.call(self._store.prefs)

    async def emoji_used(self, emojis: Sequence[str], *, now: float | None = None) -> None:
        await self.call(self._store.emoji_used, emojis, now=now)

    async def emoji_recent(self, limit: int = EMOJI_RECENTS) -> list[str]:
        return await self.call(self._store.emoji_recent, limit)

    async def append_event(self, kind: str, payload: Mapping[str, Any]) -> LocalEvent:
        return await self.call(self._store.append_event, kind, payload)

    async def events_since(
        self, after_id: int, limit: int = 1000, up_to: int | None = None
    ) -> tuple[list[LocalEvent], bool]:
        return await self.call(self._store.events_since, after_id, limit, up_to)

    async def last_event_id(self) -> int:
        return await self.call(self._store.last_event_id)

    async def export_rows(self) -> AsyncIterator[ExportedConversation]:
        """Every conversation with its messages; each one read in its own short call."""
        for cid in await self.call(self._store.export_ids):
            item = await self.call(self._store.export_conversation, cid)
            if item is not None:
                yield item
