"""Issue 12 item 2: `glosmsd doctor` said `ok tray` while the tray icon was hung. It now
pings the icon's X thread (the tray answers on its window); a tray that cannot answer is
`missing`, with what to do. A real daemon with its tray in trayer on Xvfb; SIGSTOP makes
its tray thread unable to answer for as long as the test wants."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemonproc import DaemonProcess
from tests.support.desktop import DesktopEnv, TrayDaemon
from tests.support.serverproc import ROOT, ServerProcess, running_server

pytestmark = pytest.mark.desktop

ANN = "+15550001001"


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[DesktopEnv]:
    with DesktopEnv.start(tmp_path / "desk", notifications=False) as d:
        yield d


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def doctor_tray(daemon: DaemonProcess) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosmsd", "doctor", "--json", "--timeout", "3"],
        capture_output=True,
        text=True,
        env=daemon.env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    checks = json.loads(done.stdout)
    return dict(next(c for c in checks if c["check"] == "tray"))


def test_the_doctor_tells_a_live_tray_from_a_hung_one(
    desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with TrayDaemon.start_on(desk, tmp_path / "ann", server, token) as ann:
        ann.wait_online()
        desk.tray_icon()
        live = doctor_tray(ann)
        assert live["status"] == "ok", live
        assert ann.proc is not None
        ann.proc.send_signal(signal.SIGSTOP)
        try:
            hung = doctor_tray(ann)
        finally:
            ann.proc.send_signal(signal.SIGCONT)
        assert hung["status"] == "missing", hung
        assert "does not answer" in json.dumps(hung), hung
        assert "Restart glosmsd" in json.dumps(hung), hung
        assert doctor_tray(ann)["status"] == "ok"  # alive again
