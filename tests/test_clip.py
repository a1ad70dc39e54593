"""Clipboard round trip with xclip on Xvfb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.desktop import DesktopEnv, wait_until


@pytest.mark.desktop
def test_copy_reads_back_with_xclip(tmp_path: Path) -> None:
    with DesktopEnv.start(tmp_path / "desk", tray=False, notifications=False) as desk:
        # xclip's child keeps the selection and inherits stdout: never capture it.
        subprocess.run(
            [sys.executable, "-c", "from glosmsd import clip; clip.copy('+15550001001')"],
            env={**__import__("os").environ, **desk.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=20,
        )
        wait_until(lambda: desk.clipboard() == "+15550001001", 10, "the clipboard")
