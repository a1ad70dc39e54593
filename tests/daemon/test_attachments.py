"""Tests for glosmsd/daemon/attachments.py: what is checked is what is read (issue 13 item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from glosmsd.core.errors import BadInput
from glosmsd.daemon import attachments
from glosmsd.daemon.attachments import read_source

NOTE = b"the real note\n"


def test_a_regular_file_is_read_whole_under_its_own_name(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_bytes(NOTE)
    assert read_source(str(tmp_path / "note.txt")) == ("note.txt", NOTE)


@pytest.mark.timeout(30)
def test_devices_fifos_and_folders_are_refused_without_reading(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="/dev/zero is not a regular file"):
        read_source("/dev/zero")
    os.mkfifo(tmp_path / "pipe")  # no writer: a blocking open would hang here
    with pytest.raises(BadInput, match="not a regular file"):
        read_source(str(tmp_path / "pipe"))
    with pytest.raises(BadInput, match="is a directory, not a file"):
        read_source(str(tmp_path))
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(BadInput, match="not a regular file"):
        read_source(str(tmp_path / "zero"))


def test_the_limit_holds_on_the_bytes_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachments, "MAX_SOURCE_FILE", 1000)
    (tmp_path / "fits.bin").write_bytes(b"x" * 1000)
    assert len(read_source(str(tmp_path / "fits.bin"))[1]) == 1000
    (tmp_path / "over.bin").write_bytes(b"x" * 1001)
    with pytest.raises(BadInput, match="too big to attach"):
        read_source(str(tmp_path / "over.bin"))


FLIPPER = """
import os, sys
link, real = sys.argv[1], sys.argv[2]
i = 0
while True:
    tmp = f"{link}.{i % 2}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(("/dev/zero", real)[i % 2], tmp)
    os.replace(tmp, link)  # atomic: the path always names one or the other
    i += 1
"""


@pytest.mark.timeout(60)
def test_a_symlink_flipped_to_dev_zero_mid_read_is_never_read_from(tmp_path: Path) -> None:
    """The probe's case: 25 of 164 sends read /dev/zero until MemoryError when the link
    flipped between the check and the read. With another process flipping the link as fast
    as it can, each read either gets the real file or is refused; none reads /dev/zero."""
    real = tmp_path / "real.txt"
    real.write_bytes(NOTE)
    link = tmp_path / "file.txt"
    link.symlink_to(real)
    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, str(link), str(real)])
    refused = f"{link} is not a regular file."
    seen: dict[object, int] = {}
    try:
        for _ in range(20_000):
            try:
                got: object = read_source(str(link))
            except BadInput as exc:
                got = str(exc)
            seen[got] = seen.get(got, 0) + 1
            if len(seen) > 1 and min(seen.values()) >= 20:
                break
    finally:
        flipper.kill()
        flipper.wait()
    assert set(seen) <= {("file.txt", NOTE), refused}, seen
    assert seen.get(refused, 0) >= 1, "the flip never landed between reads: nothing was tried"
