"""Background work under supervision: one `asyncio.TaskGroup`, entered by its owner.

A composition root (the daemon's `glosmsd.daemon.root`, the server's `glosmsd.server.app`)
enters a `Supervisor` and hands it to the parts it builds; they start their background
work through it instead of `asyncio.create_task`, so nothing runs that nobody owns:

- `spawn` starts a chore (tell the server a read mark, fetch a file, play a sound): if it
  fails, the failure is logged with the chore's name and the others go on; whoever awaits
  the returned future gets its result or its exception.
- `keep` starts a task the owner cannot live without (the link, the outbox): when it ends,
  returning or raising, that is logged with its name and `on_exit` tells the owner, which
  ends cleanly (the daemon stops) or starts it again.

Leaving the `async with` cancels whatever still runs and awaits it all, so after it no task
of this supervisor is pending. A chore spawned once the supervisor is closing is dropped
(logged): nothing is left to run it.

This module knows nothing about messages; it must never swallow a cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from glosmsd.core.errors import GlosmsdError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Told the name of a kept task that ended, and its exception (None: it returned).
OnExit = Callable[[str, BaseException | None], None]


class Supervisor:
    """Owns background tasks; see the module docstring."""

    def __init__(self, name: str, *, on_exit: OnExit | None = None) -> None:
        self.name = name
        self.on_exit = on_exit
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def __aenter__(self) -> Supervisor:
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        group, self._group = self._group, None
        if group is None:
            return
        # Every task's failure was caught by its guard, so the group raises nothing of its
        # own. A cancellation of the owner passes through it; any other exception of the
        # owner's is not given to it (it would come out wrapped in an ExceptionGroup, and
        # the entry point's one-line "glosmsd: ..." would become a traceback): the tasks
        # are cancelled above and awaited here, then the exception goes on as it was.
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            await group.__aexit__(exc_type, exc, tb)
        else:
            await group.__aexit__(None, None, None)

    @property
    def running(self) -> list[str]:
        """The names of the tasks that have not ended yet (for status and tests)."""
        return sorted(t.get_name() for t in self._tasks if not t.done())

    def spawn(self, coro: Coroutine[Any, Any, _T], *, name: str) -> asyncio.Future[_T]:
        """Run a chore; its outcome is the returned future's (see the module docstring)."""
        outcome: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        if not self._start(self._chore(coro, name, outcome), coro, name):
            outcome.cancel()
        return outcome

    def keep(self, coro: Coroutine[Any, Any, Any], *, name: str) -> None:
        """Run a task the owner cannot live without; `on_exit` hears when it ends."""
        self._start(self._kept(coro, name), coro, name)

    def _start(
        self, guarded: Coroutine[Any, Any, None], coro: Coroutine[Any, Any, Any], name: str
    ) -> bool:
        group = self._group
        if group is None or self._closing:
            guarded.close()  # neither ever runs: closed, so none is "never awaited"
            coro.close()
            if not self._closing:
                raise RuntimeError(f"{self.name}: start {name} inside `async with` the supervisor")
            log.debug("%s: %s not started: shutting down", self.name, name)
            return False
        task = group.create_task(guarded, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _chore(
        self, coro: Coroutine[Any, Any, _T], name: str, outcome: asyncio.Future[_T]
    ) -> None:
        try:
            value = await coro
        except asyncio.CancelledError:
            outcome.cancel()
            raise
        except Exception as exc:
            self._log_failure(name, exc)
            if not outcome.done():
                outcome.set_exception(exc)
                outcome.exception()  # logged here: not "never retrieved" when nobody awaits
        else:
            if not outcome.done():  # an awaiter that was cancelled cancelled the future
                outcome.set_result(value)

    async def _kept(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        failure: BaseException | None = None
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = exc
            log.error("%s: %s failed", self.name, name, exc_info=exc)  # noqa: TRY400
        else:
            log.info("%s: %s ended", self.name, name)
        if self.on_exit is not None:
            self.on_exit(name, failure)

    def _log_failure(self, name: str, exc: Exception) -> None:
        if isinstance(exc, GlosmsdError):  # a known failure with a message for the user
            log.warning("%s: %s failed: %s", self.name, name, exc.message)
        else:
            log.error("%s: %s failed", self.name, name, exc_info=exc)
