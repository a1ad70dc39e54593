"""The server store, whole: the event log's reads (sync, snapshots, pruning) on top of
every other part. `ServerStore` is what the app, the admin CLI and the tests open."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from glosmsd.core import wire
from glosmsd.server.db.base import VISIBLE, visible
from glosmsd.server.db.messages import MessagesDb
from glosmsd.server.db.records import SyncBatch

#: Extensions `sync_after_write` remembers at most (then it forgets them all).
_QUIET_MAX: Final = 10_000
_LOG_PART: Final = "SELECT seq, kind, at, body FROM events WHERE {} AND seq > :cursor"


@functools.cache
def _log_query(numbers: int) -> str:
    """The next events an extension sees, for one with `numbers` numbers: its own events
    and each number's, each read in seq order from its index, merged, and read only as
    far as the page needs. One `ext = ? OR number IN (...)` query was planned as a
    MULTI-INDEX OR that gathered and sorted every event after the cursor for each page
    (5.8 ms a page at cursor 0 of 21,000 events, a whole catch-up quadratic in the log's
    length). Each source is a plain SELECT of the compound, not a subquery with its own
    ORDER BY and LIMIT: SQLite cannot see that a subquery's rows come in order, so it
    copied each source's page into a temporary B-tree to sort it again (twice the VM
    steps; the bench's catch-up read 62 -> 41 ms)."""
    parts = [_LOG_PART.format("ext = :ext")]
    parts += [_LOG_PART.format(f"number = :number{i}") for i in range(numbers)]
    return " UNION ALL ".join(parts) + " ORDER BY seq LIMIT :n"


