"""The reference server as a real process, for any test that needs a server.

Usage in a test module (or put the fixture in conftest.py, or add
`pytest_plugins = ["tests.support.serverproc"]` to the root conftest to get `server` everywhere)::

    from tests.support.serverproc import Client, ServerProcess, running_server

    @pytest.fixture
    def server(tmp_path: Path) -> Iterator[ServerProcess]:
        with running_server(tmp_path) as srv:
            yield srv

    async def test_x(server: ServerProcess) -> None:
        token = server.add_extension("1001", "Ann Lee", number="+15550001001")
        async with await Client.connect(server.url, token) as ann:
            await ann.sync_live()
            ...

`ServerProcess.start(tmp_path)` spawns `python -m glosmsd.server.cli --db ... --listen
127.0.0.1:0 --carrier test` and waits (with a timeout) for its `listening on` line;
`.admin(...)` runs the admin CLI as its own process and checks its exit code; `.store()`
opens the same database in-process for fast bulk set-up (the server notices those
commits exactly as it notices the admin CLI's). `Client` is a small websocket client
that routes replies by id and queues `event` notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from glosmsd.core import fastjson
from glosmsd.core.errors import error_from_rpc
from glosmsd.daemon.link import close_quietly
from glosmsd.server.db import ServerStore

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


class ServerProcess:
    """One `glosmsd-server` process and its database."""

    def __init__(
        self, db: Path, carrier: str, extra: tuple[str, ...], nofile: int | None = None
    ) -> None:
        self.db = db
        self.nofile = nofile
        self.carrier = carrier
        self.extra = extra
        self.port = 0
        self.url = ""
        self.log_path = db.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        tmp_path: Path,
        carrier: str = "test",
        *extra: str,
        db: Path | None = None,
        nofile: int | None = None,
    ) -> ServerProcess:
        """`nofile`: the server's descriptor limit (soft and hard), for limit tests."""
        srv = cls(db or tmp_path / "server.db", carrier, tuple(extra), nofile)
        srv._spawn(0)
        return srv

    def _spawn(self, port: int) -> None:
        cmd = [
            sys.executable,
            "-m",
            "glosmsd.server.cli",
            "--db",
            str(self.db),
            "--listen",
            f"127.0.0.1:{port}",
            "--carrier",
            self.carrier,
            "-v",
            *self.extra,
        ]
        if self.nofile is not None:  # prlimit (util-linux): preexec_fn is unsafe with threads
            cmd = ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--", *cmd]
        env = _env()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            if not ready:
                self.kill()
                raise TimeoutError(f"server did not start in {START_TIMEOUT} s: {self.log()}")
            chunk = os.read(self.proc.stdout.fileno(), 1024)
            if not chunk:
                code = self.proc.wait()
                self._close_pipe()
                raise RuntimeError(f"server exited ({code}): {self.log()}")
            line += chunk
        text = line.decode().strip()
        prefix = "glosmsd-server listening on "
        assert text.startswith(prefix), text
        self.url = text[len(prefix) :]
        self.port = int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def rss_kib(self) -> int:
        """The server process's resident memory now (Linux), in KiB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")

    # -------------------------------------------------------------- admin

    def admin_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The admin CLI as its own process; the result is returned whatever the exit code."""
        return subprocess.run(
            [sys.executable, "-m", "glosmsd.server.cli", "--db", str(self.db), "admin", *args],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
            env=_env(),
            check=False,
        )

    def admin(self, *args: str) -> str:
        """Run an admin command, insist on exit 0, return its stdout."""
        res = self.admin_run(*args)
        assert res.returncode == 0, f"admin {args} -> {res.returncode}: {res.stderr}"
        return res.stdout

    @contextlib.contextmanager
    def store(self) -> Iterator[ServerStore]:
        """The same database in this process, for fast set-up of many rows."""
        st = ServerStore(self.db)
        try:
            yield st
        finally:
            st.close()

    def add_extension(self, ext: str, name: str, number: str | None = None) -> str:
        """Add an extension (and put it on `number`); returns a token for it. In-process."""
        with self.store() as st:
            st.add_extension(ext, name)
            if number:
                st.assign_number(ext, number)
            return st.new_token(ext)

    # -------------------------------------------------------------- process control

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._close_pipe()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def sigstop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Stop cleanly and start again on the same database and, if it is free, port."""
        self.stop()
        try:
            self._spawn(self.port)
        except RuntimeError:
            self._spawn(0)


@contextlib.contextmanager
def running_server(tmp_path: Path, carrier: str = "test", *extra: str) -> Iterator[ServerProcess]:
    """A server for the length of a `with`; it must stop cleanly (exit 0) at the end."""
    srv = ServerProcess.start(tmp_path, carrier, *extra)
    try:
        yield srv
    finally:
        code = srv.stop()
        assert code == 0, f"server exited with {code}: {srv.log()}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh server with the `test` carrier (register with `pytest_plugins`, see above)."""
    with running_server(tmp_path) as srv:
        yield srv


