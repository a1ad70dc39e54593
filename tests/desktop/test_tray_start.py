"""Issue 12 item 2: the desktop daemon started again and again on Xvfb with trayer.

One start in nine hung: the icon docked but blank, the tooltip stuck at "glosmsd:
starting", SIGTERM ignored (two threads on pystray's one Xlib display). Each start here
must dock the icon, leave "starting" for the daemon's own tooltip, and end on SIGTERM,
cleanly (exit 0, not the forced exit of a stuck tray) and within the 2 s bound.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemonproc import wait_until
from tests.support.desktop import DesktopEnv, TrayDaemon
from tests.support.serverproc import ServerProcess, running_server

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

ANN = "+15550001001"
STARTS = int(os.environ.get("GLOSMSD_TRAY_STARTS", "50"))
#: SIGTERM must end the daemon within this (issue 12 item 2), whatever the tray does.
STOP_BOUND = 2.0


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[DesktopEnv]:
    with DesktopEnv.start(tmp_path / "desk", notifications=False) as d:
        yield d


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def tooltip_settled(desk: DesktopEnv, icon: str) -> str:
    name = desk.window_name(icon)
    return name if name.startswith("glosmsd: ") and "starting" not in name else ""


@pytest.mark.timeout(60 + STARTS * 12)
def test_every_start_docks_leaves_starting_and_ends_on_sigterm_within_2_s(
    desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    for n in range(STARTS):
        home = tmp_path / f"start-{n}"
        with TrayDaemon.start_on(desk, home, server, token) as ann:
            icon = desk.tray_icon()  # docked: viewable, wider than 1 px
            settle = f"start {n}: the tooltip to settle"
            shown = wait_until(functools.partial(tooltip_settled, desk, icon), 15, settle)
            assert shown != "glosmsd: starting"
            assert ann.proc is not None
            ann.proc.send_signal(signal.SIGTERM)
            try:
                code = ann.proc.wait(STOP_BOUND)
            except subprocess.TimeoutExpired:
                pytest.fail(f"start {n}: SIGTERM did not end the daemon within 2 s\n{ann.log()}")
            assert code == 0, f"start {n}: exit {code}\n{ann.log()}"
            wait_until(
                lambda: not desk.window_ids("--classname", "glosmsdSystemTrayIcon"),
                10,
                f"start {n}: the icon to leave the tray",
            )
