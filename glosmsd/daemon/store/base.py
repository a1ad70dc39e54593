"""The store's foundation: its connection, transactions, meta values and the local event log.

Every part of the store (see the package docstring) is a class built on `StoreBase`, so
they share one connection and one idea of a write: `_write()` is one `BEGIN IMMEDIATE`
transaction whose local events reach `on_events` only after its commit, with the unread
bookkeeping settled inside it. `_write(durable=True)` also syncs the WAL to disk
(`synchronous=FULL`): WAL with NORMAL already survives a daemon crash, but only FULL also
survives power loss, and a send the user was told about must not vanish.

The event log keeps at most `EVENT_HORIZON_COUNT` events and none older than
`EVENT_HORIZON_SECONDS`; a replay from before that is reported as truncated.

A store object must only be used from the thread that opened it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from glosmsd.core.errors import BadInput
from glosmsd.daemon.hub import Event
from glosmsd.daemon.store.convkeys import ConversationKeys
from glosmsd.daemon.store.incoming import dumps
from glosmsd.daemon.store.unread import UnreadBook

log = logging.getLogger("glosmsd.daemon.store")

#: A local event as the store writes it and the hub publishes it.
LocalEvent = Event
EventsListener = Callable[[list[LocalEvent]], None]

EVENT_HORIZON_COUNT: Final = 10_000
EVENT_HORIZON_SECONDS: Final = 7 * 24 * 3600.0
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
#: A WAL past this size is checkpointed by the writer itself, after its commit (a fallback
#: for writes so steady that the checkpoint thread never finds the WAL all copied).
#: Also SQLite's `journal_size_limit`: a WAL that grew in a burst shrinks back to it.
WAL_LIMIT_BYTES: Final = 64 * 1024 * 1024


class StoreBase:
    """The connection and what every part of the store needs."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.on_events: EventsListener | None = None
        self._pending: list[LocalEvent] = []
        # (number, remote) -> conversation id. Conversation rows are never deleted, so
        # the ids can be cached for the life of the connection.
        self._conv_ids: dict[tuple[str, str], int] = {}
        # The conversations' search keys and the `PRAGMA data_version` they were read at;
        # None after this connection created a conversation or renamed some.
        self._conv_keys: tuple[int, ConversationKeys] | None = None
        self._unread = UnreadBook()
        # Set by `defer_checkpoints`: called after every commit, on this thread.
        self._after_commit: Callable[[], None] | None = None
        self._wal_path = f"{path}-wal"
        # What a write would otherwise read back each time, as of this connection's own
        # last commit: the sync cursor, and (events_pruned_up_to, the `at` of the oldest
        # event, None when the log is empty) for the pruning check. `PRAGMA data_version`
        # tells when another connection committed since (then they are read again).
        self._data_version: int | None = None
        self._cursor_cache: int | None = None
        self._prune_cache: tuple[int, float | None] | None = None
        #: The WAL size past which the writer checkpoints itself (see `defer_checkpoints`).
        self.wal_limit = WAL_LIMIT_BYTES

    @contextlib.contextmanager
    def nowait(self) -> Iterator[None]:
        """Writes in this block fail at once (SQLITE_BUSY, `StoreLocked`) instead of
        waiting the connection's busy timeout for another program's lock; nothing is
        written then."""
        conn = self._conn
        (waits,) = conn.execute("PRAGMA busy_timeout").fetchone()
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(waits)}")

    def close(self) -> None:
        self._conn.close()

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ checkpoints

    def defer_checkpoints(self, after_commit: Callable[[], None]) -> None:
        """Commits no longer copy the WAL back into the database; `after_commit` is called
        after each one (on this thread) to have another thread do it.

        SQLite's automatic checkpoint runs inside whichever COMMIT crosses 1000 WAL pages
        and fsyncs twice: the send whose commit it was waited 10-20 ms instead of 0.3.
        A commit that leaves the WAL larger than `wal_limit` still checkpoints here.
        """
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._conn.execute(f"PRAGMA journal_size_limit = {int(self.wal_limit)}")
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
        if size > self.wal_limit:
            # The checkpoint thread never found a pause to copy everything: do it here,
            # between transactions, so the next write can start the WAL over.
            try:
                self.checkpoint()
            except sqlite3.Error as exc:  # the commit stands; the next one tries again
                log.warning("checkpoint of %s failed: %s", self.path, exc)

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction; its local events go to `on_events` after the commit."""
        conn = self._conn
        if durable:
            conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._pending = []
            self._unread.begin()
            try:
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != self._data_version:
                    self._forget_cached()
                    self._data_version = version
                yield conn
                if self._pending:
                    self._prune_events(time.time(), self._pending[-1].id)
                conn.execute("COMMIT")
            except BaseException:
                # SQLite ends the transaction itself on some errors (a full disk).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._pending = []
                # Conversations created in the rolled-back transaction are gone again.
                self._conv_ids.clear()
                self._forget_cached()
                raise
            self._committed()
            self._unread.committed()
        finally:
            if durable:
                conn.execute("PRAGMA synchronous = NORMAL")
        events, self._pending = self._pending, []
        if events and self.on_events is not None:
            self.on_events(events)

    def _forget_cached(self) -> None:
        """Drop what is kept of the database between writes: it is read again as needed."""
        self._conv_keys = None
        self._unread.cached = None
        self._cursor_cache = None
        self._prune_cache = None

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for a read of several statements."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ meta

    def _get_meta(self, key: str) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set_meta(self, key: str, value: Any) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, dumps(value)),
        )

    def cursor(self) -> int:
        """The seq of the last server event applied (0 before the first sync)."""
        value = self._get_meta("cursor")
        return int(value) if value is not None else 0

    def _write_cursor(self) -> int:
        """`cursor()` inside a write, kept from the last one that set it."""
        if self._cursor_cache is None:
            self._cursor_cache = self.cursor()
        return self._cursor_cache

    def _set_cursor(self, cursor: int) -> None:
        self._set_meta("cursor", cursor)
        self._cursor_cache = cursor  # a rollback forgets it

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
        text = dumps(data)
        cur = self._conn.execute(
            "INSERT INTO events (kind, at, payload) VALUES (?, ?, ?)", (kind, when, text)
        )
        event = LocalEvent(int(cur.lastrowid or 0), kind, when, data, text)
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
        texts = [dumps(p) for p in payloads]
        self._conn.executemany(
            "INSERT INTO events (id, kind, at, payload) VALUES (?, ?, ?, ?)",
            [(i, kind, when, t) for i, t in zip(ids, texts, strict=True)],
        )
        # Positional arguments: a catch-up makes one per message (keywords cost about a third more).
        self._pending.extend(
            [LocalEvent(i, kind, when, p, t) for i, p, t in zip(ids, payloads, texts, strict=True)]
        )

    def append_event(self, kind: str, payload: Mapping[str, Any]) -> LocalEvent:
        """Log one local event (the daemon uses this for `link` status changes)."""
        if kind not in EVENT_KINDS:
            raise BadInput(f"Unknown event kind {kind!r}; known: {', '.join(EVENT_KINDS)}.")
        with self._write():
            return self._append(kind, payload)

    def _prune_events(self, now: float, last: int | None = None) -> None:
        """Drop the events past the horizon; `last` is the newest event's id, if known.

        Most writes have nothing to drop, and the check needs no query when the pruning
        state is known from this connection's last write."""
        if last is None:
            last = self._last_event_id()
        known = self._prune_cache
        if known is not None:
            pruned, oldest_at = known
            if oldest_at is None and self._pending:
                oldest_at = self._pending[0].at  # the log was empty: this write's first
            if last - EVENT_HORIZON_COUNT <= pruned and (
                oldest_at is None or oldest_at >= now - EVENT_HORIZON_SECONDS
            ):
                self._prune_cache = (pruned, oldest_at)
                return
        self._prune_with_queries(now, last)

    def _prune_with_queries(self, now: float, last: int) -> None:
        cut = last - EVENT_HORIZON_COUNT
        oldest = self._conn.execute("SELECT id, at FROM events ORDER BY id LIMIT 1").fetchone()
        if oldest is not None and oldest[1] < now - EVENT_HORIZON_SECONDS:
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
            pruned = cut
            oldest = self._conn.execute("SELECT id, at FROM events ORDER BY id LIMIT 1").fetchone()
        self._prune_cache = (pruned, None if oldest is None else float(oldest[1]))

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
        events = [LocalEvent(r[0], r[1], r[2], json.loads(r[3]), r[3]) for r in rows]
        return events, truncated

    # ------------------------------------------------------------------ unread

    def _unread_counts(self) -> dict[int, int]:
        """Unread counts as of the last commit (in a write: call before changing anything)."""
        return self._unread.counts(self._conn)

    def _settle_unread(self, before: Mapping[int, int]) -> None:
        """Count what this write changed, and log an `unread` event when it changed."""
        after = self._unread.settle(self._conn, before)
        if after is not None:
            self._append(
                "unread",
                {
                    "total": sum(after.values()),
                    "conversations": [{"id": k, "count": v} for k, v in sorted(after.items())],
                },
            )
