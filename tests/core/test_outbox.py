"""The outbox's retry state: choice, limits, backoff, verdicts; properties with hypothesis."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from glosmsd.core.errors import (
    AuthFailed,
    BadInput,
    LimitExceeded,
    LinkClosed,
    NoSmsNumber,
    NotFound,
    RemoteProtocolError,
    RpcError,
    SendFailed,
    Unsupported,
)
from glosmsd.core.outbox import (
    MAX_IN_FLIGHT,
    Done,
    Failed,
    Outbox,
    QueuedItem,
    Retry,
    RetryPolicy,
    classify,
    new_client_id,
)


def box(**kw: Any) -> Outbox:
    return Outbox(random.Random(1), **kw)


def test_client_ids_are_unique_hex_within_protocol_limits() -> None:
    ids = {new_client_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_take_is_fifo_and_limited_to_four() -> None:
    ob = box()
    ob.load(QueuedItem(f"c{n}", order=n) for n in (5, 1, 3, 2, 4, 0))
    first = ob.take(0.0)
    assert [i.client_id for i in first] == ["c0", "c1", "c2", "c3"]
    assert all(i.attempts == 1 for i in first)
    assert ob.take(0.0) == []
    assert ob.in_flight == {"c0", "c1", "c2", "c3"}
    assert isinstance(ob.settle("c2", 0.1, result={"id": 9}), Done)
    assert [i.client_id for i in ob.take(0.1)] == ["c4"]
    assert ob.take(0.1) == []


def test_not_due_items_wait_and_later_ones_may_pass() -> None:
    ob = box()
    ob.add(QueuedItem("old", order=1, next_at=10.0))
    ob.add(QueuedItem("new", order=2, next_at=0.0))
    assert [i.client_id for i in ob.take(1.0)] == ["new"]
    assert ob.next_wakeup() == 10.0
    assert [i.client_id for i in ob.take(10.0)] == ["old"]
    assert ob.next_wakeup() is None


def test_load_keeps_the_known_item() -> None:
    ob = box()
    ob.add(QueuedItem("a", order=1, attempts=3))
    ob.add(QueuedItem("a", order=7))
    assert ob.items() == [QueuedItem("a", order=1, attempts=3)]
    assert len(ob) == 1
    assert "a" in ob


def test_network_failure_backs_off_and_wake_makes_due() -> None:
    ob = box()
    ob.add(QueuedItem("a", order=1))
    ob.take(0.0)
    v = ob.settle("a", 100.0, error=LinkClosed("link down"))
    assert isinstance(v, Retry)
    assert 100.5 <= v.at <= 101.0
    assert v.reason == "link down"
    assert ob.take(100.2) == []
    ob.wake(100.2)
    assert [i.attempts for i in ob.take(100.2)] == [2]


def test_settle_requires_in_flight() -> None:
    ob = box()
    ob.add(QueuedItem("a", order=1))
    with pytest.raises(KeyError, match="not in flight"):
        ob.settle("a", 0.0)


@pytest.mark.parametrize(
    "error",
    [
        SendFailed("Carrier refused the message: number blocked"),
        NoSmsNumber("No SMS number assigned"),
        LimitExceeded("Text too long"),
        BadInput("Not a phone number: 'abc'"),
        Unsupported("MMS is switched off"),
        NotFound("No such file"),
    ],
)
def test_refusals_fail_with_the_servers_words(error: Exception) -> None:
    v = classify("x", error=error, attempts=1, now=0, rng=random.Random(0))
    assert v == Failed("x", str(error))


@pytest.mark.parametrize(
    "error",
    [
        LinkClosed("gone"),
        AuthFailed("bad token"),
        ConnectionResetError("reset"),
        TimeoutError(),
        OSError("unreachable"),
    ],
)
def test_network_errors_retry_without_limit(error: Exception) -> None:
    v = classify("x", error=error, attempts=1000, now=5.0, rng=random.Random(0))
    assert isinstance(v, Retry)
    assert 5.0 + 150 <= v.at <= 5.0 + 300
    assert v.reason


@pytest.mark.parametrize(
    "error", [RpcError(-32603, "Internal error"), RemoteProtocolError("bad reply"), ValueError()]
)
def test_server_faults_retry_then_fail(error: Exception) -> None:
    pol = RetryPolicy(max_attempts=3)
    rng = random.Random(0)
    assert isinstance(classify("x", error=error, attempts=2, now=0, rng=rng, policy=pol), Retry)
    v = classify("x", error=error, attempts=3, now=0, rng=rng, policy=pol)
    assert isinstance(v, Failed)
    assert "after 3 tries" in v.reason


def test_accepted_is_done_with_the_message() -> None:
    assert classify("x", result={"id": 4}, attempts=1, now=0, rng=random.Random()) == Done(
        "x", {"id": 4}
    )


def test_policy_delay_grows_caps_and_jitters() -> None:
    pol = RetryPolicy(base=1, cap=60, jitter=0.25)
    rng = random.Random(2)
    for attempts, full in [(1, 1), (2, 2), (3, 4), (7, 60), (10_000, 60)]:
        d = pol.delay(attempts, rng)
        assert full * 0.75 <= d <= full
    assert RetryPolicy(jitter=0).delay(1, rng) == 1.0


@pytest.mark.parametrize(
    "kw",
    [{"base": 0}, {"base": 5, "cap": 1}, {"jitter": 1.0}, {"jitter": -0.1}, {"max_attempts": 0}],
)
def test_policy_rejects_bad_settings(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kw)


def test_outbox_rejects_zero_in_flight() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        box(max_in_flight=0)


# --------------------------------------------------------------------------- properties

OUTCOMES: list[dict[str, Any]] = [
    {"result": {"id": 1}},
    {"error": LinkClosed("down")},
    {"error": SendFailed("refused")},
    {"error": RpcError(-32603, "oops")},
]


class OutboxMachine(RuleBasedStateMachine):
    """Random adds, takes, outcomes and time: the in-flight rules always hold."""

    def __init__(self) -> None:
        super().__init__()
        self.ob = Outbox(random.Random(0))
        self.now = 0.0
        self.order = 0
        self.flying: list[str] = []
        self.finished: set[str] = set()

    @rule(n=st.integers(1, 6))
    def add(self, n: int) -> None:
        for _ in range(n):
            self.order += 1
            self.ob.add(QueuedItem(f"id{self.order}", self.order, next_at=self.now))

    @rule()
    def take(self) -> None:
        for item in self.ob.take(self.now):
            assert item.client_id not in self.flying, "one id in flight twice"
            assert item.client_id not in self.finished, "a finished id was sent again"
            assert item.next_at <= self.now
            self.flying.append(item.client_id)

    @precondition(lambda self: bool(self.flying))
    @rule(pick=st.integers(0, 100), outcome=st.sampled_from(OUTCOMES))
    def settle(self, pick: int, outcome: dict[str, Any]) -> None:
        cid = self.flying.pop(pick % len(self.flying))
        verdict = self.ob.settle(cid, self.now, **outcome)
        if not isinstance(verdict, Retry):
            self.finished.add(cid)

    @rule(dt=st.floats(0, 400))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def wake(self) -> None:
        self.ob.wake(self.now)

    @invariant()
    def limits(self) -> None:
        assert len(self.ob.in_flight) <= MAX_IN_FLIGHT
        assert len(self.flying) == len(set(self.flying))
        assert set(self.flying) == self.ob.in_flight


TestOutboxMachine = OutboxMachine.TestCase


@given(
    n=st.integers(1, 30),
    failures=st.lists(st.sampled_from(OUTCOMES), max_size=60),
    seed=st.integers(0, 1000),
)
def test_every_item_is_eventually_attempted_and_finished(
    n: int, failures: list[dict[str, Any]], seed: int
) -> None:
    """Given finitely many bad outcomes then success, every item is tried and leaves."""
    ob = Outbox(random.Random(seed))
    ob.load(QueuedItem(f"i{k}", k) for k in range(n))
    attempted: set[str] = set()
    outcomes = iter(failures)
    now = 0.0
    for _ in range(10_000):
        if not len(ob):
            break
        batch = ob.take(now)
        if not batch:
            wake = ob.next_wakeup()
            assert wake is not None
            assert wake > now, "items wait but none is ever due"
            now = wake
            continue
        for item in batch:
            attempted.add(item.client_id)
            ob.settle(item.client_id, now, **next(outcomes, {"result": {}}))
    assert len(ob) == 0
    assert attempted == {f"i{k}" for k in range(n)}


def test_no_wakeup_while_every_slot_is_in_flight() -> None:
    """A due item without a free slot must not wake the runner (it would spin)."""
    ob = box()
    ob.load(QueuedItem(f"c{k}", k) for k in range(6))
    assert len(ob.take(0.0)) == MAX_IN_FLIGHT
    assert ob.next_wakeup() is None
    ob.settle("c0", 1.0, result={})
    assert ob.next_wakeup() == 0.0
