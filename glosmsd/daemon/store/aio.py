"""`AsyncStore`: a `Store` on one dedicated writer thread, awaited from the event loop.

Every call runs on the same thread, in call order, so writes are serialized and the loop
never blocks on SQLite; events go to `on_events` on the loop's thread. There is one way to
call the store, `await store.run(Store.method, *args)`, typed through the method itself
(mypy checks the arguments and the result), so nothing mirrors the store's methods here.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from glosmsd.daemon.store import failures
from glosmsd.daemon.store.base import EventsListener, LocalEvent
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
    ) -> None:
        self._executor = executor
        self._lock = lock
        self._store = store
        self._checkpointer = checkpointer
        self.thread_id: int = 0

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

        def deliver(events: list[LocalEvent]) -> None:
            if on_events is not None:
                loop.call_soon_threadsafe(on_events, events)

        def open_store() -> tuple[Store, Checkpointer]:
            store = Store.open(
                path, on_events=deliver if on_events else None, busy_timeout=busy_timeout
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
        astore = cls(executor, store, checkpointer, lock)
        astore.thread_id = await loop.run_in_executor(executor, threading.get_ident)
        return astore

    async def run(
        self, method: Callable[Concatenate[Store, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`method(store, *args, **kwargs)` on the store's thread: `await s.run(Store.cursor)`."""
        call = functools.partial(_explained, self._store, method, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    @property
    def path(self) -> Path:
        return self._store.path

    async def close(self) -> None:
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
