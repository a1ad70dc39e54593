"""Waiting longer after each failure: the one backoff of glosmsd.

`doubling` is the curve every retry in glosmsd follows (the link's reconnects, the
outbox's per-message retries, the server's wait after failed logins): `base` doubling at
each step, never above `cap`. `Backoff` adds the link's jitter and remembers how many
failures it has seen.

Pure: the randomness comes from a `random.Random` the caller passes (tests seed it), and
nothing here reads a clock or sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

__all__ = ["Backoff", "doubling"]


def doubling(base: float, cap: float, step: int) -> float:
    """`base * 2**step`, at most `cap`; step 0 is `base` (negative steps count as 0)."""
    # min() on the exponent first: 2.0**2000 would overflow to an error.
    return min(cap, base * 2.0 ** min(max(step, 0), 64))


@dataclass(slots=True)
class Backoff:
    """Reconnect delays: exponential from `minimum` doubling up to `maximum`, with jitter.

    `jitter="full"`: each delay is uniform in [minimum, cap], cap = minimum * 2**failures
    clamped to `maximum` (full jitter, but never below the minimum, so a flapping server
    never sees a zero-delay storm). `jitter="decorrelated"`: uniform in
    [minimum, 3 * previous delay], clamped to `maximum` (AWS's "decorrelated jitter").
    The randomness comes from `rng`, so tests pass a seeded `random.Random`.
    """

    rng: random.Random
    minimum: float = 0.5
    maximum: float = 60.0
    jitter: Literal["full", "decorrelated"] = "full"
    failures: int = 0
    _previous: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.minimum <= self.maximum:
            raise ValueError(f"need 0 < minimum <= maximum, got {self.minimum}, {self.maximum}")

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        if self.jitter == "decorrelated":
            upper = max(self.minimum, self._previous * 3)
            delay = min(self.maximum, self.rng.uniform(self.minimum, upper))
        else:
            cap = doubling(self.minimum, self.maximum, self.failures)
            delay = self.rng.uniform(self.minimum, cap)
        self.failures += 1
        self._previous = delay
        return delay

    def reset(self) -> None:
        """Back to the minimum (after a stable connection, or new credentials)."""
        self.failures = 0
        self._previous = 0.0