class ServerStore(MessagesDb):
    """The server database plus its content-addressed file store."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        #: ext -> (cursor, head, numbers): the log after `cursor` up to `head` holds
        #: nothing that ext sees with those numbers (what `sync_after_write` last found).
        self._quiet: dict[str, tuple[int, int, frozenset[str]]] = {}

    # ------------------------------------------------------------------ event log

    def head(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def sync(
        self, ext: str, cursor: int, limit: int, snapshot_after: int | None = None
    ) -> SyncBatch:
        """Events after `cursor` that `ext` may see, or a snapshot page when the cursor is
        stale (or when `snapshot_after` continues a snapshot taken at `cursor`).

        A page holds at most `limit` events and stops once it holds `SYNC_PAGE_BYTES`
        (the event that crosses it is the last): 500 events of 12 KB made a 6 MB reply
        that no client accepts as one frame, and the device asked for it again forever.
        """
        with self._read():
            return self._page(
                ext,
                cursor,
                limit,
                snapshot_after=snapshot_after,
                bounds=self._log_bounds(),
                numbers={},
            )

    def sync_many(self, wanted: Sequence[tuple[str, int]], limit: int) -> list[SyncBatch]:
        """`sync` for several (ext, cursor) pairs in one call: the live pushers woken by
        one commit read together, so the event costs one trip to the store thread. One
        read transaction for them all, the log's bounds and each extension's numbers read
        once (a send read them again for each pusher: 6 statements a pusher, now 1-2)."""
        with self._read():
            bounds = self._log_bounds()
            numbers: dict[str, list[str]] = {}
            return [
                self._page(ext, cursor, limit, snapshot_after=None, bounds=bounds, numbers=numbers)
                for ext, cursor in wanted
            ]

    def sync_after_write(self, wanted: Sequence[tuple[str, int]], limit: int) -> list[SyncBatch]:
        """`sync_many` right after a write on this connection committed, made from the
        events it added (`logged`) wherever that gives the same page, else read.

        A page from `cursor` is the events after it that the extension sees. When none of
        those before the write's first event can be (the cursor is the head the write
        began from, or an earlier page made here showed the log quiet for it from there
        up to that head, under the same numbers), the page is the added events it sees:
        their seqs follow that head with no gap (AUTOINCREMENT under the write lock), and
        a commit made since by another connection rings the pushers again, so leaving it
        out skips nothing. Numbers are read after the commit, as the log read does; a
        cursor the log was pruned past, a page near its bounds, and every other cursor
        are read as before. Reading the log back cost each send 8 of its 19 statements
        (one read transaction, its bounds, each pusher's numbers and log query).
        """
        logged = self.logged
        if not logged:
            return self.sync_many(wanted, limit)
        start, end = logged[0].seq - 1, logged[-1].seq
        numbers: dict[str, frozenset[str]] = {}
        out: list[SyncBatch | None] = []
        pruned: int | None = None
        for ext, cursor in wanted:
            own = numbers.get(ext)
            if own is None:
                own = numbers[ext] = frozenset(self.numbers_of(ext))
            batch = None
            if cursor == start or self._quiet.get(ext) == (cursor, start, own):
                if pruned is None:
                    pruned = int(self._meta("pruned_through", "0"))
                seen = [e for e in logged if e.ext == ext or e.number in own]
                texts = [wire.splice_event(e.seq, e.kind, e.at, e.body) for e in seen]
                # Far within `_page`'s bounds, so it would keep them as they are.
                size = sum(len(t) * 4 + 1 for t in texts)
                if cursor >= pruned and len(texts) <= limit and size < wire.SYNC_PAGE_BYTES:
                    last = seen[-1].seq if seen else cursor
                    batch = SyncBatch(texts, last, False, reset=False)
                    # Nothing after `last` up to `end` is for `ext` (with these numbers).
                    self._quiet[ext] = (last, end, own)
            if batch is None:
                self._quiet.pop(ext, None)
            out.append(batch)
        if len(self._quiet) > _QUIET_MAX:
            self._quiet.clear()
        missing = [w for w, b in zip(wanted, out, strict=True) if b is None]
        read = iter(self.sync_many(missing, limit) if missing else [])
        return [b if b is not None else next(read) for b in out]

    def _log_bounds(self) -> tuple[int, int]:
        """(pruned_through, head): a cursor outside them gets a snapshot."""
        return int(self._meta("pruned_through", "0")), self.head()

    def _page(
        self,
        ext: str,
        cursor: int,
        limit: int,
        *,
        snapshot_after: int | None,
        bounds: tuple[int, int],
        numbers: dict[str, list[str]],
    ) -> SyncBatch:
        """`sync` inside a read transaction; `numbers` caches each extension's numbers."""
        pruned, head = bounds
        if cursor < pruned or cursor > head:
            return self._snapshot(ext, head, 0, limit)
        if snapshot_after is not None:
            return self._snapshot(ext, cursor, snapshot_after, limit)
        own = numbers.get(ext)
        if own is None:
            own = numbers[ext] = sorted(set(self.numbers_of(ext)))
        args: dict[str, object] = {"cursor": cursor, "ext": ext, "n": limit + 1}
        args.update((f"number{i}", n) for i, n in enumerate(own))
        reader = self.conn.cursor()
        reader.row_factory = None  # plain tuples: a page unpacks up to 1,000 rows
        rows = reader.execute(_log_query(len(own)), args).fetchall()
        texts = wire.splice_events(rows[:limit])
        # Each event within its bound and the page within its bytes: checked at once for
        # a page of plain ASCII texts far from both (a catch-up's pages, one by one, cost
        # three calls an event); else event by event, the one crossing the bound the last.
        chars = sum(map(len, texts)) + len(texts)
        if (
            chars >= wire.SYNC_PAGE_BYTES
            or max(map(len, texts), default=0) > wire.MAX_EVENT_BYTES // 4
            or not all(map(str.isascii, texts))
        ):
            kept: list[str] = []
            size = 0
            for text in map(wire.fit_event, texts):
                kept.append(text)
                size += wire.byte_size(text) + 1
                if size >= wire.SYNC_PAGE_BYTES:
                    break
            texts = kept
        last = rows[len(texts) - 1][0] if texts else cursor
        more = len(rows) > len(texts)
        return SyncBatch(texts, last, more, reset=False)

    def _snapshot(self, ext: str, cursor: int, after: int, limit: int) -> SyncBatch:
        """One page of the messages `ext` can see with `after < id`, in their current
        state, as `message` events carrying seq `cursor`, each conversation's `read`
        mark right after its newest message; bounded like any page (see `sync`)."""
        now = time.time()
        rows = self.conn.execute(
            f"""SELECT m.*, r.up_to AS read_up_to, NOT EXISTS (
                    SELECT 1 FROM messages n WHERE n.number = m.number
                    AND n.remote = m.remote AND n.id > m.id AND {visible("n")}) AS newest
                FROM messages m LEFT JOIN reads r
                    ON r.ext = :ext AND r.number = m.number AND r.remote = m.remote
                WHERE m.id > :after AND {VISIBLE} ORDER BY m.id LIMIT :n""",  # noqa: S608
            {"ext": ext, "after": after, "n": limit + 1},
        ).fetchall()
        texts: list[str] = []
        size, last, taken = 0, after, 0
        for row, msg in zip(rows[:limit], self._render(rows[:limit]), strict=True):
            body = wire.encode_body(wire.message_body(msg))
            page = [wire.fit_event(wire.splice_event(cursor, "message", now, body))]
            if row["newest"] and row["read_up_to"] is not None:
                mark = wire.mark_body(row["number"], row["remote"], row["read_up_to"])
                page.append(wire.splice_event(cursor, "read", now, wire.encode_body(mark)))
            texts += page
            size += sum(wire.byte_size(t) + 1 for t in page)
            last, taken = int(row["id"]), taken + 1
            if size >= wire.SYNC_PAGE_BYTES:
                break
        following = last if len(rows) > taken else None
        return SyncBatch(texts, cursor, following is not None, True, (after, following))

    def prune(self, horizon: int) -> int:
        """Drop events older than the newest `horizon` ones; returns how many went."""
        if self.head() - horizon <= int(self._meta("pruned_through", "0")):
            # The common case, checked without the write lock: taking it on every watch
            # tick made a concurrent send wait in SQLite's busy handler (1 ms and up).
            return 0
        with self._write() as db:
            cut = self.head() - horizon
            pruned = int(self._meta("pruned_through", "0"))
            if cut <= pruned:
                return 0
            gone = db.execute("DELETE FROM events WHERE seq <= ?", (cut,)).rowcount
            self._set_meta("pruned_through", str(cut))
            return int(gone)
