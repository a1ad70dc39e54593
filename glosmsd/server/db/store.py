"""The server store, whole: the event log's reads (sync, snapshots, pruning) on top of
every other part. `ServerStore` is what the app, the admin CLI and the tests open."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from glosmsd.server.db.base import VISIBLE
from glosmsd.server.db.messages import MessagesDb
from glosmsd.server.db.records import SyncBatch


class ServerStore(MessagesDb):
    """The server database plus its content-addressed file store."""

    # ------------------------------------------------------------------ event log

    def head(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def sync(self, ext: str, cursor: int, limit: int) -> SyncBatch:
        """Events after `cursor` that `ext` may see, or a snapshot when the cursor is stale."""
        with self._read() as db:
            pruned = int(self._meta("pruned_through", "0"))
            head = self.head()
            if cursor < pruned or cursor > head:
                return self._snapshot(ext, head)
            rows = db.execute(
                """SELECT seq, kind, at, body FROM events
                   WHERE seq > :cursor AND (ext = :ext OR number IN
                         (SELECT number FROM numbers WHERE ext = :ext))
                   ORDER BY seq LIMIT :n""",
                {"cursor": cursor, "ext": ext, "n": limit + 1},
            ).fetchall()
        more = len(rows) > limit
        events = [
            {"seq": r["seq"], "kind": r["kind"], "at": r["at"], **json.loads(r["body"])}
            for r in rows[:limit]
        ]
        return SyncBatch(events, events[-1]["seq"] if events else cursor, more, reset=False)

    def sync_many(self, wanted: Sequence[tuple[str, int]], limit: int) -> list[SyncBatch]:
        """`sync` for several (ext, cursor) pairs in one call: the live pushers woken by
        one commit read together, so the event costs one trip to the store thread."""
        return [self.sync(ext, cursor, limit) for ext, cursor in wanted]

    def _snapshot(self, ext: str, head: int) -> SyncBatch:
        now = time.time()
        events: list[dict[str, Any]] = [
            {"seq": head, "kind": "message", "at": now, "message": self._render(r)}
            for r in self.conn.execute(
                f"SELECT * FROM messages m WHERE {VISIBLE} ORDER BY id",  # noqa: S608
                {"ext": ext},
            )
        ]
        events += [
            {
                "seq": head,
                "kind": "read",
                "at": now,
                "number": r["number"],
                "remote": r["remote"],
                "up_to": r["up_to"],
            }
            for r in self.conn.execute(
                "SELECT number, remote, up_to FROM reads WHERE ext = ? AND number IN "
                "(SELECT number FROM numbers WHERE ext = ?) ORDER BY number, remote",
                (ext, ext),
            )
        ]
        return SyncBatch(events, head, more=False, reset=True)

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
