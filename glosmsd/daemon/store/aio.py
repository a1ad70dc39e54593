"""`AsyncStore`: a `Store` on one dedicated writer thread, awaited from the event loop.

Every call runs on the same thread, in call order, so writes are serialized and the loop
never blocks on SQLite; events go to `on_events` on the loop's thread, in the one wake-up
of the loop that also hands the call's result back (a second `call_soon_threadsafe` per
write, for its events, was a self-pipe write and a loop wake-up of its own: issue 16).
The events of a call are published whether or not its caller is still waiting. There is one way to
call the store, `await store.run(Store.method, *args)`, typed through the method itself
(mypy checks the arguments and the result), so nothing mirrors the store's methods here.

`await store.run_light(Store.method, *args)` is for the few short writes that sync nothing
to disk and lie on a message's way to the screen (a live message merged, a send's reply
merged): made on the loop's thread when the store's thread has nothing to do, and on that
thread as `run` otherwise. Two thread hand-offs cost more than such a write (issue 16:
one delivery crossed four, each a futex or self-pipe wake-up of an idle thread, and the
two daemons' CPU per delivered message fell by about a third without two of them).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from glosmsd.core.errors import StoreLocked
from glosmsd.daemon.store import failures
from glosmsd.daemon.store.base import EventsListener, LocalEvent, log
from glosmsd.daemon.store.checkpoint import Checkpointer
from glosmsd.daemon.store.database import BUSY_TIMEOUT, Store
from glosmsd.daemon.store.rows import ExportedConversation
from glosmsd.system.datalock import DataLock

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """A `Store` on its own thread. Open with `await AsyncStore.open(path)`."""

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        store: Store,
        checkpointer: Checkpointer | None = None,
        lock: DataLock | None = None,
        *,
        on_events: EventsListener | None = None,
        events: collections.deque[list[LocalEvent]] | None = None,
    ) -> None:
        self._executor = executor
        self._lock = lock
        self._store = store
        self._checkpointer = checkpointer
        self.thread_id: int = 0
        self._on_events = on_events
        # Filled on the store's thread as writes commit, emptied on the loop's.
        self._events: collections.deque[list[LocalEvent]] = (
            collections.deque() if events is None else events
        )
        # Calls handed to the store's thread whose results the loop has not settled yet
        # (counted on the loop's thread only): while any is, the connection is that
        # thread's. `_closing`: the store is closing, every call goes by the thread.
        self._in_flight = 0
        self._closing = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        on_events: EventsListener | None = None,
        lock: DataLock | None = None,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> AsyncStore:
        """Open the store at `path` on its own thread; `lock` (the data dir's, see
        `system.datalock`) is released when the store is closed or fails to open;
        `busy_timeout` is `Store.open`'s."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glosmsd-store")
        loop = asyncio.get_running_loop()
        committed: collections.deque[list[LocalEvent]] = collections.deque()

        def open_store() -> tuple[Store, Checkpointer]:
            # Kept until the call that wrote them hands its result back (`_settle`).
            store = Store.open(
                path,
                on_events=committed.append if on_events else None,
                busy_timeout=busy_timeout,
            )
            checkpointer: Checkpointer | None = None
            try:
                checkpointer = Checkpointer(store.path)
                store.defer_checkpoints(checkpointer.committed)
            except BaseException:
                if checkpointer is not None:
                    checkpointer.stop()
                store.close()
                raise
            return store, checkpointer

        try:
            store, checkpointer = await loop.run_in_executor(executor, open_store)
        except BaseException:
            executor.shutdown(wait=False)
            if lock is not None:
                lock.release()
            raise
        astore = cls(executor, store, checkpointer, lock, on_events=on_events, events=committed)
        astore._publish()  # anything the open wrote (nothing, as of now)
        astore.thread_id = await astore.run(lambda _store: threading.get_ident())
        return astore

    async def run(
        self, method: Callable[Concatenate[Store, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`method(store, *args, **kwargs)` on the store's thread: `await s.run(Store.cursor)`."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[T] = loop.create_future()
        work = self._executor.submit(_explained, self._store, method, *args, **kwargs)
        self._in_flight += 1

        def done(_work: concurrent.futures.Future[T]) -> None:  # on the store's thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._settle, work, result)

        work.add_done_callback(done)
        try:
            return await result
        except asyncio.CancelledError:
            work.cancel()  # not started yet: it never runs
            raise

    async def run_light(
        self, method: Callable[Concatenate[Store, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`run`, made on the loop's thread when the store's thread is idle.

        Only for a short write with no durable commit (no fsync: a few hundred
        microseconds of SQLite). It never waits for another program's lock on the loop
        (`Store.nowait`): then, or with calls still queued on the store's thread (they
        go first, in order), it is `run`.
        """
        if self._in_flight or self._closing:
            return await self.run(method, *args, **kwargs)
        store = self._store
        try:
            with store.nowait():
                return _explained(store, method, *args, **kwargs)
        except StoreLocked:
            return await self.run(method, *args, **kwargs)
        finally:
            self._publish()

    def _settle(self, work: concurrent.futures.Future[T], result: asyncio.Future[T]) -> None:
        """On the loop: publish what the store committed, then hand the call's result back."""
        self._in_flight -= 1
        self._publish()
        if result.done():  # the caller gave up waiting
            return
        if work.cancelled():
            result.cancel()
            return
        exc = work.exception()
        if exc is not None:
            result.set_exception(exc)
        else:
            result.set_result(work.result())

    def _publish(self) -> None:
        events = self._events
        on_events = self._on_events
        while events:
            batch = events.popleft()
            if on_events is None:
                continue
            try:
                on_events(batch)
            except Exception:  # a listener's bug must not keep a result from its caller
                log.exception("store events listener failed")

    @property
    def path(self) -> Path:
        return self._store.path

    async def close(self) -> None:
        self._closing = True
        try:
            if self._checkpointer is not None:
                # First, so that the store's connection is the last one and its close
                # checkpoints and removes the WAL.
                await asyncio.to_thread(self._checkpointer.stop)
            await self.run(Store.close)
        finally:
            self._executor.shutdown(wait=True)
            if self._lock is not None:
                self._lock.release()  # last: the next daemon may open the store now

    async def export_rows(self) -> AsyncIterator[ExportedConversation]:
        """Every conversation with its messages; each one read in its own short call."""
        for cid in await self.run(Store.export_ids):
            item = await self.run(Store.export_conversation, cid)
            if item is not None:
                yield item


def _explained(store: Store, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`method(store, ...)`, with what SQLite raised said as a `StoreError` (-32005, its
    kind naming the cause) instead of a bare sqlite3 error (-32603 "Internal error")."""
    try:
        return method(store, *args, **kwargs)
    except sqlite3.Error as exc:
        raise failures.explain(exc, store.path) from exc
