"""The composition root: builds the store, service, link and socket, and runs them.

Everything is built here and nowhere else; the parts only know each other through the
constructor arguments given here. The entry point may add a `Frontend` (the SMS
window, from the desktop layer, which this layer may not import): its methods join the
one method table and its transport serves the socket's sessions. The daemon runs until
`request_stop()` (a signal, the socket's `daemon.quit`, or the tray's Quit) or until a
task it cannot live without ends, then closes the frontend and the socket first (so
clients see them go), stops the link, cancels and awaits every background task (they all
run under one `glosmsd.system.supervisor.Supervisor`, a TaskGroup owned here), and closes
the store last.

This module holds no use case and speaks no protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from glosmsd.core.errors import DaemonFailed
from glosmsd.daemon import api
from glosmsd.daemon.config import Config, tls_context
from glosmsd.daemon.hub import Event, Hub
from glosmsd.daemon.ipc import IpcServer
from glosmsd.daemon.link import Link
from glosmsd.daemon.service import Service
from glosmsd.daemon.socketclaim import claim_data_dir
from glosmsd.daemon.store import AsyncStore, Store
from glosmsd.system.supervisor import Supervisor

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
        self.tasks: Supervisor | None = None
        #: Why the daemon stopped on its own (a kept task's failure); None when asked to.
        self.failure: DaemonFailed | None = None
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

    def _task_ended(self, name: str, failure: BaseException | None) -> None:
        """A task the daemon cannot live without ended: the daemon stops, cleanly (the
        link's run returning after the stop was asked is how it ends)."""
        if self._stop is not None and self._stop.is_set():
            return
        if self.failure is None:
            self.failure = DaemonFailed(
                f"glosmsd stopped: its {name} ended"
                + (f" ({type(failure).__name__}: {failure}); see the log." if failure else ".")
            )
        self.request_stop()

    async def run(self) -> None:
        """Run until `request_stop()`. Every background task runs under `self.tasks`; when
        this returns none is left pending. Raises `DaemonFailed` when a task it cannot
        live without (the link, the outbox) ended on its own."""
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
        try:
            async with Supervisor("glosmsd", on_exit=self._task_ended) as tasks:
                self.tasks = tasks
                await self._serve(store, tls, tasks)
        finally:
            await store.close()
            self._signals(install=False)
        if self.failure is not None:
            raise self.failure

    async def _serve(
        self, store: AsyncStore, tls: ssl.SSLContext | None, tasks: Supervisor
    ) -> None:
        """Build the parts, run until asked to stop, then close them in order: the
        frontend and the socket first (clients see them go), then the link."""
        paths = self.config.paths
        service = Service(store, self.hub, files_dir=paths.files_dir, tasks=tasks)
        self.service = service
        ipc: IpcServer | None = None
        link: Link | None = None
        frontend: Frontend | None = None
        try:
            await service.load()
            await service.seed_prefs(self.config.prefs)
            link = self._link(store, service, tls)
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
            tasks.keep(link.run(), name="link")
            tasks.keep(service.sender.run(), name="outbox")
            self._signals(install=True)
            log.info("running: socket %s, server %s", paths.socket_path, self.config.server)
            if self.on_ready is not None:
                result = self.on_ready(self)
                if asyncio.iscoroutine(result):
                    # A helper (the desktop): its failure is logged, the daemon runs on.
                    tasks.spawn(result, name="on-ready")
            assert self._stop is not None
            await self._stop.wait()
        finally:
            log.info("glosmsd stopping")
            if frontend is not None:
                await frontend.close()
            if ipc is not None:
                await ipc.close()
            if link is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(link.stop(), 5)

    def _link(self, store: AsyncStore, service: Service, tls: ssl.SSLContext | None) -> Link:
        return Link(
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

    def _signals(self, *, install: bool) -> None:
        loop = self._loop
        if loop is None:
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                if install:
                    loop.add_signal_handler(sig, self.request_stop)
                else:
                    loop.remove_signal_handler(sig)
