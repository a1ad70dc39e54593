"""`glosmsd --demo` end to end, from a clean home: the embedded server, a live account, the
echo, and a clean stop that leaves no server process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from glosmsd.client.ipc import Client, DaemonNotRunning
from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ROOT


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(t) for t in text)
    return out


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.timeout(90)
def test_demo_from_a_clean_home(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        PYTHONPATH=str(ROOT),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
    )
    env.pop("GLOSMSD_SOCKET", None)
    (tmp_path / "run").mkdir(mode=0o700)
    socket = tmp_path / "run" / "glosmsd" / "socket"
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "glosmsd.cli.glosmsd", "--demo", "--headless"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:

        def call(method: str, **params: Any) -> Any:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / "demo.log").read_text())
            with Client(socket, timeout=15) as c:
                return c.call(method, params or None)

        def status() -> dict[str, Any]:
            try:
                st: dict[str, Any] = call("status")
            except DaemonNotRunning:
                return {}
            return st if st["link"]["online"] and st["number"] else {}

        st = DaemonProcess.wait_until(status, 30, "the demo to come online")
        assert st["extension"]["ext"] == "1001"
        assert st["number"].startswith("+")
        DaemonProcess.wait_until(
            lambda: call("status")["unread"] > 0, 20, "the demo's unread messages"
        )
        sent = call("send", to="Bob Roe", pick=1, text="Hello demo")["message"]
        remote = sent["remote"]

        def echoed() -> bool:
            msgs = call("messages", conversation=remote)["messages"]
            return any(m["direction"] == "in" and m["id"] > sent["id"] for m in msgs)

        DaemonProcess.wait_until(echoed, 20, "the demo echo")
        servers = _children(proc.pid)
        assert servers, "the embedded server runs as a child process"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert code == 0, (tmp_path / "demo.log").read_text()
    for pid in servers:
        DaemonProcess.wait_until(lambda pid=pid: _gone(pid), 10, f"server {pid} to exit")  # type: ignore[misc]
    assert not socket.exists()
