"""The reference server's store: the only place in the server that speaks SQL.

One SQLite file (WAL, numbered migrations, `PRAGMA user_version` as the schema version)
holds extensions, token hashes, numbers and who shares them, the contact directory,
messages, the per-extension event log, settings and the test carrier's mode. File bytes
live beside it under `<db>.files/`, addressed by their sha256 only.

Everything here is synchronous and thread-bound: the server calls it from one worker
thread, the admin CLI calls it directly, and both may run at the same time (every write
is a `BEGIN IMMEDIATE` transaction, so event seqs commit in order).

Visibility, in one place: an event carries either a `number` (seen by every extension on
that number, so all sharers see all its messages) or an `ext` (seen by that extension
alone: its read marks and deletions, shared by its devices). This module must never
build a file path from anything but a validated sha256, and never return a message, an
event or file bytes to an extension that is not on the message's number.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import sqlite3
import time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from glosmsd.core.errors import BadInput, NoSmsNumber, NotFound, SchemaTooNew, StoreError
from glosmsd.core.filetypes import check_type, sniff
from glosmsd.core.rules import Limits, check_message
from glosmsd.system.atomicwrite import write_atomic

E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
SHORT_CODE: Final = re.compile(r"[0-9]{3,8}")
EXTENSION: Final = re.compile(r"[0-9A-Za-z_.-]{1,32}")
SHA256: Final = re.compile(r"[0-9a-f]{64}")
MAX_NAME: Final = 255
MAX_CHUNK: Final = 262_144
DEFAULT_PBX_VERSION: Final = "7.1"
SERVER_SETTINGS: Final = ("pbx_version",)
DEFAULT_CARRIER_REASON: Final = "The carrier refused the message."

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: the whole first schema.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        sha256 TEXT PRIMARY KEY, mime TEXT NOT NULL, size INTEGER NOT NULL, at REAL NOT NULL);
    CREATE TABLE extensions (
        ext TEXT PRIMARY KEY, name TEXT NOT NULL, avatar TEXT REFERENCES files(sha256));
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY, ext TEXT NOT NULL REFERENCES extensions(ext), at REAL NOT NULL);
    CREATE TABLE numbers (
        number TEXT NOT NULL, ext TEXT NOT NULL REFERENCES extensions(ext),
        pos INTEGER NOT NULL, PRIMARY KEY (number, ext));
    CREATE INDEX numbers_by_ext ON numbers(ext, pos);
    CREATE TABLE uploads (
        ext TEXT NOT NULL, sha256 TEXT NOT NULL REFERENCES files(sha256),
        PRIMARY KEY (ext, sha256));
    CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE contact_numbers (
        contact_id INTEGER NOT NULL REFERENCES contacts(id), pos INTEGER NOT NULL,
        label TEXT NOT NULL, number TEXT NOT NULL, PRIMARY KEY (contact_id, pos));
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        number TEXT NOT NULL, remote TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        text TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, at REAL NOT NULL,
        sender_ext TEXT, client_id TEXT,
        UNIQUE (sender_ext, client_id));
    CREATE INDEX messages_by_conversation ON messages(number, remote, id);
    CREATE TABLE message_files (
        message_id INTEGER NOT NULL REFERENCES messages(id), pos INTEGER NOT NULL,
        sha256 TEXT NOT NULL REFERENCES files(sha256), name TEXT NOT NULL,
        PRIMARY KEY (message_id, pos));
    CREATE INDEX message_files_by_sha ON message_files(sha256);
    CREATE TABLE reads (
        ext TEXT NOT NULL, number TEXT NOT NULL, remote TEXT NOT NULL, up_to INTEGER NOT NULL,
        PRIMARY KEY (ext, number, remote));
    CREATE TABLE hidden_messages (
        ext TEXT NOT NULL, message_id INTEGER NOT NULL, PRIMARY KEY (ext, message_id));
    CREATE TABLE hidden_conversations (
        ext TEXT NOT NULL, number TEXT NOT NULL, remote TEXT NOT NULL, up_to INTEGER NOT NULL,
        PRIMARY KEY (ext, number, remote));
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ext TEXT, number TEXT, kind TEXT NOT NULL, at REAL NOT NULL, body TEXT NOT NULL,
        CHECK ((ext IS NULL) != (number IS NULL)));
    CREATE INDEX events_by_ext ON events(ext, seq) WHERE ext IS NOT NULL;
    CREATE INDEX events_by_number ON events(number, seq) WHERE number IS NOT NULL;
    """,
)

