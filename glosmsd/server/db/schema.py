"""The reference server's schema: numbered migration steps, `PRAGMA user_version` the version.

Each step is what takes the database from the version before it to its own number; the
one runner, core/migrations, applies them (`DbBase.__init__`). This module must never run
anything itself. Never edit a released step; append a new one: tests/server/fixtures/
holds a frozen copy of a database at every version, and a test checks that each one,
brought up to date, has the schema a fresh database gets.
"""

from __future__ import annotations

from typing import Final

from glosmsd.core.migrations import Schema, Step

STEPS: Final[tuple[Step, ...]] = (
    Step(
        1,
        "the first schema: extensions, tokens, numbers, contacts, files, messages, marks "
        "and the event log",
        sql=(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE files (
        sha256 TEXT PRIMARY KEY, mime TEXT NOT NULL, size INTEGER NOT NULL, at REAL NOT NULL)""",
            """CREATE TABLE extensions (
        ext TEXT PRIMARY KEY, name TEXT NOT NULL, avatar TEXT REFERENCES files(sha256))""",
            """CREATE TABLE tokens (
        hash TEXT PRIMARY KEY, ext TEXT NOT NULL REFERENCES extensions(ext), at REAL NOT NULL)""",
            """CREATE TABLE numbers (
        number TEXT NOT NULL, ext TEXT NOT NULL REFERENCES extensions(ext),
        pos INTEGER NOT NULL, PRIMARY KEY (number, ext))""",
            "CREATE INDEX numbers_by_ext ON numbers(ext, pos)",
            """CREATE TABLE uploads (
        ext TEXT NOT NULL, sha256 TEXT NOT NULL REFERENCES files(sha256),
        PRIMARY KEY (ext, sha256))""",
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
            """CREATE TABLE contact_numbers (
        contact_id INTEGER NOT NULL REFERENCES contacts(id), pos INTEGER NOT NULL,
        label TEXT NOT NULL, number TEXT NOT NULL, PRIMARY KEY (contact_id, pos))""",
            """CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        number TEXT NOT NULL, remote TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        text TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, at REAL NOT NULL,
        sender_ext TEXT, client_id TEXT,
        UNIQUE (sender_ext, client_id))""",
            "CREATE INDEX messages_by_conversation ON messages(number, remote, id)",
            """CREATE TABLE message_files (
        message_id INTEGER NOT NULL REFERENCES messages(id), pos INTEGER NOT NULL,
        sha256 TEXT NOT NULL REFERENCES files(sha256), name TEXT NOT NULL,
        PRIMARY KEY (message_id, pos))""",
            "CREATE INDEX message_files_by_sha ON message_files(sha256)",
            """CREATE TABLE reads (
        ext TEXT NOT NULL, number TEXT NOT NULL, remote TEXT NOT NULL, up_to INTEGER NOT NULL,
        PRIMARY KEY (ext, number, remote))""",
            """CREATE TABLE hidden_messages (
        ext TEXT NOT NULL, message_id INTEGER NOT NULL, PRIMARY KEY (ext, message_id))""",
            """CREATE TABLE hidden_conversations (
        ext TEXT NOT NULL, number TEXT NOT NULL, remote TEXT NOT NULL, up_to INTEGER NOT NULL,
        PRIMARY KEY (ext, number, remote))""",
            """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ext TEXT, number TEXT, kind TEXT NOT NULL, at REAL NOT NULL, body TEXT NOT NULL,
        CHECK ((ext IS NULL) != (number IS NULL)))""",
            "CREATE INDEX events_by_ext ON events(ext, seq) WHERE ext IS NOT NULL",
            "CREATE INDEX events_by_number ON events(number, seq) WHERE number IS NOT NULL",
        ),
    ),
    Step(
        2,
        "when each upload was made, so unsent uploads expire (issue 13 item 8); uploads "
        "made before it count as old",
        sql=(
            "ALTER TABLE uploads ADD COLUMN at REAL NOT NULL DEFAULT 0",
            "CREATE INDEX uploads_by_at ON uploads(at)",
        ),
    ),
)

SCHEMA: Final = Schema(
    what="the server database",
    program="glosmsd-server",
    advice="Upgrade glosmsd-server, or give it another --db.",
    steps=STEPS,
)
SCHEMA_VERSION: Final = SCHEMA.version
