"""The server store's foundation: the connection, migrations, transactions, the event log's
write side, settings, and who is on which number.

One SQLite file (WAL, the numbered migrations of `schema` run by core/migrations,
`PRAGMA user_version` as the schema version) holds extensions, token hashes, numbers and
who shares them, the contact directory, messages, the per-extension event log, settings
and the test carrier's mode.
File bytes live beside it under `<db>.files/`, addressed by their sha256 only.

Everything in this package is synchronous and thread-bound: the server calls it from one
worker thread, the admin CLI calls it directly, and both may run at the same time (every
write is a `BEGIN IMMEDIATE` transaction, so event seqs commit in order). The store is
built in layers, each a class adding one part: `DbBase` here, then `accounts`, `files`,
`messages`, and the log reads in `store`.

Visibility, in one place (`VISIBLE`): an event carries either a `number` (seen by every
extension on that number, so all sharers see all its messages) or an `ext` (seen by that
extension alone: its read marks and deletions, shared by its devices). No part may build
a file path from anything but a validated sha256, nor return a message, an event or file
bytes to an extension that is not on the message's number.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from glosmsd.core import migrations, numbers, wire
from glosmsd.core.errors import BadInput, InvalidNumber, StoreError, StoreLocked
from glosmsd.core.rules import Limits
from glosmsd.core.wire import SHA256
from glosmsd.server.db.records import DEFAULT_CARRIER_REASON, CarrierMode
from glosmsd.server.db.schema import SCHEMA
from glosmsd.system.atomicwrite import write_atomic
from glosmsd.system.private import private_database, private_dir

E164: Final = re.compile(numbers.E164_PATTERN)
EXTENSION: Final = re.compile(r"[0-9A-Za-z_.-]{1,32}")
DEFAULT_PBX_VERSION: Final = "7.1"
SERVER_SETTINGS: Final = ("pbx_version", "region")
#: The `region` setting's default: none (numbers come with their country code).
DEFAULT_REGION: Final = ""


def visible(m: str = "m") -> str:
    """The SQL condition "extension :ext can see message row `m`" (not hidden by its own
    deletions, on one of its numbers). A constant spliced into queries (the S608 noqa
    where it is used): every value stays a bound param."""
    # `m` is a table alias of ours, never input.
    return f"""
    {m}.number IN (SELECT number FROM numbers WHERE ext = :ext)
    AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.ext = :ext AND h.message_id = {m}.id)
    AND NOT EXISTS (SELECT 1 FROM hidden_conversations c WHERE c.ext = :ext
                    AND c.number = {m}.number AND c.remote = {m}.remote AND {m}.id <= c.up_to)
"""  # noqa: S608


VISIBLE: Final = visible("m")


def normalize_number(raw: str, *, what: str = "number") -> str:
    """An E.164 number or a short code (`glosmsd.core.numbers`), else `InvalidNumber`
    naming `what` it was. Without a region: a number comes with its country code."""
    try:
        return numbers.parse(raw).e164
    except InvalidNumber as exc:
        raise InvalidNumber(f"{what.capitalize()}: {exc.message}") from None


#: SQLITE_BUSY and SQLITE_LOCKED (primary codes): another connection holds the lock.
_LOCK_CODES: Final = frozenset({5, 6})


@dataclass(frozen=True, slots=True)
class Logged:
    """One event a write added, as its row holds it."""

    seq: int
    ext: str | None
    number: str | None
    kind: str
    at: float
    body: str


def _use_wal(conn: migrations.Connection) -> None:
    """WAL, each commit synced to disk before it returns (`synchronous=FULL`): a send's
    reply and its push say the message is stored, and with NORMAL a commit survived a
    crash of the server but not a power loss (no fsync a commit; the WAL was synced only
    when checkpointed), as the daemon's durable writes do not."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")


