"""The checkpoint thread: copies the WAL back into the database outside every commit.

Under `AsyncStore` no commit copies the WAL back (SQLite's automatic checkpoint did, inside
whichever commit crossed 1000 pages: one send in ~130 paid 10-20 ms of fsyncs). This
thread, with its own connection, does it once the writes pause (`CHECKPOINT_IDLE_SECONDS`)
or have gone on for `CHECKPOINT_MAX_DELAY`; should the WAL still pass the store's limit,
the writer checkpoints it itself after its commit (`StoreBase._committed`), so the WAL
stays bounded whatever the write rate.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Final

from glosmsd.daemon.store.base import log

#: The checkpoint thread runs once no commit came for this long...
CHECKPOINT_IDLE_SECONDS: Final = 0.5
#: ...or this long after the first commit it has not copied back, whichever is first.
CHECKPOINT_MAX_DELAY: Final = 2.0


class Checkpointer:
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
