"""The connection table's rules, without sockets (glosmsd/server/conntable.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glosmsd.server.conntable import (
    DESCRIPTOR_RESERVE,
    ConnectionTable,
    MinuteLog,
    connection_cap,
)


def test_a_new_connection_past_the_total_drops_the_busiest_addresss_oldest_handshake() -> None:
    t: ConnectionTable[str] = ConnectionTable(max_total=4, max_per_peer=10)
    for name, peer in (("a1", "A"), ("b1", "B"), ("b2", "B"), ("b3", "B")):
        assert t.admit(name, peer).evict == ()
    adm = t.admit("c1", "C")
    assert adm.evict == ("b1",)
    assert adm.refused is None
    assert len(t) == 4
    assert "b1" not in t
    assert "c1" in t


def test_its_own_addresss_oldest_handshake_goes_first() -> None:
    t: ConnectionTable[str] = ConnectionTable(max_total=3)
    t.admit("a1", "A")
    t.admit("b1", "B")
    t.admit("b2", "B")
    assert t.admit("a2", "A").evict == ("a1",)


def test_signed_in_connections_are_never_dropped_and_a_full_table_refuses() -> None:
    t: ConnectionTable[str] = ConnectionTable(max_total=2)
    for name in ("a1", "a2"):
        t.admit(name, "A")
        assert t.authenticate(name) is None
    adm = t.admit("x", "X")
    assert adm.evict == ()
    assert adm.refused == "the server holds its maximum of 2 connections"
    assert "x" not in t
    assert len(t) == 2


def test_pending_handshakes_per_address_are_capped() -> None:
    t: ConnectionTable[int] = ConnectionTable(max_total=100, max_pending_per_peer=3)
    for i in range(3):
        t.admit(i, "A")
    assert t.admit(3, "A").evict == (0,)
    assert t.admit(10, "B").evict == ()
    assert t.counts() == {"connections": 4, "pending": 4, "peers": 2}


def test_an_address_past_its_signed_in_cap_is_told_why() -> None:
    t: ConnectionTable[int] = ConnectionTable(max_per_peer=2)
    for i in range(3):
        t.admit(i, "A")
    assert t.authenticate(0) is None
    assert t.authenticate(1) is None
    assert t.authenticate(2) == (
        "your address holds this server's maximum of 2 signed-in connections"
    )
    t.remove(0)
    assert t.authenticate(2) is None


def test_the_cap_keeps_the_descriptor_reserve() -> None:
    assert connection_cap(1000, 256) == 256 - DESCRIPTOR_RESERVE
    assert connection_cap(50, 4096) == 50
    with pytest.raises(ValueError, match="ulimit -n"):
        connection_cap(1000, DESCRIPTOR_RESERVE + 2)


def test_the_minute_log_speaks_first_then_once_a_minute_with_the_count() -> None:
    m = MinuteLog()
    assert m.note(0.0) == 1
    assert [m.note(t) for t in (1.0, 30.0, 59.9)] == [None, None, None]
    assert m.note(60.0) == 4
    assert m.note(61.0) is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["admit", "auth", "remove"]), st.integers(0, 30), st.integers(0, 3)
        )
    )
)
def test_the_counts_always_match_what_is_held(ops: list[tuple[str, int, int]]) -> None:
    t: ConnectionTable[int] = ConnectionTable(max_total=8, max_per_peer=3, max_pending_per_peer=2)
    held: dict[int, tuple[str, bool]] = {}
    for op, conn, peer_no in ops:
        peer = f"P{peer_no}"
        if op == "admit" and conn not in held:
            adm = t.admit(conn, peer)
            for old in adm.evict:
                assert not held.pop(old)[1], "a signed-in connection was evicted"
            if adm.refused is None:
                held[conn] = (peer, False)
        elif op == "auth" and conn in held and t.authenticate(conn) is None:
            held[conn] = (held[conn][0], True)
        elif op == "remove":
            t.remove(conn)
            held.pop(conn, None)
        assert len(t) == len(held) <= 8
        assert t.pending == sum(1 for _, authed in held.values() if not authed)
        for p in {p for p, _ in held.values()}:
            assert sum(1 for q, a in held.values() if q == p and a) <= 3
            assert sum(1 for q, a in held.values() if q == p and not a) <= 2
