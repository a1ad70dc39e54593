"""`glosmsd --demo` end to end, from a clean home: the embedded server, a live account, the
echo, and a clean stop that leaves no server process behind."""

from __future__ import annotations

import json
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


class Demo:
    """`glosmsd --demo --headless` in a home of its own, started and stopped at will."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        self.env.update(
            PYTHONPATH=str(ROOT),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_DATA_HOME=str(home / "data"),
            XDG_STATE_HOME=str(home / "state"),
            XDG_CACHE_HOME=str(home / "cache"),
            XDG_RUNTIME_DIR=str(home / "run"),
        )
        self.env.pop("GLOSMSD_SOCKET", None)
        (home / "run").mkdir(mode=0o700, exist_ok=True)
        self.socket = home / "run" / "glosmsd" / "socket"
        self.log_path = home / "demo.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> dict[str, Any]:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "glosmsd.cli.glosmsd", "--demo", "--headless", *extra],
                env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        return self.wait_online()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def call(self, method: str, **params: Any) -> Any:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(self.log())
        with Client(self.socket, timeout=15) as c:
            return c.call(method, params or None)

    def wait_online(self) -> dict[str, Any]:
        def online() -> dict[str, Any]:
            try:
                st: dict[str, Any] = self.call("status")
            except DaemonNotRunning:
                return {}
            return st if st["link"]["online"] and st["number"] else {}

        return DaemonProcess.wait_until(online, 40, "the demo to come online")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def texts(self) -> list[str]:
        convs = self.call("conversations")
        return [
            m["text"]
            for c in convs
            for m in self.call("messages", conversation=c["id"])["messages"]
        ]


@pytest.mark.timeout(240)
def test_demo_restarts_add_nothing_a_dead_server_is_said_and_reset_starts_over(
    tmp_path: Path,
) -> None:
    demo = Demo(tmp_path)
    demo.start()
    DaemonProcess.wait_until(
        lambda: any("Welcome to the glosmsd demo" in t for t in demo.texts()), 20, "the welcome"
    )
    first = demo.call("status")["unread"]
    # Issue 12 item 11: the doctor checks the running demo's server, not "missing config".
    doctor = subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosmsd", "doctor", "--json"],
        env=demo.env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    checks = {c["check"]: c for c in json.loads(doctor.stdout)}
    assert checks["config"]["status"] == "ok", checks["config"]
    assert "running demo" in checks["config"]["detail"]
    assert checks["server"]["status"] == "ok", checks["server"]
    assert "extension 1001" in checks["server"]["detail"]
    assert demo.stop() == 0

    # Issue 12 item 17: a restart adds no "Welcome back" and no unread message.
    demo.start()
    assert demo.call("status")["unread"] == first
    assert demo.stop() == 0
    demo.start()
    assert demo.call("status")["unread"] == first
    assert not any("Welcome back" in t for t in demo.texts())

    # A killed demo server is said in the terminal and started again; the daemon goes on.
    assert demo.proc is not None
    children = _children(demo.proc.pid)
    assert children
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    DaemonProcess.wait_until(
        lambda: "the demo server stopped (exit code -9" in demo.log(), 20, "the line about it"
    )
    assert "starting it again" in demo.log()
    demo.wait_online()
    assert demo.stop() == 0

    # --reset starts over: the first run's welcome and ids again.
    demo.start("--reset")
    DaemonProcess.wait_until(
        lambda: any("Welcome to the glosmsd demo" in t for t in demo.texts()), 20, "the welcome"
    )
    assert [c["id"] for c in demo.call("conversations")] == [1, 2]
    assert demo.stop() == 0


def test_a_child_that_wrote_nothing_is_explained_by_its_exit() -> None:
    """The welcome's inject killed while the demo starts (a first run seen under load)
    logged `demo inject failed: ` and nothing after it."""
    from glosmsd.cli.demo import _exit_reason

    assert _exit_reason(-signal.SIGTERM) == "stopped by SIGTERM"
    assert _exit_reason(-99) == "stopped by signal 99"
    assert _exit_reason(2) == "exit status 2"
