"""Issue 12 item 3: a crashed `glosmsd --demo` (a segmentation fault) left its embedded
server running with PPID 1, and the next run's icon never docked. Here the daemon is
killed with SIGKILL (nothing of it runs after that, as after a crash): its demo server
goes with it, and the next run docks and works.

The crash itself (Tk and Xlib in one process) cannot come back: the daemon no longer loads
Tk at all; the tray menu and the popup are processes of their own. The tray test below
checks the daemon's own memory map after its menu was posted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemonproc import wait_until
from tests.support.desktop import DesktopEnv
from tests.support.serverproc import ROOT

pytestmark = pytest.mark.desktop


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[DesktopEnv]:
    with DesktopEnv.start(tmp_path / "desk") as d:
        yield d


def demo_env(desk: DesktopEnv, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLOSMSD_SOCKET", "WAYLAND_DISPLAY")}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(tmp_path / var.lower())
    (tmp_path / "run").mkdir(mode=0o700, exist_ok=True)
    env.update(desk.env, XDG_RUNTIME_DIR=str(tmp_path / "run"), PYTHONPATH=str(ROOT))
    return env


def children(pid: int) -> list[int]:
    ps = ["ps", "-o", "pid=", "--ppid", str(pid)]
    out = subprocess.run(ps, capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    return state != "Z"


def start_demo(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "glosmsd.cli.glosmsd", "--demo", "-v"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


def server_of(proc: subprocess.Popen[bytes]) -> int:
    def found() -> int:
        for pid in children(proc.pid):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"glosmsd.server.cli" in cmdline and b"--listen" in cmdline:
                return pid
        return 0

    return wait_until(found, 30, "the demo's server process")


@pytest.mark.timeout(120)
def test_a_killed_demo_takes_its_server_along_and_the_next_run_docks(
    desk: DesktopEnv, tmp_path: Path
) -> None:
    env = demo_env(desk, tmp_path)
    log = tmp_path / "demo.log"
    first = start_demo(env, log)
    try:
        icon = desk.tray_icon(30)
        server = server_of(first)
        # The tray's menu, posted from the daemon: Tk runs in its own process, never here.
        desk.click(icon)
        wait_until(lambda: "tray menu:" in log.read_text(), 10, "the menu")
        wait_until(
            lambda: desk.window_ids("--onlyvisible", "--class", "^Menu$"), 10, "the menu shown"
        )
        maps = Path(f"/proc/{first.pid}/maps").read_text()
        assert not re.search(r"libtk|libtcl|_tkinter", maps)
        desk.key("Escape")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        wait_until(lambda: not alive(server), 10, "the demo server to end with its daemon")
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
    second = start_demo(env, log)
    try:
        icon = desk.tray_icon(30)  # docked again (the previous icon's window id is reused)
        wait_until(lambda: "unread" in desk.window_name(icon), 30, "the tray to come alive")
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0, log.read_text()
    finally:
        if second.poll() is None:
            second.kill()
        second.wait()
