"""The outbox's deliverer: takes what `glosmsd.core.outbox` says is due and sends it.

At most 4 sends in flight, exactly once (idempotent client ids): a queued item's files are
uploaded first (and marked uploaded in the store, so a restart does not upload them
again), then `send` is called; the core's verdict (done, failed, retry at) is written back
to the store. The retry policy is the core's; this module only carries it out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glosmsd.core.outbox import Done, Failed, Outbox, QueuedItem, Retry
from glosmsd.daemon.ports import ServerLink
from glosmsd.daemon.store import AsyncStore, OutboxItem, Store

log = logging.getLogger(__name__)


class Sender:
    """Delivers the outbox: at most 4 in flight, exactly once (idempotent client ids)."""

    def __init__(
        self,
        store: AsyncStore,
        *,
        link: Callable[[], ServerLink],
        own_ext: Callable[[], str | None],
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.store = store
        self.link = link
        self.own_ext = own_ext
        self.clock = clock
        self.core = Outbox(rng)
        self._wake = asyncio.Event()
        #: Sends just accepted, as their outbox rows were written: the first attempt
        #: takes its item from here instead of reading the row back (issue 16).
        self._fresh: dict[str, OutboxItem] = {}
        #: The attempts in flight, while `run` runs.
        self._attempts: asyncio.TaskGroup | None = None

    def add(self, client_id: str, order: int, item: OutboxItem | None = None) -> None:
        """Queue `client_id`; `item` is its outbox row exactly as just committed, if known."""
        if item is not None:
            self._fresh[client_id] = item
        self.core.add(QueuedItem(client_id, order, 0, 0.0))
        # Started here, not on `run`'s next turn: that was three more wake-ups of tasks
        # on a send's way out (issue 16). `run` still wakes to set its next timer.
        self._start_due()
        self._wake.set()

    def wake_all(self) -> None:
        self.core.wake(self.clock())
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; the attempts in flight are this call's tasks and end
        with it."""
        items = await self.store.run(Store.outbox_items)
        self.core.load(_queued(i) for i in items)
        async with asyncio.TaskGroup() as attempts:
            self._attempts = attempts
            try:
                while True:
                    self._start_due()
                    nxt = self.core.next_wakeup()
                    timeout = None if nxt is None else max(0.0, nxt - self.clock())
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout)
            finally:
                self._attempts = None  # the group is ending: it takes no new attempt

    def _start_due(self) -> None:
        """Start an attempt for each item the core says is due now (while `run` runs)."""
        attempts = self._attempts
        if attempts is None:
            return
        for item in self.core.take(self.clock()):
            attempts.create_task(self._attempt(item), name=f"send {item.client_id}")

    async def _attempt(self, item: QueuedItem) -> None:
        store = self.store
        try:
            queued = self._fresh.pop(item.client_id, None)
            if queued is None:
                queued = await store.run(Store.outbox_item, item.client_id)
            if queued is None:  # deleted or already done
                self.core.settle(item.client_id, self.clock(), result=None)
                return
            result = await self._deliver(queued)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            verdict = self.core.settle(item.client_id, self.clock(), error=exc)
        else:
            verdict = self.core.settle(item.client_id, self.clock(), result=result)
        match verdict:
            case Done(message=message):
                if message is not None:
                    # One message merged: a short write with no fsync (`run_light`).
                    await store.run_light(
                        Store.outbox_done, item.client_id, message, own_ext=self.own_ext()
                    )
            case Failed(reason=reason):
                await store.run(Store.outbox_failed, item.client_id, reason)
            case Retry(at=at, reason=reason):
                log.info("send %s will retry: %s", item.client_id, reason)
                await store.run(Store.outbox_defer, item.client_id, at, reason)
        self._wake.set()

    async def _deliver(self, queued: OutboxItem) -> Any:
        link = self.link()
        files = [dict(f) for f in queued.files]
        changed = False
        for f in files:
            if f.get("uploaded"):
                continue
            data = await asyncio.to_thread(Path(str(f["path"])).read_bytes)
            reply = await link.call(
                "upload",
                {"data": base64.b64encode(data).decode(), "name": f["name"]},
                timeout=120,
            )
            f.update(sha256=reply["sha256"], mime=reply["mime"], size=reply["size"], uploaded=True)
            changed = True
        if changed:
            await self.store.run(Store.outbox_update_files, queued.client_id, files)
        return await link.call(
            "send",
            {
                "client_id": queued.client_id,
                "to": queued.remote,
                "text": queued.text,
                "files": [{"sha256": f["sha256"], "name": f["name"]} for f in files],
                "from": queued.number,
            },
        )


def _queued(item: OutboxItem) -> QueuedItem:
    # Nothing is in flight after a restart; the server dedupes a repeated client id.
    return QueuedItem(item.client_id, item.order, item.attempts, 0.0)
