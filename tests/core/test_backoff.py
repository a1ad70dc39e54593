"""The one backoff: the doubling curve, and the link's jittered reconnect delays."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glosmsd.core.backoff import Backoff, doubling


def test_doubling_starts_at_base_doubles_and_caps() -> None:
    assert [doubling(0.25, 5.0, n) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert doubling(1.0, 300.0, -3) == 1.0
    assert doubling(1.0, 300.0, 10**6) == 300.0  # no OverflowError far out


@given(st.floats(0.001, 100), st.floats(0.001, 1000), st.integers(-5, 10_000))
def test_doubling_never_passes_the_cap_and_never_shrinks(base: float, cap: float, n: int) -> None:
    assert doubling(base, cap, n) <= max(cap, 0)
    assert doubling(base, cap, n + 1) >= doubling(base, cap, n)


def test_backoff_full_jitter_grows_and_caps() -> None:
    b = Backoff(random.Random(7))
    delays = [b.next_delay() for _ in range(20)]
    assert delays[0] == 0.5
    for n, d in enumerate(delays):
        assert 0.5 <= d <= min(60.0, 0.5 * 2**n)
    assert max(delays[-5:]) > 20  # it does reach the high range


def test_backoff_decorrelated_stays_in_range() -> None:
    b = Backoff(random.Random(3), jitter="decorrelated")
    delays = [b.next_delay() for _ in range(50)]
    assert all(0.5 <= d <= 60 for d in delays)
    assert max(delays) > 10


def test_backoff_reset_and_determinism() -> None:
    a, b = Backoff(random.Random(5)), Backoff(random.Random(5))
    assert [a.next_delay() for _ in range(6)] == [b.next_delay() for _ in range(6)]
    a.reset()
    assert a.next_delay() == 0.5


def test_backoff_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="minimum"):
        Backoff(random.Random(), minimum=0)
    with pytest.raises(ValueError, match="minimum"):
        Backoff(random.Random(), minimum=5, maximum=1)


@given(
    seed=st.integers(0, 2**32),
    n=st.integers(1, 200),
    jitter=st.sampled_from(["full", "decorrelated"]),
)
def test_backoff_always_between_bounds(seed: int, n: int, jitter: Any) -> None:
    b = Backoff(random.Random(seed), jitter=jitter)
    for _ in range(n):
        assert 0.5 <= b.next_delay() <= 60.0
