"""The link's protocol core, without an event loop: states, dedupe, status lines."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glosmsd.core import wire
from glosmsd.core.backoff import Backoff
from glosmsd.core.errors import RemoteProtocolError
from glosmsd.core.protocol import (
    AUTH_FAILED_LINE,
    ApplyBatch,
    Close,
    Connect,
    Deliver,
    FetchCursor,
    GoLive,
    Halt,
    Ignore,
    Keepalive,
    LinkCore,
    LinkStatus,
    SendHello,
    SendSync,
    State,
    Wait,
    check_event,
    check_hello,
)

HELLO: dict[str, Any] = {"protocol": 1, "server": "x", "numbers": [], "settings": {}}


def msg(seq: int, mid: int | None = None) -> dict[str, Any]:
    """A whole message event, as a server sends it (only what checks is handed on)."""
    return wire.event(seq, "message", 1.0, {"message": message(mid or seq)})


def message(mid: int) -> dict[str, Any]:
    return wire.message(
        id=mid,
        client_id=None,
        number="+15550001001",
        remote="+15557654321",
        direction="in",
        text="hi",
        state="sent",
        reason=None,
        at=1.0,
        files=[],
        sender=None,
    )


def state_of(c: LinkCore) -> State:
    # A call, so mypy does not carry a narrowed state across inputs that change it.
    return c.status.state


def core(seed: int = 1, **kw: Any) -> LinkCore:
    return LinkCore(Backoff(random.Random(seed)), **kw)


def live_core(cursor: int = 0, now: float = 0.0) -> LinkCore:
    c = core()
    assert c.start(now) == Connect()
    assert isinstance(c.connected(now), SendHello)
    assert isinstance(c.hello_result(HELLO, now), FetchCursor)
    assert c.sync_from(cursor, now) == SendSync(cursor)
    batch = c.sync_result({"events": [], "cursor": cursor, "more": False}, now)
    assert isinstance(batch, ApplyBatch)
    assert c.batch_applied(now) == GoLive()
    return c


# --------------------------------------------------------------------------- keepalive


def test_keepalive_bound_is_two_intervals() -> None:
    k = Keepalive(0.5)
    assert (k.ping_timeout, k.close_timeout, k.dead_after) == (0.375, 0.125, 1.0)
    assert k.interval + k.ping_timeout + k.close_timeout == k.dead_after
    assert not k.is_dead(10.0, 11.0)
    assert k.is_dead(10.0, 11.01)
    assert Keepalive().interval == 20.0
    assert Keepalive().call_timeout == 40.0
    with pytest.raises(ValueError, match="positive"):
        Keepalive(0)
    with pytest.raises(ValueError, match="positive"):
        Keepalive(float("nan"))


# --------------------------------------------------------------------------- happy path


def test_full_cycle_connect_hello_sync_live() -> None:
    c = core()
    assert state_of(c) is State.DISCONNECTED
    assert c.start(1.0) == Connect()
    assert state_of(c) is State.CONNECTING
    hello = c.connected(1.1)
    assert hello == SendHello({"protocol": 1, "client": "glosmsd"})
    assert state_of(c) is State.HELLO_SENT
    assert c.hello_result(HELLO, 1.2) == FetchCursor(check_hello(HELLO))
    assert c.sync_from(3, 1.2) == SendSync(3, 500)
    assert SendSync(3).params == {"cursor": 3, "limit": 500}
    assert state_of(c) is State.SYNCING

    batch = c.sync_result({"events": [msg(4), msg(5)], "cursor": 5, "more": True}, 1.3)
    assert batch == ApplyBatch([msg(4), msg(5)], 5, reset=False, more=True)
    assert c.batch_applied(1.3) == SendSync(5)
    batch = c.sync_result({"events": [msg(9)], "cursor": 9, "more": False, "reset": False}, 1.4)
    assert isinstance(batch, ApplyBatch)
    assert batch.events == [msg(9)]
    assert c.batch_applied(1.4) == GoLive()
    assert c.status == LinkStatus(State.LIVE, "", None, 1.4)
    assert c.status.online

    assert c.live_event(msg(10), 2.0) == Deliver(msg(10))
    assert c.live_event(msg(10), 2.0) == Ignore("duplicate event seq 10 <= cursor 10")
    assert isinstance(c.live_event(msg(7), 2.0), Ignore)
    assert c.live_event(msg(12), 2.0) == Deliver(msg(12))
    assert c.cursor == 12


def test_sync_batch_drops_duplicates_and_bad_events() -> None:
    c = live_core()
    c.closed(5.0, "x")
    c.retry(100.0)
    c.connected(100.0)
    c.hello_result(HELLO, 100.0)
    c.sync_from(10, 100.0)
    res = {
        "events": [msg(9), msg(11), {"seq": 12, "kind": "message", "message": "no"}, 5, msg(99)],
        "cursor": 20,
        "more": False,
    }
    batch = c.sync_result(res, 100.0)
    assert isinstance(batch, ApplyBatch)
    assert batch.events == [msg(11)]
    assert len(batch.skipped) == 4
    assert batch.cursor == 20


def test_reset_batch_keeps_snapshot_events_without_seq_checks() -> None:
    c = core()
    c.start(0)
    c.connected(0)
    c.hello_result(HELLO, 0)
    c.sync_from(50, 0)
    snap = {"kind": "read", "number": "+1", "remote": "+2", "up_to": 3}
    batch = c.sync_result({"events": [msg(1), snap], "cursor": 70, "reset": True}, 0)
    assert isinstance(batch, ApplyBatch)
    assert batch.reset
    # Snapshot events need no seq (the page's cursor holds them all): a clean copy has 0.
    assert batch.events == [msg(1), {**snap, "seq": 0, "at": 0.0}]


def test_sync_cursor_may_go_back_only_with_reset() -> None:
    c = core()
    c.start(0)
    c.connected(0)
    c.hello_result(HELLO, 0)
    c.sync_from(50, 0)
    act = c.sync_result({"events": [], "cursor": 40, "more": False}, 0)
    assert isinstance(act, Close)
    assert "behind" in act.reason
    assert state_of(c) is State.BACKOFF


@pytest.mark.parametrize(
    "reply",
    [
        None,
        [],
        {"events": {}, "cursor": 1},
        {"events": [], "cursor": "1"},
        {"events": [], "cursor": True},
        {"events": [], "cursor": 1, "more": "yes"},
        {"events": [], "cursor": -1, "reset": True},
    ],
)
def test_bad_sync_replies_close_and_back_off(reply: Any) -> None:
    c = core()
    c.start(0)
    c.connected(0)
    c.hello_result(HELLO, 0)
    c.sync_from(0, 0)
    act = c.sync_result(reply, 1.0)
    assert isinstance(act, Close)
    assert act.reason.startswith("bad sync reply")
    assert state_of(c) is State.BACKOFF
    # The adapter then reports the close it made; the wait is not doubled.
    retry_at = c.status.retry_at
    assert retry_at is not None
    assert c.closed(1.1, "closed by us") == Wait(retry_at)
    assert c.backoff.failures == 1


@pytest.mark.parametrize(
    "hello",
    [None, {"protocol": 2}, {"protocol": 1, "numbers": {}}, {"protocol": 1, "settings": []}],
)
def test_bad_hello_closes(hello: Any) -> None:
    c = core()
    c.start(0)
    c.connected(0)
    act = c.hello_result(hello, 0)
    assert isinstance(act, Close)
    assert "bad hello" in act.reason


def test_out_of_order_inputs_do_not_break_the_machine() -> None:
    c = core()
    assert isinstance(c.connected(0), Close)
    assert isinstance(c.hello_result(HELLO, 0), Close)
    assert isinstance(c.sync_from(0, 0), Close)
    assert isinstance(c.sync_result({}, 0), Close)
    assert isinstance(c.batch_applied(0), Close)
    assert isinstance(c.live_event(msg(1), 0), Ignore)
    assert isinstance(c.retry(0), Ignore)
    assert state_of(c) is State.DISCONNECTED
    c.start(0)
    c.connected(0)
    with pytest.raises(ValueError, match="cursor"):
        c.sync_from(-1, 0)


def test_unknown_live_kind_is_ignored_but_moves_cursor() -> None:
    c = live_core(cursor=5)
    act = c.live_event({"seq": 6, "kind": "future_thing", "at": 1}, 1.0)
    assert isinstance(act, Ignore)
    assert "unknown event kind" in act.reason
    assert c.cursor == 6
    assert isinstance(c.live_event({"seq": "7", "kind": "message"}, 1.0), Ignore)
    assert isinstance(c.live_event("junk", 1.0), Ignore)
    assert c.live_event(msg(7), 1.0) == Deliver(msg(7))


# --------------------------------------------------------------------------- failures


def test_close_backs_off_then_retries() -> None:
    c = live_core(now=0.0)
    act = c.closed(1.0, "connection lost")
    assert act == Wait(1.5)
    st_ = c.status
    assert st_.state is State.BACKOFF
    assert st_.retry_at == 1.5
    assert st_.detail == "connection lost"
    assert c.retry(1.2) == Wait(1.5)
    assert c.retry(1.5) == Connect()
    assert c.status.retry_at is None
    # A failed connect attempt doubles the cap.
    act = c.closed(1.6, "refused")
    assert isinstance(act, Wait)
    assert 1.6 + 0.5 <= act.until <= 1.6 + 1.0


def test_backoff_resets_only_after_stable_connection() -> None:
    c = core(stable_after=30.0)
    for _ in range(5):
        c.backoff.next_delay()
    c.start(0)
    c.connected(0)
    c.hello_result(HELLO, 0)
    c.sync_from(0, 0)
    c.sync_result({"events": [], "cursor": 0}, 0)
    c.batch_applied(0)
    c.closed(10.0, "drop")  # live for 10 s: not stable, keeps growing
    assert c.backoff.failures == 6
    c.retry(1000.0)
    c.connected(1000.0)
    c.hello_result(HELLO, 1000.0)
    c.sync_from(0, 1000.0)
    c.sync_result({"events": [], "cursor": 0}, 1000.0)
    c.batch_applied(1000.0)
    assert c.closed(1031.0, "drop") == Wait(1031.5)  # stable: back to the minimum
    assert c.backoff.failures == 1


def test_auth_failure_is_terminal_until_reconfigure() -> None:
    c = core()
    c.start(0)
    assert c.auth_failed(0.1) == Halt(AUTH_FAILED_LINE)
    assert state_of(c) is State.AUTH_FAILED
    assert c.status.describe(5) == AUTH_FAILED_LINE
    assert isinstance(c.closed(0.2, "x"), Halt)
    assert isinstance(c.start(0.3), Halt)
    assert isinstance(c.retry(100), Ignore)
    assert state_of(c) is State.AUTH_FAILED
    assert c.reconfigure(1.0) == Connect()
    assert state_of(c) is State.CONNECTING
    assert c.backoff.failures == 0


def test_stop_halts() -> None:
    c = live_core()
    assert c.stop(1.0) == Halt("stopped")
    assert state_of(c) is State.DISCONNECTED
    assert isinstance(c.closed(1.1, "bye"), Halt)
    assert c.status.describe(2.0) == "Offline (stopped)"
    assert c.start(3.0) == Connect()


# --------------------------------------------------------------------------- status


def test_status_lines() -> None:
    assert LinkStatus(State.LIVE).describe(0) == "Online"
    assert LinkStatus(State.SYNCING).describe(0) == "Online: catching up"
    assert LinkStatus(State.CONNECTING).describe(0) == "Connecting to the server"
    assert LinkStatus(State.DISCONNECTED).describe(0) == "Offline"
    s = LinkStatus(State.BACKOFF, "connection refused", retry_at=107.2, since=99)
    assert s.describe(100.0) == "Offline: reconnecting in 8 s (connection refused)"
    assert LinkStatus(State.BACKOFF, retry_at=10).describe(11) == "Offline: reconnecting"
    assert not s.online


def test_status_changed_reports_only_changes() -> None:
    c = core()
    first = c.status_changed()
    assert first is not None
    assert first.state is State.DISCONNECTED
    assert c.status_changed() is None
    c.start(2.0)
    changed = c.status_changed()
    assert changed is not None
    assert changed.since == 2.0
    assert c.status_changed() is None


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("event", "complaint"),
    [
        ([], "not an object"),
        ({"seq": 1}, "kind"),
        ({"kind": "message"}, "seq"),
        ({"seq": True, "kind": "message"}, "seq"),
        ({"seq": 1, "kind": "message", "message": {}}, "message.direction"),
        ({"seq": 1, "kind": "message", "message": {**message(1), "id": 2**63}}, "message.id"),
        ({"seq": 1, "kind": "message_state", "id": 1, "state": 3}, "state"),
        ({"seq": 1, "kind": "read", "number": "+1", "remote": "+2", "up_to": 1.5}, "up_to"),
        ({"seq": 1, "kind": "delete_message", "id": "1"}, "id"),
        ({"seq": 1, "kind": "delete_conversation", "number": 1}, "number"),
    ],
)
def test_check_event_rejects(event: Any, complaint: str) -> None:
    with pytest.raises(RemoteProtocolError, match=complaint):
        check_event(event)


def test_check_event_and_hello_accept_good_shapes_and_drop_extra_fields() -> None:
    # Fields the protocol does not define are ignored, as it says: never handed on.
    e = {"seq": 3, "kind": "delete_message", "at": 2.5, "id": 4, "new_field": [1]}
    assert check_event(e) == {"seq": 3, "kind": "delete_message", "at": 2.5, "id": 4}
    assert check_event({"kind": "delete_message", "id": 4}, need_seq=False)
    assert check_event({"seq": 1, "kind": "nope"}) is None  # a newer kind: skipped
    assert "extra" not in check_hello({**HELLO, "extra": 1})


inputs = st.one_of(
    st.tuples(st.just("start")),
    st.tuples(st.just("connected")),
    st.tuples(st.just("hello"), st.sampled_from([HELLO, None, {"protocol": 9}])),
    st.tuples(st.just("sync_from"), st.integers(0, 50)),
    st.tuples(
        st.just("sync_result"),
        st.fixed_dictionaries(
            {
                "events": st.lists(st.builds(msg, st.integers(0, 80)), max_size=5),
                "cursor": st.integers(-2, 80),
                "more": st.booleans(),
                "reset": st.booleans(),
            }
        ),
    ),
    st.tuples(st.just("applied")),
    st.tuples(st.just("event"), st.builds(msg, st.integers(0, 100))),
    st.tuples(st.just("closed")),
    st.tuples(st.just("retry")),
    st.tuples(st.just("auth")),
    st.tuples(st.just("reconfigure")),
    st.tuples(st.just("stop")),
)


@given(st.lists(inputs, max_size=60))
def test_any_input_sequence_keeps_invariants(steps: list[tuple[Any, ...]]) -> None:
    c = core()
    now = 0.0
    delivered: list[int] = []
    for step in steps:
        now += 1.0
        name, *args = step
        match name:
            case "start":
                c.start(now)
            case "connected":
                c.connected(now)
            case "hello":
                c.hello_result(args[0], now)
            case "sync_from":
                act = c.sync_from(args[0], now)
                if isinstance(act, SendSync):
                    delivered.clear()
            case "sync_result":
                c.sync_result(args[0], now)
            case "applied":
                c.batch_applied(now)
            case "event":
                act = c.live_event(args[0], now)
                if isinstance(act, Deliver):
                    delivered.append(act.event["seq"])
            case "closed":
                c.closed(now, "x")
            case "retry":
                c.retry(now)
            case "auth":
                c.auth_failed(now)
            case "reconfigure":
                c.reconfigure(now)
            case "stop":
                c.stop(now)
        s = c.status
        assert (s.retry_at is not None) == (s.state is State.BACKOFF)
        if s.retry_at is not None:
            assert s.retry_at <= now + 60
        # Delivered live events are strictly increasing: no duplicate reaches the store.
        assert delivered == sorted(set(delivered))
