"""The reference server's network side: websockets, auth, JSON-RPC dispatch, live push.

Each connection is authenticated during the handshake (Bearer token, checked against
hashes in the store), then answers its frames in order through one `MethodTable`. After
a `sync` that returned `more: false`, a per-connection pusher reads the events after the
connection's cursor whenever the `Bell` rings and sends them in seq order; reading from
the log (not from an in-memory queue) is what makes "nothing skipped, nothing doubled"
hold across admin writes from another process, server restarts and slow clients.

SQLite work runs on two worker threads, each owning one connection to the store: the
store thread makes every write (so a send's commit, durable before its reply: synced to
disk, `synchronous=FULL`, queues behind other writes only), the read thread every read
that writes nothing (sync pages, the pushers' log reads, sign-in, hello, contacts,
downloads) on a `PRAGMA query_only` connection. WAL gives each read a snapshot of what
was committed when it began, and a read always begins after the commit whose reply or
ring it follows, so nothing is read stale; under one thread a sync page flood (50 pages
of 1 MB a frame) made every send wait behind it (p99 358 ms in the soak). While a device
catches up, its next page is read while it parses the last (`ReadAhead`), and used only
if nothing rang since. A third thread watches the database for commits from other
processes (`PRAGMA data_version`) and rings the bell. A client's send, read mark or
deletion is the exception (`write_now`): a short transaction made on the loop's own
connection when the write lock is free (the trip to the store thread and back cost as
much as the write), else on the store thread as any other write; it waits on the loop for
its commit's fsync (see `write_now`). Otherwise this module never runs SQL itself, nor
waits on the event loop for a lock or a file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import http
import logging
import resource
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from glosmsd import __version__
from glosmsd.core import rpc, wire
from glosmsd.core.backoff import doubling
from glosmsd.core.errors import (
    INVALID_PARAMS,
    BadInput,
    ConfigError,
    GlosmsdError,
    ProtocolError,
    RpcError,
    StoreLocked,
)
from glosmsd.server import conntable, frames
from glosmsd.server.carrier import Carrier, Inbound, build
from glosmsd.server.db import (
    DEFAULT_UPLOAD_MAX_AGE,
    DEFAULT_UPLOAD_QUOTA,
    CarrierMode,
    Outbound,
    ServerStore,
    SyncBatch,
)
from glosmsd.system.supervisor import Supervisor

log = logging.getLogger(__name__)

PROTOCOLS: Final = (1,)
PATH: Final = "/v1"
MAX_FRAME: Final = wire.MAX_FRAME
MAX_CHUNK: Final = wire.MAX_CHUNK
CAPABILITIES: Final = ("sync", "send", "read", "delete", "files", "contacts", "snapshot")
CLOSE_BEHIND_HORIZON: Final = 4001
CLOSE_NUMBERS_CHANGED: Final = 4002
CLOSE_TOKEN_REVOKED: Final = 4003
WATCH_INTERVAL: Final = 0.1
AUTH_FAILURE_MESSAGE: Final = "authentication failed: bad or missing token\n"
PUSH_BATCH: Final = 500
#: Seconds a page read ahead is kept for its call: a device catching up asks within
#: milliseconds, and one that stops asking must not hold a page (up to 1 MiB) for good.
READ_AHEAD_KEEP: Final = 2.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How one server runs (the command line's options; `daemon.config.Config` is the daemon's)."""

    db: Path
    host: str = "127.0.0.1"
    port: int = 0
    carrier: str = "test"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_horizon: int = 100_000
    ping_interval: float = 20.0
    max_connections: int = conntable.DEFAULT_MAX_CONNECTIONS
    max_per_peer: int = conntable.DEFAULT_MAX_PER_PEER
    upload_quota: int = DEFAULT_UPLOAD_QUOTA
    upload_max_age: float = DEFAULT_UPLOAD_MAX_AGE

    @property
    def sweep_every(self) -> float:
        """How often unsent uploads past their age are looked for: a quarter of the age,
        between 0.2 s (short ages in tests) and 10 minutes."""
        return min(600.0, max(0.2, self.upload_max_age / 4))


class Bell:
    """Wakes every pusher when the event log may have grown.

    Each pusher registers its own `wake` event, clears it before it reads the log and
    waits on it afterwards, so a ring between the read and the wait is never missed.
    (One shared event per ring made every pusher wrap two waits in tasks, every time.)
    """

    def __init__(self) -> None:
        self._wakes: set[asyncio.Event] = set()
        #: How many times it rang: a read made before a ring may miss what was committed.
        self.rings = 0

    def add(self, wake: asyncio.Event) -> None:
        self._wakes.add(wake)

    def discard(self, wake: asyncio.Event) -> None:
        self._wakes.discard(wake)

    def ring(self) -> None:
        self.rings += 1
        for wake in self._wakes:
            wake.set()


