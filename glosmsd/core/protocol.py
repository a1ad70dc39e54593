"""The server link's protocol state, as plain objects (sans-I/O, like h11 and websockets).

Owns every decision the link makes: which state it is in, what to do after each thing
that happens (connected, hello answered, a sync batch, a live event, the connection
closed, the token refused), when to reconnect (exponential backoff with jitter, reset
after a stable connection), how long a silent peer may stay silent, which events are
duplicates (`seq <=` the cursor), what a well-formed hello/sync result and event look
like, and the status line a user reads.

Inputs are method calls carrying `now` (seconds on one monotonic clock the caller picks);
outputs are small frozen action values the adapter (`glosmsd.daemon.link`) carries out. This
module must never read a clock, open a socket, await anything or import an adapter.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from glosmsd.core import wire
from glosmsd.core.backoff import Backoff
from glosmsd.core.errors import PoisonEvent, RemoteProtocolError

PROTOCOL_VERSION: Final = 1
DEFAULT_PING_INTERVAL: Final = 20.0
SYNC_LIMIT: Final = wire.SYNC_LIMIT_DEFAULT

AUTH_FAILED_LINE: Final = "Authentication failed: check the token (glosmsd setup)"


class State(enum.Enum):
    """Where the link is. The values are what the UI and the IPC `status` show."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    HELLO_SENT = "hello-sent"
    SYNCING = "syncing"
    LIVE = "live"
    BACKOFF = "backoff"
    AUTH_FAILED = "auth-failed"


# --------------------------------------------------------------------------- status


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """What the UI shows about the link.

    `since` and `retry_at` are on the link's clock (the `now` the core was given).
    `detail` is the last reason in words (why we are offline), or "" when there is none.
    `skipped` counts the events from the server that could not be used (since the
    daemon started), `last_skipped` says what was wrong with the last one.
    """

    state: State
    detail: str = ""
    retry_at: float | None = None
    since: float = 0.0
    skipped: int = 0
    last_skipped: str = ""

    @property
    def online(self) -> bool:
        """True when messages flow (the link is live)."""
        return self.state is State.LIVE

    def describe(self, now: float) -> str:
        """One line for a user: "Online", "Offline: reconnecting in 8 s", ..."""
        match self.state:
            case State.LIVE:
                return "Online"
            case State.SYNCING:
                return "Online: catching up"
            case State.CONNECTING | State.HELLO_SENT:
                return "Connecting to the server"
            case State.AUTH_FAILED:
                return AUTH_FAILED_LINE
            case State.BACKOFF:
                wait = 0 if self.retry_at is None else math.ceil(self.retry_at - now)
                line = f"Offline: reconnecting in {wait} s" if wait > 0 else "Offline: reconnecting"
                return f"{line} ({self.detail})" if self.detail else line
            case State.DISCONNECTED:
                return f"Offline ({self.detail})" if self.detail else "Offline"


# --------------------------------------------------------------------------- keepalive


@dataclass(frozen=True, slots=True)
class Keepalive:
    """How a silent peer is noticed.

    A ping goes out `interval` after the last pong; a pong missing `ping_timeout` later
    fails the connection, and the close then waits at most `close_timeout` for a peer
    that will never answer. Worst case, a peer that froze just after a pong is noticed
    interval + ping_timeout + close_timeout = `2 * interval` later (`dead_after`), the
    bound the link promises. (A ping timeout of a whole interval would add the close wait
    on top: measured 2.9 intervals with websockets 17.)
    """

    interval: float = DEFAULT_PING_INTERVAL

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval) and self.interval > 0):
            raise ValueError(f"ping interval must be a positive number, got {self.interval}")

    @property
    def ping_timeout(self) -> float:
        return 0.75 * self.interval

    @property
    def close_timeout(self) -> float:
        return 0.25 * self.interval

    @property
    def dead_after(self) -> float:
        return 2 * self.interval

    @property
    def call_timeout(self) -> float:
        """How long hello and sync may take before the connection is given up."""
        return max(30.0, self.dead_after)

    def is_dead(self, last_heard: float, now: float) -> bool:
        """True when nothing came from the peer for longer than `dead_after`."""
        return now - last_heard > self.dead_after


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a connection now."""


@dataclass(frozen=True, slots=True)
class SendHello:
    """Call `hello` with these params."""

    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FetchCursor:
    """hello succeeded: hand the result on, then tell the core the stored cursor."""

    hello: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SendSync:
    """Call `sync` with these params."""

    cursor: int
    limit: int = SYNC_LIMIT
    #: Continue a snapshot taken at `cursor`, from after this message id.
    snapshot_after: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"cursor": self.cursor, "limit": self.limit}
        if self.snapshot_after is not None:
            params["snapshot_after"] = self.snapshot_after
        return params


@dataclass(frozen=True, slots=True)
class ApplyBatch:
    """Commit these events and this cursor in one transaction (`reset`: replace first).

    `snapshot` is (after, through) on a page of a snapshot: the page replaces the synced
    messages with `after < id <= through` (`through` None: no upper end); only its first
    page (after 0) drops the read and deletion marks. Until its last page, `cursor` is
    the one held before the snapshot, so a snapshot cut short starts over.
    """

    events: list[dict[str, Any]]
    cursor: int
    reset: bool
    more: bool
    skipped: tuple[str, ...] = ()
    snapshot: tuple[int, int | None] | None = None


@dataclass(frozen=True, slots=True)
class GoLive:
    """Sync is complete: deliver live events from now on."""


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand this live event on."""

    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ignore:
    """Drop what came in; `reason` is for the log."""

    reason: str


