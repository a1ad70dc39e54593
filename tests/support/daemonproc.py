"""Run a real `glosmsd` daemon process in tests, fully isolated, against a real server.

Usage::

    with running_server(tmp_path) as srv:
        token = srv.add_extension("1001", "Ann Lee", "+15550001001")
        with DaemonProcess.start(tmp_path / "ann", srv, token) as ann:
            ann.wait_online()
            ann.call("send", to="+15557654321", text="hi")

Each daemon gets its own XDG directories and socket under its folder, so several run side
by side (two extensions, or two devices of one extension). `kill()` is SIGKILL (a crash);
`restart()` starts it again on the same data.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from glosmsd.client.ipc import Client, DaemonNotRunning
from tests.support.serverproc import ROOT, ServerProcess

T = TypeVar("T")
START_TIMEOUT = 20.0


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


async def until(check: Callable[[], Any], timeout: float, what: str) -> None:
    """`wait_until` on an event loop: `check` may return an awaitable, and the loop runs
    between tries."""
    try:
        async with asyncio.timeout(timeout):
            delay = 0.01
            while True:
                value = check()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.2)
    except TimeoutError:
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}") from None


class DaemonProcess:
    def __init__(
        self,
        home: Path,
        server: ServerProcess,
        token: str,
        extra: tuple[str, ...],
        nofile: int | None = None,
    ) -> None:
        self.home = home
        #: A descriptor limit (RLIMIT_NOFILE) set in the daemon's process before it starts.
        self.nofile = nofile
        self.server = server
        self.token_file = home / "token"
        self.socket = home / "run" / "glosmsd" / "socket"
        self.extra = extra
        self.log_path = home / "daemon.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        home.mkdir(parents=True, exist_ok=True)
        (home / "run").mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")

    @classmethod
    def start(
        cls, home: Path, server: ServerProcess, token: str, *extra: str, nofile: int | None = None
    ) -> DaemonProcess:
        d = cls(home, server, token, tuple(extra), nofile)
        d.spawn()
        return d

    @property
    def env(self) -> dict[str, str]:
        h = self.home
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(
            PYTHONPATH=path,
            XDG_CONFIG_HOME=str(h / "config"),
            XDG_DATA_HOME=str(h / "data"),
            XDG_STATE_HOME=str(h / "state"),
            XDG_CACHE_HOME=str(h / "cache"),
            XDG_RUNTIME_DIR=str(h / "run"),
            GLOSMSD_SOCKET=str(self.socket),
        )
        return env

    def spawn(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "glosmsd.cli.glosmsd",
            "--server",
            self.server.url,
            "--token-file",
            str(self.token_file),
            "--device-id",
            self.home.name,
            "--headless",
            "-v",
            *self.extra,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=ROOT,
                preexec_fn=self._limit if self.nofile is not None else None,  # noqa: PLW1509
            )
        self.wait_until(self._answers, START_TIMEOUT, "the daemon's socket to answer")

    def _limit(self) -> None:
        import resource

        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"glosmsd exited with {self.proc.returncode}: {self.log()}")
        try:
            self.call("hello")
        except DaemonNotRunning:
            return False
        return True

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def client(self, timeout: float = 30.0) -> Client:
        return Client(self.socket, timeout=timeout)

    def call(self, method: str, **params: Any) -> Any:
        with self.client() as c:
            return c.call(method, params or None)

    wait_until = staticmethod(wait_until)  # also as `daemon.wait_until(...)`

    def wait_online(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        return self.wait_until(
            lambda: (s := self.call("status"))["link"]["online"] and s,
            timeout,
            "the daemon's link to go live",
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise
        return self.proc.returncode

    def restart(self) -> None:
        self.stop()
        self.spawn()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        except Exception:
            self.kill()
