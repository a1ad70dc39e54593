"""Socket calls off Tk's thread, for the quick-send popup.

Tk may only be used from the thread that made it, and a socket call can take seconds (a
send with photos waits while the daemon fits them). `Calls` runs each call on a small pool
and hands its result back on Tk's thread. It never touches a widget from the pool.
"""

from __future__ import annotations

import contextlib
import tkinter as tk
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from glosmsd.core.errors import GlosmsdError

#: How often Tk looks for finished socket calls, only while one is in flight.
POLL_MS: Final = 20
CALL_WORKERS: Final = 3


Done = Callable[[Any], None]
Failed = Callable[[GlosmsdError], None]


def as_error(exc: BaseException) -> GlosmsdError:
    if isinstance(exc, GlosmsdError):
        return exc
    return GlosmsdError(f"Something went wrong talking to glosmsd: {exc}")


class Calls:
    """Socket calls off Tk's thread.

    Tk may only be used from the thread that made it. A job runs on a small pool and must
    not touch a widget; its result (or its error) is handed to `done` (or `failed`) on
    Tk's thread, found by polling with `after` only while something is in flight, so an
    idle popup runs no timer.
    """

    def __init__(self, root: tk.Tk, *, workers: int = CALL_WORKERS) -> None:
        self.root = root
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="popup-call")
        self._waiting: list[tuple[Future[Any], Done, Failed]] = []
        self._timer: str | None = None
        self._closed = False

    def submit(self, job: Callable[[], Any], done: Done, failed: Failed) -> None:
        if self._closed:
            return
        self._waiting.append((self._pool.submit(job), done, failed))
        if self._timer is None:
            self._timer = self.root.after(POLL_MS, self._poll)

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    def _poll(self) -> None:
        self._timer = None
        finished: list[tuple[Future[Any], Done, Failed]] = []
        waiting: list[tuple[Future[Any], Done, Failed]] = []
        for item in self._waiting:
            (finished if item[0].done() else waiting).append(item)
        self._waiting = waiting
        for future, done, failed in finished:
            if self._closed:
                return
            exc = future.exception()
            try:
                if exc is None:
                    done(future.result())
                else:
                    failed(as_error(exc))
            except Exception as err:  # one broken answer must not strand the others
                self.root.report_callback_exception(type(err), err, err.__traceback__)
        # A callback above may have submitted (and so scheduled) already: one timer only.
        if self._waiting and not self._closed and self._timer is None:
            self._timer = self.root.after(POLL_MS, self._poll)

    def close(self) -> None:
        """Forget what is in flight (its results are dropped); never waits."""
        self._closed = True
        if self._timer is not None:
            with contextlib.suppress(tk.TclError):
                self.root.after_cancel(self._timer)
            self._timer = None
        self._waiting = []
        self._pool.shutdown(wait=False, cancel_futures=True)
