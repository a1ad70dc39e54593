"""`glosmsd --demo`: an embedded reference server with a demo account, as its own process.

Owns the demo's places (a `demo/` folder in the data dir, so the demo never mixes with a
real account), seeding the demo database once, starting `glosmsd-server` on 127.0.0.1 with
the `demo` carrier, and stopping it with the daemon. It must never touch a real
account's data or listen on anything but loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from glosmsd.core.errors import ConfigError
from glosmsd.system.atomicwrite import write_atomic

log = logging.getLogger(__name__)

URL_LINE: Final = re.compile(rb"listening on (wss?://\S+)")
START_TIMEOUT: Final = 20.0
DEMO_EXT: Final = "1001"
PR_SET_PDEATHSIG: Final = 1


@dataclass(frozen=True, slots=True)
class DemoPlaces:
    root: Path
    server_db: Path
    token_file: Path
    #: The running demo server's URL, while it runs: `glosmsd doctor` checks it.
    url_file: Path

    @classmethod
    def under(cls, data_dir: Path) -> DemoPlaces:
        root = data_dir / "demo"
        return cls(root, root / "server.db", root / "token", root / "server.url")


def _server_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "glosmsd.server.cli", *args]


def _exit_reason(code: int | None) -> str:
    """What a child's exit code says when it wrote nothing: a signal by name, else the code."""
    if code is not None and code < 0:
        try:
            return f"stopped by {signal.Signals(-code).name}"
        except ValueError:
            return f"stopped by signal {-code}"
    return f"exit status {code}"


def reset(places: DemoPlaces) -> None:
    """`glosmsd --demo --reset`: forget the demo (its server's database, token and the
    demo daemon's data), so it starts over as on the first run."""
    import shutil

    if places.root.exists():
        shutil.rmtree(places.root)


async def ensure_seeded(places: DemoPlaces) -> str:
    """Create and seed the demo database once; return extension 1001's token."""
    places.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if places.server_db.exists() and places.token_file.exists():
        return places.token_file.read_text().strip()
    proc = await asyncio.create_subprocess_exec(
        *_server_cmd("--db", str(places.server_db), "admin", "seed-demo"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    if proc.returncode != 0:
        raise ConfigError(f"Could not create the demo server database: {err.decode().strip()}")
    token = out.decode().strip().splitlines()[-1].strip()
    fd = os.open(places.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def die_with_parent() -> Callable[[], None] | None:
    """For the demo server's child: SIGTERM when the daemon's process dies, however it dies
    (issue 12 item 3: a crashed daemon left the demo server running with PPID 1). Linux's
    PR_SET_PDEATHSIG; None elsewhere. prctl is looked up here, before the fork, so the
    child only makes the one call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the daemon died before the call: go now
            os.kill(os.getpid(), signal.SIGTERM)

    return child


class EmbeddedServer:
    """The demo's reference server process."""

    def __init__(self, places: DemoPlaces) -> None:
        self.places = places
        self.url: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def log_path(self) -> Path:
        return self.places.root / "server.log"

    async def start(self, port: int = 0) -> str:
        log_path = self.log_path
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._proc = await asyncio.create_subprocess_exec(
            *_server_cmd(
                "--db",
                str(self.places.server_db),
                "--listen",
                f"127.0.0.1:{port}",
                "--carrier",
                "demo",
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=log_fd,
            preexec_fn=die_with_parent(),
        )
        os.close(log_fd)
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    line = await self._proc.stdout.readline()
                    if not line:
                        raise ConfigError(
                            f"The demo server exited at start; see {log_path} for why."
                        )
                    match = URL_LINE.search(line)
                    if match:
                        self.url = match.group(1).decode()
                        break
        except TimeoutError as exc:
            await self.stop()
            raise ConfigError(f"The demo server did not start; see {log_path}.") from exc
        # Keep reading its stdout so the pipe never fills and blocks it.
        self._drain = asyncio.create_task(self._discard(self._proc.stdout))
        log.info("demo server at %s (database %s)", self.url, self.places.server_db)
        write_atomic(self.places.url_file, self.url + "\n", mode=0o600)
        return self.url

    async def wait_exit(self) -> int:
        """Wait until the server process ends (by itself or killed); its exit code."""
        proc = self._proc
        if proc is None:
            return 0
        return await proc.wait()

    @staticmethod
    async def _discard(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    async def inject(self, sender: str, to: str, text: str) -> None:
        """An inbound message as if from the carrier (the demo's welcome)."""
        proc = await asyncio.create_subprocess_exec(
            *_server_cmd(
                "--db",
                str(self.places.server_db),
                "admin",
                "inject",
                "--from",
                sender,
                "--to",
                to,
                "--text",
                text,
            ),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            why = err.decode(errors="replace").strip() or _exit_reason(proc.returncode)
            log.warning("demo inject failed: %s", why)

    async def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.places.url_file.unlink(missing_ok=True)
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
