"""The server store's value objects: what its methods return to the app and the admin CLI.

Plain frozen data, no SQL: `FileInfo` (a stored file as a message references it),
`Outbound` (what the carrier must deliver), `SyncBatch` (one sync page), `Sent` (what a
send did) and `CarrierMode` (how the test carrier answers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from glosmsd.core import wire

DEFAULT_CARRIER_REASON: Final = "The carrier refused the message."


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A stored file as a message references it."""

    sha256: str
    name: str
    mime: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "name": self.name, "mime": self.mime, "size": self.size}


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message the carrier must deliver (its number is not hosted here)."""

    id: int
    number: str
    remote: str
    text: str
    files: tuple[FileInfo, ...]


@dataclass(frozen=True, slots=True)
class SyncBatch:
    """One sync page: its events as JSON texts, ready for the wire (`wire.splice_event`).

    `snapshot` is (after, next) on a page of a snapshot (`reset`): the page lists the
    visible messages with `after < id` up to the next page's start `next` (None: the
    last page). `events` decodes the texts, for the admin CLI and tests.
    """

    texts: list[str]
    cursor: int
    more: bool
    reset: bool
    snapshot: tuple[int, int | None] | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self.texts]

    def to_json_text(self, before: str = "", after: str = "") -> str:
        """The result's JSON, inside `before` and `after` (see `wire.sync_result_text`)."""
        return wire.sync_result_text(
            self.texts,
            self.cursor,
            self.more,
            self.reset,
            self.snapshot,
            before=before,
            after=after,
        )

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.to_json_text())
        return result


@dataclass(frozen=True, slots=True)
class Sent:
    """What `send` did: the MESSAGE to reply with, and what the carrier still has to do."""

    message: dict[str, Any]
    outbound: Outbound | None
    new: bool
    #: `message` as JSON text, when the send encoded it already (for its event).
    message_text: str | None = None


@dataclass(frozen=True, slots=True)
class CarrierMode:
    """How the test carrier answers: `accept`, `fail` (with reason) or `delay` (seconds)."""

    mode: str = "accept"
    reason: str = DEFAULT_CARRIER_REASON
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason, "seconds": self.seconds}
