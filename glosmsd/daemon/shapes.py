"""What the daemon's API answers: the JSON Schema of every result and notification.

Draft-07 JSON Schema, the dialect OpenRPC documents use. Shared shapes are in `SCHEMAS`;
results refer to them as `#/components/schemas/NAME`, where `glosmsd.daemon.api.openrpc`
puts them. The method table (`glosmsd.daemon.methods`) names one `ResultSchema` per method;
the socket's own methods (`BUILTIN_RESULTS`) and its notifications (`NOTIFICATIONS`) are
here too.

These schemas only describe: the tests hold every real reply to them, the daemon never
checks its own replies (that would tax every call). This module must never do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from glosmsd.core import rules
from glosmsd.core.protocol import State
from glosmsd.daemon import service

# What each method answers, as JSON Schema (draft-07, the dialect OpenRPC documents use),
# and the params of the notifications the socket sends. Shared shapes are in `SCHEMAS`;
# results refer to them as `#/components/schemas/NAME`, where `openrpc` puts them. A closed
# object (`additionalProperties: false`) lists every key this version sends; a later one may
# add keys (additive changes only). These schemas are documentation and the tests' oracle:
# the daemon never validates its own replies, which would tax every call.

ID: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 1}
COUNT: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 0}
TIME: Final[Mapping[str, Any]] = {"type": "number", "description": "Unix time in seconds."}
TEXT: Final[Mapping[str, Any]] = {"type": "string"}
TEXT_OR_NULL: Final[Mapping[str, Any]] = {"type": ["string", "null"]}
BOOL: Final[Mapping[str, Any]] = {"type": "boolean"}

# The store's vocabularies, through the service (this module may not import the store).
MESSAGE_STATES: Final = service.MESSAGE_STATES
DIRECTIONS: Final = ("in", "out")  # the store's CHECK constraint; test_openrpc keeps it true
FILE_STATES: Final = service.FILE_STATES
EVENT_KINDS: Final = service.EVENT_KINDS
PREF_KEYS: Final = tuple(service.PREFS)


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def or_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"oneOf": [dict(schema), {"type": "null"}]}


def list_of(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}


def closed(
    required: Mapping[str, Any],
    optional: Mapping[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """An object with exactly these keys; the `optional` ones may be missing."""
    return {
        "type": "object",
        **({"description": description} if description else {}),
        "properties": {k: dict(v) for k, v in {**required, **(optional or {})}.items()},
        "required": list(required),
        "additionalProperties": False,
    }


SCHEMAS: Final[Mapping[str, Mapping[str, Any]]] = {
    "message": closed(
        {
            "id": {**ID, "description": "The daemon's local id; it never changes."},
            "conversation_id": ID,
            "number": {**TEXT, "description": "The own SMS number."},
            "remote": {**TEXT, "description": "The other party's number."},
            "server_id": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "The server's id; null until the server took the message.",
            },
            "client_id": {
                **TEXT_OR_NULL,
                "description": "The idempotency key of an outgoing message.",
            },
            "direction": {"enum": list(DIRECTIONS)},
            "text": TEXT,
            "state": {"enum": list(MESSAGE_STATES)},
            "reason": {**TEXT_OR_NULL, "description": "Why a failed message failed."},
            "at": TIME,
            "sender": {
                **or_null(ref("sender")),
                "description": "Set on an outgoing message another sharer of the number sent.",
            },
            "files": list_of(ref("attachment")),
        },
        {
            "resent_as": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "On a failed message that was sent again, the id of the "
                "message it went as (it offers no Resend then); on one that never reached "
                "the server and went again itself, its own id until it fails again. "
                "Missing in events logged by a daemon before it had the field.",
            },
        },
        description="One SMS or MMS.",
    ),
    "attachment": closed(
        {
            "sha256": {
                "type": ["string", "null"],
                "pattern": "^[0-9a-f]{64}$",
                "description": "null for an outgoing file not uploaded yet.",
            },
            "name": TEXT,
            "mime": TEXT_OR_NULL,
            "size": {"type": ["integer", "null"], "minimum": 0},
            "path": {**TEXT_OR_NULL, "description": "Where the file is here, if anywhere."},
            "state": {"enum": list(FILE_STATES), "description": "The download state."},
        },
        description="One file of an MMS.",
    ),
    "sender": closed(
        {"ext": TEXT, "name": TEXT, "avatar": TEXT_OR_NULL},
        description="The sharer of the number who sent a message (never the user).",
    ),
    "sharer": {
        "type": "object",
        "description": "Another extension that shares the SMS number, as the server describes "
        "it (so it may carry more keys).",
        "properties": {"ext": TEXT, "name": TEXT, "avatar": TEXT_OR_NULL},
        "required": ["ext", "name"],
    },
    "conversation": closed(
        {
            "id": ID,
            "number": {**TEXT, "description": "The own SMS number."},
            "remote": {**TEXT, "description": "The other party's number."},
            "name": {**TEXT_OR_NULL, "description": "The contact name of `remote`, if known."},
            "title": {**TEXT, "description": "`name`, else `remote`."},
            "last_at": {"type": ["number", "null"], "description": "Unix time in seconds."},
            "unread": COUNT,
            "last_message_id": {"type": ["integer", "null"], "minimum": 1},
            "last_text": TEXT_OR_NULL,
            "last_direction": {"enum": [*DIRECTIONS, None]},
        },
        description="One conversation; the `last_*` keys describe its newest message "
        "(null when it has none).",
    ),
    "contact": closed(
        {"id": {"type": "integer"}, "name": TEXT, "numbers": list_of(ref("contact_number"))},
        description="A contact of the company directory.",
    ),
    "contact_number": closed({"label": TEXT, "number": TEXT}),
    "link": closed(
        {
            "state": {"enum": [s.value for s in State]},
            "online": {**BOOL, "description": "True when messages flow (state live)."},
            "detail": {**TEXT, "description": "Why it is offline, or empty."},
            "line": {**TEXT, "description": "One line for a user."},
            "skipped": {
                **COUNT,
                "description": "Events from the server that could not be used since the "
                "daemon started: each was logged and skipped, and sync went on past it.",
            },
            "last_skipped": {**TEXT, "description": "What was wrong with the last one, or empty."},
        },
        description="The daemon's connection to the server.",
    ),
    "settings": {
        "type": "object",
        "description": "The server's settings as it sent them (empty before the first "
        "connection); it may send more keys.",
        "properties": {
            "mms_enabled": BOOL,
            "mms_max_bytes": COUNT,
            "mms_max_files": COUNT,
            "mms_max_text": COUNT,
            "sms_max_segments": ID,
            "mms_types": list_of(TEXT),
            "pbx_version": TEXT,
        },
    },
    "draft": closed(
        {
            "conversation_id": ID,
            "text": {**TEXT, "description": "Empty when there is no draft."},
            "at": {"type": ["number", "null"], "description": "When it was last typed."},
        },
        description="What the user typed in a conversation and has not sent (kept by the "
        "daemon, on this device only).",
    ),
    "prefs": closed(
        dict.fromkeys(PREF_KEYS, BOOL),
        description="Every preference with its value.",
    ),
    "count": closed(
        {
            "kind": {"enum": list(get_args(rules.Kind))},
            "encoding": {"enum": list(get_args(rules.Encoding))},
            "segments": COUNT,
            "units": {
                **COUNT,
                "description": "Septets for GSM-7, UTF-16 code units for UCS-2.",
            },
            "remaining": {"type": "integer", "description": "Units left in the last segment."},
            "fits": BOOL,
        },
        {
            "bytes_left": {"type": "integer", "description": "MMS with files; negative: over."},
            "chars_left": {"type": "integer", "description": "MMS; negative: over."},
            "reason": {**TEXT, "description": "Why it does not fit."},
        },
        description="What the counter shows.",
    ),
    "event": {
        "type": "object",
        "description": "One change, as the params of an `event` notification. `data` is "
        "the `event_KIND` schema of its `kind`.",
        "properties": {
            "id": {**ID, "description": "Grows with every event; pass it as `since`."},
            "kind": {"enum": list(EVENT_KINDS)},
            "at": TIME,
            "data": {"type": "object"},
        },
        "required": ["id", "kind", "at", "data"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}},
                "then": {"properties": {"data": ref(f"event_{kind}")}},
            }
            for kind in EVENT_KINDS
        ],
    },
    "event_message": closed(
        {"message": ref("message")},
        description="A message arrived, or was sent from any device of this extension or by "
        "a sharer of the number.",
    ),
    "event_message_state": closed(
        {
            "id": ID,
            "conversation_id": ID,
            "state": {"enum": list(MESSAGE_STATES)},
            "reason": TEXT_OR_NULL,
        },
        {
            "resent_as": {
                **ID,
                "description": "Set when the change is a resend: the message's new `resent_as`.",
            },
        },
        description="A message's state changed (or a failed one was sent again).",
    ),
    "event_read": closed(
        {
            "conversation_id": ID,
            "up_to": {**COUNT, "description": "Messages up to this `server_id` are read."},
        },
        description="A conversation's read mark moved.",
    ),
    "event_deleted": closed(
        {"conversation_id": ID, "message_ids": list_of(ID)},
        {"conversation": {"const": True, "description": "The whole conversation went."}},
        description="Messages, or a whole conversation, were deleted.",
    ),
    "event_unread": closed(
        {
            "total": COUNT,
            "conversations": list_of(closed({"id": ID, "count": ID})),
        },
        description="The unread count changed; `conversations` lists those with any.",
    ),
    "event_reset": closed(
        {"cursor": COUNT},
        description="The server's history was reset: reload what you show.",
    ),
    "event_link": ref("link"),
    "event_prefs": closed(
        {"key": {"enum": list(PREF_KEYS)}, "value": BOOL},
        description="A preference changed.",
    ),
    "event_export": closed(
        {"folder": TEXT, "done": COUNT, "total": COUNT},
        {"conversations": COUNT, "files": COUNT, "missing_files": COUNT},
        description="How far an export got; the last one also has the `export` result.",
    ),
    "progress": closed(
        {
            "id": {"type": ["number", "string"], "description": "The id of the call."},
            "done": COUNT,
            "total": COUNT,
        },
        description="How far a long call of this connection got, in bytes or items.",
    ),
}


@dataclass(frozen=True, slots=True)
class ResultSchema:
    """What a method answers: a name for it and its JSON Schema."""

    name: str
    schema: Mapping[str, Any]


EMPTY: Final = ResultSchema("result", {})


#: The results of the methods the socket itself adds (`glosmsd.daemon.ipc`).
BUILTIN_RESULTS: Final[Mapping[str, ResultSchema]] = {
    "hello": ResultSchema(
        "hello",
        closed(
            {
                "protocol": {"type": "integer", "minimum": 1},
                "daemon": {"type": "string", "pattern": "^glosmsd/"},
                "capabilities": {**list_of(TEXT), "uniqueItems": True},
                "max_line": {**ID, "description": "The longest line accepted, in bytes."},
                "queue": {**ID, "description": "Outgoing lines kept for a slow reader."},
                "queue_bytes": {
                    **ID,
                    "description": "Outgoing bytes kept for a slow reader: past them a reply "
                    "waits and an event disconnects the reader.",
                },
                "max_batch": {**ID, "description": "The most calls one batch may hold."},
                "max_connections": {
                    **ID,
                    "description": "Socket connections served at once (the longest idle "
                    "one is closed for a newcomer).",
                },
                "reply_bytes": {
                    **ID,
                    "description": "A batch's replies past these bytes: its other calls are "
                    "not run (-32008).",
                },
                "methods": {**list_of(TEXT), "uniqueItems": True},
            },
            {"server": {**TEXT, "description": "The server the daemon connects to."}},
        ),
    ),
    "subscribe": ResultSchema(
        "subscription",
        closed(
            {
                "subscribed": {"const": True},
                "last_id": {**COUNT, "description": "The newest event id now."},
                "replayed": {**COUNT, "description": "Events after `since` that follow."},
                "gap": {**BOOL, "description": "Events were lost: reload what you show."},
            }
        ),
    ),
    "unsubscribe": ResultSchema("subscription", closed({"subscribed": {"const": False}})),
    "daemon.quit": ResultSchema("quitting", closed({"quitting": {"const": True}})),
    "rpc.discover": ResultSchema(
        "openrpc",
        {
            "type": "object",
            "description": "This document.",
            "properties": {
                "openrpc": TEXT,
                "info": {"type": "object"},
                "methods": list_of({"type": "object"}),
                "components": {"type": "object"},
            },
            "required": ["openrpc", "info", "methods"],
        },
    ),
}

#: What the socket sends unasked: notification name, summary, and the schema of its params.
NOTIFICATIONS: Final[tuple[tuple[str, str, Mapping[str, Any]], ...]] = (
    ("event", "A change, after `subscribe`: replayed ones first, then live.", ref("event")),
    (
        "progress",
        "How far a long call got, after `hello` with `progress: true`.",
        ref("progress"),
    ),
    (
        "window.show",
        "To the SMS window's pages only: show this conversation (null: the list), because "
        "`window.open` asked for it while the window was open.",
        closed({"conversation": {"type": ["integer", "null"], "minimum": 1}}),
    ),
)
