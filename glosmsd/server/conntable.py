"""Who holds the server's connections, and what happens to one past the caps.

Every TCP connection is in the table from the moment it is accepted until its transport
is lost, whatever becomes of its handshake (a per-connection side table that only the
handler cleaned up leaked ~11.5 KB for every `GET /v1` that got 426). A connection is
*pending* until its token is accepted, then *authenticated*.

The caps: `max_total` connections in all (at most the descriptors the process may open
minus `DESCRIPTOR_RESERVE`, kept for one accept batch, the database and file blobs),
`max_pending_per_peer` handshakes from one address, `max_per_peer` authenticated
connections from one address. A new connection past a cap takes the place of the oldest
pending handshake (of its own address first, else of the address holding the most), so
300 idle TCP connections cannot keep a real client out; when every connection is
authenticated, the new one is refused. What was refused or evicted is logged once a
minute (`MinuteLog`), never per accept.

Pure: no sockets, no clock (callers pass `now`), no logging; the app acts on the answers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

#: Connections the kernel queues for accept, and the most the event loop accepts in one
#: go before the table sees any of them (asyncio accepts up to its backlog per wake-up,
#: and the table hears of each a loop turn or two later).
LISTEN_BACKLOG: Final = 32
#: Descriptors kept free beyond the connections: two accept batches in flight (and as
#: many evicted ones whose descriptors close a loop turn later), SQLite (two connections,
#: five files), a blob being read or written, stdio, the event loop's selector and
#: self-pipe, TLS. 192 with nofile 256 and a batch of 100 hit EMFILE at 181 held.
DESCRIPTOR_RESERVE: Final = 32 + 2 * LISTEN_BACKLOG
#: The fewest connections a server may be left with by a low descriptor limit.
MIN_CONNECTIONS: Final = 8
DEFAULT_MAX_CONNECTIONS: Final = 1000
DEFAULT_MAX_PER_PEER: Final = 100
DEFAULT_MAX_PENDING_PER_PEER: Final = 32
LOG_EVERY: Final = 60.0

C = TypeVar("C", bound=Hashable)


def connection_cap(wanted: int, nofile: int) -> int:
    """The connections a process with `nofile` descriptors can hold, at most `wanted`;
    `ValueError` when it would be fewer than `MIN_CONNECTIONS`."""
    room = nofile - DESCRIPTOR_RESERVE
    if room < MIN_CONNECTIONS:
        raise ValueError(
            f"the descriptor limit (nofile {nofile}) leaves room for {max(room, 0)} "
            f"connections after the {DESCRIPTOR_RESERVE} kept in reserve; raise it "
            f"(ulimit -n {DESCRIPTOR_RESERVE + DEFAULT_MAX_CONNECTIONS}) to serve"
        )
    return min(wanted, room)


@dataclass(slots=True)
class _Entry:
    peer: str
    authed: bool = False


@dataclass(frozen=True, slots=True)
class Admission(Generic[C]):
    """What to do with a new connection: close `evict` (older pending handshakes), and
    refuse the new one itself when `refused` says why."""

    evict: tuple[C, ...] = ()
    refused: str | None = None


@dataclass(slots=True)
class ConnectionTable(Generic[C]):
    """The server's connections by peer address, oldest first."""

    max_total: int = DEFAULT_MAX_CONNECTIONS
    max_per_peer: int = DEFAULT_MAX_PER_PEER
    max_pending_per_peer: int = DEFAULT_MAX_PENDING_PER_PEER
    _all: OrderedDict[C, _Entry] = field(default_factory=OrderedDict)
    _peers: dict[str, int] = field(default_factory=dict)
    _authed_peers: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, conn: object) -> bool:
        return conn in self._all

    @property
    def pending(self) -> int:
        return len(self._all) - sum(self._authed_peers.values())

    def counts(self) -> dict[str, int]:
        """For status and logs: connections in all, pending handshakes, addresses."""
        return {"connections": len(self._all), "pending": self.pending, "peers": len(self._peers)}

    def admit(self, conn: C, peer: str) -> Admission[C]:
        """Enter a newly accepted connection (unless refused) and say what must go."""
        evict: list[C] = []
        if self._pending_of(peer) >= self.max_pending_per_peer:
            evict += self._oldest_pending(peer, evict)
        if len(self._all) - len(evict) >= self.max_total:
            victim = (
                self._oldest_pending(peer, evict)
                or self._oldest_pending(self._busiest(), evict)
                or self._oldest_pending(None, evict)
            )
            if not victim:
                return Admission(
                    (), f"the server holds its maximum of {self.max_total} connections"
                )
            evict += victim
        for old in evict:
            self.remove(old)
        self._all[conn] = _Entry(peer)
        self._peers[peer] = self._peers.get(peer, 0) + 1
        return Admission(tuple(evict))

    def authenticate(self, conn: C) -> str | None:
        """The token was accepted: `conn` counts against its address's cap from now on.
        Returns why it is refused (the address holds `max_per_peer` already), else None."""
        entry = self._all.get(conn)
        if entry is None or entry.authed:
            return None
        held = self._authed_peers.get(entry.peer, 0)
        if held >= self.max_per_peer:
            return (
                f"your address holds this server's maximum of {self.max_per_peer} "
                "signed-in connections"
            )
        entry.authed = True
        self._authed_peers[entry.peer] = held + 1
        return None

    def remove(self, conn: C) -> None:
        """The connection is gone (its transport was lost, or it was evicted)."""
        entry = self._all.pop(conn, None)
        if entry is None:
            return
        _decrement(self._peers, entry.peer)
        if entry.authed:
            _decrement(self._authed_peers, entry.peer)

    def _pending_of(self, peer: str) -> int:
        return self._peers.get(peer, 0) - self._authed_peers.get(peer, 0)

    def _busiest(self) -> str | None:
        if not self._peers:
            return None
        return max(self._peers, key=self._pending_of)

    def _oldest_pending(self, peer: str | None, skip: list[C]) -> list[C]:
        """The oldest pending handshake of `peer` (any address when None) not in `skip`,
        as a list of one (or none)."""
        for conn, entry in self._all.items():
            if entry.authed or (peer is not None and entry.peer != peer) or conn in skip:
                continue
            return [conn]
        return []


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


@dataclass(slots=True)
class MinuteLog:
    """Counts a recurring condition and says when to log it: the first time, then at
    most once every `every` seconds, with how many happened in between."""

    every: float = LOG_EVERY
    _last: float | None = None
    _count: int = 0

    def note(self, now: float) -> int | None:
        """One more occurrence; the count to log now (None: stay quiet)."""
        self._count += 1
        if self._last is not None and now - self._last < self.every:
            return None
        count, self._count, self._last = self._count, 0, now
        return count
