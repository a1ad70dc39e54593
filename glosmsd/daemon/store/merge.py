"""The sync merge: one server batch (or one pushed event) applied with its cursor.

Rules it keeps:
- A batch and its cursor commit in one transaction, together with the local events the
  batch caused. Events at or below the stored cursor are duplicates and skipped (not in
  a `reset` batch: a snapshot replaces the synced state whatever its seqs).
- Merging a run of message events together gives exactly what merging them one at a
  time gives (rows, local ids, search index, local events): both go through
  `_merge_messages`, which builds each row one way (`IncomingMessage`) and only batches
  the statements. A message that already has a row (by server id, or by client id: the
  echo of a local send), also one written earlier in the same run, is merged into it.
- Malformed events are logged and skipped. An event that is well formed but still cannot
  be stored (a value SQLite refuses) stops the batch: the transaction is rolled back and
  the batch is applied again without that event, which is logged as a `PoisonEvent`
  naming it and kept in `skipped_events()`. One event never holds back the rest, and
  the link never reconnects to be sent the same batch again.
- A `reset` keeps local ids, drops every synced message the snapshot does not list, and
  keeps sends the server has not confirmed. A conversation's `deleted_up_to` keeps a
  late copy of a deleted message from coming back.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeGuard

from glosmsd.core.errors import BadInput, PoisonEvent
from glosmsd.daemon.store.base import LocalEvent, log
from glosmsd.daemon.store.incoming import IncomingMessage, is_int, opt_str
from glosmsd.daemon.store.records import Records, chunks, marks
from glosmsd.daemon.store.rows import STATES

#: Server ids, seqs and marks are SQLite integers: larger ones cannot be stored.
_MAX_ID: Final = 2**63 - 1
#: How many skipped events `skipped_events()` remembers.
SKIPPED_KEPT: Final = 20

# What an event's content (not the disk, the lock or the file) can make a write raise.
_DATA_ERRORS: Final = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    ValueError,  # UnicodeEncodeError (a lone surrogate) among them
    OverflowError,
    RecursionError,
    TypeError,
    KeyError,
)


# What `_merge_existing` reads of the row a message already has.
_EXISTING: Final = (
    "SELECT id, state, reason, conversation_id, files, text, direction, server_id, at, sender "
    "FROM messages "
)


def is_id(value: Any) -> TypeGuard[int]:
    """A server id, seq or mark: an integer SQLite can hold, not negative."""
    return is_int(value) and 0 <= value <= _MAX_ID


class _Item(NamedTuple):
    """One event of a batch, as given (`position`), with its message parsed when it has one.

    Told apart by identity (`is`), never compared; a NamedTuple since a catch-up makes
    one per event (a frozen dataclass's `__init__` is several times slower)."""

    position: int
    seq: int
    kind: str
    event: Mapping[str, Any]
    message: IncomingMessage | None


class _Poisoned(Exception):  # noqa: N818 - internal signal, never leaves this module
    def __init__(self, item: _Item, cause: BaseException) -> None:
        super().__init__(item.position)
        self.item = item
        self.cause = cause


class _RunFailed(Exception):  # noqa: N818 - internal signal: retry one event at a time
    pass


def _poison(item: _Item, cause: BaseException) -> PoisonEvent:
    what = f"{type(cause).__name__}: {cause}"[:200]
    return PoisonEvent(
        f"Event {item.seq} ({item.kind}) from the server could not be stored ({what}); "
        "it was skipped and sync went on without it.",
        seq=item.seq,
        event_kind=item.kind,
    )


class SyncMerge(Records):
    """`apply_sync` and everything it writes."""

    def apply_sync(
        self,
        events: Sequence[Any],
        cursor: int,
        *,
        reset: bool = False,
        own_ext: str | None = None,
        snapshot: tuple[int, int | None] | None = None,
    ) -> list[LocalEvent]:
        """Apply one server sync batch (or one pushed event) and its cursor in one
        transaction; returns the local events logged (also given to `on_events`).

        `own_ext` is the user's extension: its messages carry no sharer. `snapshot`
        (after, through): this `reset` batch is one page of a snapshot listing the
        messages with `after < id <= through` (`through` None: no upper end); only the
        synced messages in that range it does not list are dropped, and only the first
        page (after 0) clears the read and deletion marks. None: the whole snapshot.
        """
        if not is_id(cursor):
            raise BadInput(f"sync cursor must be an integer >= 0, not {cursor!r}")
        items = _items(events, own_ext)
        dropped: list[tuple[_Item, PoisonEvent]] = []
        run_failed: _RunFailed | None = None
        while True:
            try:
                done = self._apply_items(
                    items,
                    cursor,
                    reset,
                    dropped,
                    one_by_one=run_failed is not None,
                    page=snapshot or (0, None),
                )
            except _RunFailed as failed:
                # Merging a run together failed: one event at a time names the event.
                run_failed = failed
                continue
            except _Poisoned as p:
                error = _poison(p.item, p.cause)
                log.error("sync: %s", error.message, exc_info=p.cause)
                dropped.append((p.item, error))
                items = [i for i in items if i is not p.item]
                continue
            if run_failed is not None and not dropped:
                # Every event could be stored on its own: merging them together was wrong.
                log.error(
                    "sync: a run of messages failed to merge together but not one by one "
                    "(a bug in the batched merge); the batch was applied one by one",
                    exc_info=run_failed.__cause__,
                )
            return done

    def skipped_events(self) -> dict[str, Any]:
        """Events the merge had to skip: how many, and the last few (seq, kind, why, at)."""
        value = self._get_meta("skipped_events")
        return value if isinstance(value, dict) else {"count": 0, "last": []}

    def _apply_items(
        self,
        items: Sequence[_Item],
        cursor: int,
        reset: bool,
        dropped: Sequence[tuple[_Item, PoisonEvent]],
        *,
        one_by_one: bool,
        page: tuple[int, int | None],
    ) -> list[LocalEvent]:
        with self._write():
            before = self._unread_counts()
            stored = self._write_cursor()
            touched: set[int] = set()
            if reset:
                self._reset(items, page)
            run: list[_Item] = []  # consecutive message events, merged together
            for item in items:
                if not reset and item.seq <= stored:
                    continue
                if item.message is not None:
                    run.append(item)
                    if not one_by_one:
                        continue
                self._merge_run(run, touched, quiet=reset)
                run = []
                if item.message is None:
                    self._apply_guarded(item, touched, quiet=reset)
            self._merge_run(run, touched, quiet=reset)
            self._touch_all(touched)
            self._set_cursor(cursor)
            if dropped:
                self._note_skipped(dropped)
            if reset:
                self._append("reset", {"cursor": cursor})
            self._settle_unread(before)
            return list(self._pending)

    def _note_skipped(self, dropped: Sequence[tuple[_Item, PoisonEvent]]) -> None:
        kept = self.skipped_events()
        now = time.time()
        last = [
            *kept.get("last", []),
            *({"seq": i.seq, "kind": i.kind, "why": e.message, "at": now} for i, e in dropped),
        ]
        self._set_meta(
            "skipped_events",
            {"count": int(kept.get("count", 0)) + len(dropped), "last": last[-SKIPPED_KEPT:]},
        )

    # ------------------------------------------------------------------ one event

    def _apply_guarded(self, item: _Item, touched: set[int], *, quiet: bool) -> None:
        try:
            self._apply_one(item.event, touched, quiet=quiet)
        except _DATA_ERRORS as exc:
            raise _Poisoned(item, exc) from exc

    def _apply_one(self, ev: Mapping[str, Any], touched: set[int], *, quiet: bool) -> None:
        """An event that is not a message."""
        kind = ev.get("kind")
        if kind == "message_state":
            sid, state, reason = ev.get("id"), ev.get("state"), ev.get("reason")
            if not is_id(sid) or state not in STATES or not opt_str(reason):
                log.warning("sync: skipped a malformed message_state event (seq %s)", ev["seq"])
                return
            row = self._conn.execute(
                "SELECT id, state, reason FROM messages WHERE server_id = ?", (sid,)
            ).fetchone()
            if row is not None:
                self._set_state(row, str(state), reason)
        elif kind == "read":
            number, remote, up_to = ev.get("number"), ev.get("remote"), ev.get("up_to")
            if not (isinstance(number, str) and isinstance(remote, str) and is_id(up_to)):
                log.warning("sync: skipped a malformed read event (seq %s)", ev["seq"])
                return
            self._raise_read_mark(self._conversation_id(number, remote), int(up_to), quiet=quiet)
        elif kind == "delete_message":
            sid = ev.get("id")
            if not is_id(sid):
                log.warning("sync: skipped a malformed delete_message event (seq %s)", ev["seq"])
                return
            row = self._conn.execute(
                "SELECT id, conversation_id FROM messages WHERE server_id = ?", (sid,)
            ).fetchone()
            if row is not None:
                self._conn.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
                self._unread.mark(row["conversation_id"])
                touched.add(row["conversation_id"])
                self._append(
                    "deleted",
                    {"conversation_id": row["conversation_id"], "message_ids": [row["id"]]},
                )
        elif kind == "delete_conversation":
            number, remote, up_to = ev.get("number"), ev.get("remote"), ev.get("up_to")
            if not (isinstance(number, str) and isinstance(remote, str) and is_id(up_to)):
                log.warning(
                    "sync: skipped a malformed delete_conversation event (seq %s)", ev["seq"]
                )
                return
            row = self._conn.execute(
                "SELECT id FROM conversations WHERE number = ? AND remote = ?", (number, remote)
            ).fetchone()
            if row is not None:
                self._delete_conversation_through(int(row[0]), int(up_to))
                touched.add(int(row[0]))
        # Other kinds are newer protocol additions: ignored, as the protocol says.

    def _delete_conversation_through(self, cid: int, up_to: int) -> list[int]:
        """Delete the conversation's messages with server ids up to `up_to`, and raise its
        deletion mark so that late copies of them stay deleted; returns the local ids."""
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
        self._unread.mark(cid)
        if ids:
            self._append(
                "deleted", {"conversation_id": cid, "message_ids": ids, "conversation": True}
            )
        return ids

    def _reset(self, items: Sequence[_Item], page: tuple[int, int | None]) -> None:
        keep = [i.message.server_id for i in items if i.message is not None]
        db = self._conn
        db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_ids (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.keep_ids")
        db.executemany("INSERT OR IGNORE INTO temp.keep_ids (id) VALUES (?)", ((i,) for i in keep))
        self._unread.mark(None)
        after, through = page
        db.execute(
            "DELETE FROM messages WHERE server_id IS NOT NULL AND server_id > ? "
            "AND (? IS NULL OR server_id <= ?) AND server_id NOT IN (SELECT id FROM temp.keep_ids)",
            (after, through, through),
        )
        db.execute("DELETE FROM temp.keep_ids")
        if after == 0:
            # The snapshot's read marks replace these; a local unread mark goes with them.
            db.execute(
                "UPDATE conversations SET read_up_to = 0, deleted_up_to = 0, unread_mark = 0"
            )
        self._touch_all(None)

    # ------------------------------------------------------------------ messages

    def _merge_run(self, run: Sequence[_Item], touched: set[int], *, quiet: bool) -> None:
        if not run:
            return
        try:
            self._merge_messages([i.message for i in run if i.message], touched, quiet=quiet)
        except _DATA_ERRORS as exc:
            if len(run) == 1:
                raise _Poisoned(run[0], exc) from exc
            raise _RunFailed from exc

    def _merge_messages(
        self, msgs: Sequence[IncomingMessage], touched: set[int], *, quiet: bool
    ) -> None:
        """Merge messages, in order: each one that has a row already is merged into it
        (`_merge_existing`), the others become new rows unless their conversation's
        deletion mark covers them.

        A run of several is batched: one query finds which have a row, one the deletion
        marks, and the new rows, their index entries and their events are written with
        one `executemany` each (a catch-up paid 5-6 statements a message). A message that
        has a row goes through `_merge_existing` after the new rows before it are in, and
        every message merged or written counts as having a row for those after it. A run
        of one (every pushed event) asks directly: the lookups would cost more than the
        batching saves.
        """
        batched = len(msgs) > 1
        known_sids: set[int] = set()
        known_cids: set[str] = set()
        conv_marks: dict[int, tuple[int, int]] = {}
        if batched:
            known_sids = self._present_server_ids([m.server_id for m in msgs])
            known_cids = self._present("client_id", [m.client_id for m in msgs if m.client_id])
            conv_marks = self._conversation_marks(
                self._conversation_id(m.number, m.remote)
                for m in msgs
                if m.server_id not in known_sids and m.client_id not in known_cids
            )
        new: list[tuple[int, IncomingMessage]] = []
        for m in msgs:
            if not batched or m.server_id in known_sids or m.client_id in known_cids:
                self._insert_new(new, conv_marks, quiet=quiet)
                new = []
                merged = self._merge_existing(m, touched, quiet=quiet)
            else:
                merged = False
            if not merged:
                cid = self._conversation_id(m.number, m.remote)
                if cid not in conv_marks:
                    conv_marks.update(self._conversation_marks([cid]))
                if m.server_id <= conv_marks[cid][0]:
                    continue  # deleted here before: a late copy stays deleted
                new.append((cid, m))
                touched.add(cid)
            known_sids.add(m.server_id)
            if m.client_id:
                known_cids.add(m.client_id)
        self._insert_new(new, conv_marks, quiet=quiet)

    def _present_server_ids(self, server_ids: Sequence[int]) -> set[int]:
        """Which of `server_ids` the messages table already holds. A catch-up's are all
        above the largest held: one index lookup says so instead of one per message."""
        top = self._conn.execute("SELECT max(server_id) FROM messages").fetchone()[0]
        if top is None or min(server_ids) > top:
            return set()
        return self._present("server_id", server_ids)

    def _present(self, column: str, values: Sequence[Any]) -> set[Any]:
        """Which of `values` the messages table already holds in `column` (a fixed name)."""
        found: set[Any] = set()
        for part in chunks(values):
            sql = f"SELECT {column} FROM messages WHERE {column} IN ({marks(part)})"  # noqa: S608
            found.update(r[0] for r in self._conn.execute(sql, part))
        return found

    def _conversation_marks(self, conversation_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        """(`deleted_up_to`, `read_up_to`) of each conversation (a run of messages holds
        no event that moves them)."""
        out: dict[int, tuple[int, int]] = {}
        for part in chunks(sorted(set(conversation_ids))):
            rows = self._conn.execute(
                "SELECT id, deleted_up_to, read_up_to FROM conversations "  # noqa: S608
                f"WHERE id IN ({marks(part)})",
                part,
            ).fetchall()
            out.update((r[0], (r[1], r[2])) for r in rows)
        return out

    def _merge_existing(self, m: IncomingMessage, touched: set[int], *, quiet: bool) -> bool:
        """Merge `m` into the row it already has (our own send coming back, or a repeat):
        one row, never two. False when it has none."""
        db = self._conn
        existing = db.execute(_EXISTING + "WHERE server_id = ?", (m.server_id,)).fetchone()
        if existing is None and m.client_id:
            existing = db.execute(_EXISTING + "WHERE client_id = ?", (m.client_id,)).fetchone()
        if existing is None:
            return False
        cid = existing["conversation_id"]
        # The local paths of the files we sent ourselves are kept.
        raw_files = existing["files"]
        files = (
            m.files_json({f.get("sha256"): f.get("path") for f in json.loads(raw_files)})
            if raw_files != "[]"
            else m.files_json()
        )
        # What did not change is not written (an echo of our own send usually changes
        # nothing): a row whose time stays keeps its conversation's newest message, and
        # only an incoming row's server id counts for its conversation's unread count.
        if (existing["server_id"], existing["at"], existing["sender"], raw_files) != (
            m.server_id,
            m.at,
            m.sender,
            files,
        ):
            db.execute(
                "UPDATE messages SET server_id = ?, at = ?, sender = ?, files = ? WHERE id = ?",
                (m.server_id, m.at, m.sender, files, existing["id"]),
            )
            if existing["at"] != m.at:
                touched.add(cid)
            if existing["direction"] == "in" and existing["server_id"] != m.server_id:
                self._unread.mark(cid)
        # Only when it differs: an UPDATE OF text re-indexes the row (FTS trigger).
        if existing["text"] != m.text:
            db.execute("UPDATE messages SET text = ? WHERE id = ?", (m.text, existing["id"]))
        if m.client_id:
            db.execute("DELETE FROM outbox WHERE client_id = ?", (m.client_id,))
        if not (m.state == "sending" and existing["state"] != "sending"):
            self._set_state(existing, m.state, m.reason, quiet=quiet, conversation_id=cid)
        return True

    def _insert_new(
        self,
        new: Sequence[tuple[int, IncomingMessage]],
        conv_marks: Mapping[int, tuple[int, int]],
        *,
        quiet: bool,
    ) -> None:
        """Insert messages known to be new (with their conversation ids), index them, and
        log their events; `conv_marks` has each conversation's (deleted_up_to, read_up_to).

        Several are written with `executemany` under the ids SQLite would pick (max + 1:
        `messages` has no AUTOINCREMENT); one takes the plain insert. What a new row adds
        to its conversation's unread count is known without counting it again."""
        if not new:
            return
        db = self._conn
        if len(new) == 1:
            cid, m = new[0]
            ids: Sequence[int] = [
                self._insert_message(
                    conversation_id=cid,
                    server_id=m.server_id,
                    client_id=m.client_id,
                    direction=m.direction,
                    text=m.text,
                    state=m.state,
                    reason=m.reason,
                    at=m.at,
                    sender=m.sender,
                    files=m.files_json(),
                    recount=False,
                )
            ]
        else:
            first = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM messages").fetchone()[0])
            ids = range(first, first + len(new))
            db.executemany(
                "INSERT INTO messages (id, server_id, client_id, conversation_id, direction, "
                "text, state, reason, at, sender, files) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [m.values(i, cid) for i, (cid, m) in zip(ids, new, strict=True)],
            )
            # Not a trigger, and one executemany: see `Records._insert_message`.
            db.executemany(
                "INSERT INTO messages_fts (rowid, text) VALUES (?, ?)",
                [(i, m.text) for i, (_cid, m) in zip(ids, new, strict=True)],
            )
        for cid, m in new:
            if m.direction == "in" and m.server_id > conv_marks[cid][1]:
                self._unread.add(cid)
        if quiet:
            return
        # Built from what was just written rather than read back: the hot path of a catch-up.
        states = self._file_states(f["sha256"] for _cid, m in new for f in m.files)
        payloads = [
            {"message": m.row_json(i, cid, states)} for i, (cid, m) in zip(ids, new, strict=True)
        ]
        if len(payloads) == 1:
            self._append("message", payloads[0])
        else:
            self._append_many("message", payloads)


def _items(events: Sequence[Any], own_ext: str | None) -> list[_Item]:
    """The batch's events that can be applied, in order; the malformed ones are logged.

    The checks of `is_id` are written out: this runs once per event of a catch-up."""
    out: list[_Item] = []
    new = tuple.__new__
    parse = IncomingMessage.parse
    for index, ev in enumerate(events):
        if type(ev) is not dict and not isinstance(ev, Mapping):
            log.warning("sync: skipped a non-object event")
            continue
        seq, kind = ev.get("seq"), ev.get("kind")
        # `is_id` after the common case (an int subclass, not bool, still counts).
        if (type(seq) is not int or not 0 <= seq <= _MAX_ID) and not is_id(seq):
            log.warning("sync: skipped an event without an integer seq")
            continue
        message = None
        if kind == "message":
            message = parse(ev.get("message"), own_ext)
            if message is None or not 0 <= message.server_id <= _MAX_ID:
                log.warning("sync: skipped a malformed message event (seq %s)", seq)
                continue
        out.append(new(_Item, (index, int(seq), str(kind), ev, message)))
    return out
