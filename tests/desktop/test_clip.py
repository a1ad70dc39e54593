"""Clipboard round trip with xclip on Xvfb."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemonproc import wait_until
from tests.support.desktop import DesktopEnv


@pytest.mark.desktop
def test_copy_reads_back_with_xclip(tmp_path: Path) -> None:
    with DesktopEnv.start(tmp_path / "desk", tray=False, notifications=False) as desk:
        # xclip's child keeps the selection and inherits stdout: never capture it.
        subprocess.run(
            [sys.executable, "-c", "from glosmsd.desktop import clip; clip.copy('+15550001001')"],
            env={**os.environ, **desk.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=20,
        )
        wait_until(lambda: desk.clipboard() == "+15550001001", 10, "the clipboard")


@pytest.mark.desktop
def test_a_detached_copy_does_not_hold_a_captured_stdout(tmp_path: Path) -> None:
    """`$(glosms number --copy)` returns: xclip, which stays to own the selection, must not
    keep the caller's pipe open (capture_output waits for EOF on both pipes)."""
    with DesktopEnv.start(tmp_path / "desk", tray=False, notifications=False) as desk:
        done = subprocess.run(
            [sys.executable, "-c",
             "from glosmsd.desktop import clip\n"
             "clip.copy('+15557654321', detach=True); print('done')"],
            env={**os.environ, **desk.env}, capture_output=True, text=True, check=True,
            timeout=20,
        )  # fmt: skip
        assert done.stdout == "done\n"
        wait_until(lambda: desk.clipboard() == "+15557654321", 10, "the clipboard")
