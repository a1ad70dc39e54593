"""The store's rows: the value objects its reads return and its callers pass around.

Plain frozen values with their JSON form (`to_json`, what the socket shows); they know
nothing of SQL. `STATES` and `FILE_STATES` are the vocabularies a message's state and a
file's download state are spelled in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

STATES: Final = ("sending", "sent", "failed")
FILE_STATES: Final = ("none", "downloading", "done", "failed")


@dataclass(frozen=True, slots=True)
class Sharer:
    """Who of the sharers of a number sent an outgoing message (never the user)."""

    ext: str
    name: str
    avatar: str | None

    def to_json(self) -> dict[str, Any]:
        return {"ext": self.ext, "name": self.name, "avatar": self.avatar}


@dataclass(frozen=True, slots=True)
class FileRow:
    """One file of a message: what the server said, plus where (if anywhere) it is here.

    `state` is the download state: none | downloading | done | failed. An outgoing
    file that was never uploaded has no `sha256` yet but has its local `path`.
    """

    sha256: str | None
    name: str
    mime: str | None
    size: int | None
    path: str | None
    state: str

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "mime": self.mime,
            "size": self.size,
            "path": self.path,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One message as the local API shows it; `id` is the stable local id.

    `sender` is set only on a message a sharer of the number sent: the user's own
    messages (from any of their devices) and incoming ones have none. `resent_as` is the
    local id a failed message went again as (its own id while one that never reached the
    server is on its way again); a failed message with one offers no Resend.
    """

    id: int
    conversation_id: int
    number: str
    remote: str
    server_id: int | None
    client_id: str | None
    direction: str
    text: str
    state: str
    reason: str | None
    at: float
    sender: Sharer | None
    files: tuple[FileRow, ...]
    resent_as: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "number": self.number,
            "remote": self.remote,
            "server_id": self.server_id,
            "client_id": self.client_id,
            "direction": self.direction,
            "text": self.text,
            "state": self.state,
            "reason": self.reason,
            "at": self.at,
            "sender": self.sender.to_json() if self.sender else None,
            "files": [f.to_json() for f in self.files],
            "resent_as": self.resent_as,
        }


class ConversationRow(NamedTuple):
    """One conversation: own number and remote, display name, activity, unread, preview.

    `name` is the contact name of `remote` when the contacts cache knows it. `last_*`
    describe the most recent visible message (None when there is none).

    A named tuple, not a frozen dataclass like the other rows: the list makes one per
    conversation straight from SQLite's tuples (`tuple.__new__`, no `__init__`), and a
    frozen dataclass's `__init__` (one `object.__setattr__` a field) was as long as the
    whole query at 2,000 conversations. Equally immutable; fields in this order are the
    list query's columns.
    """

    id: int
    number: str
    remote: str
    name: str | None
    last_at: float | None
    unread: int
    read_up_to: int
    deleted_up_to: int
    last_message_id: int | None
    last_text: str | None
    last_direction: str | None

    @property
    def title(self) -> str:
        return self.name or self.remote

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "remote": self.remote,
            "name": self.name,
            "title": self.title,
            "last_at": self.last_at,
            "unread": self.unread,
            "last_message_id": self.last_message_id,
            "last_text": self.last_text,
            "last_direction": self.last_direction,
        }


@dataclass(frozen=True, slots=True)
class UnreadSummary:
    """Total unread and the conversations that have any, most recent first."""

    total: int
    per_conversation: tuple[tuple[ConversationRow, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "conversations": [
                {"id": c.id, "title": c.title, "count": n} for c, n in self.per_conversation
            ],
        }


@dataclass(frozen=True, slots=True)
class ContactNumber:
    label: str
    number: str

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "number": self.number}


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A contact from the server's directory, as last looked up."""

    id: int
    name: str
    numbers: tuple[ContactNumber, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "numbers": [n.to_json() for n in self.numbers]}


@dataclass(frozen=True, slots=True)
class SearchResult:
    contacts: tuple[ContactRow, ...]
    conversations: tuple[ConversationRow, ...]
    messages: tuple[MessageRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "contacts": [c.to_json() for c in self.contacts],
            "conversations": [c.to_json() for c in self.conversations],
            "messages": [m.to_json() for m in self.messages],
        }


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An accepted send waiting for the server.

    `order` is the creation order; `files` is the outbox's own JSON list (entries with
    any of sha256, name, mime, size, path), stored and returned as given.
    """

    client_id: str
    order: int
    message_id: int
    number: str
    remote: str
    text: str
    files: tuple[Mapping[str, Any], ...]
    attempts: int
    next_at: float
    last_error: str | None
    created_at: float

    @classmethod
    def accepted(
        cls,
        client_id: str,
        row: MessageRow,
        number: str,
        remote: str,
        text: str,
        *,
        files: Sequence[Mapping[str, Any]] = (),
    ) -> OutboxItem:
        """The outbox row `Store.accept_send` just wrote for its message `row`: the first
        attempt needs no read back."""
        return cls(
            client_id=client_id,
            order=row.id,
            message_id=row.id,
            number=number,
            remote=remote,
            text=text,
            files=tuple(dict(f) for f in files),
            attempts=0,
            next_at=row.at,
            last_error=None,
            created_at=row.at,
        )


@dataclass(frozen=True, slots=True)
class ReadMark:
    """What to tell the server to mark a conversation read: `read(number, remote, up_to)`."""

    conversation_id: int
    number: str
    remote: str
    up_to: int


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """What to tell the server to delete a conversation: `delete_conversation(number, remote,
    up_to)`. `up_to` is the newest server id this device had; None when it had none (then
    there is nothing on the server the user has seen, so nothing to tell)."""

    conversation_id: int
    number: str
    remote: str
    up_to: int | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """What the user had typed in a conversation and not sent, and when they last typed."""

    conversation_id: int
    text: str
    at: float | None

    def to_json(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation_id, "text": self.text, "at": self.at}


@dataclass(frozen=True, slots=True)
class ExportedConversation:
    conversation: ConversationRow
    messages: tuple[MessageRow, ...]
