"""Starting the daemon process: problems found at start are one clear line and an exit code."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from glosmsd.daemon.store import SCHEMA_VERSION
from tests.support.serverproc import ROOT


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        PYTHONPATH=str(ROOT),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_RUNTIME_DIR=str(home / "run"),
    )
    return env


def test_a_store_from_a_newer_glosmsd_stops_the_daemon_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "data" / "glosmsd" / "glosmsd.sqlite3"
    db.parent.mkdir(parents=True)
    (tmp_path / "run").mkdir(mode=0o700)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    token = tmp_path / "token"
    token.write_text("secret\n")
    token.chmod(0o600)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "glosmsd.cli.glosmsd",
            "--server",
            "ws://127.0.0.1:9/v1",
            "--token-file",
            str(token),
            "--headless",
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if "headless" not in ln]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("glosmsd: ")
    assert "newer glosmsd" in lines[0]
    assert "Traceback" not in res.stderr
    assert db.read_bytes() == before
    assert not [p.name for p in db.parent.iterdir() if p.name.startswith("glosmsd.sqlite3-")]