class Client:
    """A protocol-level test client: replies by id, events in a queue."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stray: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())
        self.hello: dict[str, Any] = {}
        self.cursor = 0

    @classmethod
    async def connect(
        cls, url: str, token: str, *, hello: bool = True, device: str = "test", **kw: Any
    ) -> Client:
        ws = await connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}", "X-Glosmsd-Device": device},
            compression=None,
            max_size=8 * 1024 * 1024,
            open_timeout=10,
            **kw,
        )
        client = cls(ws)
        if hello:
            client.hello = await client.call("hello", protocol=1, client="tests/0")
        return client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await close_quietly(self.ws)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                obj = fastjson.loads(frame)  # as the daemon's link decodes a frame
                if isinstance(obj, dict) and obj.get("method") == "event":
                    self.events.put_nowait(obj["params"])
                elif isinstance(obj, dict) and obj.get("id") in self._pending:
                    self._pending.pop(obj["id"]).set_result(obj)
                else:
                    self.stray.put_nowait(obj)
        except ConnectionClosed as exc:  # the connection ended: fail whoever waits
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(exc)

    async def closed(self, timeout: float = 15.0) -> int | None:
        """Wait until the server closes the connection; its close code."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code

    async def request(
        self, method: str, params: Any = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """Send one call and return the whole reply object."""
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        obj: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            obj["params"] = params
        await self.ws.send(json.dumps(obj))
        async with asyncio.timeout(timeout):
            return await fut

    async def call(self, method: str, **params: Any) -> Any:
        """The result, or the server's error raised as its class from `glosmsd.core.errors`."""
        reply = await self.request(method, params)
        if "error" in reply:
            raise error_from_rpc(reply["error"])
        return reply["result"]

    async def raw(self, frame: str | bytes, timeout: float = 15.0) -> Any:
        """Send any frame; returns the next reply that no `request` is waiting for."""
        await self.ws.send(frame)
        return await asyncio.wait_for(self.stray.get(), timeout)

    async def next_event(self, timeout: float = 15.0) -> dict[str, Any]:
        if self.events.empty():
            async with asyncio.timeout(timeout):
                event = await self.events.get()
        else:
            event = self.events.get_nowait()
        self.cursor = max(self.cursor, int(event["seq"]))
        return event

    async def wait_event(self, kind: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        """Skip events until one of `kind` whose fields (or message fields) match."""
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next_event(max(0.01, deadline - time.monotonic()))
            body = event.get("message", event) if kind == "message" else event
            if event["kind"] == kind and all(body.get(k) == v for k, v in match.items()):
                return event

    async def sync_live(self, cursor: int | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Sync from `cursor` (default: own) until `more` is false; live push follows."""
        events: list[dict[str, Any]] = []
        await self._sync_pages(cursor, limit, events.extend)
        return events

    async def catch_up(self, cursor: int | None = None, limit: int = 500) -> int:
        """`sync_live`, as a device does it: each page parsed, applied (here: counted) and
        let go; returns how many events came. Holding all 21,000 of the bench's parsed
        events cost its client ~6,500 page faults a catch-up, which no device pays."""
        count = 0

        def apply(events: list[dict[str, Any]]) -> None:
            nonlocal count
            count += len(events)

        await self._sync_pages(cursor, limit, apply)
        return count

    async def _sync_pages(
        self, cursor: int | None, limit: int, apply: Callable[[list[dict[str, Any]]], object]
    ) -> None:
        cur = self.cursor if cursor is None else cursor
        while True:
            batch = await self.call("sync", cursor=cur, limit=limit)
            apply(batch["events"])
            cur = batch["cursor"]
            if not batch["more"]:
                break
        self.cursor = cur
