"""Incoming files: fetched from the server in chunks, checked, saved in the files dir.

Owns which files download on their own (under the MMS size limit, when the user's
`auto_download` pref is on), that one file is fetched once however many ask for it, the
progress of a fetch for whoever watches it, and finding a file already here by its sha256
(only inside the files dir). Each download is a chore of the daemon's supervisor; its
outcome is written to the store (`downloading`, `done`, `failed`).

It never decides what the user sees of a message; it calls the server only through the
link it is given.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from glosmsd.core.errors import BadInput, GlosmsdError, NotFound
from glosmsd.daemon.files import save_unique
from glosmsd.daemon.ports import ServerLink
from glosmsd.daemon.store import AsyncStore, Store
from glosmsd.system.supervisor import Supervisor

log = logging.getLogger(__name__)

DOWNLOAD_CHUNK: Final = 262144
#: Downloads that fetch at once; the others wait their turn.
PARALLEL: Final = 2

Progress = Callable[[int, int], None]


class Downloads:
    """The daemon's downloads; `link` and `max_auto` are read when a download starts."""

    def __init__(
        self,
        store: AsyncStore,
        files_dir: Path,
        tasks: Supervisor,
        *,
        link: Callable[[], ServerLink],
        max_auto: Callable[[], int],
    ) -> None:
        self.store = store
        self.files_dir = files_dir
        self.tasks = tasks
        self.link = link
        self.max_auto = max_auto
        self._running: dict[str, asyncio.Future[None]] = {}
        # Who wants to hear how far a download got: sha256 -> callbacks(done, size).
        self._watchers: dict[str, list[Progress]] = {}
        self._slots = asyncio.Semaphore(PARALLEL)

    async def queue_auto(self) -> None:
        """Start the downloads that happen on their own (see the module docstring)."""
        if not await self.store.run(Store.get_pref, "auto_download", True):
            return
        for f in await self.store.run(Store.pending_downloads, max_size=self.max_auto()):
            if f.sha256 and f.sha256 not in self._running:
                self._start(f.sha256, f.name)

    def _start(self, sha256: str, name: str) -> asyncio.Future[None]:
        done = self.tasks.spawn(self._download(sha256, name), name=f"download {name}")
        self._running[sha256] = done
        done.add_done_callback(lambda _f: self._running.pop(sha256, None))
        return done

    async def _download(self, sha256: str, name: str) -> None:
        async with self._slots:
            path, state = await self.store.run(Store.file_state, sha256)
            if state == "done" and path and await asyncio.to_thread(os.path.exists, path):
                return
            await self.store.run(Store.set_file_state, sha256, None, "downloading")
            try:
                data = await self.fetch(sha256)
                dest = await asyncio.to_thread(save_unique, self.files_dir, name, data)
            except GlosmsdError:
                await self.store.run(Store.set_file_state, sha256, None, "failed")
                raise  # the supervisor logs why; a caller of `download` hears it
            await self.store.run(Store.set_file_state, sha256, str(dest), "done")

    async def fetch(self, sha256: str) -> bytes:
        """The file's bytes from the server, checked against its sha256."""
        chunks: list[bytes] = []
        offset = 0
        while True:
            reply = await self.link().call(
                "download", {"sha256": sha256, "offset": offset, "length": DOWNLOAD_CHUNK}
            )
            try:
                chunk = base64.b64decode(reply["data"], validate=True)
                size = int(reply["size"])
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                raise BadInput("The server sent a malformed file chunk.") from exc
            chunks.append(chunk)
            offset += len(chunk)
            for watcher in self._watchers.get(sha256, ()):
                watcher(offset, size)
            if offset >= size or not chunk:
                break
        data = b"".join(chunks)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BadInput("The downloaded file does not match its checksum; try again.")
        return data

    async def download(
        self, id: int, file: int | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Download message `id`'s files (or its `file`th), joining a download that runs."""
        message = await self.store.run(Store.message, id)
        if message is None:
            raise NotFound(f"No message {id}.")
        if not message.files:
            raise NotFound(f"Message {id} has no files.")
        chosen = list(message.files)
        if file is not None:
            if file >= len(message.files):
                raise NotFound(
                    f"Message {id} has {len(message.files)} files (0 to {len(message.files) - 1})."
                )
            chosen = [chosen[file]]
        out = []
        total = sum(f.size or 0 for f in chosen)
        finished = 0
        for f in chosen:
            if not f.sha256:
                continue
            await self._join(f.sha256, f.name, progress, finished, total)
            finished += f.size or 0
            if progress is not None:
                progress(finished, total)
            path, state = await self.store.run(Store.file_state, f.sha256)
            out.append({"name": f.name, "path": path, "state": state, "size": f.size})
        return {"files": out}

    async def _join(
        self, sha256: str, name: str, progress: Progress | None, base: int, total: int
    ) -> None:
        """Wait for the download of one file (started here if none runs), telling
        `progress` how far it got as part of `total`."""
        watcher: Progress | None = None
        if progress is not None:

            def watcher(done: int, _size: int) -> None:
                progress(base + done, total)

            self._watchers.setdefault(sha256, []).append(watcher)
        try:
            running = self._running.get(sha256) or self._start(sha256, name)
            # Shielded: a caller that goes away does not stop a download others wait for.
            await asyncio.shield(running)
        finally:
            if watcher is not None:
                self._watchers[sha256].remove(watcher)
                if not self._watchers[sha256]:
                    del self._watchers[sha256]

    async def local_file(self, sha256: str) -> tuple[Path, str] | None:
        """Where the file with this sha256 is in the files dir, and its name: a download,
        or the copy of a file this device sent. None when it is not here (not downloaded
        yet), or when what the store says points outside the files dir."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            return None
        path, state = await self.store.run(Store.file_state, sha256)
        if state == "done" and path:
            found = await asyncio.to_thread(_inside, Path(path), self.files_dir)
            if found is not None:
                return found, found.name
        outgoing = await asyncio.to_thread(
            _inside, self.files_dir / "outgoing" / sha256, self.files_dir
        )
        if outgoing is not None:
            return outgoing, await self.store.run(Store.file_name, sha256) or "file"
        return None


def _inside(path: Path, directory: Path) -> Path | None:
    """`path` with its links resolved, if it is a regular file inside `directory`."""
    try:
        real = path.resolve(strict=True)
        base = directory.resolve(strict=True)
    except OSError:
        return None
    if not real.is_relative_to(base) or not real.is_file():
        return None
    return real
