"""Fan-out of the daemon's local events to live subscribers.

Every change the user can see (a message, a state change, a read mark, a deletion, the
unread count, the link status) is first appended to the store's event log, which gives it
an id, and then published here. Subscribers (socket clients, the tray, the notifier) each
get a bounded queue: a subscriber that stops reading overflows and is cut off with a
reason, and never slows the daemon or the other subscribers. Replay of what a subscriber
missed comes from the store, not from here.

This module must never do I/O: no sockets, no database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from glosmsd.core.errors import SubscriberDropped

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 1000


def end_queue(queue: asyncio.Queue[Any]) -> None:
    """Put the end mark (None) on a bounded queue, dropping what is oldest while it is
    full, so a reader blocked in get() wakes and ends."""
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            queue.get_nowait()


@dataclass(frozen=True, slots=True)
class Event:
    """One local event as clients see it: `id` grows strictly, `kind` names the change.

    `data_json` is `data` as JSON text when the store already wrote it so (its event log
    keeps that text): the socket sends it as it is instead of encoding `data` again on the
    event loop, once per subscriber."""

    id: int
    kind: str
    at: float
    data: Mapping[str, Any]
    data_json: str | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": self.at, "data": dict(self.data)}


class Subscription:
    """A live feed of events; iterate with `await sub.get()`."""

    def __init__(self, hub: Hub, name: str, maxsize: int) -> None:
        self._hub = hub
        self.name = name
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def _offer(self, event: Event) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning(
                "subscriber %s dropped: %d events unread (it stopped reading)",
                self.name,
                self._queue.qsize(),
            )
            self.close()

    async def get(self) -> Event:
        """The next event; raises `SubscriberDropped` once the subscriber has been cut off."""
        if self.overflowed:
            raise self._dropped()
        item = await self._queue.get()
        if item is None:
            raise self._dropped() if self.overflowed else EOFError(self.name)
        return item

    def _dropped(self) -> SubscriberDropped:
        return SubscriberDropped(f"{self.name} fell too far behind the events and was cut off")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._hub._remove(self)
        end_queue(self._queue)


class Hub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, name: str, maxsize: int = DEFAULT_QUEUE) -> Subscription:
        sub = Subscription(self, name, maxsize)
        self._subs.add(sub)
        return sub

    def publish(self, event: Event) -> None:
        for sub in list(self._subs):
            sub._offer(event)

    def _remove(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
