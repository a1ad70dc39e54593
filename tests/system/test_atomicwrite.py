"""The one atomic write: whole files, exact modes, unique temporary names, nothing left over."""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.system.atomicwrite import write_atomic, write_new


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640, 0o400])
def test_the_mode_is_exactly_the_one_given_whatever_the_umask(
    tmp_path: Path, mode: int, umask_022: None
) -> None:
    os.umask(0o077)
    path = tmp_path / "f"
    write_atomic(path, b"x", mode=mode)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    os.umask(0o000)
    other = tmp_path / "g"
    write_new(other, "y", mode=mode)
    assert stat.S_IMODE(other.stat().st_mode) == mode


def test_replaces_the_old_content_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("old\n")
    write_atomic(path, "new ✓\n", mode=0o600)
    assert path.read_text("utf-8") == "new ✓\n"
    assert leftovers(tmp_path) == []


def test_write_new_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    write_new(path, b"first", mode=0o600)
    with pytest.raises(FileExistsError):
        write_new(path, b"second", mode=0o600)
    assert path.read_bytes() == b"first"
    assert leftovers(tmp_path) == []


def test_write_new_without_hard_links_still_never_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(_src: object, _dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "b.txt"
    write_new(path, b"one", mode=0o600)
    assert path.read_bytes() == b"one"
    with pytest.raises(FileExistsError):
        write_new(path, b"two", mode=0o600)
    assert path.read_bytes() == b"one"
    assert leftovers(tmp_path) == []


def test_a_failed_rename_removes_the_temporary_file_and_keeps_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "token"
    path.write_text("old")

    def broken(_src: object, _dst: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="Input/output"):
        write_atomic(path, b"new", mode=0o600)
    assert path.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_the_file_and_its_directory_are_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_atomic(tmp_path / "a", b"1", mode=0o600)
    assert synced == ["file", "dir"]
    synced.clear()
    write_new(tmp_path / "b", b"1", mode=0o600)
    assert synced == ["file", "dir"]


def test_twenty_writers_of_one_path_at_once_all_succeed_and_one_version_wins(
    tmp_path: Path,
) -> None:
    # Issue 13 item 10: a shared `<name>.tmp` made concurrent writers rename each
    # other's file away (FileNotFoundError). Each writer now stages its own.
    path = tmp_path / "outgoing"
    versions = [bytes([n]) * 200_000 for n in range(20)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(versions))

    def writer(data: bytes) -> None:
        start.wait()
        try:
            for _ in range(10):
                write_atomic(path, data, mode=0o600)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert path.read_bytes() in versions
    assert leftovers(tmp_path) == []
