"""The SMS window as the daemon's frontend: its server and its actions, built from the
config, started and stopped by the composition root (`glosmsd.daemon.root.Frontend`).

A window that cannot start (its `window_port` taken) is logged; the daemon runs on
without it, and `window.open` says why there is no window.
"""

from __future__ import annotations

import logging

from glosmsd.core.errors import GlosmsdError
from glosmsd.daemon.config import Config
from glosmsd.daemon.ipc import IpcServer
from glosmsd.daemon.service import Service
from glosmsd.desktop.window.actions import WindowActions
from glosmsd.desktop.window.server import WindowServer

log = logging.getLogger(__name__)


class WindowFrontend:
    def __init__(self, config: Config, service: Service) -> None:
        self.server = WindowServer(service, port=config.window_port)
        self._actions = WindowActions(
            service,
            self.server,
            profile=config.paths.state_dir / "window",
            window_command=config.window_command,
            call_command=config.call_command,
        )

    @property
    def actions(self) -> WindowActions:
        return self._actions

    async def start(self, sessions: IpcServer) -> None:
        try:
            await self.server.start(sessions)
        except GlosmsdError as exc:
            self.server.failure = exc.message
            log.error("the SMS window is off: %s", exc.message)  # noqa: TRY400 - said in full

    async def close(self) -> None:
        await self.server.close()
