"""`glosmsd` started without a config file (issue 12 item 12): say there is none and what
to run, as one line and the config-error exit code (which the systemd unit does not
restart on)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from glosmsd.cli import autostart
from tests.support.serverproc import ROOT


def test_no_config_file_says_so_and_what_to_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        PYTHONPATH=str(ROOT),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
    )
    (tmp_path / "run").mkdir(mode=0o700)
    res = subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosmsd", "--headless"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    assert res.returncode == autostart.EXIT_NO_RETRY
    lines = [ln for ln in res.stderr.splitlines() if "headless" not in ln]
    assert len(lines) == 1, res.stderr
    config = tmp_path / "config" / "glosmsd" / "config.toml"
    assert lines[0] == (
        f"glosmsd: there is no config file ({config}): run `glosmsd setup` to connect to "
        "your SMS server (it asks for the URL and your token), or `glosmsd --demo` to try "
        "glosmsd with a demo server"
    )
    assert "'server' is missing" not in res.stderr
