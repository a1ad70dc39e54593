"""The daemon's socket API: every method, its params described once, bound to the service.

Each entry names a use case of the service layer (`glosmsd.service.Service`) and the JSON
Schema of its params. The same table validates calls on the socket, answers
`rpc.discover`, and generates `ipc/openrpc.json` (`python -m glosmsd.api`), so the spec,
the schema and the code cannot drift apart.

This module must never do I/O or hold state: it only describes and binds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from glosmsd import __version__, rpc

CONV: Final[Mapping[str, Any]] = {
    "type": ["integer", "string"],
    "description": "A conversation id (from `conversations`), a phone number, or a contact name.",
}
LIMIT: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 1, "maximum": 500}
MSG_ID: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 1}


@dataclass(frozen=True, slots=True)
class Spec:
    """One socket method: its name, the service attribute it calls, params and a summary."""

    name: str
    attr: str
    params: tuple[rpc.Param, ...]
    summary: str


P = rpc.Param

SPECS: Final[tuple[Spec, ...]] = (
    Spec("status", "status", (), "Link state, account, own SMS number, unread count, settings."),
    Spec(
        "number",
        "number",
        (),
        "The own SMS number (or why there is none) and who else shares it.",
    ),
    Spec(
        "conversations",
        "conversations",
        (P("limit", LIMIT, False), P("offset", {"type": "integer", "minimum": 0}, False)),
        "Conversations, most recent activity first, with unread counts.",
    ),
    Spec(
        "messages",
        "messages",
        (
            P("conversation", CONV),
            P("before", {"type": ["integer", "null"], "minimum": 1}, False, "Page: older than id."),
            P("limit", LIMIT, False),
        ),
        "Messages of one conversation, newest first.",
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
                {"type": "array", "maxItems": 50, "items": {"type": "string"}},
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
                {"type": "integer", "minimum": 1},
                False,
                "Which number of a contact with several (1-based, as listed in the error).",
            ),
        ),
        "Send an SMS or MMS; it is stored before the reply and delivered exactly once.",
    ),
    Spec("resend", "resend", (P("id", MSG_ID),), "Send a failed message again."),
    Spec("delete_message", "delete_message", (P("id", MSG_ID),), "Delete one message."),
    Spec(
        "delete_conversation",
        "delete_conversation",
        (P("conversation", CONV),),
        "Delete a conversation (on every device of this extension).",
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
        "Mark one conversation, or all, as read (synced).",
    ),
    Spec(
        "search",
        "search",
        (P("query", {"type": "string", "maxLength": 1000}), P("limit", LIMIT, False)),
        "Search contacts, conversations and message text; any input is safe.",
    ),
    Spec(
        "contacts",
        "contacts",
        (P("query", {"type": "string", "maxLength": 200}), P("limit", LIMIT, False)),
        "Company contacts by name or number, with all their numbers.",
    ),
    Spec(
        "download",
        "download",
        (
            P("id", MSG_ID),
            P(
                "file",
                {"type": ["integer", "null"], "minimum": 0},
                False,
                "Index of the file in the message; all when omitted.",
            ),
        ),
        "Download a message's files into the data dir (large ones are not automatic).",
    ),
    Spec(
        "export",
        "export",
        (P("dir", {"type": "string", "minLength": 1, "maxLength": 4096}),),
        "Export the history into a new SMS folder under dir.",
    ),
    Spec(
        "prefs_get",
        "prefs_get",
        (P("key", {"type": ["string", "null"]}, False),),
        "Preferences (all, or one key).",
    ),
    Spec(
        "prefs_set",
        "prefs_set",
        (P("key", {"type": "string"}), P("value", {})),
        "Change a preference.",
    ),
    Spec("emoji_recent", "emoji_recent", (P("limit", LIMIT, False),), "Recently used emoji."),
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
    ),
    Spec(
        "count",
        "count",
        (
            P("text", {"type": "string", "maxLength": 100000}),
            P("files", {"type": "integer", "minimum": 0}, False),
            P("bytes", {"type": "integer", "minimum": 0}, False),
        ),
        "The character/segment counter for a text (and files), with the server's limits.",
    ),
)


def build_table(service: object | None) -> rpc.MethodTable:
    """The method table bound to `service` (None: handlers refuse, for docs generation)."""
    table = rpc.MethodTable()
    for spec in SPECS:
        handler: Callable[..., Any] = (
            getattr(service, spec.attr) if service is not None else _unbound(spec.name)
        )
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


def _unbound(name: str) -> Callable[..., Any]:
    def refuse(**_: Any) -> Any:
        raise RuntimeError(f"{name}: no service bound")

    return refuse


def openrpc(table: rpc.MethodTable) -> dict[str, Any]:
    """An OpenRPC 1.2 document for the table."""
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
            "result": {"name": "result", "schema": dict(m.result) or {}},
        }
        for m in table
    ]
    return {
        "openrpc": "1.2.6",
        "info": {
            "title": "glosmsd local socket",
            "version": __version__,
            "description": "Newline-delimited JSON-RPC 2.0 on a Unix socket; see ipc/SPEC.md.",
        },
        "methods": methods,
    }


def full_table() -> rpc.MethodTable:
    """The table as the daemon serves it, socket built-ins included, for docs."""
    from pathlib import Path

    from glosmsd.hub import Hub
    from glosmsd.ipc import IpcServer

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