class DbBase:
    """The connection and what every part of the store needs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.files_dir = self.path.with_name(self.path.name + ".files")
        try:
            private_database(self.path)  # 0600 with its -wal/-shm, whatever the umask
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"Cannot open the server database {self.path}: {exc}") from exc
        self.conn.row_factory = sqlite3.Row
        self._nowait = False
        #: The events the last write transaction on this connection added, in seq order
        #: (emptied when one begins or rolls back; see `ServerStore.sync_after_write`).
        self.logged: list[Logged] = []
        self._limits_rows: tuple[tuple[str, str], ...] | None = None
        self._limits = Limits()
        self.conn.execute("PRAGMA busy_timeout = 10000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        try:
            # The version is checked before the switch to WAL, which writes the header.
            migrations.migrate(self.conn, SCHEMA, str(self.path), prepare=_use_wal)
        except BaseException:
            self.conn.close()
            raise
        private_dir(self.files_dir)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the write lock is taken up front so seqs commit in order."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if self._nowait and exc.sqlite_errorcode & 0xFF in _LOCK_CODES:
                raise StoreLocked(f"{self.path} is being written by another connection") from exc
            raise
        self.logged.clear()
        try:
            yield self.conn
        except BaseException:
            self.logged.clear()
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent read snapshot."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    def defer_checkpoints(self) -> None:
        """Commits on this connection no longer copy the WAL back into the database.

        SQLite's automatic checkpoint runs inside whichever COMMIT crosses 1000 WAL pages,
        and it fsyncs twice: one send in ~130 took 10-20 ms instead of 0.1 ms. The server's
        serving connection turns it off and `checkpoint()` runs from another thread.
        """
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")

    def nowait(self) -> None:
        """A write on this connection never waits for the write lock: when another
        connection holds it, `StoreLocked` is raised at once, nothing written (the
        server's event-loop connection, which then hands the write to its store thread,
        instead of stalling every connection in SQLite's busy handler for up to 10 s)."""
        self.conn.execute("PRAGMA busy_timeout = 0")
        self._nowait = True

    def query_only(self) -> None:
        """This connection may only read from now on (the server's read thread): a write
        through it fails with SQLITE_READONLY instead of taking the write lock."""
        self.conn.execute("PRAGMA query_only = ON")

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database, then start the WAL over.

        PASSIVE first: it never waits for, nor blocks, readers and writers (what a
        reader still uses is copied next time). Once it has copied every page, a
        RESTART that waits for nothing (busy timeout 0) rewinds the WAL, so the next
        commit writes at its start. Without it, one send after another never let SQLite
        rewind it (a writer only rewinds when no reader holds a WAL snapshot just as it
        begins): the bench's 1,000 sends grew it to 42 MB, each fsync extending a file.
        """
        try:
            _busy, frames, copied = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames > 0 and frames == copied:
                waits = int(self.conn.execute("PRAGMA busy_timeout").fetchone()[0])
                self.conn.execute("PRAGMA busy_timeout = 0")
                try:
                    self.conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                finally:
                    self.conn.execute(f"PRAGMA busy_timeout = {waits}")
        except sqlite3.Error as exc:
            raise StoreError(f"Checkpointing {self.path} failed: {exc}") from exc

    def data_version(self) -> int:
        """Changes when another connection commits (cheap; polled by the server's watcher)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _event(
        self,
        kind: str,
        body: Mapping[str, Any],
        *,
        ext: str | None = None,
        number: str | None = None,
        at: float | None = None,
    ) -> int:
        return self._event_text(kind, wire.encode_body(body), ext=ext, number=number, at=at)

    def _event_text(
        self,
        kind: str,
        body: str,
        *,
        ext: str | None = None,
        number: str | None = None,
        at: float | None = None,
    ) -> int:
        """`_event` with the body already encoded (`wire.encode_body`)."""
        when = time.time() if at is None else at
        cur = self.conn.execute(
            "INSERT INTO events (ext, number, kind, at, body) VALUES (?, ?, ?, ?, ?)",
            (ext, number, kind, when, body),
        )
        seq = int(cur.lastrowid or 0)
        self.logged.append(Logged(seq, ext, number, kind, when, body))
        return seq

    def _meta(self, key: str, default: str) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ------------------------------------------------------------------ settings

    def settings(self) -> dict[str, Any]:
        """Every setting a client gets at hello, defaults filled in."""
        rows = self._settings_rows()
        stored = {key: json.loads(value) for key, value in rows}
        out = self._limits_of(rows, stored).to_settings()
        out["pbx_version"] = str(stored.get("pbx_version", DEFAULT_PBX_VERSION))
        out["region"] = str(stored.get("region", DEFAULT_REGION))
        return out

    def limits(self) -> Limits:
        """The limits a send is checked against, as stored now (read on every call)."""
        return self._limits_of(self._settings_rows())

    def _settings_rows(self) -> tuple[tuple[str, str], ...]:
        reader = self.conn.cursor()
        reader.row_factory = None
        return tuple(reader.execute("SELECT key, value FROM settings ORDER BY key"))

    def _limits_of(
        self, rows: tuple[tuple[str, str], ...], stored: dict[str, Any] | None = None
    ) -> Limits:
        """`Limits` of the stored settings `rows`, parsed again only when they changed:
        decoding and checking them (twice: `settings()` then its output) cost ~40 us of
        every send's 250 us in the store."""
        if rows != self._limits_rows:
            if stored is None:
                stored = {key: json.loads(value) for key, value in rows}
            self._limits = Limits.from_settings(stored)  # BadInput: nothing kept
            self._limits_rows = rows
        return self._limits

    def set_setting(self, key: str, value: Any) -> dict[str, Any]:
        """Change one setting; the whole set is validated before it is stored."""
        current = self.settings()
        if key not in current:
            known = ", ".join(sorted(current))
            raise BadInput(f"Unknown setting {key!r}; known settings: {known}.")
        if key == "region":
            if not isinstance(value, str) or (value.strip() and not numbers.is_region(value)):
                raise BadInput(
                    "Setting 'region' is the country numbers without a country code are "
                    f'in, as its ISO code like "US" or "GB" ("" for none), not {value!r}.'
                )
            value = value.strip().upper()
        elif key in SERVER_SETTINGS:
            if not isinstance(value, str) or not value.strip():
                raise BadInput(f'Setting {key!r} must be text like "7.1", not {value!r}.')
        else:
            value = Limits.from_settings({key: value}).to_settings()[key]
        with self._write() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
        return self.settings()

    def carrier_mode(self) -> CarrierMode:
        raw = json.loads(self._meta("carrier_mode", "{}"))
        return CarrierMode(
            mode=str(raw.get("mode", "accept")),
            reason=str(raw.get("reason", DEFAULT_CARRIER_REASON)),
            seconds=float(raw.get("seconds", 0.0)),
        )

    def set_carrier_mode(self, mode: CarrierMode) -> None:
        if mode.mode not in ("accept", "fail", "delay"):
            raise BadInput(f"Unknown carrier mode {mode.mode!r}: use accept, fail or delay.")
        with self._write():
            self._set_meta("carrier_mode", json.dumps(mode.to_json()))

    def numbers_of(self, ext: str) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT number FROM numbers WHERE ext = ? ORDER BY pos", (ext,)
            )
        ]

    def _person(self, ext: str | None) -> dict[str, Any] | None:
        if ext is None:
            return None
        row = self.conn.execute(
            "SELECT ext, name, avatar FROM extensions WHERE ext = ?", (ext,)
        ).fetchone()
        if row is None:
            return wire.person(ext, ext, None)
        return wire.person(row["ext"], row["name"], row["avatar"])

    # ------------------------------------------------------------------ blobs

    def _blob_path(self, sha256: str) -> Path:
        if not SHA256.fullmatch(sha256):
            raise BadInput("A file is named by the 64 hex digits of its sha256.")
        return self.files_dir / sha256[:2] / sha256

    def _store_blob(self, data: bytes, mime: str) -> str:
        del mime
        sha = hashlib.sha256(data).hexdigest()
        path = self._blob_path(sha)
        if not path.exists():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            write_atomic(path, data, mode=0o600)
        return sha

    def _insert_file(self, sha: str, mime: str, size: int) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO files (sha256, mime, size, at) VALUES (?, ?, ?, ?)",
            (sha, mime, size, time.time()),
        )
