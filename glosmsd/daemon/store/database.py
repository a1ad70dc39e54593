"""`Store`: the whole local database, its parts put together, and how a file is opened.

Opening creates or migrates the file (core/migrations with `schema`): a database written
by a newer glosmsd raises `SchemaTooNew` and is left byte for byte as it was, since the
version is read before anything (not even the switch to WAL) writes to the file.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Final

from glosmsd.core import migrations
from glosmsd.daemon.store import failures
from glosmsd.daemon.store.base import EventsListener
from glosmsd.daemon.store.downloads import DownloadRows
from glosmsd.daemon.store.drafts import Drafts
from glosmsd.daemon.store.local import LocalChanges
from glosmsd.daemon.store.outbox import OutboxRows
from glosmsd.daemon.store.prefs import Prefs
from glosmsd.daemon.store.queries import Queries
from glosmsd.daemon.store.schema import SCHEMA
from glosmsd.system.private import private_database


def _use_wal(conn: migrations.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")


#: How long a write waits for another program's lock (seconds) before it fails.
BUSY_TIMEOUT: Final = 10.0


class Store(OutboxRows, LocalChanges, Queries, DownloadRows, Drafts, Prefs):
    """The local database. Open with `Store.open(path)`; use from one thread only."""

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        on_events: EventsListener | None = None,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> Store:
        """Open (creating or migrating) the database at `path`; a write waits up to
        `busy_timeout` seconds for another program's lock before it fails.

        Raises `SchemaTooNew` when the file comes from a newer glosmsd (the file is not
        written to at all), a `StoreError` saying why when it cannot be opened
        (`failures.explain`: locked, read-only, disk full, damaged).
        """
        path = Path(path)
        try:
            private_database(path)  # 0600 with its -wal/-shm, whatever the umask
            # Used from the store's thread, and from the loop's while that thread is idle
            # (`AsyncStore.run_light`): never from two threads at once.
            conn = sqlite3.connect(
                path, isolation_level=None, timeout=busy_timeout, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as exc:
            raise failures.explain(exc, path) from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            migrations.migrate(conn, SCHEMA, str(path), prepare=_use_wal)
            store = cls(conn, path)
            store.on_events = on_events
            with store._write():
                store._prune_events(time.time())
        except (sqlite3.Error, OSError) as exc:
            conn.close()
            # Locked, read-only, full or damaged: each in its own words (only the last
            # says to move the file aside).
            raise failures.explain(exc, path) from exc
        except BaseException:
            conn.close()
            raise
        return store
