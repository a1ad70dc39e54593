"""The outbox's retry state, as plain objects: which queued sends go next, and when again.

Owns: choosing the next sends (due ones, oldest first, at most `max_in_flight` at once,
never an id that is already in flight), the per-item backoff with jitter after a network
failure, and the verdict on an outcome (accepted, refused with a reason a user reads, or
retry later). Also `new_client_id`, the idempotency key that makes "exactly once" hold:
the server answers a repeated `client_id` with the message it already has.

The store persists the queue (client id, attempts, next attempt time, creation order);
this module only decides. It must never read a clock, touch the store or the link, or
await anything: `now` and a `random.Random` come in as arguments.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from glosmsd.core.backoff import doubling
from glosmsd.core.errors import (
    BadInput,
    GlosmsdError,
    LimitExceeded,
    LinkClosed,
    NotFound,
    SendFailed,
    Unsupported,
)

MAX_IN_FLIGHT: Final = 4

#: Server refusals: the message will never go as it is, so it fails with the server's words.
#: (`NoSmsNumber` is a `SendFailed`.)
REFUSALS: Final[tuple[type[GlosmsdError], ...]] = (
    SendFailed,
    LimitExceeded,
    BadInput,
    Unsupported,
    NotFound,
)


def new_client_id() -> str:
    """A fresh idempotency key: a random UUID4 as 32 lowercase hex characters.

    Random rather than time-sortable on purpose: the send order lives in the store's
    creation order, so the id needs no clock, and 122 random bits never collide in
    practice. It fits the protocol's 1..64 characters.
    """
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class QueuedItem:
    """One accepted send waiting for the server.

    `order` is the creation order (the store's row id); `attempts` counts tries made;
    `next_at` is the earliest time (on the caller's clock) of the next try.
    """

    client_id: str
    order: int
    attempts: int = 0
    next_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Done:
    """The server has the message (`message` is its MESSAGE); the item leaves the queue."""

    client_id: str
    message: Any


@dataclass(frozen=True, slots=True)
class Failed:
    """The server refused it; `reason` is the server's message, fit to show the user."""

    client_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Retry:
    """A network problem (or a transient server fault): try again at `at`."""

    client_id: str
    at: float
    reason: str


Verdict = Done | Failed | Retry


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-item backoff: `base` doubling up to `cap`, each delay shortened by up to `jitter`.

    A server fault that is neither a refusal nor a network problem (a -32603, a protocol
    error) is retried too, but the item fails once it has had `max_attempts` tries, so a
    message the server chokes on cannot block the queue forever. Network failures retry
    without limit: the message waits for the link.
    """

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.5
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise ValueError(f"need 0 < base <= cap, got {self.base}, {self.cap}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def delay(self, attempts: int, rng: random.Random) -> float:
        """The wait after the `attempts`-th failed try (attempts >= 1)."""
        return doubling(self.base, self.cap, attempts - 1) * (1 - self.jitter * rng.random())


def classify(
    client_id: str,
    *,
    result: Any = None,
    error: BaseException | None = None,
    attempts: int,
    now: float,
    rng: random.Random,
    policy: RetryPolicy | None = None,
) -> Verdict:
    """Decide what an attempt's outcome means. `attempts` includes this attempt.

    - no error: the server accepted (`Done`);
    - a refusal (send-failed, no-sms-number, limit-exceeded, bad-input, unsupported,
      not-found): `Failed` with the server's message;
    - `LinkClosed` (including `AuthFailed`: the token may be fixed), `OSError`,
      `TimeoutError`: `Retry` with backoff, without limit;
    - anything else: `Retry` until `max_attempts`, then `Failed`.
    """
    policy = policy or RetryPolicy()
    if error is None:
        return Done(client_id, result)
    if isinstance(error, REFUSALS):
        return Failed(client_id, error.message)
    reason = str(error) or type(error).__name__
    network = isinstance(error, LinkClosed | OSError | TimeoutError)
    if not network and attempts >= policy.max_attempts:
        return Failed(
            client_id,
            f"The server could not take the message after {attempts} tries ({reason}). "
            "Resend it later.",
        )
    return Retry(client_id, now + policy.delay(attempts, rng), reason)


@dataclass(slots=True)
class Outbox:
    """The queue's scheduling state: waiting items and the ids in flight.

    `take(now)` marks what it returns as in flight; every taken id must come back
    through `settle`. The store is the source of truth: at start, `load` what it holds
    (nothing is in flight after a restart; the server dedupes by client id).
    """

    rng: random.Random
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    max_in_flight: int = MAX_IN_FLIGHT
    _items: dict[str, QueuedItem] = field(default_factory=dict)
    _in_flight: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {self.max_in_flight}")

    def load(self, items: Iterable[QueuedItem]) -> None:
        """Add items (from the store at start, or a new send). A known id is left alone."""
        for item in items:
            self._items.setdefault(item.client_id, item)

    def add(self, item: QueuedItem) -> None:
        self.load((item,))

    def take(self, now: float) -> list[QueuedItem]:
        """The items to send now: due, not in flight, oldest first, within the limit.

        Each returned item already counts the attempt being made (`attempts` + 1).
        """
        room = self.max_in_flight - len(self._in_flight)
        if room <= 0:
            return []
        due = sorted(
            (i for i in self._items.values() if i.client_id not in self._in_flight),
            key=lambda i: i.order,
        )
        chosen = [i for i in due if i.next_at <= now][:room]
        out: list[QueuedItem] = []
        for item in chosen:
            taken = replace(item, attempts=item.attempts + 1)
            self._items[item.client_id] = taken
            self._in_flight.add(item.client_id)
            out.append(taken)
        return out

    def settle(
        self,
        client_id: str,
        now: float,
        *,
        result: Any = None,
        error: BaseException | None = None,
    ) -> Verdict:
        """Record the outcome of an attempt taken with `take`, and say what it means."""
        if client_id not in self._in_flight:
            raise KeyError(f"{client_id!r} is not in flight")
        self._in_flight.discard(client_id)
        item = self._items[client_id]
        verdict = classify(
            client_id,
            result=result,
            error=error,
            attempts=item.attempts,
            now=now,
            rng=self.rng,
            policy=self.policy,
        )
        if isinstance(verdict, Retry):
            self._items[client_id] = replace(item, next_at=verdict.at)
        else:
            del self._items[client_id]
        return verdict

    def wake(self, now: float) -> None:
        """Make every waiting item due now (the link just came back up)."""
        for cid, item in self._items.items():
            if cid not in self._in_flight and item.next_at > now:
                self._items[cid] = replace(item, next_at=now)

    def next_wakeup(self) -> float | None:
        """When `take` may next return something; None when nothing waits, or when every
        slot is in flight (then a `settle` comes first, and the caller waits for it).

        Without the second rule a caller would wake at once for an item that is due but
        has no slot, and spin until a slot frees up.
        """
        if len(self._in_flight) >= self.max_in_flight:
            return None
        waiting = [i.next_at for c, i in self._items.items() if c not in self._in_flight]
        return min(waiting, default=None)

    @property
    def in_flight(self) -> frozenset[str]:
        return frozenset(self._in_flight)

    def items(self) -> list[QueuedItem]:
        """Every item still queued (in flight or waiting), oldest first."""
        return sorted(self._items.values(), key=lambda i: i.order)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._items
