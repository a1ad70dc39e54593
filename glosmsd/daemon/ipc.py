"""The local JSON-RPC socket: the only place that opens it.

Newline-delimited JSON-RPC 2.0 over a Unix socket that only its user can reach (0600 in a
0700 directory, and the peer's uid checked with SO_PEERCRED where the OS has it). Each
connection reads lines through a bounded `LineFramer`, answers calls in order, and may
`subscribe` to the daemon's events: first a replay of what it missed (from the store's
event log), then live events, never doubled, never out of order. Every outgoing line goes
through a bounded per-connection queue: replies wait for room (a client that does not read
its replies only stalls its own requests), events do not (a subscriber that stops reading
is dropped with a logged reason), so no client slows the daemon or the other clients. A
method whose handler takes a `progress` keyword (export, download) reports how far it got
as `progress` notifications to the calling connection, when it asked for them in `hello`.

The same sessions serve a second transport: the SMS window's WebSocket
(`glosmsd.desktop.window.server`) opens one with `open_session`, feeds it one JSON value
per frame with `handle`, and writes what the session queues; the method table, the
validation, the built-ins, the queue bounds and the event replay are the socket's own.

Use cases live in the service layer; this module only moves JSON. It must never touch the
store or the server link directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from glosmsd import __version__
from glosmsd.core import rpc
from glosmsd.core.errors import (
    INVALID_REQUEST,
    GlosmsdError,
    LimitExceeded,
    RpcError,
    SubscriberDropped,
)
from glosmsd.daemon.hub import Event, Hub, Subscription, end_queue
from glosmsd.daemon.socketclaim import claim_socket_path, prepare_socket_dir
from glosmsd.system import descriptors
from glosmsd.system.peercred import peer_uid

log = logging.getLogger(__name__)

IPC_PROTOCOL: Final = 1
OUT_QUEUE: Final = 1000
#: Bytes of replies and events one connection may have queued unread. Past it a reply
#: waits (the client's later requests wait with it) and an event drops the client.
OUT_BYTES: Final = 8 * 1024 * 1024
#: Calls in one batch; a longer batch is one -32600 and none of it runs.
MAX_BATCH: Final = 100
#: A line's replies: once they pass this many bytes the rest of its batch is not run
#: (each of those calls gets a -32008 saying so), so one line never answers more than
#: this plus one reply.
REPLY_BUDGET: Final = 1024 * 1024
#: A line longer than this is parsed on a worker thread, so the loop keeps serving the
#: other clients and the link's keepalive while it is decoded.
PARSE_OFF_LOOP: Final = 256 * 1024
#: Socket connections at once (fewer under a low descriptor limit, `descriptors.RESERVE`
#: kept). At the cap the longest idle connection with no subscription is closed to make
#: room; when every one is busy or subscribed the newcomer is refused with -32008.
MAX_CONNECTIONS: Final = 128
#: asyncio accepts up to the listen backlog in one turn before any connection is served:
#: the descriptors a burst can take beyond the cap, so it stays well inside the reserve.
ACCEPT_BACKLOG: Final = 16
LISTEN_BACKLOG: Final = 512
#: A full table (or a full descriptor table) is logged once a minute, not per accept.
FULL_LOG_EVERY: Final = 60.0
READ_CHUNK: Final = 64 * 1024
#: A connection whose replies have not moved for this long has stopped reading (a client
#: gone astray, or one that closed with unsent data, which keeps its socket open): it is
#: closed, so what it had queued (up to `OUT_BYTES` plus the transport's buffer, ~11 MB)
#: does not stay. Back-pressure alone kept such connections, and their memory, forever.
WRITE_STALL: Final = 30.0
WRITE_BATCH: Final = 256
#: What `hello` announces; only ever extended (additive changes).
CAPABILITIES: Final = ("batch", "notifications", "subscribe", "replay", "progress")

Replay = Callable[[int, int], Awaitable[tuple[list[Event], bool]]]
"""replay(after_id, up_to_id) -> (events after `after_id` up to `up_to_id`, gap)."""

# `rpc.encode`'s JSON, for the part of an event line the store did not write.
_HEAD: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_CONN: contextvars.ContextVar[IpcSession] = contextvars.ContextVar("glosmsd_ipc_conn")
#: What to run once the reply of the call being handled is queued (a subscription's replay
#: starts then). Per call, not per connection: a transport may handle calls concurrently.
_AFTER_REPLY: contextvars.ContextVar[list[Callable[[], None]]] = contextvars.ContextVar(
    "glosmsd_ipc_after_reply"
)


class OutQueue(asyncio.Queue[bytes | None]):
    """A connection's outgoing lines, bounded by count (`maxsize`) and counted in bytes.

    `queued` is the bytes waiting; `room` is set when a `get` leaves them under
    `OUT_BYTES` (or the connection is dropped), so a reply can wait for the client to read
    (the transports' writers only `get`).
    """

    def __init__(self, maxsize: int = OUT_QUEUE) -> None:
        super().__init__(maxsize)
        self.queued = 0
        self.room = asyncio.Event()
        self.room.set()

    def _put(self, item: bytes | None) -> None:
        super()._put(item)
        if item is not None:
            self.queued += len(item)
            if self.queued >= OUT_BYTES:
                self.room.clear()

    def _get(self) -> bytes | None:
        item: bytes | None = super()._get()
        if item is not None:
            self.queued -= len(item)
            if self.queued < OUT_BYTES:
                self.room.set()
        return item

    def discard(self) -> None:
        """Let go of every line still queued: nobody will write them any more. Called when
        a connection is over, so its replies (up to `OUT_BYTES`) are freed then, not
        whenever the cyclic garbage collector reaches what still refers to them."""
        self._queue.clear()  # type: ignore[attr-defined]
        self.queued = 0
        self.room.set()


@dataclass(eq=False)
class IpcSession:
    """One client connection: its outgoing queue and its subscription, if any."""

    name: str
    out: OutQueue = field(default_factory=OutQueue)
    subscription: Subscription | None = None
    pump: asyncio.Task[None] | None = None
    dropped: str | None = None
    wants_progress: bool = False
    #: The longest message this connection's transport takes (`max_line` in `hello`).
    max_line: int = rpc.DEFAULT_MAX_LINE
    transport: str = "unix"
    #: When a request last came in (monotonic), and whether one is being handled: the
    #: connection cap closes the longest idle one, never a busy one.
    last_active: float = field(default_factory=time.monotonic)
    busy: bool = False
    #: Closes the transport at once (its descriptor with it); set by the socket server.
    abort: Callable[[], None] | None = None

    def is_open(self) -> bool:
        return self.dropped is None

    def send(self, data: bytes) -> None:
        """Queue one line; a client whose queue is full has stopped reading: drop it."""
        if self.dropped:
            return
        if self.out.queued and self.out.queued + len(data) > OUT_BYTES:
            self.drop(f"{self.out.queued:,} bytes unread (it stopped reading)")
            return
        try:
            self.out.put_nowait(data)
        except asyncio.QueueFull:
            self.drop(f"{OUT_QUEUE} lines unread (it stopped reading)")

    async def reply(self, data: bytes) -> None:
        """Queue a reply, waiting for room: a client that does not read its replies only
        stops its own requests being read (back-pressure), like a full pipe. Room is
        counted in lines and in bytes; one reply bigger than the byte bound still goes,
        alone."""
        while not self.dropped and (
            self.out.full() or (self.out.queued and self.out.queued + len(data) > OUT_BYTES)
        ):
            # One wait for both bounds, which `drop` ends: waiting in `put` on a queue full
            # by count outlived the drop (nothing takes from a dropped queue), and kept the
            # connection, its task and its queued replies for good.
            self.out.room.clear()
            await self.out.room.wait()
        if not self.dropped:
            self.out.put_nowait(data)

    def drop(self, reason: str, *, quiet: bool = False) -> None:
        if self.dropped:
            return
        self.dropped = reason
        self.out.room.set()  # a reply waiting for room gives up
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "ipc client %s dropped: %s",
            self.name,
            reason,
        )
        if self.subscription:
            self.subscription.close()
        end_queue(self.out)  # the writer wakes and closes the socket


class IpcServer:
    """Serves a `MethodTable` on a Unix socket, with subscribe/replay built in."""

    def __init__(
        self,
        path: Path,
        table: rpc.MethodTable,
        hub: Hub,
        replay: Replay,
        last_event_id: Callable[[], Awaitable[int]],
        *,
        max_line: int = rpc.DEFAULT_MAX_LINE,
        allowed_uid: int | None = None,
        uid_of: Callable[[socket.socket], int | None] = peer_uid,
        on_quit: Callable[[], None] | None = None,
        hello: Callable[[], dict[str, Any]] | None = None,
        max_connections: int = MAX_CONNECTIONS,
        write_stall: float = WRITE_STALL,
    ) -> None:
        self.path = path
        self.write_stall = write_stall
        self.table = table
        self.hub = hub
        self._replay = replay
        self._last_event_id = last_event_id
        self.max_line = max_line
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        # The single seam for the credential check, so a test can play another user.
        self._uid_of = uid_of
        self._on_quit = on_quit
        self._hello = hello or (lambda: {})
        self._server: asyncio.Server | None = None
        self._inode: int | None = None
        self._conns: set[IpcSession] = set()
        self._counter = 0
        self._takes_progress: dict[str, bool] = {}
        self._wanted_connections = max_connections
        self.max_connections = max_connections
        #: The socket's own connections (the window's sessions are not counted here).
        self._unix: set[IpcSession] = set()
        self._full = _FullTable()
        self._old_handler: Any = None
        self._register_builtins()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, replace: bool = False) -> None:
        self.max_connections = descriptors.connection_cap(self._wanted_connections)
        self._quiet_accept_errors()
        prepare_socket_dir(self.path.parent)
        await asyncio.to_thread(claim_socket_path, self.path, replace)
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=READ_CHUNK, backlog=ACCEPT_BACKLOG
            )
        finally:
            os.umask(old_umask)
        for sock in self._server.sockets:
            # The kernel's queue stays long (a client's non-blocking connect gets EAGAIN
            # when it is full); asyncio's `backlog` only bounds one turn's accepts.
            with socket.socket(fileno=os.dup(sock.fileno())) as listening:
                listening.listen(LISTEN_BACKLOG)
        os.chmod(self.path, 0o600)
        self._inode = os.lstat(self.path).st_ino
        log.info("listening on %s (at most %d connections)", self.path, self.max_connections)

    def _quiet_accept_errors(self) -> None:
        """asyncio logs a traceback for every accept that finds the descriptor table full
        (17,458 of them under nofile=256); say it once a minute, without one."""
        loop = asyncio.get_running_loop()
        self._old_handler = old = loop.get_exception_handler()

        def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if str(context.get("message", "")).startswith("socket.accept() out of system"):
                self._full.note_descriptors(context.get("exception"))
                return
            if old is not None:
                old(lp, context)
            else:
                lp.default_exception_handler(context)

        loop.set_exception_handler(handler)

    async def close(self) -> None:
        # Unlink first, and only our own socket: under --replace the successor may
        # already have bound a new one at the same path.
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(self.path).st_ino == self._inode:
                self.path.unlink()
        if self._server is not None:
            self._server.close()
            for conn in list(self._conns):
                conn.drop("daemon shutting down")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().set_exception_handler(self._old_handler)

    @property
    def clients(self) -> int:
        return len(self._conns)

    # ------------------------------------------------------------------ connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._counter += 1
        sock = writer.get_extra_info("socket")
        uid = self._uid_of(sock) if sock is not None else None
        if uid is not None and uid != self.allowed_uid:
            log.warning(
                "ipc client #%d refused: uid %d is not the daemon's user", self._counter, uid
            )
            err = RpcError(
                INVALID_REQUEST,
                f"Permission denied: this glosmsd socket belongs to uid {self.allowed_uid}; "
                "run glosms as that user.",
            )
            await _refuse(writer, err)
            return
        if not self._make_room():
            full = LimitExceeded(
                f"Too many connections: glosmsd serves at most {self.max_connections} at "
                "once and every one is busy or subscribed. Close connections you no longer "
                "use, then retry.",
                data={"limit": self.max_connections},
            )
            await _refuse(writer, full)
            return
        conn = self.open_session(f"#{self._counter}", max_line=self.max_line)
        conn.abort = writer.transport.abort
        self._unix.add(conn)
        write_task = asyncio.create_task(self._write_loop(conn, writer))
        try:
            await self._read_loop(conn, reader)
        except (ConnectionError, OSError) as exc:
            log.debug("ipc client %s: %s", conn.name, exc)
        finally:
            self._unix.discard(conn)
            self.close_session(conn)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(write_task, 5)
            write_task.cancel()
            conn.out.discard()
            conn.abort = None

    def _make_room(self) -> bool:
        """Room for one more connection: free, or made by closing the longest idle one
        (no request being handled, nothing queued, no subscription). False: none."""
        open_ = [c for c in self._unix if c.is_open()]
        if len(open_) < self.max_connections:
            return True
        idle = [c for c in open_ if not c.busy and c.subscription is None and not c.out.queued]
        if not idle:
            self._full.note(self.max_connections, refused=True)
            return False
        oldest = min(idle, key=lambda c: c.last_active)
        oldest.drop(f"idle, closed to make room ({self.max_connections} connections)", quiet=True)
        if oldest.abort is not None:
            oldest.abort()  # its descriptor is free now, not after its writer's next turn
        self._full.note(self.max_connections, refused=False)
        return True

    # ------------------------------------------------------------------ sessions

    def open_session(
        self, name: str, *, max_line: int | None = None, transport: str = "unix"
    ) -> IpcSession:
        """A new client session, `name`d for the log; its transport writes what lands in
        `conn.out` (bytes, one JSON value each, newline-terminated; None: close) until
        `close_session`."""
        conn = IpcSession(
            name=name,
            max_line=self.max_line if max_line is None else max_line,
            transport=transport,
        )
        self._conns.add(conn)
        return conn

    def close_session(self, conn: IpcSession) -> None:
        """The client went: stop its event stream and wake its writer to finish."""
        self._conns.discard(conn)
        if conn.pump is not None:
            # Forget the task too: its context holds the session (`_CONN`), so a session
            # keeping its pump is a cycle that only a full collection frees, with the event
            # replay it queued (the soak's fuzzer subscribing since 0, then closing).
            conn.pump.cancel()
            conn.pump = None
        if conn.subscription is not None:
            conn.subscription.close()
        if not conn.dropped:
            conn.dropped = "closed"
            conn.out.room.set()
            with contextlib.suppress(asyncio.QueueFull):
                conn.out.put_nowait(None)

    async def handle(self, conn: IpcSession, message: bytes | str) -> None:
        """Answer one JSON-RPC message (a call, a notification or a batch) of `conn`."""
        token = _CONN.set(conn)
        try:
            await self._process(conn, message)
        finally:
            _CONN.reset(token)

    async def _read_loop(self, conn: IpcSession, reader: asyncio.StreamReader) -> None:
        framer = rpc.LineFramer(self.max_line)
        handled = 0
        while conn.is_open():
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            for item in framer.feed(data):
                if not conn.is_open():
                    return
                if isinstance(item, rpc.Overflow):
                    err = RpcError(
                        INVALID_REQUEST,
                        f"Line too long: the limit is {item.limit} bytes. Send files by path "
                        "instead of inline data, or split the batch.",
                        data={"limit": item.limit},
                    )
                    await conn.reply(rpc.encode(rpc.error_reply(None, err.to_rpc())))
                    continue
                conn.busy = True
                conn.last_active = time.monotonic()
                try:
                    await self.handle(conn, item)
                finally:
                    conn.busy = False
                handled += 1
                if handled % 64 == 0:  # one pipelining client must not starve the others
                    await asyncio.sleep(0)

    async def _process(self, conn: IpcSession, line: bytes | str) -> None:
        if len(line) > PARSE_OFF_LOOP:
            parsed = await asyncio.to_thread(rpc.parse, line, max_batch=MAX_BATCH)
        else:
            parsed = rpc.parse(line, max_batch=MAX_BATCH)
        callbacks: list[Callable[[], None]] = []
        token = _AFTER_REPLY.set(callbacks)
        out = rpc.Replies(parsed, REPLY_BUDGET)
        try:
            for item in parsed.items:
                if isinstance(item, dict):
                    out.add(item)
                elif out.full:
                    out.add(out.not_run(item))
                else:
                    out.add(await self._call(item))
                    if parsed.is_batch:
                        # A batch's calls are many small turns of the loop, not one long
                        # one: the other clients and the link's keepalive run between.
                        await asyncio.sleep(0)
        finally:
            _AFTER_REPLY.reset(token)
        data = out.encode()
        if data is not None:
            await conn.reply(data)
        for cb in callbacks:
            cb()

    async def _call(self, req: rpc.Request) -> dict[str, Any] | None:
        try:
            method, kwargs = self.table.bind(req)
            conn = _CONN.get()
            if conn.wants_progress and req.id is not None and self._reports_progress(method):
                kwargs["progress"] = _progress_sender(conn, req.id)
            result = method.handler(**kwargs)
            if inspect.isawaitable(result):
                result = await result
        except GlosmsdError as exc:
            return rpc.reply_for(req, error=exc)
        except Exception as exc:
            log.exception("ipc method %s failed", req.method)
            return rpc.reply_for(req, error=exc)
        return rpc.reply_for(req, result)

    def _reports_progress(self, method: rpc.Method) -> bool:
        known = self._takes_progress.get(method.name)
        if known is None:
            try:
                params = inspect.signature(method.handler).parameters
            except (TypeError, ValueError):
                params = {}  # type: ignore[assignment]
            known = self._takes_progress[method.name] = "progress" in params
        return known

    async def _write_loop(self, conn: IpcSession, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                # Everything already queued goes out in one write: a pipelining client
                # otherwise cost a send() and a drain per reply.
                item = await conn.out.get()
                batch: list[bytes] = []
                while item is not None:
                    batch.append(item)
                    if conn.out.empty() or len(batch) >= WRITE_BATCH:
                        break
                    item = conn.out.get_nowait()
                if batch:
                    writer.write(b"".join(batch))
                    # What the socket took whole needs no drain: `wait_for` was a task
                    # and a timer for every line a client was sent (issue 16).
                    transport = writer.transport
                    if transport.get_write_buffer_size() or transport.is_closing():
                        await asyncio.wait_for(writer.drain(), self.write_stall)
                if item is None:
                    break
        except TimeoutError:
            conn.drop(f"no reply taken for {self.write_stall:g} s (it stopped reading)")
            writer.transport.abort()  # its buffers go now, not after a flush that never comes
        except (ConnectionError, OSError) as exc:
            log.debug("ipc client %s write: %s", conn.name, exc)
        finally:
            # However the writer ended, the connection is over for its reader too: a reply
            # waiting for room must hear it. A client that stopped reading and then reset
            # its socket failed the write, and its reader waited for good, with up to
            # `OUT_BYTES` queued (the soak: one such connection every few seconds).
            conn.drop("its connection was lost", quiet=True)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)

    # ------------------------------------------------------------------ built-in methods

    def _register_builtins(self) -> None:
        t = self.table
        t.add(
            rpc.Method(
                "hello",
                self._m_hello,
                (
                    rpc.Param(
                        "protocol",
                        {"type": "integer", "minimum": 1, "maximum": rpc.MAX_SAFE_INT},
                        required=False,
                        description="The socket protocol version the client speaks.",
                    ),
                    rpc.Param(
                        "client",
                        {"type": "string", "maxLength": 200},
                        required=False,
                        description="Client name and version, for the log.",
                    ),
                    rpc.Param(
                        "progress",
                        {"type": "boolean"},
                        required=False,
                        description="Send `progress` notifications (id, done, total) while "
                        "a long call of this connection (export, download) runs.",
                    ),
                ),
                "Optional first call: protocol and daemon versions, capabilities.",
            )
        )
        t.add(
            rpc.Method(
                "subscribe",
                self._m_subscribe,
                (
                    rpc.Param(
                        "since",
                        {"type": ["integer", "null"], "minimum": 0, "maximum": rpc.MAX_SAFE_INT},
                        required=False,
                        description="Replay every event after this id first (the last id "
                        "you saw). Omit for live events only.",
                    ),
                ),
                "Stream events as `event` notifications: replay after `since`, then live.",
            )
        )
        t.add(
            rpc.Method(
                "unsubscribe", self._m_unsubscribe, (), "Stop the event stream on this connection."
            )
        )
        t.add(
            rpc.Method(
                "daemon.quit",
                self._m_quit,
                (),
                "Ask the daemon to exit (used by `glosmsd --replace`).",
            )
        )

    def _m_hello(
        self, protocol: int = IPC_PROTOCOL, client: str = "", progress: bool = False
    ) -> dict[str, Any]:
        if protocol > IPC_PROTOCOL:
            log.info(
                "ipc client %s speaks protocol %d; we speak %d", client, protocol, IPC_PROTOCOL
            )
        _CONN.get().wants_progress = progress
        info = {
            "protocol": IPC_PROTOCOL,
            "daemon": f"glosmsd/{__version__}",
            "capabilities": list(CAPABILITIES),
            "max_line": _CONN.get().max_line,
            "queue": OUT_QUEUE,
            "queue_bytes": OUT_BYTES,
            "max_batch": MAX_BATCH,
            "reply_bytes": REPLY_BUDGET,
            "max_connections": self.max_connections,
            "methods": [m.name for m in self.table],
        }
        info.update(self._hello())
        return info

    async def _m_subscribe(self, since: int | None = None) -> dict[str, Any]:
        conn = _CONN.get()
        if conn.subscription is not None:
            last = await self._last_event_id()
            return {"subscribed": True, "last_id": last, "replayed": 0, "gap": False}
        # Subscribe to live events BEFORE reading the replay, so nothing falls in between;
        # the pump drops live events the replay already covered.
        sub = self.hub.subscribe(f"ipc {conn.name}")
        conn.subscription = sub
        last = await self._last_event_id()
        backlog: list[Event] = []
        gap = False
        if since is not None and since < last:
            backlog, gap = await self._replay(since, last)
        elif since is not None and since > last:
            # An id this daemon never gave out (another database, or a reset store):
            # the client's view is stale and it must reload.
            gap = True
        ready = asyncio.Event()
        _AFTER_REPLY.get().append(ready.set)
        conn.pump = asyncio.create_task(self._pump(conn, sub, backlog, last, ready))
        return {"subscribed": True, "last_id": last, "replayed": len(backlog), "gap": gap}

    async def _pump(
        self,
        conn: IpcSession,
        sub: Subscription,
        backlog: list[Event],
        last: int,
        ready: asyncio.Event,
    ) -> None:
        await ready.wait()
        try:
            for ev in backlog:
                # Replay may be long: wait for room rather than dropping a slow reader.
                await conn.reply(event_line(ev))
                if not conn.is_open():
                    return
            while conn.is_open():
                ev = await sub.get()
                if ev.id <= last:
                    continue
                conn.send(event_line(ev))
        except SubscriberDropped:
            conn.drop("event queue overflowed (it stopped reading)")
        except EOFError:
            return

    def _m_unsubscribe(self) -> dict[str, Any]:
        conn = _CONN.get()
        if conn.pump is not None:
            conn.pump.cancel()
            conn.pump = None
        if conn.subscription is not None:
            conn.subscription.close()
            conn.subscription = None
        return {"subscribed": False}

    def _m_quit(self) -> dict[str, Any]:
        if self._on_quit is None:
            raise RpcError(INVALID_REQUEST, "This daemon cannot be stopped over the socket.")
        asyncio.get_running_loop().call_soon(self._on_quit)
        return {"quitting": True}


def event_line(ev: Event) -> bytes:
    """The `event` notification of `ev`, one line, as `rpc.encode` writes it.

    The event's data goes in as the JSON text the store logged it with, when it has one
    that is also valid here (no NaN or infinity, which the store's JSON allows and
    `rpc.encode` refuses; no lone surrogate, which UTF-8 cannot carry)."""
    text = ev.data_json
    if text is not None and "NaN" not in text and "Infinity" not in text:
        try:
            head = _HEAD.encode({"id": ev.id, "kind": ev.kind, "at": ev.at})[:-1]
            line = f'{{"jsonrpc":"2.0","method":"event","params":{head},"data":{text}}}}}\n'
            return line.encode()
        except (ValueError, UnicodeEncodeError):
            pass
    return rpc.encode(rpc.notification("event", ev.to_json()))


async def _refuse(writer: asyncio.StreamWriter, err: GlosmsdError) -> None:
    """Tell a connection why it is not served (one error line), then close it."""
    with contextlib.suppress(OSError):
        writer.write(rpc.encode(rpc.error_reply(None, err.to_rpc())))
        await writer.drain()
    writer.close()


class _FullTable:
    """Counts what a full connection table (or descriptor table) did and logs it at most
    once a minute: a flood of connections must not become a flood of log lines."""

    def __init__(self) -> None:
        self._logged_at = -FULL_LOG_EVERY
        self.closed = 0
        self.refused = 0
        self.no_descriptors = 0

    def note(self, cap: int, *, refused: bool) -> None:
        if refused:
            self.refused += 1
        else:
            self.closed += 1
        self._maybe_log(cap)

    def note_descriptors(self, exc: object) -> None:
        self.no_descriptors += 1
        self._maybe_log(None, exc)

    def _maybe_log(self, cap: int | None, exc: object = None) -> None:
        now = time.monotonic()
        if now - self._logged_at < FULL_LOG_EVERY:
            return
        self._logged_at = now
        if cap is not None:
            log.warning(
                "ipc: connection table full (%d, the most at once): %d idle connections "
                "closed to make room and %d refused since the last report; next report in "
                "a minute at the earliest",
                cap,
                self.closed,
                self.refused,
            )
        else:
            log.warning(
                "ipc: out of file descriptors (%s; the limit is %s): %d accepts failed "
                "since the last report; raise the limit (ulimit -n) or close clients",
                exc,
                descriptors.limit(),
                self.no_descriptors,
            )
        self.closed = self.refused = self.no_descriptors = 0


def _progress_sender(conn: IpcSession, req_id: rpc.RequestId) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        conn.send(
            rpc.encode(rpc.notification("progress", {"id": req_id, "done": done, "total": total}))
        )

    return report
