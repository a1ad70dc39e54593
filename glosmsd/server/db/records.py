"""The server store's value objects: what its methods return to the app and the admin CLI.

Plain frozen data, no SQL: `FileInfo` (a stored file as a message references it),
`Outbound` (what the carrier must deliver), `SyncBatch` (one sync page), `Sent` (what a
send did) and `CarrierMode` (how the test carrier answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

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
    events: list[dict[str, Any]]
    cursor: int
    more: bool
    reset: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "cursor": self.cursor,
            "more": self.more,
            "reset": self.reset,
        }


@dataclass(frozen=True, slots=True)
class Sent:
    """What `send` did: the MESSAGE to reply with, and what the carrier still has to do."""

    message: dict[str, Any]
    outbound: Outbound | None
    new: bool


@dataclass(frozen=True, slots=True)
class CarrierMode:
    """How the test carrier answers: `accept`, `fail` (with reason) or `delay` (seconds)."""

    mode: str = "accept"
    reason: str = DEFAULT_CARRIER_REASON
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason, "seconds": self.seconds}
