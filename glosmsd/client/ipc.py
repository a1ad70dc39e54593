"""A small blocking client for the daemon's socket, for the CLI and the popup.

Standard library only (socket, json) so `glosms` starts fast: no asyncio, no websockets,
no Pillow. It sends one call at a time, collects `event` notifications that arrive in
between (for `glosms watch`), and hands `progress` notifications of the running call to
the caller (for progress bars).
"""

from __future__ import annotations

import json
import socket
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from glosmsd.core import rpc
from glosmsd.core.errors import DaemonNotRunning, LinkClosed, RemoteProtocolError, SocketUnusable
from glosmsd.system.paths import socket_path

__all__ = ["CLIENT_MAX_LINE", "Client", "DaemonNotRunning", "SocketUnusable"]

CLIENT_MAX_LINE: Final = 256 * 1024 * 1024


class Client:
    """`with Client() as c: c.call("status")`."""

    def __init__(self, path: Path | None = None, *, timeout: float | None = 30.0) -> None:
        self.path = path or socket_path()
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._framer = rpc.LineFramer(CLIENT_MAX_LINE)
        self._lines: deque[bytes] = deque()
        self._events: deque[dict[str, Any]] = deque()
        self._ids = rpc.IdSource()

    def connect(self) -> Client:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise DaemonNotRunning(
                f"glosmsd is not running (nothing at {self.path}). Start it with `glosmsd &` "
                "or `make demo`, or set GLOSMSD_SOCKET if it listens elsewhere."
            ) from exc
        except PermissionError as exc:
            sock.close()
            raise SocketUnusable(
                f"Permission denied on {self.path}: that glosmsd belongs to another user. "
                "Run glosms as that user, or set GLOSMSD_SOCKET to your own daemon's socket."
            ) from exc
        except OSError as exc:
            sock.close()
            raise SocketUnusable(f"Cannot connect to glosmsd at {self.path}: {exc}") from exc
        self._sock = sock
        return self

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Client:
        return self.connect() if self._sock is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """Call a method and return its result, or raise the daemon's error class.

        `on_progress(done, total)` hears the call's `progress` notifications (the
        connection must have said `hello` with `progress: true`).
        """
        req_id = self._ids()
        self._send(rpc.request(method, params, req_id))
        while True:
            msg = self._next_message()
            if isinstance(msg, rpc.Reply):
                if msg.id == req_id or msg.id is None:
                    return msg.unwrap()
                continue
            if not isinstance(msg.params, dict):
                continue
            if msg.method == "event":
                self._events.append(msg.params)
            elif msg.method == "progress" and on_progress is not None:
                p = msg.params
                if p.get("id") == req_id:
                    on_progress(int(p.get("done") or 0), int(p.get("total") or 0))

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield `event` notifications (after `call("subscribe", ...)`), forever."""
        while True:
            while self._events:
                yield self._events.popleft()
            msg = self._next_message()
            if not isinstance(msg, rpc.Request) or msg.method != "event":
                continue
            if isinstance(msg.params, dict):
                yield msg.params

    def _send(self, obj: dict[str, Any]) -> None:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(rpc.encode(obj))
        except OSError as exc:
            raise LinkClosed(f"Lost the connection to glosmsd: {exc}") from exc

    def _next_message(self) -> rpc.Reply | rpc.Request:
        line = self._next_line()
        try:
            return rpc.classify(json.loads(line))
        except ValueError as exc:
            raise RemoteProtocolError(f"glosmsd sent something that is not JSON: {exc}") from exc

    def _next_line(self) -> bytes:
        while not self._lines:
            if self._sock is None:
                raise LinkClosed("not connected to glosmsd")
            try:
                data = self._sock.recv(1 << 16)
            except TimeoutError as exc:
                raise LinkClosed("glosmsd did not answer in time; is it stuck?") from exc
            if not data:
                raise LinkClosed("glosmsd closed the connection (did it stop?)")
            for item in self._framer.feed(data):
                if isinstance(item, rpc.Overflow):
                    raise RemoteProtocolError("glosmsd sent a line longer than the client accepts")
                self._lines.append(item)
        return self._lines.popleft()
