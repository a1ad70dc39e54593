"""The daemon's link to the SMS server: the only client-side importer of `websockets`.

A thin adapter around `glosmsd.core.protocol.LinkCore`: it opens the WebSocket (bearer token,
no compression, 4 MiB frames, websockets' own keepalive pings), carries out the actions
the core returns (hello, sync batches, live events, backoff waits), routes replies to
`call()` by id, and reports every status change. Every protocol decision (what is a
duplicate, when to reconnect, what a usable reply looks like) is the core's.

Frames a hostile or broken server sends (binary, not JSON, not JSON-RPC, unknown ids,
unknown event kinds, wrong types) are logged and dropped; they never end the link.
A callback that raises (the store failing to commit a batch) ends the connection, and
the next one syncs again from the stored cursor, so nothing is lost or applied twice.

This module must never touch the store or decide protocol questions itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import State as WsState

from glosmsd import __version__
from glosmsd.core import fastjson, rpc
from glosmsd.core.backoff import Backoff
from glosmsd.core.errors import AuthFailed, LinkClosed, LocalProtocolError, PoisonEvent, RpcError
from glosmsd.core.protocol import (
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
    Skip,
    State,
    Wait,
)
from glosmsd.daemon.linkerrors import CONNECT_ERRORS, connect_error
from glosmsd.system.supervisor import Supervisor

log = logging.getLogger(__name__)


async def close_quietly(ws: ClientConnection) -> None:
    """Close `ws`; a connection whose transport is already gone counts as closed.

    After the peer closes while a large frame is still buffered, CPython's selector transport
    can report the connection lost from its write callback without marking it so; websockets'
    `abort()` then fails with AttributeError on the detached transport. Nothing is left to
    close at that point, so the link must not die of it.
    """
    if ws.state is WsState.CLOSED:
        return
    try:
        await ws.close()
    except (AttributeError, OSError) as exc:
        log.debug("link: closing an already broken connection: %r", exc)


_T = TypeVar("_T")

MAX_FRAME: Final = 4 * 1024 * 1024
#: Live events waiting for `on_event`. A server that outruns the store this far gets
#: disconnected; the next connection catches up from the stored cursor instead.
MAX_PENDING_EVENTS: Final = 10_000
_LOG_CLIP: Final = 200
#: Put on a connection's event queue once its reader has ended (compared by identity).
_READER_ENDED: Final[dict[str, Any]] = {}

OnEvent = Callable[[dict[str, Any]], Awaitable[None]]
OnStatus = Callable[[LinkStatus], None]
GetCursor = Callable[[], Awaitable[int]]
OnHello = Callable[[dict[str, Any]], Awaitable[None]]


class ApplyBatchFn(Protocol):
    """Commit a sync batch and its cursor in one transaction; `snapshot` (after,
    through) on a page of a snapshot (see `glosmsd.core.protocol.ApplyBatch`). Raises
    `PoisonEvent` naming the one event it cannot store (the link retries without it)."""

    def __call__(
        self,
        events: list[dict[str, Any]],
        cursor: int,
        reset: bool,
        *,
        snapshot: tuple[int, int | None] | None = None,
    ) -> Awaitable[None]: ...


class _SessionEnded(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The current connection is over; `reason` is for the status line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _clip(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _LOG_CLIP else text[:_LOG_CLIP] + "..."


def _describe(exc: BaseException) -> str:
    """A short reason for the status line, without a traceback."""
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        if rcvd is not None and rcvd.reason:
            return f"connection closed by the server: {rcvd.reason}"
        sent = exc.sent
        if sent is not None and sent.reason:
            return f"connection closed: {sent.reason}"
        return "connection closed"
    if isinstance(exc, CONNECT_ERRORS):
        return _clip(connect_error(exc).message)
    return _clip(str(exc) or type(exc).__name__)


class Link:
    """The connection to the server, kept up for as long as `run()` runs.

    `status` and every `on_status` call carry times on `clock` (default
    `time.monotonic`). `call()` works once hello has succeeded (states syncing and live).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        device_id: str,
        on_event: OnEvent,
        on_status: OnStatus,
        get_cursor: GetCursor,
        apply_batch: ApplyBatchFn,
        on_hello: OnHello,
        ping_interval: float = 20.0,
        ssl_context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        stable_after: float = 30.0,
        backoff_min: float = 0.5,
        backoff_max: float = 60.0,
    ) -> None:
        self.url = url
        self._token = token
        self.device_id = device_id
        self._on_event = on_event
        self._on_status = on_status
        self._get_cursor = get_cursor
        self._apply_batch = apply_batch
        self._on_hello = on_hello
        self._ssl = ssl_context
        self._last_line = ""
        self._clock = clock
        self.keepalive = Keepalive(ping_interval)
        self._core = LinkCore(
            Backoff(rng or random.Random(), minimum=backoff_min, maximum=backoff_max),
            self.keepalive,
            stable_after=stable_after,
            client=f"glosmsd/{__version__}",
        )
        self._ids = rpc.IdSource()
        self._pending: dict[rpc.RequestId, asyncio.Future[rpc.Reply]] = {}
        self._ws: ClientConnection | None = None
        self._opening: asyncio.Future[ClientConnection] | None = None
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._kick = asyncio.Event()
        self._stopping = False
        self._reconfigure = False
        self._running = False
        self._done = asyncio.Event()
        #: The current connection's chores (closing it for new credentials, answering a
        #: server's call); they end with the connection.
        self._chores: Supervisor | None = None
        self.hello: dict[str, Any] | None = None
        #: Why the last attempt to open the connection failed (`glosmsd.daemon.linkerrors`);
        #: None once one opened.
        self.failure: LinkClosed | None = None
        self._oversized = False
        #: How many times a connection was attempted (for tests and diagnostics).
        self.connect_attempts = 0

    # ------------------------------------------------------------------ public

    @property
    def status(self) -> LinkStatus:
        return self._core.status

    async def run(self) -> None:
        """Keep the link up until `stop()`. Returns only after `stop()`."""
        if self._running:
            raise LocalProtocolError("Link.run() is already running")
        self._running = True
        self._done.clear()
        try:
            act = self._core.start(self._clock())
            self._publish()
            while not self._stopping:
                if self._reconfigure:
                    self._reconfigure = False
                    self._kick.clear()
                    act = self._core.reconfigure(self._clock())
                    self._publish()
                if isinstance(act, Connect):
                    act = await self._attempt()
                elif isinstance(act, Wait):
                    await self._pause(act.until - self._clock())
                    act = self._core.retry(self._clock())
                else:
                    # Halt (bad token): nothing until new credentials or stop.
                    await self._pause(None)
                self._publish()
        finally:
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        """End the link and wait for `run()` to return."""
        self._stopping = True
        self._kick.set()
        if self._opening is not None:
            self._opening.cancel()
        ws = self._ws
        if ws is not None:
            await close_quietly(ws)
        if self._running:
            await self._done.wait()
        self._core.stop(self._clock())
        self._publish()

    def set_token(self, token: str) -> None:
        """New credentials: drop the current connection (if any) and connect again now."""
        self._token = token
        self._reconfigure = True
        self._kick.set()
        ws, chores = self._ws, self._chores
        if ws is not None and chores is not None:
            # The reader ends the session; run() then reconnects with the new token.
            chores.spawn(close_quietly(ws), name="close for new credentials")

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        timeout: float = 30.0,  # noqa: ASYNC109 - a per-call deadline is part of the API
    ) -> Any:
        """Call a server method and return its result.

        Raises `LinkClosed` when not connected (or only half-way: before hello), when the
        link drops before the reply, or when no reply comes within `timeout`; the
        server's own errors are raised as their `glosmsd.core.errors` class.
        """
        ws = self._ws
        if ws is None or self._core.state not in (State.SYNCING, State.LIVE):
            raise LinkClosed(f"Not connected to the server ({self.describe()}).")
        return (await self._request(ws, method, params, timeout)).unwrap()

    def describe(self) -> str:
        """The status line for a user, now."""
        return self._core.status.describe(self._clock())

    # ------------------------------------------------------------------ run loop

    async def _pause(self, delay: float | None) -> None:
        """Wait `delay` seconds (None: forever) or until stop/set_token kicks us."""
        if self._kick.is_set():
            self._kick.clear()
            return
        if delay is not None and delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), delay)
        self._kick.clear()

    def _publish(self) -> None:
        status = self._core.status_changed()
        if status is None:
            return
        line = status.describe(self._clock())
        if line != self._last_line:  # connecting and saying hello read the same to a user
            log.info("link: %s", line)
            self._last_line = line
        try:
            self._on_status(status)
        except Exception:
            log.exception("on_status callback failed")

    async def _attempt(self) -> Any:
        """One connection, from the handshake to its end; returns the core's next action."""
        self.connect_attempts += 1
        headers = {
            "Authorization": f"Bearer {self._token}",
            "X-Glosmsd-Device": self.device_id,
        }
        extra: dict[str, Any] = {} if self._ssl is None else {"ssl": self._ssl}
        opening = asyncio.ensure_future(
            connect(
                self.url,
                additional_headers=headers,
                user_agent_header=f"glosmsd/{__version__}",
                compression=None,
                max_size=MAX_FRAME,
                ping_interval=self.keepalive.interval,
                ping_timeout=self.keepalive.ping_timeout,
                close_timeout=self.keepalive.close_timeout,
                open_timeout=self.keepalive.call_timeout,
                **extra,
            )
        )
        self._opening = opening
        try:
            ws = await opening
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._stopping and task is not None and not task.cancelling():
                return self._core.stop(self._clock())  # stop() gave up on the handshake
            raise
        except CONNECT_ERRORS as exc:
            self.failure = connect_error(exc)
            if isinstance(self.failure, AuthFailed):
                log.error("link: the server refused the token (HTTP 401)")  # noqa: TRY400
                return self._core.auth_failed(self._clock(), self.failure.message)
            return self._core.closed(self._clock(), _clip(self.failure.message))
        finally:
            self._opening = None
        self.failure = None
        self._events = asyncio.Queue()
        async with Supervisor("link connection") as chores:
            self._ws, self._chores = ws, chores
            reader = asyncio.create_task(self._read(ws), name="glosmsd-link-reader")
            try:
                reason = await self._session(ws, reader)
            except _SessionEnded as end:
                reason = end.reason
            finally:
                self._ws, self._chores = None, None
                await close_quietly(ws)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                self._fail_pending(LinkClosed("The connection to the server was lost."))
        if self._stopping:
            return self._core.stop(self._clock())
        oversized, self._oversized = self._oversized, False
        return self._core.closed(self._clock(), reason, too_big=oversized)

    async def _session(self, ws: ClientConnection, reader: asyncio.Task[str]) -> str:
        """hello, sync, then live events until the connection ends. Returns why it ended."""
        act: Any = self._core.connected(self._clock())
        self._publish()
        timeout = self.keepalive.call_timeout
        if isinstance(act, SendHello):
            act = self._core.hello_result(
                await self._step(ws, "hello", act.params, timeout), self._clock()
            )
        if isinstance(act, FetchCursor):
            self.hello = act.hello
            await self._callback("on_hello", self._on_hello(act.hello))
            cursor = await self._callback("get_cursor", self._get_cursor())
            act = self._core.sync_from(cursor, self._clock())
            self._publish()
        while isinstance(act, SendSync):
            reply = await self._step(ws, "sync", act.params, timeout)
            act = self._core.sync_result(reply, self._clock())
            while isinstance(act, ApplyBatch):
                for why in act.skipped:
                    log.warning("link: skipped a sync event: %s", _clip(why))
                self._publish()
                try:
                    await self._callback("apply_batch", self._apply(act))
                except PoisonEvent as exc:
                    # The store names the one event it cannot take: the rest goes in.
                    act = self._core.batch_refused(exc, self._clock())
                    continue
                act = self._core.batch_applied(self._clock())
        if isinstance(act, Close):
            return act.reason
        if not isinstance(act, GoLive):
            return f"unexpected step {type(act).__name__}"
        self._publish()
        # The reader's end comes through the event queue, after the events it took: one
        # await per event, where a task for `get()` and an `asyncio.wait` on it and the
        # reader cost about as much as storing the event (issue 16).
        events = self._events
        reader.add_done_callback(lambda _done: events.put_nowait(_READER_ENDED))
        while True:
            event = await events.get()
            if event is _READER_ENDED:
                return reader.result() if not reader.cancelled() else "connection closed"
            live = self._core.live_event(event, self._clock())
            if isinstance(live, Deliver):
                try:
                    await self._callback("on_event", self._on_event(live.event))
                except PoisonEvent as exc:
                    live = self._core.store_refused(exc, live.event)
            if isinstance(live, Skip):
                log.warning("link: skipped an event: %s", _clip(live.reason))
                self._publish()
                await self._callback("apply_batch", self._apply_batch([], live.cursor, False))
            elif isinstance(live, Ignore):
                log.warning("link: ignored an event: %s", _clip(live.reason))

    async def _step(
        self, ws: ClientConnection, method: str, params: dict[str, Any], limit: float
    ) -> Any:
        """A call made by the session itself: any failure ends the session."""
        try:
            return (await self._request(ws, method, params, limit)).unwrap()
        except LinkClosed as exc:
            raise _SessionEnded(exc.message) from exc
        except RpcError as exc:
            raise _SessionEnded(f"{method} failed: {_clip(exc.message)}") from exc
        except Exception as exc:
            message = getattr(exc, "message", str(exc))
            raise _SessionEnded(f"{method} refused by the server: {_clip(message)}") from exc

    def _apply(self, batch: ApplyBatch) -> Awaitable[None]:
        if batch.snapshot is None:
            return self._apply_batch(batch.events, batch.cursor, batch.reset)
        return self._apply_batch(batch.events, batch.cursor, batch.reset, snapshot=batch.snapshot)

    async def _callback(self, name: str, awaitable: Awaitable[_T]) -> _T:
        try:
            return await awaitable
        except PoisonEvent as exc:
            log.error("link: %s refused an event: %s", name, exc.message)  # noqa: TRY400
            raise
        except Exception as exc:
            log.exception("link: %s failed; reconnecting to sync again", name)
            raise _SessionEnded(f"could not store what the server sent ({name} failed)") from exc

    # ------------------------------------------------------------------ wire

    async def _request(
        self, ws: ClientConnection, method: str, params: dict[str, Any], limit: float
    ) -> rpc.Reply:
        req_id = self._ids()
        try:
            frame = rpc.encode(rpc.request(method, params, req_id)).decode().rstrip("\n")
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(f"params for {method} are not JSON: {exc}") from exc
        fut: asyncio.Future[rpc.Reply] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            try:
                await ws.send(frame)
            except ConnectionClosed as exc:
                raise LinkClosed(
                    f"The connection to the server was lost ({_describe(exc)})."
                ) from exc
            try:
                async with asyncio.timeout(limit):
                    return await fut
            except TimeoutError:
                raise LinkClosed(
                    f"The server did not answer {method} within {limit:g} s."
                ) from None
        finally:
            self._pending.pop(req_id, None)
            # The reader may have failed `fut` while we were still sending (and then the send
            # failed too): mark that exception seen, or asyncio logs it as never retrieved.
            if fut.done() and not fut.cancelled():
                fut.exception()
            else:
                fut.cancel()

    def _fail_pending(self, error: LinkClosed) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error)
        # The callers' `finally` removes their own entries.

    async def _read(self, ws: ClientConnection) -> str:
        """Read frames until the connection ends; returns why it ended."""
        reason = "connection closed"
        try:
            async for frame in ws:
                try:
                    if self._take(frame):
                        continue
                    reason = "the server sent events faster than they could be stored"
                    break
                except Exception:
                    # Whatever a frame contains, the link goes on.
                    log.exception("link: could not handle a frame: %s", _clip(frame))
        except ConnectionClosed as exc:
            reason = _describe(exc)
            sent = exc.sent
            if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
                self._oversized = True
                reason = (
                    f"the server sent a frame over {MAX_FRAME // 1024 // 1024} MiB; "
                    "asking for smaller sync pages"
                )
        self._fail_pending(LinkClosed(f"The connection to the server was lost ({reason})."))
        return reason

    def _take(self, frame: str | bytes) -> bool:
        """Handle one frame; False when the connection must end (event backlog full)."""
        if isinstance(frame, bytes):
            log.warning("link: ignored a binary frame of %d bytes", len(frame))
            return True
        try:
            obj = fastjson.loads(frame)
        except (ValueError, RecursionError):
            log.warning("link: ignored a frame that is not JSON: %s", _clip(frame))
            return True
        return all(self._take_one(item) for item in (obj if isinstance(obj, list) else [obj]))

    def _take_one(self, obj: Any) -> bool:
        try:
            msg = rpc.classify(obj)
        except RpcError:
            log.warning("link: ignored a frame that is not JSON-RPC: %s", _clip(obj))
            return True
        if isinstance(msg, rpc.Reply):
            try:
                fut = self._pending.get(msg.id)
            except TypeError:  # an unhashable id cannot be ours
                fut = None
            if fut is None or fut.done():
                log.warning("link: ignored a reply to unknown id %s", _clip(msg.id))
            else:
                fut.set_result(msg)
            return True
        if msg.method == "event" and msg.is_notification:
            if self._events.qsize() >= MAX_PENDING_EVENTS:
                return False
            self._events.put_nowait(msg.params if isinstance(msg.params, dict) else {})
            return True
        log.warning("link: ignored a server call %s", _clip(msg.method))
        ws, chores = self._ws, self._chores
        if not msg.is_notification and ws is not None and chores is not None:
            reply = rpc.error_reply(
                msg.id,
                {"code": -32601, "message": f"Method not found: {_clip(msg.method)}"},
            )
            chores.spawn(self._send_quietly(ws, reply), name="refuse a server call")
        return True

    async def _send_quietly(self, ws: ClientConnection, obj: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(rpc.encode(obj).decode().rstrip("\n"))


__all__ = ["Halt", "Link", "LinkStatus", "State"]
