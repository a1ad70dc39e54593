"""The daemon's local store: the only part of the daemon that speaks SQL.

One SQLite file (WAL, foreign keys on, numbered migrations with `PRAGMA user_version` as
the schema version) holds what the daemon knows of the user's SMS: the sync cursor and
the server's hello (account), conversations with their read and deletion marks,
messages (incoming, outgoing, and local sends not yet confirmed), the outbox of accepted
sends, the contacts cache, preferences, recent emoji, the state of downloaded files, and
the local event log that the socket's subscribe/replay reads. An FTS5 index over message
text and contact names and numbers is kept in step in the same transaction, so a deleted
message can no longer be found.

The parts, each a module and a class the next one builds on:
- `schema`     the numbered migration steps (run by core/migrations)
- `rows`       the value objects the store returns (`MessageRow`, `ConversationRow`, ...)
- `incoming`   a server MESSAGE checked and shaped into a row, in one place
- `unread`     unread counts kept up to date by the writes
- `base`       connection, transactions, meta, the local event log (`StoreBase`)
- `records`    single message and conversation rows, shared by the parts below
- `merge`      the sync merge (`apply_sync`), batched and one by one alike
- `outbox`     accepted sends until the server has them
- `local`      read marks and deletions made here, pending ops for the server
- `contacts`, `queries`, `downloads`, `drafts`, `prefs`   the rest of what the store keeps
- `database`   `Store`, all of the above, and how a file is opened
- `checkpoint` the thread that copies the WAL back outside every commit
- `aio`        `AsyncStore`: the store on its own thread, `await store.run(Store.m, ...)`

Rules it keeps (each part's docstring has its own):
- A database written by a newer schema raises `SchemaTooNew` and is left untouched.
- Each server sync batch and its cursor commit in one transaction, with the local events
  the batch caused; an accepted send commits durably (`synchronous=FULL`) before its reply.
- Unread = an incoming message whose server id is above its conversation's read mark and
  that is not deleted. An outgoing message (the user's own, or a sharer's) is never unread.
- Deleted messages are removed from the database (and so from the search index); the
  conversation's `deleted_up_to` keeps a late copy of a deleted message from returning.
- Local ids (messages, conversations) never change, also across a server reset.

`Store` is synchronous and must only be used from the thread that opened it. Nothing
outside this package imports sqlite3 in the daemon, and it never talks to the network
or the event loop except through `AsyncStore`'s executor.
"""

from glosmsd.daemon.store.aio import AsyncStore
from glosmsd.daemon.store.base import (
    EVENT_HORIZON_COUNT,
    EVENT_HORIZON_SECONDS,
    EVENT_KINDS,
    WAL_LIMIT_BYTES,
    EventsListener,
    LocalEvent,
)
from glosmsd.daemon.store.checkpoint import CHECKPOINT_IDLE_SECONDS, CHECKPOINT_MAX_DELAY
from glosmsd.daemon.store.database import Store
from glosmsd.daemon.store.prefs import EMOJI_RECENTS
from glosmsd.daemon.store.rows import (
    FILE_STATES,
    STATES,
    ContactNumber,
    ContactRow,
    ConversationRef,
    ConversationRow,
    Draft,
    ExportedConversation,
    FileRow,
    MessageRow,
    OutboxItem,
    ReadMark,
    SearchResult,
    Sharer,
    UnreadSummary,
)
from glosmsd.daemon.store.schema import SCHEMA, SCHEMA_VERSION, STEPS

__all__ = [
    "CHECKPOINT_IDLE_SECONDS",
    "CHECKPOINT_MAX_DELAY",
    "EMOJI_RECENTS",
    "EVENT_HORIZON_COUNT",
    "EVENT_HORIZON_SECONDS",
    "EVENT_KINDS",
    "FILE_STATES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATES",
    "STEPS",
    "WAL_LIMIT_BYTES",
    "AsyncStore",
    "ContactNumber",
    "ContactRow",
    "ConversationRef",
    "ConversationRow",
    "Draft",
    "EventsListener",
    "ExportedConversation",
    "FileRow",
    "LocalEvent",
    "MessageRow",
    "OutboxItem",
    "ReadMark",
    "SearchResult",
    "Sharer",
    "Store",
    "UnreadSummary",
]