class TrackedConnection(ServerConnection):
    """A websocket connection the app's `ConnectionTable` holds from accept to loss.

    `ext` is the extension its token named (set during the handshake, read by the
    handler): kept on the connection itself, it goes when the connection goes, whether
    or not its handshake completes (a side table only the handler emptied leaked).
    """

    app: App
    ext: str | None = None
    token_id: str = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.app.admit(self, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.app.conns.remove(self)
        super().connection_lost(exc)

    def send_data(self) -> None:
        """Write the frames waiting in the protocol in one write, not one each (a reply
        and the push `Peer.hold` kept with it: one send() and one segment); the end of
        the stream, if it is among them, as websockets does it."""
        chunks = self.protocol.data_to_send()
        end = len(chunks)
        while end and not chunks[end - 1]:  # b"": half-close after the data
            end -= 1
        if end:
            self.transport.write(chunks[0] if end == 1 else b"".join(chunks[:end]))
        if end < len(chunks):
            if self.transport.can_write_eof():
                with contextlib.suppress(Exception):
                    self.transport.write_eof()
            else:
                self.transport.close()


@dataclass(frozen=True, slots=True)
class ReadAhead:
    """The sync page a catching-up device asks for next, read while it reads the last.

    A catch-up is one round trip a page, and the read thread sat idle while the device
    parsed a page, the device while the server read the next (21,000 events: 43 pages,
    each ~1 ms of reading, then ~1.5 ms of parsing). It is read once the reply before it
    is on the wire (read at once, its splicing held the GIL the reply's writes wanted),
    and it answers only the call it was read for (same cursor and limit, no
    `snapshot_after`) before the bell rings again, so it never misses a commit that call
    follows. `expiry` lets it go after `READ_AHEAD_KEEP`; it is cancelled whenever the
    page is taken or dropped first (left to run, each timer held its page for the whole
    wait: 67 pages alive at once in repeated catch-ups, ~44 MB).
    """

    cursor: int
    limit: int
    rings: int
    page: asyncio.Future[SyncBatch]
    expiry: asyncio.TimerHandle

    def answers(self, cursor: int, limit: int, snapshot_after: int | None, rings: int) -> bool:
        return snapshot_after is None and (cursor, limit, rings) == (
            self.cursor,
            self.limit,
            self.rings,
        )

    def cancel(self) -> None:
        """Let it go unused: its timer, and its read if still running (its result is
        then dropped as it comes, not kept)."""
        self.expiry.cancel()
        self.page.cancel()


def _forget(page: asyncio.Future[SyncBatch]) -> None:
    """A read-ahead's failure is news only to the call it answers, if that call comes."""
    if not page.cancelled():
        page.exception()


@dataclass(eq=False)
class Peer:
    """One authenticated connection."""

    ws: ServerConnection
    ext: str
    device: str
    token_id: str = ""
    hello: bool = False
    #: The numbers hello reported; the connection is closed when they change.
    numbers: list[str] | None = None
    live: int | None = None
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: (cursor, limit) of the sync page to read ahead once this reply is sent; then `ahead`.
    read_next: tuple[int, int] | None = None
    ahead: ReadAhead | None = None
    #: Sends waiting for `send_lock` or inside `ws.send` (none: `write` may go first).
    queued: int = 0
    #: Frames are framed but not written until `release` (see `hold`).
    held: bool = False

    def take_ahead(self) -> ReadAhead | None:
        """The page read ahead, no longer kept here (its timer cancelled)."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            ahead.expiry.cancel()
        return ahead

    def drop_ahead(self, page: asyncio.Future[SyncBatch] | None = None) -> None:
        """Let the page read ahead go unused (only if it is `page`, when given)."""
        if self.ahead is not None and (page is None or page is self.ahead.page):
            self.ahead.cancel()
            self.ahead = None

    async def send(self, data: str) -> None:
        if self.queued == 0 and self.write(data):
            return
        self.queued += 1
        try:
            async with self.send_lock:
                await self.ws.send(data)
        finally:
            self.queued -= 1

    def write(self, data: str) -> bool:
        """Frame `data` and write it now, if nothing else is being sent and the transport
        takes it (False otherwise: the caller goes through `ws.send`, which waits).

        What `ws.send` does for one text frame, less its async context manager and its
        drain, which wait only for what is checked here (an open connection, no
        fragmented frame being sent, the write buffer below its limit). A send's three
        frames (the reply, its push to the sender and to the recipient) took it each
        time; with `hold` below, the server's CPU for a message went 577 -> 517 us.
        """
        ws = self.ws
        if (
            ws.protocol.state is not State.OPEN
            or getattr(ws, "send_in_progress", True) is not None
            or getattr(ws, "paused", True)
            or ws.transport.is_closing()
        ):
            return False
        ws.protocol.send_text(data.encode())
        if not self.held:
            ws.send_data()
        return True

    def hold(self) -> bool:
        """Frame what is written to this connection but keep it until `release` (False
        when the connection cannot: then nothing is held): a send's reply and the push
        of the sent message to the same connection then leave in one write, one segment
        and one wake-up of the client, not two. (TCP_CORK did it in the kernel: two more
        system calls a message, and two sends into the corked socket.)"""
        if self.queued or not isinstance(self.ws, TrackedConnection):
            return False
        self.held = True
        return True

    def release(self) -> None:
        """Write what `hold` kept, in one write (`TrackedConnection.send_data`)."""
        if self.held:
            self.held = False
            self.ws.send_data()

    async def send_pieces(self, pieces: Iterable[str]) -> None:
        """One frame as WebSocket fragments, yielding the loop between them (see
        `frames.FRAGMENT`): other connections' frames are answered in between."""

        async def turns() -> AsyncIterator[str]:
            for i, piece in enumerate(pieces):
                if i:
                    await asyncio.sleep(0)
                yield piece

        self.queued += 1
        try:
            async with self.send_lock:
                await self.ws.send(turns())
        finally:
            self.queued -= 1


def _write_then_read(
    store: ServerStore,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wanted: list[tuple[str, int]],
) -> tuple[T, list[SyncBatch] | None]:
    """On the thread that owns `store`: `fn`, then the live pushers' next reads (see
    `App.write`), made from what `fn` wrote where they can be (`sync_after_write`)."""
    store.logged.clear()  # so only what `fn` writes is there (a send again writes nothing)
    result = fn(store, *args, **kwargs)
    try:
        return result, store.sync_after_write(wanted, PUSH_BATCH) if wanted else None
    except Exception:
        # The write is committed; its caller must not see this. The pushers read again.
        log.exception("reading the log after a write failed")
        return result, None


class AuthThrottle:
    """Per-address failure counts: the third failure and later wait longer each time.

    At most `max_addresses` are remembered (the oldest failures are forgotten first), so
    failures from ever new addresses cannot grow it without end.
    """

    def __init__(
        self,
        *,
        free: int = 2,
        base: float = 0.25,
        cap: float = 5.0,
        forget_after: float = 300.0,
        max_addresses: int = 10_000,
    ) -> None:
        self._fails: dict[str, tuple[int, float]] = {}
        self._free, self._base, self._cap, self._forget = free, base, cap, forget_after
        self._max = max_addresses

    def delay(self, addr: str, now: float) -> float:
        if addr not in self._fails and len(self._fails) >= self._max:
            del self._fails[next(iter(self._fails))]  # dicts keep insertion order
        count, last = self._fails.pop(addr, (0, now))
        if now - last > self._forget:
            count = 0
        count += 1
        self._fails[addr] = (count, now)
        if count <= self._free:
            return 0.0
        return doubling(self._base, self._cap, count - self._free - 1)

    def success(self, addr: str) -> None:
        self._fails.pop(addr, None)


class App:
    """The running server: the store thread, the watcher, the carrier and the websocket side."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="glosmsd-store")
        self._store: ServerStore | None = None
        self._read_pool = ThreadPoolExecutor(1, thread_name_prefix="glosmsd-read")
        self._reader: ServerStore | None = None
        #: The event loop's own write connection (see `write_now`), opened by `start`.
        self._here: ServerStore | None = None
        self.bell = Bell()
        self.table = self._build_table()
        self._throttle = AuthThrottle()
        self.conns: conntable.ConnectionTable[TrackedConnection] = conntable.ConnectionTable(
            config.max_connections, config.max_per_peer
        )
        self._full_log = conntable.MinuteLog()
        self._peer_log = conntable.MinuteLog()
        self._emfile_log = conntable.MinuteLog()
        self._connection_class = type("Connection", (TrackedConnection,), {"app": self})
        #: Deliveries, shared log reads and the carrier's chores; entered by `start`, closed
        #: by `aclose` (this class is the server's composition root).
        self.tasks = Supervisor("glosmsd-server")
        self._lifetime = contextlib.AsyncExitStack()
        self._log_reads: dict[tuple[str, int], list[asyncio.Future[SyncBatch]]] = {}
        self._pushing: set[Peer] = set()
        self._peers: set[Peer] = set()
        # What each live pusher's next read returns, read right after the last write on
        # the same trip to the store thread; valid until the next ring (see `write`).
        self._prefetched: dict[tuple[str, int], SyncBatch] = {}
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.carrier: Carrier = build(config.carrier, self._inbound, self._carrier_mode)
        self.server: Server | None = None

    # ------------------------------------------------------------------ store access

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(store, *args)` on the store thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, functools.partial(self._call_store, fn, *args, **kwargs)
        )

    def _call_store(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._store is None:
            self._store = ServerStore(self.config.db)
            self._store.defer_checkpoints()  # the watcher checkpoints, off this thread
        return fn(self._store, *args, **kwargs)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(store, *args)` on the read thread: `fn` must write nothing (its
        connection is `query_only`, so a write there fails rather than racing the store
        thread). It sees every commit made before it is called."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._read_pool, functools.partial(self._call_reader, fn, *args, **kwargs)
        )

    def _call_reader(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._reader is None:
            self._reader = ServerStore(self.config.db)
            self._reader.query_only()
        return fn(self._reader, *args, **kwargs)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A store call that may add events: pushers are woken after it.

        The reads the woken pushers will make are done on the same trip to the store
        thread, right after the write, so an event costs one trip, not two. They are kept
        until the next ring only: every commit rings after it is made (ours here, other
        processes' from the watcher), so a kept read is never older than the last ring,
        and a pusher that used one is woken again by any later commit.
        """
        wanted = sorted({(p.ext, p.live) for p in self._pushing if p.live is not None})
        prefetched: dict[tuple[str, int], SyncBatch] = {}
        try:
            done: tuple[T, list[SyncBatch] | None] = await self.db(
                _write_then_read, fn, args, kwargs, wanted
            )
            result, batches = done
            if batches is not None:
                prefetched = dict(zip(wanted, batches, strict=True))
            return result
        finally:
            self.ring(prefetched)

    async def write_now(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`write`, made on the event loop's thread when the write lock is free.

        A client's send, read mark or deletion is a short transaction (0.1-0.3 ms of
        SQLite); the two trips to the store thread and back cost about as much again, and
        a GIL handoff and a wake-up each way. The loop's connection never waits for the
        lock (`nowait`): held by another connection (the admin CLI, the store thread's own
        writes), the write goes to the store thread as before, which waits.

        Its commit is synced to disk (`synchronous=FULL`, 0.2-0.4 ms here) and the loop
        waits for that fsync: a known exception to the module's rule, measured 16% faster
        in A->B than the store thread's trip (issue 16); a slow disk would make it matter,
        and then the fix is a group commit on the store thread.
        """
        here = self._here
        if here is None:
            return await self.write(fn, *args, **kwargs)
        wanted = sorted({(p.ext, p.live) for p in self._pushing if p.live is not None})
        try:
            result, batches = _write_then_read(here, fn, args, kwargs, wanted)
        except StoreLocked:
            return await self.write(fn, *args, **kwargs)
        except BaseException:
            self.ring()
            raise
        self.ring(dict(zip(wanted, batches, strict=True)) if batches is not None else None)
        return result

    def ring(self, prefetched: dict[tuple[str, int], SyncBatch] | None = None) -> None:
        """The log may have grown: drop reads made before, wake every pusher."""
        self._prefetched = prefetched or {}
        self.bell.ring()

    async def read_log(self, ext: str, cursor: int) -> SyncBatch:
        """`ServerStore.sync` for a pusher. The pushers one commit wakes ask in the same loop
        turn; they share one trip to the store thread (one event to A and B cost two
        trips, and B's waited behind A's), and equal (ext, cursor) reads share a result."""
        batch = self._prefetched.get((ext, cursor))
        if batch is not None:
            return batch
        fut: asyncio.Future[SyncBatch] = asyncio.get_running_loop().create_future()
        waiting = self._log_reads.setdefault((ext, cursor), [])
        waiting.append(fut)
        if len(self._log_reads) == 1 and len(waiting) == 1:
            # call_soon runs after every pusher woken in this turn has asked.
            asyncio.get_running_loop().call_soon(self._read_logs_soon)
        return await fut

    def _read_logs_soon(self) -> None:
        wanted, self._log_reads = self._log_reads, {}
        self.tasks.spawn(self._read_logs(wanted), name="read the logs")

    async def _read_logs(
        self, wanted: dict[tuple[str, int], list[asyncio.Future[SyncBatch]]]
    ) -> None:
        try:
            batches = await self.read(ServerStore.sync_many, list(wanted), PUSH_BATCH)
        except BaseException as exc:
            for futs in wanted.values():
                for fut in futs:
                    if not fut.done():
                        fut.set_exception(exc) if isinstance(exc, Exception) else fut.cancel()
            raise
        for futs, batch in zip(wanted.values(), batches, strict=True):
            for fut in futs:
                if not fut.done():
                    fut.set_result(batch)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Open everything and listen; returns the URL clients connect to."""
        self._loop = asyncio.get_running_loop()
        await self._lifetime.enter_async_context(self.tasks)
        try:
            self.conns.max_total = conntable.connection_cap(
                self.config.max_connections, raise_nofile()
            )
        except ValueError as exc:
            raise ConfigError(f"glosmsd-server cannot start: {exc}.") from None
        if self.conns.max_total < self.config.max_connections:
            log.warning(
                "serving at most %d connections, not %d: the descriptor limit leaves no "
                "more room after %d kept in reserve (raise it with ulimit -n)",
                self.conns.max_total,
                self.config.max_connections,
                conntable.DESCRIPTOR_RESERVE,
            )
        self._loop.set_exception_handler(self._loop_exception)
        await self.db(ServerStore.prune, self.config.log_horizon)
        self._here = ServerStore(self.config.db)  # migrated by the store thread just now
        self._here.defer_checkpoints()
        self._here.nowait()
        self._watcher = threading.Thread(target=self._watch, name="glosmsd-watch", daemon=True)
        self._watcher.start()
        await self.carrier.start(self.tasks)
        tls = None
        if self.config.tls_cert is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        self.server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            max_size=MAX_FRAME,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_interval,
            compression=None,
            ssl=tls,
            server_header=f"glosmsd-server/{__version__}",
            create_connection=self._connection_class,
            backlog=conntable.LISTEN_BACKLOG,
        )
        for outbound in await self.db(ServerStore.pending_outbound):
            self.tasks.spawn(self._deliver(outbound), name=f"deliver {outbound.id}")
        self.tasks.spawn(self._sweep_uploads(), name="sweep uploads")
        sock = next(iter(self.server.sockets))
        port = sock.getsockname()[1]
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"{'wss' if tls else 'ws'}://{host}:{port}{PATH}"

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        await self._lifetime.aclose()  # cancels and awaits every chore
        await self.carrier.aclose()
        self._watch_stop.set()
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.join)
        await self.db(ServerStore.close)
        if self._here is not None:
            self._here.close()
            self._here = None
        self._pool.shutdown()
        await asyncio.get_running_loop().run_in_executor(self._read_pool, self._close_reader)
        self._read_pool.shutdown()

    async def _sweep_uploads(self) -> None:
        """Remove uploads no message carries once they are `upload_max_age` old."""
        while True:
            try:
                files, size = await self.db(ServerStore.expire_uploads, self.config.upload_max_age)
            except GlosmsdError:
                log.exception("removing expired uploads failed; trying again later")
            else:
                if files:
                    log.info("removed %d expired uploads (%d bytes)", files, size)
            await asyncio.sleep(self.config.sweep_every)

    def _watch(self) -> None:
        """Notice commits (the admin CLI's, and our own), prune the log and checkpoint
        the WAL, so no send waits for a checkpoint's fsyncs."""
        store = ServerStore(self.config.db)
        try:
            seen = store.data_version()
            accounts = store.accounts_version()
            while not self._watch_stop.wait(WATCH_INTERVAL):
                version = store.data_version()
                if version == seen:
                    continue
                seen = version
                if store.accounts_version() != accounts and self._loop is not None:
                    accounts = store.accounts_version()
                    self._loop.call_soon_threadsafe(self._check_peers_soon)
                try:
                    if store.prune(self.config.log_horizon):
                        seen = store.data_version()
                    store.checkpoint()
                except GlosmsdError:
                    log.exception("pruning the event log or checkpointing failed")
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(self.ring)
        finally:
            store.close()

    def _check_peers_soon(self) -> None:
        self.tasks.spawn(self._check_peers(), name="check who is still signed in")

    async def _check_peers(self) -> None:
        """Tokens or numbers changed (`admin revoke-token`, `unassign-number`...): close
        each connection whose token is gone, or whose numbers are not those of its hello."""
        peers = list(self._peers)
        valid, numbers = await self.db(
            ServerStore.still_signed_in, [(p.ext, p.token_id) for p in peers]
        )
        for peer in peers:
            if peer.token_id not in valid:
                log.info("extension %s: token %s revoked, closing", peer.ext, peer.token_id)
                reason = "the token was revoked: ask for a new one"
                self.tasks.spawn(
                    peer.ws.close(CLOSE_TOKEN_REVOKED, reason), name=f"close {peer.ext}"
                )
            elif peer.numbers is not None and numbers.get(peer.ext) != peer.numbers:
                log.info("extension %s: numbers changed, closing", peer.ext)
                reason = "your SMS numbers changed: connect again"
                self.tasks.spawn(
                    peer.ws.close(CLOSE_NUMBERS_CHANGED, reason), name=f"close {peer.ext}"
                )

    # ------------------------------------------------------------------ carrier

    async def _carrier_mode(self) -> CarrierMode:
        return await self.db(ServerStore.carrier_mode)

    async def _inbound(self, msg: Inbound) -> None:
        await self.write(ServerStore.receive, msg.sender, msg.to, msg.text, msg.files)

    async def _deliver(self, outbound: Outbound) -> None:
        try:
            outcome = await self.carrier.deliver(outbound)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("carrier failed on message %d", outbound.id)
            await self.write(
                ServerStore.set_state,
                outbound.id,
                "failed",
                "The carrier could not be reached; try again later.",
            )
            return
        state = "sent" if outcome.ok else "failed"
        await self.write(ServerStore.set_state, outbound.id, state, outcome.reason)

    # ------------------------------------------------------------------ connections

    def admit(self, conn: TrackedConnection, transport: asyncio.BaseTransport) -> None:
        """A TCP connection was accepted: enter it in the table, closing what must go."""
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else "?"
        admission = self.conns.admit(conn, peer)
        for old in admission.evict:
            old.transport.abort()
        if admission.refused is not None and isinstance(transport, asyncio.Transport):
            transport.abort()
        if admission.evict or admission.refused is not None:
            count = self._full_log.note(time.monotonic())
            if count is not None:
                counts = self.conns.counts()
                log.warning(
                    "connection table full (%s of at most %d, %d of them pending "
                    "handshakes, from %d addresses): %d handshakes dropped or connections "
                    "refused since the last note; this is logged at most once a minute",
                    counts["connections"],
                    self.conns.max_total,
                    counts["pending"],
                    counts["peers"],
                    count,
                )

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Out of descriptors at accept: one line a minute, not a traceback a second."""
        if context.get("message") == "socket.accept() out of system resource":
            count = self._emfile_log.note(time.monotonic())
            if count is not None:
                log.error(
                    "accepting connections failed %d times since the last note: %s (%d "
                    "connections held); raise the descriptor limit (ulimit -n) or lower "
                    "--max-connections; this is logged at most once a minute",
                    count,
                    context.get("exception"),
                    len(self.conns),
                )
            return
        loop.default_exception_handler(context)

    # ------------------------------------------------------------------ handshake

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != PATH:
            return conn.respond(http.HTTPStatus.NOT_FOUND, f"not found: use {PATH}\n")
        addr = str(conn.remote_address[0]) if conn.remote_address else "?"
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        signed = None
        if scheme.lower() == "bearer" and token.strip() and len(token) < 512:
            signed = await self.read(ServerStore.sign_in, token.strip())
        if signed is None:
            delay = self._throttle.delay(addr, time.monotonic())
            log.warning("auth failed from %s (answered after %.2f s)", addr, delay)
            if delay:
                await asyncio.sleep(delay)  # slows guessing; other peers are not held up
            resp = conn.respond(http.HTTPStatus.UNAUTHORIZED, AUTH_FAILURE_MESSAGE)
            resp.headers["WWW-Authenticate"] = 'Bearer realm="glosmsd"'
            return resp
        self._throttle.success(addr)
        refused = self.conns.authenticate(conn) if isinstance(conn, TrackedConnection) else None
        if refused is not None:
            count = self._peer_log.note(time.monotonic())
            if count is not None:
                log.warning(
                    "refused %d connections from %s since the last note: %s", count, addr, refused
                )
            resp = conn.respond(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"too many connections: {refused}; close some, or try again later\n",
            )
            resp.headers["Retry-After"] = "30"
            return resp
        if isinstance(conn, TrackedConnection):
            conn.ext, conn.token_id = signed
        return None

    # ------------------------------------------------------------------ connection

    async def _handle(self, ws: ServerConnection) -> None:
        ext = ws.ext if isinstance(ws, TrackedConnection) else None
        if ext is None or not isinstance(ws, TrackedConnection):
            await ws.close(1008, "not authenticated")  # cannot happen: process_request refused it
            return
        headers: Headers = ws.request.headers if ws.request else Headers()
        peer = Peer(ws, ext, headers.get("X-Glosmsd-Device", "")[:64], ws.token_id)
        log.info("extension %s connected (device %r)", ext, peer.device)
        pusher = asyncio.create_task(self._push(peer))
        self._peers.add(peer)
        try:
            async for frame in ws:
                await self._frame(peer, frame)
        except ConnectionClosed:
            pass
        finally:
            self._peers.discard(peer)
            peer.read_next = None
            peer.drop_ahead()  # a closed connection asks for no page
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await pusher
            log.info("extension %s disconnected (device %r)", ext, peer.device)

    async def _frame(self, peer: Peer, frame: str | bytes) -> None:
        """Answer one frame: its calls in order, one reply frame, within the batch limits."""
        if isinstance(frame, bytes):
            err = ProtocolError("Binary frames are not part of protocol 1: send JSON as text.")
            await peer.send(frames.ready(rpc.error_reply(None, err.to_rpc())))
            return
        parsed = rpc.parse(frame)
        if parsed.is_batch and len(parsed.items) > frames.MAX_BATCH:
            await peer.send(frames.batch_too_long(len(parsed.items)))
            return
        texts: list[str] = []
        size = 0
        go_live: int | None = None
        for item in parsed.items:
            text: str | None
            if isinstance(item, dict):
                text = frames.ready(item)
            elif size >= frames.REPLY_BUDGET:
                text = frames.over_budget(item)
            else:
                if parsed.is_batch:
                    # A batch's calls are many turns of the loop, not one: a batch of 50
                    # refused calls (each explained by jsonschema) held it ~100 ms.
                    await asyncio.sleep(0)
                try:
                    result = await self._call(peer, item)
                except Exception as exc:
                    if not isinstance(exc, GlosmsdError):
                        log.exception("method %s failed", item.method)
                    text = frames.error(item, exc)
                else:
                    if isinstance(result, SyncBatch):
                        if not result.more:
                            go_live = (
                                result.cursor
                                if result.reset
                                else max(result.cursor, peer.live or 0)
                            )
                        envelope = frames.result_envelope(item)
                        text = None if envelope is None else result.to_json_text(*envelope)
                    elif isinstance(result, frames.Encoded):
                        text = frames.encoded_result(item, result)
                    else:
                        text = frames.result(item, result)
            if text is not None:
                texts.append(text)
                size += wire.byte_size(text)
        if size > frames.FRAGMENT:
            await peer.send_pieces(frames.pieces(texts, parsed.is_batch))
        else:
            data = frames.assemble(texts, parsed.is_batch)
            if data is not None:
                held = self._push_follows(peer) and peer.hold()
                try:
                    await peer.send(data)
                finally:
                    if held:
                        # After the pushers this frame's write woke, queued before it.
                        asyncio.get_running_loop().call_soon(peer.release)
        if peer.read_next is not None:
            if parsed.is_batch:
                # A batch is no catch-up (a device asks page by page, each after the last):
                # the soak's flood of batches of sync calls kept a page nobody asked for
                # after each one, ~20 pages (20 MB) at a time.
                peer.read_next = None
            else:
                self._read_ahead(peer, *peer.read_next)
        if go_live is not None:
            # Only after the reply is on the wire, so pushes never overtake the batch.
            peer.live = go_live
            peer.wake.set()

    def _push_follows(self, peer: Peer) -> bool:
        """Whether this peer's pusher was woken with events already read for it (by the
        write just made), so it sends them in the loop's next turn."""
        batch = self._prefetched.get((peer.ext, peer.live)) if peer.live is not None else None
        return batch is not None and bool(batch.texts)

    async def _call(self, peer: Peer, req: rpc.Request) -> Any:
        method, kwargs = self.table.bind(req)
        if not peer.hello and method.name != "hello":
            raise ProtocolError("Call hello first: it names the protocol version you speak.")
        bad = wire.lone_surrogate(kwargs)
        if bad is not None:
            raise RpcError(
                INVALID_PARAMS,
                f"Invalid params for {method.name}: param {bad!r} is not valid Unicode (it "
                "holds a lone surrogate): send text as UTF-8",
            )
        for param in method.params:
            # jsonschema takes 5.0 as an integer; the store and the replies want 5.
            value = kwargs.get(param.name)
            if isinstance(value, float) and param.schema.get("type") == "integer":
                kwargs[param.name] = int(value)
        return await method.handler(peer, **kwargs)

    async def _push(self, peer: Peer) -> None:
        self.bell.add(peer.wake)
        self._pushing.add(peer)
        try:
            while True:
                await peer.wake.wait()
                peer.wake.clear()
                if peer.live is None:
                    continue
                while True:
                    batch = await self.read_log(peer.ext, peer.live)
                    if batch.reset:
                        await peer.ws.close(
                            CLOSE_BEHIND_HORIZON, "cursor behind the log horizon: sync again"
                        )
                        return
                    for text in batch.texts:
                        await peer.send(frames.event(text))
                    peer.live = max(peer.live or 0, batch.cursor)
                    if not batch.more:
                        break
        finally:
            self.bell.discard(peer.wake)
            self._pushing.discard(peer)

    # ------------------------------------------------------------------ methods

    def _build_table(self) -> rpc.MethodTable:
        """Every method's params come from `wire.PARAMS`, the protocol's one description."""
        t = rpc.MethodTable()
        for name, params in wire.PARAMS.items():
            t.add(rpc.Method(name, getattr(self, f"m_{name}"), params, wire.SUMMARIES[name]))
        return t

    async def m_hello(self, peer: Peer, protocol: int, client: str = "") -> dict[str, Any]:
        if protocol not in PROTOCOLS:
            raise ProtocolError(
                f"Protocol {protocol} is not supported; this server speaks "
                f"{', '.join(map(str, PROTOCOLS))}.",
                data={"supported": list(PROTOCOLS)},
            )
        info = await self.read(ServerStore.hello, peer.ext)
        peer.hello = True
        peer.numbers = [n["number"] for n in info["numbers"]]
        log.info("hello from %s: %s", peer.ext, client[:80])
        return {
            "protocol": protocol,
            "server": f"glosmsd-server/{__version__}",
            **info,
            "capabilities": list(CAPABILITIES),
        }

    async def m_sync(
        self,
        peer: Peer,
        cursor: int,
        limit: int = wire.SYNC_LIMIT_DEFAULT,
        snapshot_after: int | None = None,
    ) -> SyncBatch:
        ahead, peer.read_next = peer.take_ahead(), None
        if ahead is not None and ahead.answers(cursor, limit, snapshot_after, self.bell.rings):
            batch = await ahead.page
        else:
            if ahead is not None:
                ahead.cancel()
            batch = await self.read(ServerStore.sync, peer.ext, cursor, limit, snapshot_after)
        if batch.more and not batch.reset:  # a snapshot's pages are rare: not read ahead
            peer.read_next = (batch.cursor, limit)
        return batch

    def _read_ahead(self, peer: Peer, cursor: int, limit: int) -> None:
        """Start reading the page `m_sync` expects to be asked for next (`ReadAhead`)."""
        peer.read_next = None
        peer.drop_ahead()
        page = asyncio.ensure_future(self.read(ServerStore.sync, peer.ext, cursor, limit))
        page.add_done_callback(_forget)  # the call it answers, if made, still gets the error
        expiry = asyncio.get_running_loop().call_later(READ_AHEAD_KEEP, peer.drop_ahead, page)
        peer.ahead = ReadAhead(cursor, limit, self.bell.rings, page, expiry)

    async def m_send(
        self,
        peer: Peer,
        client_id: str,
        to: str,
        text: str,
        files: list[dict[str, str]] | None = None,
        **kw: str,
    ) -> dict[str, Any] | frames.Encoded:
        sent = await self.write_now(
            ServerStore.send, peer.ext, client_id, to, text, files or [], from_=kw.get("from")
        )
        if sent.outbound is not None:
            self.tasks.spawn(self._deliver(sent.outbound), name=f"deliver {sent.outbound.id}")
        if sent.message_text is not None:
            return frames.Encoded(sent.message, sent.message_text)
        return sent.message

    async def m_read(self, peer: Peer, number: str, remote: str, up_to: int) -> dict[str, Any]:
        return {"seq": await self.write_now(ServerStore.mark_read, peer.ext, number, remote, up_to)}

    async def m_delete_message(self, peer: Peer, id: int) -> dict[str, Any]:
        return {"seq": await self.write_now(ServerStore.delete_message, peer.ext, id)}

    async def m_delete_conversation(
        self, peer: Peer, number: str, remote: str, up_to: int | None = None
    ) -> dict[str, Any]:
        seq, up_to = await self.write_now(
            ServerStore.delete_conversation, peer.ext, number, remote, up_to
        )
        return {"seq": seq, "up_to": up_to}

    async def m_contacts(self, peer: Peer, query: str = "", limit: int = 50) -> list[Any]:
        del peer
        return await self.read(ServerStore.contacts, query, limit)

    async def m_upload(self, peer: Peer, data: str, name: str = "file") -> dict[str, Any]:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadInput("The file data is not valid base64.") from exc
        info = await self.db(
            ServerStore.upload,
            peer.ext,
            raw,
            name,
            quota=self.config.upload_quota,
            max_age=self.config.upload_max_age,
        )
        return info.to_json()

    async def m_download(
        self, peer: Peer, sha256: str, offset: int = 0, length: int = MAX_CHUNK
    ) -> dict[str, Any]:
        chunk = await self.read(ServerStore.download, peer.ext, sha256, offset, length)
        return {**chunk, "data": base64.b64encode(chunk["data"]).decode()}

    async def m_avatar(self, peer: Peer, ext: str) -> dict[str, Any]:
        del peer
        chunk = await self.read(ServerStore.avatar, ext)
        return {"data": base64.b64encode(chunk["data"]).decode(), "mime": chunk["mime"]}


def raise_nofile() -> int:
    """Raise this process's soft descriptor limit to its hard limit (as Go's runtime
    does); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return int(soft)
