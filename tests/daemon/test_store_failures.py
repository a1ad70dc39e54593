"""Store errors in their own words (issue 13 item 7), on real files: a locked database or
a read-only data dir at start said "not a glosmsd database or is damaged ... Move it
aside" (dangerous advice: it throws away a healthy store and its outbox), an exclusive
lock at start gave a raw traceback, and at run time a full disk, a lock or a corrupt page
gave -32603 instead of the documented -32005 `store`.

Locks are a second sqlite3 connection holding `BEGIN EXCLUSIVE`; a read-only dir and a
full disk are a small tmpfs (root only: chmod does not stop root's writes; skipped with
the reason elsewhere).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.core.errors import StoreDamaged, StoreLocked, StoreReadOnly
from glosmsd.daemon.store import AsyncStore, Store
from tests.support.daemonproc import DaemonProcess
from tests.support.ipcworld import BOB_MOBILE, seed, wait_seeded
from tests.support.serverproc import ROOT, running_server


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "4m") -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a read-only dir, a full disk)")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def fill(where: Path) -> None:
    """Take every free byte of the file system at `where`."""
    with open(where / "filler", "wb", buffering=0) as fh:
        for chunk in (b"\0" * 65536, b"\0" * 512, b"\0"):
            with contextlib.suppress(OSError):
                while fh.write(chunk):
                    pass


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def exclusive(db: Path) -> Iterator[int]:
    """Another program holding the database's write lock; yields its pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        yield proc.pid
    finally:
        proc.communicate("", timeout=30)


def healthy_store(db: Path) -> None:
    Store.open(db).close()


# --------------------------------------------------------------------------- at start


def daemon_cmd(d: DaemonProcess) -> list[str]:
    return [
        sys.executable,
        "-m",
        "glosmsd.cli.glosmsd",
        "--server",
        d.server.url,
        "--token-file",
        str(d.token_file),
        "--device-id",
        d.home.name,
        "--headless",
    ]


def test_an_exclusive_lock_at_start_is_one_line_naming_the_holder(tmp_path: Path) -> None:
    with running_server(tmp_path) as srv:
        token = seed(srv)
        with DaemonProcess.start(tmp_path / "ann", srv, token) as d:
            wait_seeded(d)
        db = d.home / "data" / "glosmsd" / "glosmsd.sqlite3"
        with exclusive(db) as holder:
            done = subprocess.run(
                daemon_cmd(d),
                env=d.env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
    assert done.returncode == 2, done.stderr
    err = done.stderr
    assert "Traceback" not in err
    assert "is locked by pid" in err
    assert f"pid {holder} (python" in err, "it names the process holding the lock"
    assert "retry" in err
    assert "damaged" not in err
    assert "Move it aside" not in err
    # The store was healthy all along: it opens once the lock is gone.
    Store.open(db).close()


def test_a_read_only_data_dir_at_start_names_the_path(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro") as mnt:
        db = mnt / "glosmsd.sqlite3"
        healthy_store(db)
        remount_read_only(mnt)
        with pytest.raises(StoreReadOnly) as caught:
            Store.open(db)
    message = caught.value.message
    assert str(mnt) in message
    assert "read-only" in message
    assert "damaged" not in message
    assert "Move it aside" not in message


def test_a_damaged_file_is_the_one_case_that_says_move_it_aside(tmp_path: Path) -> None:
    db = tmp_path / "glosmsd.sqlite3"
    db.write_bytes(b"this is not SQLite" * 500)
    with pytest.raises(StoreDamaged) as caught:
        Store.open(db)
    assert "Move it aside" in caught.value.message


# --------------------------------------------------------------------------- at run time


async def test_a_corrupt_page_at_run_time_is_store_damaged(tmp_path: Path) -> None:
    db = tmp_path / "glosmsd.sqlite3"
    healthy_store(db)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = [
            r
            for (r,) in conn.execute(
                "SELECT rootpage FROM sqlite_schema WHERE tbl_name = 'conversations'"
            )
            if r
        ]
    with open(db, "r+b") as fh:  # garbage over the table's and its indexes' root pages
        for root in roots:
            fh.seek((root - 1) * page)
            fh.write(b"\xff" * page)
    store = await AsyncStore.open(db)
    try:
        with pytest.raises(StoreDamaged) as caught:
            await store.run(Store.conversations)
    finally:
        with contextlib.suppress(Exception):
            await store.close()
    assert caught.value.code == -32005
    assert caught.value.kind == "store-damaged"
    assert "Move it aside" in caught.value.message


async def test_a_lock_at_run_time_is_store_locked(tmp_path: Path) -> None:
    db = tmp_path / "glosmsd.sqlite3"
    # A short busy timeout: the default's 10 s is the same wait, only longer.
    store = await AsyncStore.open(db, busy_timeout=0.5)
    try:
        # A second connection takes the write lock; the store's write waits its busy
        # timeout, then says who holds the lock.
        with exclusive(db) as holder, pytest.raises(StoreLocked) as caught:
            await store.run(Store.set_pref, "notify", True)
        await store.run(Store.set_pref, "notify", True)  # the lock gone, it works again
    finally:
        await store.close()
    assert f"pid {holder} (python" in caught.value.message
    assert caught.value.to_rpc()["code"] == -32005


def test_a_full_disk_at_run_time_is_32005_disk_full_on_the_socket(tmp_path: Path) -> None:
    """A real daemon whose data dir is a small tmpfs, filled up: every send either works
    or gets -32005 `disk-full` (never -32603), and the daemon keeps serving."""
    with running_server(tmp_path) as srv:
        token = seed(srv)
        home = tmp_path / "ann"
        with tmpfs(home / "data", size="8m") as data, DaemonProcess.start(home, srv, token) as d:
            wait_seeded(d)
            fill(data)
            codes: list[int] = []
            message = ""
            for i in range(200):
                with d.client() as c:
                    try:
                        c.call("send", {"to": BOB_MOBILE, "text": f"{i} " + "x" * 990})
                    except Exception as exc:
                        code = getattr(exc, "code", None)
                        codes.append(code if isinstance(code, int) else 0)
                        message = str(exc)
                        break
            assert codes == [-32005], codes
            assert "is full" in message
            assert "Nothing was lost" in message
            assert d.call("number")["number"], "the daemon still answers"
            (data / "filler").unlink()
            d.call("send", to=BOB_MOBILE, text="room again")
