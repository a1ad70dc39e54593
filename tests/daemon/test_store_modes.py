"""Message history only its user can read (issue 12 item 4), on a real daemon and a real
server process started under umask 022: the data dir was `drwxr-xr-x` and
`glosmsd.sqlite3`, `server.db` and their `-wal`/`-shm` were `-rw-r--r--`."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemonproc import DaemonProcess
from tests.support.ipcworld import ANN, seed, wait_seeded
from tests.support.serverproc import running_server


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def databases(path: Path) -> list[Path]:
    """The database and the side files SQLite keeps beside it while it is open."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "loose-ones-tightened"])
def test_history_is_private_whatever_the_umask(tmp_path: Path, existing: bool) -> None:
    home = tmp_path / "ann"
    data = home / "data" / "glosmsd"
    db = data / "glosmsd.sqlite3"
    server_db = tmp_path / "server.db"
    with umask(0o022):
        if existing:
            # What an earlier glosmsd left: everything readable by every local user.
            (data / "files").mkdir(parents=True, mode=0o755)
            data.chmod(0o755)
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), server_db):
                p.touch(mode=0o644)
                p.chmod(0o644)
        with running_server(tmp_path) as srv:
            token = seed(srv)
            with DaemonProcess.start(home, srv, token) as daemon:
                wait_seeded(daemon)
                daemon.call("send", to="+15557654321", text="private, please")
                assert daemon.call("number")["number"] == ANN
                seen = databases(db)
                assert Path(f"{db}-wal") in seen, "the daemon's WAL is open now"
                for p in seen:
                    assert mode(p) == 0o600, f"{p.name} is {mode(p):o}"
                for d in (data, data / "files"):
                    assert mode(d) == 0o700, f"{d} is {mode(d):o}"
                server_files = databases(server_db)
                assert Path(f"{server_db}-wal") in server_files
                for p in server_files:
                    assert mode(p) == 0o600, f"{p.name} is {mode(p):o}"
                files_dir = server_db.with_name("server.db.files")
                assert mode(files_dir) == 0o700
                if existing:
                    assert "now 600" in daemon.log() or "now 600" in srv.log()
