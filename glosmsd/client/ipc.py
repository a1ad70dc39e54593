"""A small blocking client for the daemon's socket, for the CLI and the popup.

Standard library only (socket, json) so `glosms` starts fast: no asyncio, no websockets,
no Pillow. It sends one call at a time, collects `event` notifications that arrive in
between (for `glosms watch`), and hands `progress` notifications of the running call to
the caller (for progress bars).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from glosmsd.core import rpc
from glosmsd.core.errors import (
    ConnectionLost,
    DaemonNotRunning,
    GlosmsdError,
    LinkClosed,
    RemoteProtocolError,
    SocketNotOurs,
    SocketUnusable,
)
from glosmsd.system.peercred import owner_of, peer_uid, user_name
from glosmsd.system.socketpath import socket_path

TYPE_CHECKING = False  # typing costs `glosms` ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Final

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
        """Connect, after making sure the socket is this user's own daemon.

        Nothing is sent before the socket's folder and the socket are found to be this
        user's and the process listening is too (its uid, from the kernel): without
        `XDG_RUNTIME_DIR` the socket is under /tmp, where another user may have made the
        folder first and would read every message and file (issue 13 item 4).
        """
        self._check_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
            self._check_peer(sock)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise self._not_running() from exc
        except PermissionError as exc:
            sock.close()
            raise SocketUnusable(
                f"Permission denied on {self.path}: that glosmsd belongs to another user. "
                "Run glosms as that user, or set GLOSMSD_SOCKET to your own daemon's socket."
            ) from exc
        except OSError as exc:
            sock.close()
            raise SocketUnusable(f"Cannot connect to glosmsd at {self.path}: {exc}") from exc
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return self

    def _not_running(self) -> DaemonNotRunning:
        return DaemonNotRunning(
            f"glosmsd is not running (nothing at {self.path}). Start it with `glosmsd &` "
            "or `make demo`, or set GLOSMSD_SOCKET if it listens elsewhere."
        )

    def _refuse(self, why: str) -> SocketNotOurs:
        return SocketNotOurs(
            f"Not using {self.path}: {why}, so another user could be listening there. "
            "Nothing was sent. If you made it, fix its owner and mode; else remove it "
            "(or point XDG_RUNTIME_DIR or GLOSMSD_SOCKET at a folder of your own) and "
            "start glosmsd again."
        )

    def _check_path(self) -> None:
        if not hasattr(os, "getuid"):  # pragma: no cover - Windows: no uids to compare
            return
        me = os.getuid()
        folder = self.path.parent
        try:
            where = owner_of(folder)
        except FileNotFoundError:
            raise self._not_running() from None
        except OSError as exc:
            raise SocketUnusable(f"Cannot use {folder}: {exc.strerror or exc}") from exc
        # A folder like /tmp (sticky, root's) is fine: nobody can swap our socket there.
        shared_ok = where.sticky and where.uid == 0
        if where.uid != me and not shared_ok:
            raise self._refuse(f"its folder {folder} belongs to {user_name(where.uid)}")
        if where.uid == me and where.others_may_write and not where.sticky:
            raise self._refuse(
                f"its folder {folder} can be changed by other users (mode {where.mode:04o})"
            )
        try:
            it = owner_of(self.path)
        except FileNotFoundError:
            raise self._not_running() from None
        except OSError as exc:
            raise SocketUnusable(f"Cannot use {self.path}: {exc.strerror or exc}") from exc
        if not it.is_socket:
            raise SocketUnusable(
                f"{self.path} is not a socket: move it away, or set GLOSMSD_SOCKET to the "
                "daemon's socket."
            )
        if it.uid != me:
            raise self._refuse(f"the socket belongs to {user_name(it.uid)}")

    def _check_peer(self, sock: socket.socket) -> None:
        if not hasattr(os, "getuid"):  # pragma: no cover
            return
        uid = peer_uid(sock)
        if uid is not None and uid != os.getuid():
            raise self._refuse(f"the process listening on it runs as {user_name(uid)}")

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

    def next_event(self, timeout: float | None) -> dict[str, Any] | None:
        """The next `event` notification, or None when none came within `timeout` seconds
        (None: wait for as long as it takes)."""
        if self._events:
            return self._events.popleft()
        if self._sock is None:
            raise LinkClosed("not connected to glosmsd")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._sock.settimeout(left)
                try:
                    msg = self._next_message()
                except LinkClosed as exc:
                    if isinstance(exc.__cause__, TimeoutError):
                        return None
                    raise
                if not isinstance(msg, rpc.Request) or msg.method != "event":
                    continue
                if isinstance(msg.params, dict):
                    return msg.params
        finally:
            if self._sock is not None:
                self._sock.settimeout(self.timeout)

    def _send(self, obj: dict[str, Any]) -> None:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(rpc.encode(obj))
        except OSError as exc:
            refusal = self._refusal()
            if refusal is not None:
                refusal.unwrap()  # raises the daemon's own reason
            raise ConnectionLost(
                f"Lost the connection to glosmsd ({exc.strerror or exc}): did it stop?"
            ) from exc

    def _refusal(self) -> rpc.Reply | None:
        """The error line a daemon that refused this connection wrote before it closed
        (another user's process, a full table), if it is there to read: a send that
        races that close fails with EPIPE, and the reason is the useful part."""
        assert self._sock is not None
        self._sock.settimeout(1.0)
        try:
            msg = self._next_message()
        except GlosmsdError:
            return None
        finally:
            self._sock.settimeout(self.timeout)
        if isinstance(msg, rpc.Reply) and msg.id is None and msg.error is not None:
            return msg
        return None

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
            except OSError as exc:
                # ECONNRESET and the like: the daemon died mid-call (issue 13 item 13).
                raise ConnectionLost(
                    f"Lost the connection to glosmsd ({exc.strerror or exc}): did it stop?"
                ) from exc
            if not data:
                raise ConnectionLost("glosmsd closed the connection (did it stop?)")
            for item in self._framer.feed(data):
                if isinstance(item, rpc.Overflow):
                    raise RemoteProtocolError("glosmsd sent a line longer than the client accepts")
                self._lines.append(item)
        return self._lines.popleft()
