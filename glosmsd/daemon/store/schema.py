"""The daemon's schema: numbered migration steps, `PRAGMA user_version` the version.

Each step is what takes the local database from the version before it to its own
number; core/migrations runs them when the store opens (`database.open_connection`).
Never edit a released step; append a new one: tests/daemon/fixtures/ holds a frozen copy
of a database at every version, and a test checks that each one, brought up to date, has
the schema a fresh database gets. Statements keep the exact text they were released with,
since SQLite stores it and the fixtures compare it.

New messages are indexed in FTS5 by the store itself, not by an insert trigger (see
`base.StoreBase._insert_message`); deletes and text changes keep their triggers.
"""

from __future__ import annotations

from typing import Final

from glosmsd.core.migrations import Schema, Step

STEPS: Final[tuple[Step, ...]] = (
    Step(
        1,
        "the first schema: account and cursor, conversations, messages and their search "
        "index, outbox, files, contacts, prefs, emoji, the local event log",
        sql=(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
            """CREATE TABLE conversations (
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
    )""",
            """CREATE INDEX conversations_by_activity ON conversations (last_at DESC, id DESC)
        WHERE last_at IS NOT NULL""",
            "CREATE INDEX conversations_by_tail ON conversations (remote_tail)",
            """CREATE TABLE messages (
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
    )""",
            "CREATE INDEX messages_by_time ON messages (conversation_id, at, id)",
            """CREATE INDEX messages_unread ON messages (conversation_id, server_id)
        WHERE direction = 'in'""",
            """CREATE VIRTUAL TABLE messages_fts USING fts5 (
        text, content = 'messages', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
    )""",
            """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
            """CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
    END""",
            """CREATE TABLE outbox (
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
    )""",
            "CREATE INDEX outbox_due ON outbox (next_at, seq)",
            """CREATE TABLE files (
        sha256 TEXT PRIMARY KEY,
        path TEXT,
        state TEXT NOT NULL CHECK (state IN ('none', 'downloading', 'done', 'failed'))
    ) WITHOUT ROWID""",
            """CREATE TABLE contacts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        numbers TEXT NOT NULL,
        digits TEXT NOT NULL
    )""",
            """CREATE TABLE contact_numbers (
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        number TEXT NOT NULL,
        tail TEXT NOT NULL
    )""",
            "CREATE INDEX contact_numbers_by_tail ON contact_numbers (tail)",
            "CREATE INDEX contact_numbers_by_contact ON contact_numbers (contact_id)",
            """CREATE VIRTUAL TABLE contacts_fts USING fts5 (
        name, digits, content = 'contacts', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    )""",
            """CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
        INSERT INTO contacts_fts (rowid, name, digits) VALUES (new.id, new.name, new.digits);
    END""",
            """CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
        INSERT INTO contacts_fts (contacts_fts, rowid, name, digits)
            VALUES ('delete', old.id, old.name, old.digits);
    END""",
            "CREATE TABLE prefs (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
            """CREATE TABLE emoji (
        emoji TEXT PRIMARY KEY, last_used REAL NOT NULL, uses INTEGER NOT NULL
    ) WITHOUT ROWID""",
            """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        at REAL NOT NULL,
        payload TEXT NOT NULL
    )""",
        ),
    ),
    Step(
        2,
        "changes the server must still hear (read marks, deletions made offline) get a "
        "table of their own, in order; they were one JSON list in prefs, where two writers "
        "could each read it, append and write it back, losing one of the two",
        sql=(
            """CREATE TABLE pending_ops (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        method TEXT NOT NULL,
        params TEXT NOT NULL
    )""",
            """INSERT INTO pending_ops (method, params)
        SELECT j.value ->> 'method', json(j.value -> 'params')
        FROM prefs p, json_each(p.value) j
        WHERE p.key = '_pending_server_ops' AND json_valid(p.value)
            AND j.value ->> 'method' IS NOT NULL
        ORDER BY j.key""",
            "DELETE FROM prefs WHERE key = '_pending_server_ops'",
        ),
    ),
    Step(
        3,
        "drafts, one per conversation, kept here so they outlive the SMS window (and the "
        "quick-send popup) being closed; they are this device's own, never sent anywhere",
        sql=(
            """CREATE TABLE drafts (
        conversation_id INTEGER PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
        text TEXT NOT NULL,
        at REAL NOT NULL
    )""",
        ),
    ),
    Step(
        4,
        "each conversation keeps the id of its newest message (the list's preview), kept "
        "up to date with last_at wherever messages are added, moved or deleted; the list "
        "looked it up with a subquery per conversation (4.3 times the bare list at 2,000)",
        sql=(
            "ALTER TABLE conversations ADD COLUMN last_message_id INTEGER",
            """UPDATE conversations SET last_message_id = (
        SELECT id FROM messages WHERE conversation_id = conversations.id
        ORDER BY at DESC, id DESC LIMIT 1)""",
        ),
    ),
    Step(
        5,
        "a failed message that was sent again keeps the local id it went again as, so a "
        "second resend (another window, the command line, a double click) answers that "
        "message instead of sending a third copy, also after a restart; the mark goes with "
        "the message it names (local ids are reused once the newest row is deleted)",
        sql=(
            "ALTER TABLE messages ADD COLUMN resent_as INTEGER",
            """CREATE INDEX messages_resent ON messages (resent_as)
        WHERE resent_as IS NOT NULL""",
            """CREATE TRIGGER messages_resent_delete AFTER DELETE ON messages
        WHEN old.direction = 'out' BEGIN
        UPDATE messages SET resent_as = NULL WHERE resent_as = old.id;
    END""",
        ),
    ),
    Step(
        6,
        "a conversation marked unread here keeps the read position it was marked from: a "
        "read at or below it that arrives later (the echo of this device's own read, or "
        "another device's from before the mark) no longer marks it read again",
        sql=("ALTER TABLE conversations ADD COLUMN unread_mark INTEGER NOT NULL DEFAULT 0",),
    ),
)

SCHEMA: Final = Schema(
    what="the local database",
    program="glosmsd",
    advice="Upgrade glosmsd, or move the file aside to start over from the server.",
    steps=STEPS,
)
SCHEMA_VERSION: Final = SCHEMA.version
