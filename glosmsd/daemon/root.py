"""The composition root: builds the store, service, link and socket, and runs them.

Everything is built here and nowhere else; the parts only know each other through the
constructor arguments given here. The entry point may add a `Frontend` (the SMS
window, from the desktop layer, which this layer may not import): its methods join the
one method table and its transport serves the socket's sessions. The daemon runs until
`request_stop()` (a signal, the socket's `daemon.quit`, or the tray's Quit), then closes
the frontend and the socket first (so clients see them go), stops the link and the
outbox, and closes the store last.

This module holds no use case and speaks no protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from glosmsd.daemon import api
from glosmsd.daemon.config import Config, tls_context
from glosmsd.daemon.hub import Event, Hub
from glosmsd.daemon.ipc import IpcServer, claim_data_dir
from glosmsd.daemon.link import Link
from glosmsd.daemon.service import Service
from glosmsd.daemon.store import AsyncStore, Store

log = logging.getLogger(__name__)


class Frontend(Protocol):
    """A part the entry point adds: `actions` binds the table's desktop methods
    (`api.DESKTOP_SPECS`), and `start` serves the socket's sessions on its own transport.
    A frontend that cannot start logs why and stays out of the way; the daemon runs on."""

    @property
    def actions(self) -> object: ...

    async def start(self, sessions: IpcServer) -> None: ...

    async def close(self) -> None: ...


FrontendFactory = Callable[[Config, Service], Frontend]


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        replace: bool = False,
        on_ready: Callable[[Daemon], Any] | None = None,
        frontend: FrontendFactory | None = None,
    ) -> None:
        self.config = config
        self.replace = replace
        self.on_ready = on_ready
        self.make_frontend = frontend
        self.hub = Hub()
        self.service: Service | None = None
        self.link: Link | None = None
        self.ipc: IpcServer | None = None
        self.frontend: Frontend | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def request_stop(self) -> None:
        """Ask the daemon to stop; safe from any thread and from signal handlers."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return
        if loop.is_closed():
            return
        loop.call_soon_threadsafe(stop.set)

    def _publish(self, events: Sequence[Event]) -> None:
        for ev in events:
            self.hub.publish(ev)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        paths = self.config.paths
        tls = tls_context(self.config)  # a bad ca_file stops the start with one line
        paths.ensure_dirs()
        # One daemon per data dir, whatever its socket: taken before the store opens.
        data_lock = await asyncio.to_thread(
            claim_data_dir, paths.data_dir, paths.socket_path, self.replace
        )
        store = await AsyncStore.open(paths.db_path, on_events=self._publish, lock=data_lock)
        service = Service(store, self.hub, files_dir=paths.files_dir)
        self.service = service
        tasks: list[asyncio.Task[Any]] = []
        ipc: IpcServer | None = None
        link: Link | None = None
        frontend: Frontend | None = None
        try:
            await service.load()
            await service.seed_prefs(self.config.prefs)
            link = Link(
                self.config.server,
                self.config.token,
                device_id=self.config.device_id,
                on_event=service.on_server_event,
                on_status=service.on_link_status,
                get_cursor=functools.partial(store.run, Store.cursor),
                apply_batch=service.apply_batch,
                on_hello=service.on_hello,
                ping_interval=self.config.ping_interval,
                ssl_context=tls,
            )
            self.link = link
            service.attach(link)
            if self.make_frontend is not None:
                frontend = self.make_frontend(self.config, service)
            ipc = IpcServer(
                paths.socket_path,
                api.build_table(service, frontend.actions if frontend else None),
                self.hub,
                service.replay,
                functools.partial(store.run, Store.last_event_id),
                on_quit=self.request_stop,
                hello=lambda: {"server": self.config.server},
            )
            await ipc.start(replace=self.replace)
            self.ipc = ipc
            if frontend is not None:
                await frontend.start(ipc)
                self.frontend = frontend
            tasks = [
                asyncio.create_task(link.run(), name="link"),
                asyncio.create_task(service.sender.run(), name="outbox"),
            ]
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    self._loop.add_signal_handler(sig, self.request_stop)
            log.info("running: socket %s, server %s", paths.socket_path, self.config.server)
            essential = list(tasks)
            if self.on_ready is not None:
                result = self.on_ready(self)
                if asyncio.iscoroutine(result):
                    tasks.append(asyncio.create_task(result, name="on-ready"))
            stop_wait = asyncio.create_task(self._stop.wait())
            # The daemon lives as long as its link and outbox; helpers may end on their own.
            await asyncio.wait([stop_wait, *essential], return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("%s stopped", task.get_name(), exc_info=task.exception())
        finally:
            log.info("glosmsd stopping")
            if frontend is not None:
                await frontend.close()
            if ipc is not None:
                await ipc.close()
            if link is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(link.stop(), 5)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await service.close()
            await store.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    self._loop.remove_signal_handler(sig)