# A message is hidden for an extension by its own deletions; used wherever "can see" matters.
# It is a constant spliced into queries (S608 noqa below): every value stays a bound param.
_VISIBLE = """
    m.number IN (SELECT number FROM numbers WHERE ext = :ext)
    AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.ext = :ext AND h.message_id = m.id)
    AND NOT EXISTS (SELECT 1 FROM hidden_conversations c WHERE c.ext = :ext
                    AND c.number = m.number AND c.remote = m.remote AND m.id <= c.up_to)
"""


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A stored file as a message references it."""

    sha256: str
    name: str
    mime: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "name": self.name, "mime": self.mime, "size": self.size}


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message the carrier must deliver (its number is not hosted here)."""

    id: int
    number: str
    remote: str
    text: str
    files: tuple[FileInfo, ...]


@dataclass(frozen=True, slots=True)
class SyncBatch:
    events: list[dict[str, Any]]
    cursor: int
    more: bool
    reset: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "cursor": self.cursor,
            "more": self.more,
            "reset": self.reset,
        }


@dataclass(frozen=True, slots=True)
class Sent:
    """What `send` did: the MESSAGE to reply with, and what the carrier still has to do."""

    message: dict[str, Any]
    outbound: Outbound | None
    new: bool


@dataclass(frozen=True, slots=True)
class CarrierMode:
    """How the test carrier answers: `accept`, `fail` (with reason) or `delay` (seconds)."""

    mode: str = "accept"
    reason: str = DEFAULT_CARRIER_REASON
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason, "seconds": self.seconds}


def normalize_number(raw: str, *, what: str = "number") -> str:
    """An E.164 number or a short code, with spaces, dashes, dots and brackets removed."""
    cleaned = re.sub(r"[\s\-().]", "", raw)
    if E164.fullmatch(cleaned) or SHORT_CODE.fullmatch(cleaned):
        return cleaned
    raise BadInput(
        f"{what.capitalize()} {raw[:40]!r} is not a phone number: use the international "
        "form like +15557654321, or a short code of 3 to 8 digits."
    )


