"""What the server sends, checked and shaped into what the store writes.

A server MESSAGE becomes an `IncomingMessage` in one place, `IncomingMessage.parse`, for
every path that stores one (a catch-up batch, a pushed event, a send's reply): its shape
is checked there (a frame that fails is skipped, never trusted), its files keep only
what the server may say of them, and the "own sender" rule is applied there: a message
the user sent from any of their devices carries no sharer, only a sharer's does.

Pure: no SQL, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeGuard

from glosmsd.daemon.store.rows import STATES, FileRow, MessageRow, Sharer

# One encoder for all: `json.dumps` with options builds a new encoder per call, and this
# runs several times per message in a catch-up.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """The store's JSON text for a value (compact, UTF-8 kept as is)."""
    return _ENCODER.encode(value)


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _valid_file(f: Any) -> bool:
    return (
        isinstance(f, dict)
        and isinstance(f.get("sha256"), str)
        and isinstance(f.get("name", ""), str)
        and opt_str(f.get("mime"))
        and (f.get("size") is None or is_int(f.get("size")))
    )


def valid_message(m: Any) -> TypeGuard[dict[str, Any]]:
    """The shape of a server MESSAGE."""
    if not isinstance(m, dict):
        return False
    files = m.get("files", [])
    sender = m.get("sender")
    return (
        is_int(m.get("id"))
        and isinstance(m.get("number"), str)
        and isinstance(m.get("remote"), str)
        and m.get("direction") in ("in", "out")
        and isinstance(m.get("text"), str)
        and m.get("state") in STATES
        and opt_str(m.get("reason"))
        and opt_str(m.get("client_id"))
        and is_time(m.get("at"))
        and isinstance(files, list)
        and all(_valid_file(f) for f in files)
        and (
            sender is None
            or (
                isinstance(sender, dict)
                and isinstance(sender.get("ext"), str)
                and opt_str(sender.get("name"))
                and opt_str(sender.get("avatar"))
            )
        )
    )


def sharer_from(raw: str | None) -> Sharer | None:
    """The sharer a message row's `sender` column names (None: the user, or incoming)."""
    if not raw:
        return None
    obj = json.loads(raw)
    return Sharer(obj["ext"], obj.get("name") or "", obj.get("avatar"))


def local_files(files: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The message-row view of an outbox file list: whatever is known of each file."""
    out: list[dict[str, Any]] = []
    for f in files:
        path = f.get("path")
        name = f.get("name") or (Path(path).name if isinstance(path, str) else "file")
        out.append(
            {
                "sha256": f.get("sha256"),
                "name": name,
                "mime": f.get("mime"),
                "size": f.get("size"),
                "path": path if isinstance(path, str) else None,
            }
        )
    return out


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A server MESSAGE as the store keeps it.

    `sender` is the sharer's JSON text, or None for the user's own messages and incoming
    ones; `files` are the server's file entries (sha256, name, mime, size).
    """

    server_id: int
    client_id: str | None
    number: str
    remote: str
    direction: str
    text: str
    state: str
    reason: str | None
    at: float
    sender: str | None
    files: tuple[Mapping[str, Any], ...]

    @classmethod
    def parse(cls, msg: Any, own_ext: str | None) -> IncomingMessage | None:
        """The message a server MESSAGE describes; None when it is not one."""
        if not valid_message(msg):
            return None
        sender = msg.get("sender")
        if sender is not None and own_ext is not None and sender.get("ext") == own_ext:
            sender = None  # the user's own message, from any of their devices
        return cls(
            server_id=msg["id"],
            client_id=msg.get("client_id"),
            number=msg["number"],
            remote=msg["remote"],
            direction=msg["direction"],
            text=msg["text"],
            state=msg["state"],
            reason=msg.get("reason"),
            at=float(msg["at"]),
            sender=dumps(sender) if sender else None,
            files=tuple(
                {
                    "sha256": f["sha256"],
                    "name": f.get("name") or "file",
                    "mime": f.get("mime"),
                    "size": f.get("size"),
                }
                for f in msg.get("files") or ()
            ),
        )

    def files_json(self, local_paths: Mapping[str, str] | None = None) -> str:
        """The `files` column: the server's entries, with the local path of each file this
        device sent (from `local_paths`, by sha256) kept."""
        if not local_paths:
            return dumps(list(self.files))
        return dumps(
            [
                {**f, "path": local_paths[f["sha256"]]} if local_paths.get(f["sha256"]) else f
                for f in self.files
            ]
        )

    def values(self, local_id: int, conversation_id: int) -> tuple[Any, ...]:
        """The new row's columns: id, server_id, client_id, conversation_id, direction,
        text, state, reason, at, sender, files."""
        return (
            local_id,
            self.server_id,
            self.client_id,
            conversation_id,
            self.direction,
            self.text,
            self.state,
            self.reason,
            self.at,
            self.sender,
            self.files_json(),
        )

    def row(
        self, local_id: int, conversation_id: int, states: Mapping[str, tuple[str | None, str]]
    ) -> MessageRow:
        """The row a new message is once stored under `local_id`; `states` gives the
        download state of files already known here (by sha256)."""
        return MessageRow(
            id=local_id,
            conversation_id=conversation_id,
            number=self.number,
            remote=self.remote,
            server_id=self.server_id,
            client_id=self.client_id,
            direction=self.direction,
            text=self.text,
            state=self.state,
            reason=self.reason,
            at=self.at,
            sender=sharer_from(self.sender),
            files=tuple(
                FileRow(
                    f["sha256"],
                    f["name"],
                    f["mime"],
                    f["size"],
                    *states.get(f["sha256"], (None, "none")),
                )
                for f in self.files
            ),
        )
