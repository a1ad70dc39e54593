"""The daemon's methods: every one, its params described once.

Each `Spec` names a use case of the service layer (`glosmsd.daemon.service.Service`), or
of the desktop (`on="desktop"`: opening the SMS window, calling, opening a link), the JSON
Schema of its params (what the socket checks before anything runs) and the shape of its
result (`glosmsd.daemon.shapes`). `glosmsd.daemon.api` binds them into the one method table
both transports serve.

This module must never do I/O or hold state: it only describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from glosmsd.core import rpc
from glosmsd.daemon.shapes import (
    BOOL,
    COUNT,
    EMPTY,
    FILE_STATES,
    ID,
    TEXT,
    TEXT_OR_NULL,
    ResultSchema,
    closed,
    list_of,
    or_null,
    ref,
)

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


@dataclass(frozen=True, slots=True)
class Spec:
    """One method: its name, the attribute it calls (of the service, or `on` the desktop),
    params, a summary and what it answers."""

    name: str
    attr: str
    params: tuple[rpc.Param, ...]
    summary: str
    result: ResultSchema = EMPTY
    on: str = "service"


P = rpc.Param

SPECS: Final[tuple[Spec, ...]] = (
    Spec(
        "status",
        "status",
        (),
        "Link state, account, own SMS number, unread count, settings.",
        ResultSchema(
            "status",
            closed(
                {
                    "version": {**TEXT, "description": "The daemon's version."},
                    "link": ref("link"),
                    "extension": closed({"ext": TEXT_OR_NULL, "name": TEXT_OR_NULL}),
                    "number": {**TEXT_OR_NULL, "description": "The own SMS number, if any."},
                    "shared_with": list_of(ref("sharer")),
                    "sms_enabled": BOOL,
                    "unread": COUNT,
                    "outbox": {**COUNT, "description": "Sends waiting for the server."},
                    "skipped_events": {
                        **COUNT,
                        "description": "Events from the server that could not be stored and "
                        "were skipped, so that the rest could be (the daemon's log names each).",
                    },
                    "settings": ref("settings"),
                }
            ),
        ),
    ),
    Spec(
        "number",
        "number",
        (),
        "The own SMS number (or why there is none) and who else shares it.",
        ResultSchema(
            "number",
            closed(
                {
                    "number": TEXT_OR_NULL,
                    "shared": BOOL,
                    "shared_with": list_of(ref("sharer")),
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
        ResultSchema("conversations", list_of(ref("conversation"))),
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
        ResultSchema(
            "page",
            closed({"conversation": ref("conversation"), "messages": list_of(ref("message"))}),
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
        ResultSchema(
            "accepted",
            closed(
                {
                    "message": ref("message"),
                    "dropped": {
                        **list_of(closed({"name": TEXT, "reason": TEXT})),
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
        ResultSchema("sent", closed({"message": or_null(ref("message"))})),
    ),
    Spec(
        "resend",
        "resend",
        (P("id", MSG_ID),),
        "Send a failed message again, once: asked again for the same message, the answer is "
        "the message it already went again as (its `resent_as`), and nothing more is sent.",
        ResultSchema("resent", closed({"message": or_null(ref("message"))})),
    ),
    Spec(
        "mark_unread",
        "mark_unread",
        (P("conversation", CONV),),
        "Mark a conversation as unread on this desktop (its newest incoming message); "
        "opening or reading it anywhere marks it read again.",
        ResultSchema(
            "marked",
            closed(
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
        ResultSchema("draft", ref("draft")),
    ),
    Spec(
        "draft_set",
        "draft_set",
        (
            P("conversation", CONV),
            P("text", {"type": "string", "maxLength": 10000}, True, "Empty: remove the draft."),
        ),
        "Keep what the user typed in a conversation until it is sent (this device only).",
        ResultSchema("draft", ref("draft")),
    ),
    Spec(
        "drafts",
        "drafts",
        (),
        "Every draft, the most recently typed first.",
        ResultSchema("drafts", list_of(ref("draft"))),
    ),
    Spec(
        "delete_message",
        "delete_message",
        (P("id", MSG_ID),),
        "Delete one message.",
        ResultSchema("deleted", closed({"deleted": {**ID, "description": "The message id."}})),
    ),
    Spec(
        "delete_conversation",
        "delete_conversation",
        (P("conversation", CONV),),
        "Delete a conversation (on every device of this extension).",
        ResultSchema("deleted", closed({"deleted": {**ID, "description": "The conversation id."}})),
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
        ResultSchema(
            "marked",
            closed(
                {
                    "marked": {**COUNT, "description": "Conversations that had unread ones."},
                    "unread": {**COUNT, "description": "Unread messages left."},
                    "conversations": {
                        **list_of(closed({"id": ID, "title": TEXT, "remote": TEXT})),
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
        ResultSchema(
            "found",
            closed(
                {
                    "contacts": list_of(ref("contact")),
                    "conversations": list_of(ref("conversation")),
                    "messages": list_of(ref("message")),
                }
            ),
        ),
    ),
    Spec(
        "contacts",
        "contacts",
        (P("query", {"type": "string", "maxLength": 200}), P("limit", LIMIT, False)),
        "Company contacts by name or number, with all their numbers.",
        ResultSchema("contacts", list_of(ref("contact"))),
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
        ResultSchema(
            "downloaded",
            closed(
                {
                    "files": list_of(
                        closed(
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
        ResultSchema(
            "exported",
            closed(
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
        ResultSchema(
            "prefs",
            {
                "description": "All preferences, or the value of `key`.",
                "oneOf": [ref("prefs"), BOOL],
            },
        ),
    ),
    Spec(
        "prefs_set",
        "prefs_set",
        (P("key", PREF_KEY), P("value", {})),
        "Change a preference.",
        ResultSchema("prefs", ref("prefs")),
    ),
    Spec(
        "emoji_recent",
        "emoji_recent",
        (P("limit", LIMIT, False),),
        "Recently used emoji.",
        ResultSchema("emoji", {**list_of(TEXT), "description": "Most recent first."}),
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
        ResultSchema(
            "emoji", {**list_of(TEXT), "description": "The 20 most recent, newest first."}
        ),
    ),
    Spec(
        "emoji_catalog",
        "emoji_catalog",
        (),
        "Every emoji for a picker: Unicode's emoji groups in order, names, the Emoji "
        "version that added each, and the five skin-toned forms of those that take one.",
        ResultSchema(
            "catalog",
            closed(
                {
                    "unicode": {**TEXT, "description": "The UTS #51 data's version."},
                    "tones": {
                        **list_of(TEXT),
                        "description": "The skin tone names, lightest first; `tones` of an "
                        "emoji are in this order.",
                    },
                    "groups": list_of(
                        closed(
                            {
                                "name": TEXT,
                                "emoji": list_of(
                                    closed(
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
                                                **list_of(TEXT),
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
        ResultSchema(
            "verdict",
            closed(
                {
                    "files": list_of(
                        closed(
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
        ResultSchema("count", ref("count")),
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
        ResultSchema(
            "opening",
            closed(
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
        ResultSchema(
            "calling",
            closed({"number": TEXT, "via": {"enum": ["call_command", "tel"]}}),
        ),
        on="desktop",
    ),
    Spec(
        "open_link",
        "open_link",
        (P("url", {"type": "string", "minLength": 1, "maxLength": 4096}),),
        "Open an http(s) link in the user's browser (an app window cannot).",
        ResultSchema("opened", closed({"opened": {"const": True}, "url": TEXT})),
        on="desktop",
    ),
)