def clean_file_name(raw: str) -> str:
    """A display name only: no directories, no control characters, never empty.

    The name is never used to build a path on the server; cleaning it keeps clients that
    save files from being handed `../../etc/passwd`.
    """
    base = re.split(r"[/\\]", raw)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    base = base.lstrip(".").strip()
    return base[:MAX_NAME] or "file"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """The server database plus its content-addressed file store."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.files_dir = self.path.with_name(self.path.name + ".files")
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the server database {self.path}: {exc}") from exc
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout = 10000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        self.files_dir.mkdir(mode=0o700, exist_ok=True)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ plumbing

    def _migrate(self) -> None:
        with self._write():
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise SchemaTooNew(
                    f"{self.path} has schema version {version}; this glosmsd-server knows "
                    f"{len(MIGRATIONS)}. Upgrade glosmsd-server; the file was left untouched."
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the write lock is taken up front so seqs commit in order."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
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

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database; PASSIVE: it never waits for, nor
        blocks, readers and writers (what a reader still uses is copied next time)."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
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
        cur = self.conn.execute(
            "INSERT INTO events (ext, number, kind, at, body) VALUES (?, ?, ?, ?, ?)",
            (ext, number, kind, time.time() if at is None else at, json.dumps(body)),
        )
        return int(cur.lastrowid or 0)

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
        stored = {
            row["key"]: json.loads(row["value"])
            for row in self.conn.execute("SELECT key, value FROM settings")
        }
        limits = Limits.from_settings(stored)
        out = limits.to_settings()
        out["pbx_version"] = str(stored.get("pbx_version", DEFAULT_PBX_VERSION))
        return out

    def limits(self) -> Limits:
        return Limits.from_settings(self.settings())

    def set_setting(self, key: str, value: Any) -> dict[str, Any]:
        """Change one setting; the whole set is validated before it is stored."""
        current = self.settings()
        if key not in current:
            known = ", ".join(sorted(current))
            raise BadInput(f"Unknown setting {key!r}; known settings: {known}.")
        if key in SERVER_SETTINGS:
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

    # ------------------------------------------------------------------ accounts

    def add_extension(self, ext: str, name: str, avatar: bytes | None = None) -> None:
        if not EXTENSION.fullmatch(ext):
            raise BadInput(f"Extension {ext[:40]!r} must be 1 to 32 letters, digits, . _ or -.")
        if not name.strip():
            raise BadInput("An extension needs a display name (--name).")
        avatar_sha = None
        mime = None
        if avatar is not None:
            mime = sniff(avatar)
            if mime is None or not mime.startswith("image/"):
                raise BadInput("The avatar must be an image (JPEG, PNG, GIF, BMP or WebP).")
            avatar_sha = self._store_blob(avatar, mime)
        with self._write() as db:
            if avatar_sha is not None and avatar is not None and mime is not None:
                self._insert_file(avatar_sha, mime, len(avatar))
            db.execute(
                "INSERT INTO extensions (ext, name, avatar) VALUES (?, ?, ?) "
                "ON CONFLICT (ext) DO UPDATE SET name = excluded.name, "
                "avatar = COALESCE(excluded.avatar, avatar)",
                (ext, name.strip(), avatar_sha),
            )

    def _require_ext(self, ext: str) -> None:
        if self.conn.execute("SELECT 1 FROM extensions WHERE ext = ?", (ext,)).fetchone() is None:
            raise NotFound(f"No extension {ext!r}: add it first with `admin add-extension`.")

    def assign_number(self, ext: str, number: str) -> list[str]:
        """Put `ext` on `number`; returns every extension now on it (sharers included)."""
        number = normalize_number(number)
        if not E164.fullmatch(number):
            raise BadInput(
                f"An SMS number must be in E.164 form like +15550001001, not {number!r}."
            )
        with self._write() as db:
            self._require_ext(ext)
            pos = db.execute(
                "SELECT COALESCE(MAX(pos), -1) + 1 FROM numbers WHERE ext = ?", (ext,)
            ).fetchone()[0]
            db.execute(
                "INSERT OR IGNORE INTO numbers (number, ext, pos) VALUES (?, ?, ?)",
                (number, ext, pos),
            )
            return [
                r[0]
                for r in db.execute(
                    "SELECT ext FROM numbers WHERE number = ? ORDER BY ext", (number,)
                )
            ]

    def unassign_number(self, ext: str, number: str) -> None:
        with self._write() as db:
            cur = db.execute("DELETE FROM numbers WHERE ext = ? AND number = ?", (ext, number))
            if cur.rowcount == 0:
                raise NotFound(f"Extension {ext} is not on {number}.")

    def new_token(self, ext: str) -> str:
        """A fresh token for `ext`; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        with self._write() as db:
            self._require_ext(ext)
            db.execute(
                "INSERT INTO tokens (hash, ext, at) VALUES (?, ?, ?)",
                (_hash_token(token), ext, time.time()),
            )
        return token

    def ext_for_token(self, token: str) -> str | None:
        row = self.conn.execute(
            "SELECT ext FROM tokens WHERE hash = ?", (_hash_token(token),)
        ).fetchone()
        return str(row[0]) if row else None

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
            return {"ext": ext, "name": ext, "avatar": None}
        return {"ext": row["ext"], "name": row["name"], "avatar": row["avatar"]}

    def hello(self, ext: str) -> dict[str, Any]:
        """The account part of the hello result."""
        with self._read() as db:
            numbers = []
            for number in self.numbers_of(ext):
                others = [
                    self._person(r[0])
                    for r in db.execute(
                        "SELECT ext FROM numbers WHERE number = ? AND ext != ? ORDER BY ext",
                        (number, ext),
                    )
                ]
                numbers.append({"number": number, "shared_with": others})
            return {"extension": self._person(ext), "numbers": numbers, "settings": self.settings()}

    def add_contact(self, name: str, numbers: Sequence[tuple[str, str]]) -> int:
        if not name.strip():
            raise BadInput("A contact needs a name.")
        if not numbers:
            raise BadInput("A contact needs at least one number (--number label=+1555...).")
        cleaned = [(label.strip() or "other", normalize_number(n)) for label, n in numbers]
        with self._write() as db:
            cid = int(
                db.execute("INSERT INTO contacts (name) VALUES (?)", (name.strip(),)).lastrowid or 0
            )
            db.executemany(
                "INSERT INTO contact_numbers (contact_id, pos, label, number) VALUES (?, ?, ?, ?)",
                [(cid, i, label, n) for i, (label, n) in enumerate(cleaned)],
            )
        return cid

    def contacts(self, query: str, limit: int) -> list[dict[str, Any]]:
        """The company directory filtered by name or number (it is the same for everyone)."""
        q = query.strip()
        digits = re.sub(r"[^0-9+]", "", q)
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        num_like = "%" + digits + "%" if digits.strip("+") else None
        with self._read() as db:
            rows = db.execute(
                """SELECT id, name FROM contacts c WHERE ? = '' OR c.name LIKE ? ESCAPE '\\'
                   OR (? IS NOT NULL AND EXISTS (SELECT 1 FROM contact_numbers n
                       WHERE n.contact_id = c.id AND n.number LIKE ?))
                   ORDER BY name COLLATE NOCASE, id LIMIT ?""",
                (q, like, num_like, num_like, limit),
            ).fetchall()
            out = []
            for row in rows:
                nums = [
                    {"label": n["label"], "number": n["number"]}
                    for n in db.execute(
                        "SELECT label, number FROM contact_numbers WHERE contact_id = ? "
                        "ORDER BY pos",
                        (row["id"],),
                    )
                ]
                out.append({"id": row["id"], "name": row["name"], "numbers": nums})
            return out

    # ------------------------------------------------------------------ files

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

    def upload(self, ext: str, data: bytes, name: str) -> FileInfo:
        """Store an MMS attachment after checking its type by content and its size."""
        settings = self.settings()
        limit = int(settings["mms_max_bytes"])
        if len(data) > limit:
            raise BadInput(
                f"The file is {len(data)} bytes; a message may carry at most {limit} bytes "
                "of files."
            )
        mime = check_type(data, list(settings["mms_types"]))
        sha = self._store_blob(data, mime)
        with self._write() as db:
            self._insert_file(sha, mime, len(data))
            db.execute("INSERT OR IGNORE INTO uploads (ext, sha256) VALUES (?, ?)", (ext, sha))
        return FileInfo(sha, clean_file_name(name), mime, len(data))

    def store_inbound_file(self, data: bytes) -> tuple[str, str]:
        """A file that arrived from the carrier (or `admin inject`): (sha256, mime)."""
        mime = sniff(data) or "application/octet-stream"
        sha = self._store_blob(data, mime)
        with self._write():
            self._insert_file(sha, mime, len(data))
        return sha, mime

    def can_download(self, ext: str, sha256: str) -> bool:
        row = self.conn.execute(
            f"""SELECT 1 FROM message_files f JOIN messages m ON m.id = f.message_id
                WHERE f.sha256 = :sha AND {_VISIBLE} LIMIT 1""",  # noqa: S608
            {"sha": sha256, "ext": ext},
        ).fetchone()
        return row is not None

    def download(self, ext: str, sha256: str, offset: int, length: int) -> dict[str, Any]:
        """A chunk of a file the extension can see; anything else is `not-found`."""
        with self._read() as db:
            allowed = SHA256.fullmatch(sha256) is not None and self.can_download(ext, sha256)
            row = db.execute("SELECT mime, size FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        if not allowed or row is None:
            raise NotFound("No such file in your messages.")
        return self._chunk(sha256, row["mime"], int(row["size"]), offset, length)

    def _chunk(self, sha: str, mime: str, size: int, offset: int, length: int) -> dict[str, Any]:
        length = max(0, min(length, MAX_CHUNK))
        try:
            with open(self._blob_path(sha), "rb") as fh:
                fh.seek(offset)
                data = fh.read(length)
        except FileNotFoundError as exc:
            raise NotFound("The file is missing from the server's file store.") from exc
        return {"data": data, "size": size, "mime": mime}

    def avatar(self, ext: str) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT f.sha256, f.mime, f.size FROM extensions e JOIN files f "
            "ON f.sha256 = e.avatar WHERE e.ext = ?",
            (ext,),
        ).fetchone()
        if row is None:
            raise NotFound(f"Extension {ext} has no avatar.")
        return self._chunk(row["sha256"], row["mime"], int(row["size"]), 0, MAX_CHUNK)

    def read_blob(self, sha256: str) -> bytes:
        return self._blob_path(sha256).read_bytes()

    # ------------------------------------------------------------------ messages

    def _files_of(self, message_id: int) -> list[dict[str, Any]]:
        return [
            {"sha256": r["sha256"], "name": r["name"], "mime": r["mime"], "size": r["size"]}
            for r in self.conn.execute(
                "SELECT f.sha256, f.name, x.mime, x.size FROM message_files f "
                "JOIN files x ON x.sha256 = f.sha256 WHERE f.message_id = ? ORDER BY f.pos",
                (message_id,),
            )
        ]

    def _render(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "client_id": row["client_id"],
            "number": row["number"],
            "remote": row["remote"],
            "direction": row["direction"],
            "text": row["text"],
            "state": row["state"],
            "reason": row["reason"],
            "at": row["at"],
            "files": self._files_of(int(row["id"])),
            "sender": self._person(row["sender_ext"]) if row["direction"] == "out" else None,
        }

    def message(self, message_id: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(f"No message {message_id}.")
        return self._render(row)

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
    ) -> dict[str, Any]:
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
        msg = {
            "id": mid,
            "client_id": client_id,
            "number": number,
            "remote": remote,
            "direction": direction,
            "text": text,
            "state": state,
            "reason": None,
            "at": at,
            # As stored (a blob first stored by another path keeps its first type).
            "files": self._files_of(mid) if files else [],
            "sender": self._person(sender_ext) if direction == "out" else None,
        }
        self._event("message", {"message": msg}, number=number, at=at)
        return msg

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
            return Sent(self._render(existing), None, new=False)
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
                msg = self._insert_message(
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
            return Sent(self._render(row), None, new=False)
        outbound = None if local else Outbound(msg["id"], number, remote, text, tuple(infos))
        return Sent(msg, outbound, new=True)

    def _attachment(self, ext: str, ref: Mapping[str, str]) -> FileInfo:
        sha = str(ref.get("sha256", ""))
        # Usable: what this extension uploaded, or a file it can already see (a forward).
        row = self.conn.execute("SELECT mime, size FROM files WHERE sha256 = ?", (sha,)).fetchone()
        mine = self.conn.execute(
            "SELECT 1 FROM uploads WHERE ext = ? AND sha256 = ?", (ext, sha)
        ).fetchone()
        if row is None or (mine is None and not self.can_download(ext, sha)):
            raise NotFound(f"File {sha[:12]}... was not uploaded: call upload first.")
        return FileInfo(
            sha, clean_file_name(str(ref.get("name", "file"))), row["mime"], int(row["size"])
        )

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
                {"id": message_id, "state": state, "reason": reason},
                number=row["number"],
            )

    def pending_outbound(self) -> list[Outbound]:
        """Messages still `sending` (e.g. the server stopped before the carrier answered)."""
        out = []
        for row in self.conn.execute(
            "SELECT * FROM messages WHERE state = 'sending' AND direction = 'out' ORDER BY id"
        ).fetchall():
            files = tuple(FileInfo(**f) for f in self._files_of(int(row["id"])))
            out.append(Outbound(row["id"], row["number"], row["remote"], row["text"], files))
        return out

    def receive(
        self, sender: str, to: str, text: str, files: Sequence[tuple[bytes, str]] = ()
    ) -> dict[str, Any]:
        """An inbound message from the carrier for a hosted number."""
        remote = normalize_number(sender, what="sender")
        number = normalize_number(to, what="recipient")
        infos = []
        for data, name in files:
            sha, mime = self.store_inbound_file(data)
            infos.append(FileInfo(sha, clean_file_name(name), mime, len(data)))
        with self._write():
            if not self._hosted(number):
                raise NotFound(f"{number} is not hosted on this server: assign it first.")
            return self._insert_message(
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

    def messages_of(self, number: str) -> list[dict[str, Any]]:
        with self._read() as db:
            return [
                self._render(r)
                for r in db.execute(
                    "SELECT * FROM messages WHERE number = ? ORDER BY id", (number,)
                )
            ]

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
            return self._event(
                "read", {"number": number, "remote": remote, "up_to": up_to}, ext=ext
            )

    def delete_message(self, ext: str, message_id: int) -> int:
        with self._write() as db:
            row = db.execute(
                f"SELECT id FROM messages m WHERE id = :id AND {_VISIBLE}",  # noqa: S608
                {"id": message_id, "ext": ext},
            ).fetchone()
            if row is None:
                raise NotFound(f"No message {message_id} in your conversations.")
            db.execute("INSERT OR IGNORE INTO hidden_messages VALUES (?, ?)", (ext, message_id))
            return self._event("delete_message", {"id": message_id}, ext=ext)

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
            seq = self._event(
                "delete_conversation", {"number": number, "remote": remote, "up_to": up_to}, ext=ext
            )
            return seq, int(up_to)

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
                f"SELECT * FROM messages m WHERE {_VISIBLE} ORDER BY id",  # noqa: S608
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
