"""The daemon's API: every method, its params described once, bound to the service.

Each entry names a use case of the service layer (`glosmsd.daemon.service.Service`), or of
the desktop (`on="desktop"`: opening the SMS window, calling, opening a link, bound to what
the entry point gives `build_table`), the JSON Schema of its params and the JSON Schema of
its result. Both transports serve this one table: the Unix socket and the SMS window's
WebSocket. The same table validates calls on
the socket, answers `rpc.discover`, and generates `ipc/openrpc.json` (`python -m
glosmsd.daemon.api`), so the spec, the schema and the code cannot drift apart. Result schemas
only describe: the tests hold every real reply to them, the daemon never checks them.

This module must never do I/O or hold state: it only describes and binds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from glosmsd import __version__
from glosmsd.core import rpc, rules
from glosmsd.core.errors import Unsupported
from glosmsd.core.protocol import State
from glosmsd.daemon import service

#: Every integer param is at most this, far below SQLite's 2^63 - 1 (ids of 1e20 and 2^70
#: overflowed there and came back as -32603).
MAX_INT: Final = rpc.MAX_SAFE_INT
#: A path or data: URI in `send`'s `files`: the SMS window's WebSocket frames
#: (glosmsd.desktop.window.server.MAX_FRAME) carry files as data: URIs up to this; on the
#: socket a line's limit (1 MiB) comes first.
MAX_FILE_ARG: Final = 64 * 1024 * 1024
#: `attach_check`'s head: base64 of 65,537 bytes (glosmsd.daemon.attachcheck.HEAD_BYTES).
ATTACH_HEAD_CHARS: Final = 87_384
CONV: Final[Mapping[str, Any]] = {
    "type": ["integer", "string"],
    "minimum": 1,
    "maximum": MAX_INT,
    "minLength": 1,
    "maxLength": 200,
    "description": "A conversation id (from `conversations`), a phone number, or a contact name.",
}
LIMIT: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 1, "maximum": 500}
MSG_ID: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
COUNT_PARAM: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
PREF_KEY: Final[Mapping[str, Any]] = {"type": "string", "maxLength": 64}

# ------------------------------------------------------------------ result shapes
#
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


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _or_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"oneOf": [dict(schema), {"type": "null"}]}


def _list(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}


def _closed(
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
    "message": _closed(
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
                **_or_null(_ref("sender")),
                "description": "Set on an outgoing message another sharer of the number sent.",
            },
            "files": _list(_ref("attachment")),
        },
        description="One SMS or MMS.",
    ),
    "attachment": _closed(
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
    "sender": _closed(
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
    "conversation": _closed(
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
    "contact": _closed(
        {"id": {"type": "integer"}, "name": TEXT, "numbers": _list(_ref("contact_number"))},
        description="A contact of the company directory.",
    ),
    "contact_number": _closed({"label": TEXT, "number": TEXT}),
    "link": _closed(
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
            "mms_types": _list(TEXT),
            "pbx_version": TEXT,
        },
    },
    "draft": _closed(
        {
            "conversation_id": ID,
            "text": {**TEXT, "description": "Empty when there is no draft."},
            "at": {"type": ["number", "null"], "description": "When it was last typed."},
        },
        description="What the user typed in a conversation and has not sent (kept by the "
        "daemon, on this device only).",
    ),
    "prefs": _closed(
        dict.fromkeys(PREF_KEYS, BOOL),
        description="Every preference with its value.",
    ),
    "count": _closed(
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
                "then": {"properties": {"data": _ref(f"event_{kind}")}},
            }
            for kind in EVENT_KINDS
        ],
    },
    "event_message": _closed(
        {"message": _ref("message")},
        description="A message arrived, or was sent from any device of this extension or by "
        "a sharer of the number.",
    ),
    "event_message_state": _closed(
        {
            "id": ID,
            "conversation_id": ID,
            "state": {"enum": list(MESSAGE_STATES)},
            "reason": TEXT_OR_NULL,
        },
        description="A message's state changed.",
    ),
    "event_read": _closed(
        {
            "conversation_id": ID,
            "up_to": {**COUNT, "description": "Messages up to this `server_id` are read."},
        },
        description="A conversation's read mark moved.",
    ),
    "event_deleted": _closed(
        {"conversation_id": ID, "message_ids": _list(ID)},
        {"conversation": {"const": True, "description": "The whole conversation went."}},
        description="Messages, or a whole conversation, were deleted.",
    ),
    "event_unread": _closed(
        {
            "total": COUNT,
            "conversations": _list(_closed({"id": ID, "count": ID})),
        },
        description="The unread count changed; `conversations` lists those with any.",
    ),
    "event_reset": _closed(
        {"cursor": COUNT},
        description="The server's history was reset: reload what you show.",
    ),
    "event_link": _ref("link"),
    "event_prefs": _closed(
        {"key": {"enum": list(PREF_KEYS)}, "value": BOOL},
        description="A preference changed.",
    ),
    "event_export": _closed(
        {"folder": TEXT, "done": COUNT, "total": COUNT},
        {"conversations": COUNT, "files": COUNT, "missing_files": COUNT},
        description="How far an export got; the last one also has the `export` result.",
    ),
    "progress": _closed(
        {
            "id": {"type": ["number", "string"], "description": "The id of the call."},
            "done": COUNT,
            "total": COUNT,
        },
        description="How far a long call of this connection got, in bytes or items.",
    ),
}


@dataclass(frozen=True, slots=True)
class Result:
    """What a method answers: a name for it and its JSON Schema."""

    name: str
    schema: Mapping[str, Any]


EMPTY: Final = Result("result", {})


@dataclass(frozen=True, slots=True)
class Spec:
    """One method: its name, the attribute it calls (of the service, or `on` the desktop),
    params, a summary and what it answers."""

    name: str
    attr: str
    params: tuple[rpc.Param, ...]
    summary: str
    result: Result = EMPTY
    on: str = "service"


P = rpc.Param

SPECS: Final[tuple[Spec, ...]] = (
    Spec(
        "status",
        "status",
        (),
        "Link state, account, own SMS number, unread count, settings.",
        Result(
            "status",
            _closed(
                {
                    "version": {**TEXT, "description": "The daemon's version."},
                    "link": _ref("link"),
                    "extension": _closed({"ext": TEXT_OR_NULL, "name": TEXT_OR_NULL}),
                    "number": {**TEXT_OR_NULL, "description": "The own SMS number, if any."},
                    "shared_with": _list(_ref("sharer")),
                    "sms_enabled": BOOL,
                    "unread": COUNT,
                    "outbox": {**COUNT, "description": "Sends waiting for the server."},
                    "skipped_events": {
                        **COUNT,
                        "description": "Events from the server that could not be stored and "
                        "were skipped, so that the rest could be (the daemon's log names each).",
                    },
                    "settings": _ref("settings"),
                }
            ),
        ),
    ),
    Spec(
        "number",
        "number",
        (),
        "The own SMS number (or why there is none) and who else shares it.",
        Result(
            "number",
            _closed(
                {
                    "number": TEXT_OR_NULL,
                    "shared": BOOL,
                    "shared_with": _list(_ref("sharer")),
                    "message": {**TEXT_OR_NULL, "description": "Why there is no number."},
                }
            ),
        ),
    ),
    Spec(
        "conversations",
        "conversations",
        (P("limit", LIMIT, False), P("offset", COUNT_PARAM, False)),
        "Conversations, most recent activity first, with unread counts.",
        Result("conversations", _list(_ref("conversation"))),
    ),
    Spec(
        "messages",
        "messages",
        (
            P("conversation", CONV),
            P("before", {**MSG_ID, "type": ["integer", "null"]}, False, "Page: older than id."),
            P("limit", LIMIT, False),
        ),
        "Messages of one conversation, newest first.",
        Result(
            "page",
            _closed({"conversation": _ref("conversation"), "messages": _list(_ref("message"))}),
        ),
    ),
    Spec(
        "send",
        "send",
        (
            P(
                "to",
                {"type": "string", "minLength": 1, "maxLength": 200},
                True,
                "A phone number or a contact name.",
            ),
            P("text", {"type": "string", "maxLength": 10000}, False),
            P(
                "files",
                {
                    "type": "array",
                    "maxItems": 50,
                    "items": {"type": "string", "maxLength": MAX_FILE_ARG},
                },
                False,
                "File paths, or data: URIs (data:image/png;base64,...).",
            ),
            P(
                "client_id",
                {"type": "string", "minLength": 1, "maxLength": 64},
                False,
                "Your idempotency key: the same id again returns the same message.",
            ),
            P(
                "pick",
                {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                False,
                "Which number of a contact with several (1-based, as listed in the error).",
            ),
            P(
                "drop_excess",
                BOOL,
                False,
                "Files past the MMS limits (10 files, 500 KB) are left out and listed in "
                "`dropped` (true, the default: what the SMS window and the popup do), or the "
                "whole send is refused with `limit-exceeded` naming them (false: the CLI).",
            ),
        ),
        "Send an SMS or MMS; it is stored before the reply and delivered exactly once.",
        Result(
            "accepted",
            _closed(
                {
                    "message": _ref("message"),
                    "dropped": {
                        **_list(_closed({"name": TEXT, "reason": TEXT})),
                        "description": "Files left out, and why.",
                    },
                    "notice": {**TEXT_OR_NULL, "description": "What was done to the files."},
                }
            ),
        ),
    ),
    Spec(
        "sent",
        "sent",
        (
            P(
                "client_id",
                {"type": "string", "minLength": 1, "maxLength": 64},
                True,
                "The client_id a send was given.",
            ),
        ),
        "The message a send with this client_id stored, or null if none was: ask it after "
        "the connection was lost during a send, to know whether the message was queued.",
        Result("sent", _closed({"message": _or_null(_ref("message"))})),
    ),
    Spec(
        "resend",
        "resend",
        (P("id", MSG_ID),),
        "Send a failed message again.",
        Result("resent", _closed({"message": _or_null(_ref("message"))})),
    ),
    Spec(
        "mark_unread",
        "mark_unread",
        (P("conversation", CONV),),
        "Mark a conversation as unread on this desktop (its newest incoming message); "
        "opening or reading it anywhere marks it read again.",
        Result(
            "marked",
            _closed(
                {
                    "marked": {**COUNT, "description": "1: the conversation was marked."},
                    "unread": {**COUNT, "description": "Unread messages now."},
                }
            ),
        ),
    ),
    Spec(
        "draft_get",
        "draft_get",
        (P("conversation", CONV),),
        "The draft of a conversation (empty text when none).",
        Result("draft", _ref("draft")),
    ),
    Spec(
        "draft_set",
        "draft_set",
        (
            P("conversation", CONV),
            P("text", {"type": "string", "maxLength": 10000}, True, "Empty: remove the draft."),
        ),
        "Keep what the user typed in a conversation until it is sent (this device only).",
        Result("draft", _ref("draft")),
    ),
    Spec(
        "drafts",
        "drafts",
        (),
        "Every draft, the most recently typed first.",
        Result("drafts", _list(_ref("draft"))),
    ),
    Spec(
        "delete_message",
        "delete_message",
        (P("id", MSG_ID),),
        "Delete one message.",
        Result("deleted", _closed({"deleted": {**ID, "description": "The message id."}})),
    ),
    Spec(
        "delete_conversation",
        "delete_conversation",
        (P("conversation", CONV),),
        "Delete a conversation (on every device of this extension).",
        Result("deleted", _closed({"deleted": {**ID, "description": "The conversation id."}})),
    ),
    Spec(
        "mark_read",
        "mark_read",
        (
            P(
                "conversation",
                {**CONV, "type": ["integer", "string", "null"]},
                False,
                "Omit or null: mark all conversations read.",
            ),
        ),
        "Mark one conversation, or all, as read (synced). A contact's name marks every "
        "conversation with that contact (one per number).",
        Result(
            "marked",
            _closed(
                {
                    "marked": {**COUNT, "description": "Conversations that had unread ones."},
                    "unread": {**COUNT, "description": "Unread messages left."},
                    "conversations": {
                        **_list(_closed({"id": ID, "title": TEXT, "remote": TEXT})),
                        "description": "The conversations marked: those named, or (marking "
                        "all) those that had unread messages.",
                    },
                }
            ),
        ),
    ),
    Spec(
        "search",
        "search",
        (P("query", {"type": "string", "maxLength": 1000}), P("limit", LIMIT, False)),
        "Search contacts, conversations and message text; any input is safe.",
        Result(
            "found",
            _closed(
                {
                    "contacts": _list(_ref("contact")),
                    "conversations": _list(_ref("conversation")),
                    "messages": _list(_ref("message")),
                }
            ),
        ),
    ),
    Spec(
        "contacts",
        "contacts",
        (P("query", {"type": "string", "maxLength": 200}), P("limit", LIMIT, False)),
        "Company contacts by name or number, with all their numbers.",
        Result("contacts", _list(_ref("contact"))),
    ),
    Spec(
        "download",
        "download",
        (
            P("id", MSG_ID),
            P(
                "file",
                {**COUNT_PARAM, "type": ["integer", "null"]},
                False,
                "Index of the file in the message; all when omitted.",
            ),
        ),
        "Download a message's files into the data dir (large ones are not automatic).",
        Result(
            "downloaded",
            _closed(
                {
                    "files": _list(
                        _closed(
                            {
                                "name": TEXT,
                                "path": TEXT_OR_NULL,
                                "state": {"enum": list(FILE_STATES)},
                                "size": {"type": ["integer", "null"], "minimum": 0},
                            }
                        )
                    )
                }
            ),
        ),
    ),
    Spec(
        "export",
        "export",
        (P("dir", {"type": "string", "minLength": 1, "maxLength": 4096}),),
        "Export the history into a new SMS folder under dir.",
        Result(
            "exported",
            _closed(
                {
                    "folder": {**TEXT, "description": "The folder made."},
                    "conversations": COUNT,
                    "files": COUNT,
                    "missing_files": {**COUNT, "description": "Files that could not be fetched."},
                }
            ),
        ),
    ),
    Spec(
        "prefs_get",
        "prefs_get",
        (P("key", {**PREF_KEY, "type": ["string", "null"]}, False),),
        "Preferences (all, or one key).",
        Result(
            "prefs",
            {
                "description": "All preferences, or the value of `key`.",
                "oneOf": [_ref("prefs"), BOOL],
            },
        ),
    ),
    Spec(
        "prefs_set",
        "prefs_set",
        (P("key", PREF_KEY), P("value", {})),
        "Change a preference.",
        Result("prefs", _ref("prefs")),
    ),
    Spec(
        "emoji_recent",
        "emoji_recent",
        (P("limit", LIMIT, False),),
        "Recently used emoji.",
        Result("emoji", {**_list(TEXT), "description": "Most recent first."}),
    ),
    Spec(
        "emoji_used",
        "emoji_used",
        (
            P(
                "emoji",
                {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 32}},
            ),
        ),
        "Remember emoji the user just used.",
        Result("emoji", {**_list(TEXT), "description": "The 20 most recent, newest first."}),
    ),
    Spec(
        "emoji_catalog",
        "emoji_catalog",
        (),
        "Every emoji for a picker: Unicode's emoji groups in order, names, the Emoji "
        "version that added each, and the five skin-toned forms of those that take one.",
        Result(
            "catalog",
            _closed(
                {
                    "unicode": {**TEXT, "description": "The UTS #51 data's version."},
                    "tones": {
                        **_list(TEXT),
                        "description": "The skin tone names, lightest first; `tones` of an "
                        "emoji are in this order.",
                    },
                    "groups": _list(
                        _closed(
                            {
                                "name": TEXT,
                                "emoji": _list(
                                    _closed(
                                        {
                                            "emoji": TEXT,
                                            "name": {**TEXT, "description": "CLDR short name."},
                                            "version": {
                                                **TEXT,
                                                "description": "Emoji version, e.g. 13.0.",
                                            },
                                        },
                                        {
                                            "tones": {
                                                **_list(TEXT),
                                                "minItems": 5,
                                                "maxItems": 5,
                                            }
                                        },
                                    )
                                ),
                            }
                        )
                    ),
                }
            ),
        ),
    ),
    Spec(
        "attach_check",
        "attach_check",
        (
            P(
                "files",
                {
                    "type": "array",
                    "maxItems": 50,
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "maxLength": 1000},
                            "size": COUNT_PARAM,
                            "head": {
                                "type": "string",
                                "maxLength": ATTACH_HEAD_CHARS,
                                "description": "The file's first 65,537 bytes (all of a "
                                "smaller file), base64.",
                            },
                        },
                        "required": ["name", "size", "head"],
                        "additionalProperties": False,
                    },
                },
                True,
                "The files attached so far, in the user's order.",
            ),
        ),
        "Which attached files a message keeps (the excess is discarded when attached), "
        "each file's type from its content and what it takes of the byte budget (JPEG "
        "and PNG are fitted when sent); `bytes` is what `count` takes.",
        Result(
            "verdict",
            _closed(
                {
                    "files": _list(
                        _closed(
                            {
                                "mime": TEXT_OR_NULL,
                                "budget": {**COUNT, "description": "Bytes it counts for."},
                                "kept": BOOL,
                                "reason": {**TEXT_OR_NULL, "description": "Why not kept."},
                            }
                        )
                    ),
                    "bytes": {**COUNT, "description": "The kept files' budget."},
                    "message": {
                        **TEXT_OR_NULL,
                        "description": "What to tell the user: 'Maximum size of attached "
                        "files for MMS reached.' when files were discarded for the limits.",
                    },
                }
            ),
        ),
    ),
    Spec(
        "count",
        "count",
        (
            P("text", {"type": "string", "maxLength": 100000}),
            P("files", COUNT_PARAM, False),
            P("bytes", COUNT_PARAM, False),
        ),
        "The character/segment counter for a text (and files), with the server's limits.",
        Result("count", _ref("count")),
    ),
)

#: What the desktop does for the SMS window (and any client): `on="desktop"`, bound to the
#: object the entry point gives `build_table` (`glosmsd.desktop.window.actions`).
DESKTOP_SPECS: Final[tuple[Spec, ...]] = (
    Spec(
        "window.open",
        "window_open",
        (
            P(
                "conversation",
                {**CONV, "type": ["integer", "string", "null"]},
                False,
                "The conversation to show; omit or null for the list.",
            ),
            P(
                "launch",
                BOOL,
                False,
                "false: only the one-time URL (`glosms open --url`); nothing is shown.",
            ),
        ),
        "A one-time URL of the SMS window (valid 60 s, once), and whether to launch a "
        "window or bring the open one to the front (it is told to show the conversation).",
        Result(
            "opening",
            _closed(
                {
                    "url": {**TEXT, "description": "http://127.0.0.1:PORT/?token=...#/c/ID"},
                    "action": {
                        "enum": ["launch", "focus", "none"],
                        "description": "launch: no window is open; focus: one is (or is "
                        "starting), and was told to show the conversation; none: launch false.",
                    },
                    "conversation_id": {"type": ["integer", "null"], "minimum": 1},
                    "command": {
                        "type": ["array", "null"],
                        "items": TEXT,
                        "description": "window_command from the config, if set ({url} "
                        "marks where the URL goes).",
                    },
                    "profile": {
                        **TEXT,
                        "description": "The browser profile folder for an app window.",
                    },
                }
            ),
        ),
        on="desktop",
    ),
    Spec(
        "call",
        "call",
        (P("conversation", CONV),),
        "Call the conversation's number: call_command from the config, else the "
        "system's tel: handler.",
        Result(
            "calling",
            _closed({"number": TEXT, "via": {"enum": ["call_command", "tel"]}}),
        ),
        on="desktop",
    ),
    Spec(
        "open_link",
        "open_link",
        (P("url", {"type": "string", "minLength": 1, "maxLength": 4096}),),
        "Open an http(s) link in the user's browser (an app window cannot).",
        Result("opened", _closed({"opened": {"const": True}, "url": TEXT})),
        on="desktop",
    ),
)

#: The results of the methods the socket itself adds (`glosmsd.daemon.ipc`).
BUILTIN_RESULTS: Final[Mapping[str, Result]] = {
    "hello": Result(
        "hello",
        _closed(
            {
                "protocol": {"type": "integer", "minimum": 1},
                "daemon": {"type": "string", "pattern": "^glosmsd/"},
                "capabilities": {**_list(TEXT), "uniqueItems": True},
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
                "methods": {**_list(TEXT), "uniqueItems": True},
            },
            {"server": {**TEXT, "description": "The server the daemon connects to."}},
        ),
    ),
    "subscribe": Result(
        "subscription",
        _closed(
            {
                "subscribed": {"const": True},
                "last_id": {**COUNT, "description": "The newest event id now."},
                "replayed": {**COUNT, "description": "Events after `since` that follow."},
                "gap": {**BOOL, "description": "Events were lost: reload what you show."},
            }
        ),
    ),
    "unsubscribe": Result("subscription", _closed({"subscribed": {"const": False}})),
    "daemon.quit": Result("quitting", _closed({"quitting": {"const": True}})),
    "rpc.discover": Result(
        "openrpc",
        {
            "type": "object",
            "description": "This document.",
            "properties": {
                "openrpc": TEXT,
                "info": {"type": "object"},
                "methods": _list({"type": "object"}),
                "components": {"type": "object"},
            },
            "required": ["openrpc", "info", "methods"],
        },
    ),
}

#: What the socket sends unasked: notification name, summary, and the schema of its params.
NOTIFICATIONS: Final[tuple[tuple[str, str, Mapping[str, Any]], ...]] = (
    ("event", "A change, after `subscribe`: replayed ones first, then live.", _ref("event")),
    (
        "progress",
        "How far a long call got, after `hello` with `progress: true`.",
        _ref("progress"),
    ),
    (
        "window.show",
        "To the SMS window's pages only: show this conversation (null: the list), because "
        "`window.open` asked for it while the window was open.",
        _closed({"conversation": {"type": ["integer", "null"], "minimum": 1}}),
    ),
)


def build_table(service: object | None, desktop: object | None = None) -> rpc.MethodTable:
    """The method table bound to `service` (None: handlers refuse, for docs generation)
    and to `desktop` for the desktop's methods (None: they say the window is not here)."""
    table = rpc.MethodTable()
    for spec in (*SPECS, *DESKTOP_SPECS):
        owner = desktop if spec.on == "desktop" else service
        handler: Callable[..., Any]
        if owner is not None:
            handler = getattr(owner, spec.attr)
        elif spec.on == "desktop" and service is not None:
            handler = _no_desktop(spec.name)
        else:
            handler = _unbound(spec.name)
        table.add(rpc.Method(spec.name, handler, spec.params, spec.summary))
    table.add(
        rpc.Method(
            "rpc.discover",
            lambda: openrpc(table),
            (),
            "This API as an OpenRPC document.",
        )
    )
    return table