@dataclass(frozen=True, slots=True)
class Skip:
    """A live event that cannot be used: log `reason`, and store `cursor` (nothing else),
    so the event is behind us for good."""

    reason: str
    cursor: int


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection; the core has already decided what comes after."""

    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Do nothing until `until`, then call `retry(now)`."""

    until: float


@dataclass(frozen=True, slots=True)
class Halt:
    """Make no more attempts until `reconfigure` (bad token) or `start` (stopped)."""

    reason: str


Action = (
    Connect
    | SendHello
    | FetchCursor
    | SendSync
    | ApplyBatch
    | GoLive
    | Deliver
    | Ignore
    | Skip
    | Close
    | Wait
    | Halt
)


# --------------------------------------------------------------------------- validation


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


#: What a server's events and hello must look like: `glosmsd.core.wire` checks and
#: cleans every field (the link never hands on a field it did not check).
check_event = wire.check_event
check_hello = wire.check_hello

#: How far a sync page shrinks after the server sent a frame over our limit (1009).
_SHRINK: Final = 4


# --------------------------------------------------------------------------- the machine


@dataclass(slots=True)
class LinkCore:
    """The link's state machine. Each input returns the action the adapter carries out.

    Typical run: `start` -> Connect; `connected` -> SendHello; `hello_result` ->
    FetchCursor; `sync_from(cursor)` -> SendSync; `sync_result` -> ApplyBatch;
    `batch_applied` -> SendSync while `more`, then GoLive; `live_event` -> Deliver,
    Ignore or Skip. `batch_refused` (the store could not apply one event) -> the batch
    again without it. `closed` at any point -> Wait(until); `retry` -> Connect.
    `auth_failed` -> Halt until `reconfigure`.

    An event that fails `check_event` is never handed on: it is counted in the status
    (`skipped`, `last_skipped`) and the sync goes on past it, so one bad event can never
    hold back the ones after it.
    """

    backoff: Backoff
    keepalive: Keepalive = field(default_factory=Keepalive)
    stable_after: float = 30.0
    client: str = "glosmsd"
    state: State = State.DISCONNECTED
    detail: str = ""
    since: float = 0.0
    retry_at: float | None = None
    cursor: int | None = None
    live_since: float | None = None
    #: Events per sync page; shrinks after a page too big for a frame, back once live.
    sync_limit: int = SYNC_LIMIT
    skipped: int = 0
    last_skipped: str = ""
    _pending: ApplyBatch | None = None
    #: (cursor, snapshot_after) of the next page of a snapshot under way.
    _snapshot: tuple[int, int] | None = None
    _last_status: LinkStatus | None = None

    # ---- status

    @property
    def status(self) -> LinkStatus:
        return LinkStatus(
            self.state, self.detail, self.retry_at, self.since, self.skipped, self.last_skipped
        )

    def _poisoned(self, reason: str) -> None:
        self.skipped += 1
        self.last_skipped = reason[:300]

    def _enter(self, state: State, now: float, detail: str | None = None) -> None:
        if state is not self.state:
            self.since = now
        self.state = state
        if detail is not None:
            self.detail = detail
        if state is not State.BACKOFF:
            self.retry_at = None

    def status_changed(self) -> LinkStatus | None:
        """The status if it changed since the last call (to notify the UI only on change)."""
        current = self.status
        if current == self._last_status:
            return None
        self._last_status = current
        return current

    # ---- connection lifecycle

    def start(self, now: float) -> Action:
        """Begin (or begin again after `stop`)."""
        if self.state is State.AUTH_FAILED:
            return Halt(self.detail or AUTH_FAILED_LINE)
        self._enter(State.CONNECTING, now, "")
        return Connect()

    def retry(self, now: float) -> Action:
        """The adapter's timer fired. Connect if the wait is over."""
        if self.state is not State.BACKOFF:
            return Ignore(f"retry in state {self.state.value}")
        if self.retry_at is not None and now < self.retry_at:
            return Wait(self.retry_at)
        self._enter(State.CONNECTING, now)
        return Connect()

    def connected(self, now: float) -> Action:
        """The WebSocket is open: say hello."""
        if self.state is not State.CONNECTING:
            return Close(f"connected in state {self.state.value}")
        self._enter(State.HELLO_SENT, now)
        return SendHello({"protocol": PROTOCOL_VERSION, "client": self.client})

    def hello_result(self, result: Any, now: float) -> Action:
        """hello answered. A result we cannot use closes the connection (and backs off)."""
        if self.state is not State.HELLO_SENT:
            return Close(f"hello answered in state {self.state.value}")
        try:
            hello = check_hello(result)
        except RemoteProtocolError as exc:
            return self._fail(now, f"bad hello from the server: {exc.message}")
        return FetchCursor(hello)

    def sync_from(self, cursor: int, now: float) -> Action:
        """The stored cursor: start syncing from it."""
        if self.state is not State.HELLO_SENT:
            return Close(f"sync start in state {self.state.value}")
        if not _is_int(cursor) or cursor < 0:
            raise ValueError(f"cursor must be an int >= 0, got {cursor!r}")
        self.cursor = cursor
        self._snapshot = None
        self._enter(State.SYNCING, now)
        return SendSync(cursor, self.sync_limit)

    def sync_result(self, result: Any, now: float) -> Action:
        """A `sync` reply: the batch to apply, or Close when the reply is unusable.

        Events that fail `check_event` are skipped (named in `skipped`, counted in the
        status); kinds this protocol does not know are dropped quietly; outside a reset,
        events at or below the cursor are duplicates and dropped. A cursor that goes
        backwards without `reset` is a broken server: the connection is closed rather
        than re-applying.
        """
        if self.state is not State.SYNCING or self.cursor is None:
            return Close(f"sync answered in state {self.state.value}")
        if not isinstance(result, dict):
            return self._fail(now, "bad sync reply: not an object")
        events, cursor = result.get("events"), result.get("cursor")
        more, reset = result.get("more", False), result.get("reset", False)
        if not isinstance(events, list) or not _is_int(cursor):
            return self._fail(now, "bad sync reply: needs 'events' (list) and 'cursor' (int)")
        held: int = self.cursor
        if not isinstance(more, bool) or not isinstance(reset, bool):
            return self._fail(now, "bad sync reply: 'more' and 'reset' must be booleans")
        if not 0 <= cursor <= wire.MAX_ID or (cursor < held and not reset):
            return self._fail(now, f"bad sync reply: cursor {cursor} is behind {held}")
        page: tuple[int, int | None] | None = None
        if reset:
            page = self._snapshot_page(result.get("snapshot"), cursor, more)
            if page is None:
                return self._fail(now, "bad sync reply: a snapshot page out of order")
        kept: list[dict[str, Any]] = []
        skipped: list[str] = []
        for obj in events:
            try:
                event = check_event(obj, need_seq=not reset)
            except PoisonEvent as exc:
                skipped.append(exc.message)
                self._poisoned(exc.message)
                continue
            if event is None:
                continue  # a kind of a newer protocol: skipped, as the protocol says
            if not reset:
                seq: int = event["seq"]
                if not held < seq <= cursor:
                    skipped.append(f"seq {seq} outside ({held}, {cursor}]")
                    continue
            kept.append(event)
        # Until a snapshot's last page, the stored cursor stays where it was: a snapshot
        # cut short (crash, dropped link) then starts over instead of leaving a hole.
        through = None if page is None else page[1]
        store_at = held if reset and through is not None else cursor
        batch = ApplyBatch(kept, store_at, reset, more, tuple(skipped), page)
        self._pending = batch
        return batch

    def _snapshot_page(self, snap: Any, cursor: int, more: bool) -> tuple[int, int | None] | None:
        """(after, through) of a snapshot page, or None when it is not the page we asked
        for. No `snapshot` member: the whole snapshot in one page (older servers)."""
        if snap is None:
            after, following = 0, None
        elif isinstance(snap, dict) and _is_int(snap.get("after")):
            after, following = snap["after"], snap.get("next")
            if following is not None and not (_is_int(following) and following > after):
                return None
        else:
            return None
        expected = self._snapshot
        # A first page (after 0) is always welcome: the server may start over.
        if after != 0 and (expected is None or expected != (cursor, after)):
            return None
        if following is not None and not more:
            return None
        self._snapshot = None if following is None else (cursor, following)
        return (after, following)

    def batch_applied(self, now: float) -> Action:
        """The last ApplyBatch is committed: fetch more, or go live."""
        batch = self._pending
        if self.state is not State.SYNCING or batch is None:
            return Close(f"batch applied in state {self.state.value}")
        self._pending = None
        self.cursor = batch.cursor
        if self._snapshot is not None:
            snap_cursor, after = self._snapshot
            return SendSync(snap_cursor, self.sync_limit, snapshot_after=after)
        if batch.more:
            return SendSync(batch.cursor, self.sync_limit)
        self._enter(State.LIVE, now, "")
        self.live_since = now
        self.sync_limit = SYNC_LIMIT
        return GoLive()

    def batch_refused(self, error: PoisonEvent, now: float) -> Action:
        """The store could not apply one event of the last batch (`error` names it by
        its index in the batch, or by seq): the batch again without that event, so the
        rest is stored. An event it cannot name closes the connection instead."""
        batch = self._pending
        if self.state is not State.SYNCING or batch is None:
            return Close(f"batch refused in state {self.state.value}")
        index = error.index
        drop: int | None = None
        if index is not None and 0 <= index < len(batch.events):
            drop = index
        elif error.seq is not None and not batch.reset:
            drop = next((i for i, e in enumerate(batch.events) if e["seq"] == error.seq), None)
        if drop is None:
            return self._fail(now, f"could not store what the server sent: {error.message}")
        self._poisoned(error.message)
        events = batch.events[:drop] + batch.events[drop + 1 :]
        again = ApplyBatch(
            events, batch.cursor, batch.reset, batch.more, (error.message,), batch.snapshot
        )
        self._pending = again
        return again

    def live_event(self, params: Any, now: float) -> Action:
        """An `event` notification, taken in arrival order once live."""
        del now
        if self.state is not State.LIVE or self.cursor is None:
            return Ignore(f"event in state {self.state.value}")
        try:
            event = check_event(params)
        except PoisonEvent as exc:
            self._poisoned(exc.message)
            if exc.seq is not None and exc.seq > self.cursor:
                # It was sent, and it will never be usable: step past it for good.
                self.cursor = exc.seq
                return Skip(exc.message, exc.seq)
            return Ignore(exc.message)
        if event is None:
            seq = params["seq"] if isinstance(params, dict) else None
            if _is_int(seq):
                # An event of a kind we do not know still moves the cursor: it was sent.
                self.cursor = max(self.cursor, seq)
            return Ignore(f"unknown event kind {str(params.get('kind'))[:40]!r}")
        seq = event["seq"]
        if seq <= self.cursor:
            return Ignore(f"duplicate event seq {seq} <= cursor {self.cursor}")
        self.cursor = seq
        return Deliver(event)

    def store_refused(self, error: PoisonEvent, event: dict[str, Any]) -> Action:
        """The store could not apply a live event `Deliver` handed on: skip it."""
        self._poisoned(error.message)
        return Skip(error.message, event["seq"])

    def closed(self, now: float, reason: str, *, too_big: bool = False) -> Action:
        """The connection ended (or failed to open, or timed out): wait, then retry.

        `too_big`: it ended because the server sent a frame over our limit. If that was
        a sync page, the next connection asks for pages a quarter the size, down to one
        event a page, so a server that sends pages too big for us still gets through.
        """
        if too_big and self.state is State.SYNCING:
            self.sync_limit = max(1, self.sync_limit // _SHRINK)
        if self.state in (State.AUTH_FAILED, State.DISCONNECTED):
            return Halt(self.detail)
        if self.state is State.BACKOFF and self.retry_at is not None:
            # We closed it ourselves (a Close action): the wait is already decided.
            return Wait(self.retry_at)
        return self._fail(now, reason, close=False)

    def auth_failed(self, now: float, reason: str = "") -> Action:
        """The server refused the token. Terminal until `reconfigure`."""
        self._pending = None
        self.live_since = None
        self._enter(State.AUTH_FAILED, now, reason or AUTH_FAILED_LINE)
        return Halt(self.detail)

    def reconfigure(self, now: float) -> Action:
        """New credentials: forget the failure and the backoff, and connect again."""
        self.backoff.reset()
        self._enter(State.DISCONNECTED, now, "")
        return self.start(now)

    def stop(self, now: float) -> Action:
        """Give up the link on purpose (daemon shutting down)."""
        self._pending = None
        self.live_since = None
        if self.state is not State.AUTH_FAILED:
            self._enter(State.DISCONNECTED, now, "stopped")
        return Halt("stopped")

    # ---- internals

    def _fail(self, now: float, reason: str, *, close: bool = True) -> Action:
        if self.live_since is not None and now - self.live_since >= self.stable_after:
            self.backoff.reset()
        self._pending = None
        self._snapshot = None
        self.live_since = None
        until = now + self.backoff.next_delay()
        self._enter(State.BACKOFF, now, reason)
        self.retry_at = until
        return Close(reason) if close else Wait(until)
