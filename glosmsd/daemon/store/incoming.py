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
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeGuard

from glosmsd.core import fastjson
from glosmsd.daemon.store.rows import STATES, FileRow, MessageRow, Sharer

_DIRECTIONS: Final = ("in", "out")
_NO_FILE: Final = (None, "none")


def dumps(value: Any) -> str:
    """The store's JSON text for a value (compact, UTF-8 kept as is); orjson's, as this
    runs once or twice per message in a catch-up (`glosmsd.core.fastjson`)."""
    return fastjson.dumps(value)


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def valid_message(m: Any) -> TypeGuard[dict[str, Any]]:
    """The shape of a server MESSAGE (`IncomingMessage.parse` checks it)."""
    return IncomingMessage.parse(m, None) is not None


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


class IncomingMessage(NamedTuple):
    """A server MESSAGE as the store keeps it.

    `sender` is the sharer's JSON text, or None for the user's own messages and incoming
    ones; `files` are the server's file entries (sha256, name, mime, size).

    A NamedTuple, not a frozen dataclass: a catch-up makes one per message, and a frozen
    dataclass's `__init__` (a `object.__setattr__` per field) took five times as long.
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
    #: `Sharer.to_json()` of the sharer `sender` names (None when it names none).
    sharer: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, msg: Any, own_ext: str | None) -> IncomingMessage | None:
        """The message a server MESSAGE describes; None when it is not one.

        The shape is checked and the fields taken in one flat pass (no helper per field,
        each looked up once): a catch-up parses every message, and the calls and the
        second round of lookups were most of its Python time."""
        if not isinstance(msg, dict):
            return None
        get = msg.get
        mid, number, remote, direction = get("id"), get("number"), get("remote"), get("direction")
        text, state, reason, client_id = get("text"), get("state"), get("reason"), get("client_id")
        at, files, sender = get("at"), get("files", []), get("sender")
        if not (
            isinstance(mid, int)
            and not isinstance(mid, bool)
            and isinstance(number, str)
            and isinstance(remote, str)
            and direction in _DIRECTIONS
            and isinstance(text, str)
            and state in STATES
            and (reason is None or isinstance(reason, str))
            and (client_id is None or isinstance(client_id, str))
            and isinstance(at, int | float)
            and not isinstance(at, bool)
            and math.isfinite(at)
            and isinstance(files, list)
        ):
            return None
        kept: tuple[Mapping[str, Any], ...] = ()
        if files:
            out = []
            for f in files:
                if not isinstance(f, dict):
                    return None
                sha, name = f.get("sha256"), f.get("name", "")
                mime, size = f.get("mime"), f.get("size")
                if not (
                    isinstance(sha, str)
                    and isinstance(name, str)
                    and (mime is None or isinstance(mime, str))
                    and (size is None or (isinstance(size, int) and not isinstance(size, bool)))
                ):
                    return None
                out.append({"sha256": sha, "name": name or "file", "mime": mime, "size": size})
            kept = tuple(out)
        sender_json: str | None = None
        sharer: dict[str, Any] | None = None
        if sender is not None:
            if not isinstance(sender, dict):
                return None
            ext, name, avatar = sender.get("ext"), sender.get("name"), sender.get("avatar")
            if not (
                isinstance(ext, str)
                and (name is None or isinstance(name, str))
                and (avatar is None or isinstance(avatar, str))
            ):
                return None
            if sender and (own_ext is None or ext != own_ext):
                # Not the user's own message (from any of their devices): a sharer's.
                sender_json = dumps(sender)
                sharer = {"ext": ext, "name": name or "", "avatar": avatar}
        return tuple.__new__(
            cls,
            (
                mid,
                client_id,
                number,
                remote,
                direction,
                text,
                state,
                reason,
                float(at),
                sender_json,
                kept,
                sharer,
            ),
        )

    def files_json(self, local_paths: Mapping[str, str] | None = None) -> str:
        """The `files` column: the server's entries, with the local path of each file this
        device sent (from `local_paths`, by sha256) kept."""
        if not self.files:
            return "[]"
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

    def row_json(
        self, local_id: int, conversation_id: int, states: Mapping[str, tuple[str | None, str]]
    ) -> dict[str, Any]:
        """`self.row(...).to_json()`, built directly: a catch-up logs one per message."""
        return {
            "id": local_id,
            "conversation_id": conversation_id,
            "number": self.number,
            "remote": self.remote,
            "server_id": self.server_id,
            "client_id": self.client_id,
            "direction": self.direction,
            "text": self.text,
            "state": self.state,
            "reason": self.reason,
            "at": self.at,
            "sender": dict(self.sharer) if self.sharer is not None else None,
            "files": [
                {
                    "sha256": f["sha256"],
                    "name": f["name"],
                    "mime": f["mime"],
                    "size": f["size"],
                    "path": (st := states.get(f["sha256"], _NO_FILE))[0],
                    "state": st[1],
                }
                for f in self.files
            ]
            if self.files
            else [],
            "resent_as": None,  # a message new here was not resent yet
        }

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