def _no_desktop(name: str) -> Callable[..., Any]:
    def refuse(**_: Any) -> Any:
        raise Unsupported(
            f"{name}: this glosmsd runs without its desktop side (the SMS window); "
            "start it with `glosmsd`."
        )

    return refuse


def _unbound(name: str) -> Callable[..., Any]:
    def refuse(**_: Any) -> Any:
        raise RuntimeError(f"{name}: no service bound")

    return refuse


def openrpc(table: rpc.MethodTable) -> dict[str, Any]:
    """An OpenRPC 1.2 document for the table, with the shared result shapes as
    `components/schemas` and the notifications as `x-notifications`."""
    results = {**{s.name: s.result for s in (*SPECS, *DESKTOP_SPECS)}, **BUILTIN_RESULTS}
    methods = [
        {
            "name": m.name,
            "summary": m.summary,
            "paramStructure": "either",
            "params": [
                {
                    "name": p.name,
                    "required": p.required,
                    **({"description": p.description} if p.description else {}),
                    "schema": dict(p.schema),
                }
                for p in m.params
            ],
            "result": _result(m, results),
        }
        for m in table
    ]
    return {
        "openrpc": "1.2.6",
        "info": {
            "title": "glosmsd local API",
            "version": __version__,
            "description": "JSON-RPC 2.0 over two transports with one method table: "
            "newline-delimited on the daemon's Unix socket, and one message per text frame "
            "on the SMS window's WebSocket (http://127.0.0.1:PORT/rpc, for the page the "
            "daemon serves there). See ipc/SPEC.md.",
        },
        "servers": [
            {
                "name": "unix-socket",
                "url": "unix:{socket}",
                "summary": "Newline-delimited JSON-RPC 2.0; only its user can connect.",
                "variables": {
                    "socket": {
                        "default": "$XDG_RUNTIME_DIR/glosmsd/socket",
                        "description": "GLOSMSD_SOCKET moves it (see ipc/SPEC.md).",
                    }
                },
            },
            {
                "name": "window-websocket",
                "url": "ws://127.0.0.1:{port}/rpc",
                "summary": "One JSON value per text frame; needs the SMS window's session "
                "cookie and its Origin (see ipc/SPEC.md, The SMS window's WebSocket).",
                "variables": {
                    "port": {
                        "default": "0",
                        "description": "window_port from the config, or the free port the "
                        "daemon took (the URL `window.open` returns says which).",
                    }
                },
            },
        ],
        "methods": methods,
        "components": {"schemas": {name: dict(schema) for name, schema in SCHEMAS.items()}},
        "x-notifications": [
            {
                "name": name,
                "summary": summary,
                "params": {"name": name, "schema": dict(schema)},
            }
            for name, summary, schema in NOTIFICATIONS
        ],
    }


def _result(method: rpc.Method, results: Mapping[str, Result]) -> dict[str, Any]:
    if method.result:
        return {"name": "result", "schema": dict(method.result)}
    found = results.get(method.name, EMPTY)
    return {"name": found.name, "schema": dict(found.schema)}


def full_table() -> rpc.MethodTable:
    """The table as the daemon serves it, socket built-ins included, for docs."""
    from pathlib import Path

    from glosmsd.daemon.hub import Hub
    from glosmsd.daemon.ipc import IpcServer

    async def no_replay(_a: int, _b: int) -> tuple[list[Any], bool]:
        return [], False

    async def no_last() -> int:
        return 0

    table = build_table(None)
    IpcServer(Path("/nonexistent"), table, Hub(), no_replay, no_last)
    return table


def main() -> int:
    json.dump(openrpc(full_table()), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
