"""A real, private desktop for tests: Xvfb, a tray host (trayer), a D-Bus session bus with
dunst as the notification server, a bus monitor (to see hints and actions, which dunst's
history leaves out), and xclip for the clipboard.

A notification is acted on through dunst itself, as a person would: a mouse click on it
(`click_notification`, dunst's default middle click runs the default action) or dunst's
context menu (`choose_action`), where dunst runs "dmenu" with the actions and invokes the
line it gets back; the "dmenu" here is a stand-in script that answers with a chosen line.

Usage::

    with DesktopEnv.start(tmp_path) as desk:
        env = desk.env  # DISPLAY and DBUS_SESSION_BUS_ADDRESS for child processes
        desk.screenshot(tmp_path / "screen.png")

`require_desktop()` skips the test with the missing program's name when a piece is absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pytest

from tests.support.daemonproc import START_TIMEOUT, DaemonProcess, wait_until
from tests.support.serverproc import ROOT, ServerProcess

T = TypeVar("T")
PROGRAMS = (
    "Xvfb",
    "trayer",
    "dunst",
    "dunstctl",
    "dbus-daemon",
    "dbus-monitor",
    "xclip",
    "xdotool",
)
SCREEN = (1280, 800)


def require_desktop(*extra: str) -> None:
    missing = [p for p in (*PROGRAMS, *extra) if shutil.which(p) is None]
    if missing:
        pytest.skip(
            f"desktop test needs {', '.join(missing)} (apt-get install xvfb trayer dunst "
            "xclip xdotool dbus x11-utils imagemagick)"
        )


DUNSTRC = """
[global]
    font = DejaVu Sans 9
    origin = top-right
    offset = 10x40
    width = 320
    idle_threshold = 0
    show_age_threshold = -1
    dmenu = {dmenu}
    sticky_history = true
    history_length = 50
    # dunst's own defaults, spelled out so a newer dunst cannot change what a click does.
    mouse_left_click = close_current
    mouse_middle_click = do_action, close_current
    mouse_right_click = close_all
[urgency_normal]
    timeout = 0
"""

#: The session bus's own configuration minus its service directories: with them, a call to
#: org.freedesktop.Notifications made before our dunst owned the name started another
#: dunst by D-Bus activation (with the system's dunstrc, so no stand-in dmenu), ours exited
#: ("Cannot acquire 'org.freedesktop.Notifications'") and `choose_action` timed out.
BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

#: dunst hands the actions to "dmenu", one per line as `#Title (summary) [id,key]`, and
#: invokes the line it reads back. This stand-in records the list (whole, by a rename) and
#: answers with the first line that contains the text in the pick file (none: no choice).
DMENU = """#!/bin/sh
pick=$(cat "{pick}" 2>/dev/null)
cat > "{actions}.part"
[ -n "$pick" ] && grep -F -m1 -e "$pick" "{actions}.part"
mv "{actions}.part" "{actions}"
"""


class DesktopEnv:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.display = ""  # Xvfb picks a free one (-displayfd) and says which
        self.procs: list[subprocess.Popen[bytes]] = []
        self.bus = ""
        self.monitor_log = root / "dbus-monitor.log"
        self.actions_file = root / "dmenu-actions.txt"
        self.pick_file = root / "dmenu-pick.txt"

    @classmethod
    def start(cls, root: Path, *, tray: bool = True, notifications: bool = True) -> DesktopEnv:
        require_desktop()
        desk = cls(root)
        try:
            desk._start(tray, notifications)
        except BaseException:
            desk.close()
            raise
        return desk

    @property
    def env(self) -> dict[str, str]:
        env = {"DISPLAY": self.display, "PYSTRAY_BACKEND": "xorg"}
        if self.bus:
            env["DBUS_SESSION_BUS_ADDRESS"] = self.bus
        return env

    def _spawn(self, *cmd: str, stdout: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        """Start a helper; its stderr goes to `<root>/<program>.log` to read when it fails."""
        with open(self.root / f"{Path(cmd[0]).name}.log", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=log,
                env={**os.environ, **self.env},
            )
        self.procs.append(proc)
        return proc

    def _start(self, tray: bool, notifications: bool) -> None:
        self._start_x()
        wait_until(lambda: self.run("xdpyinfo", check=False).returncode == 0, 10, "X to answer")
        if tray:
            self._spawn(
                "trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                "--height", "32", "--transparent", "false", "--tint", "0x303030",
                "--SetDockType", "true", "--SetPartialStrut", "true", "--expand", "true",
            )  # fmt: skip
            wait_until(self._tray_owner, 10, "trayer to own the system tray selection")
        if notifications:
            conf = self.root / "bus.conf"
            conf.write_text(BUS_CONF)
            proc = self._spawn(
                "dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile",
                "--print-address=1", stdout=subprocess.PIPE,
            )  # fmt: skip
            assert proc.stdout is not None
            self.bus = proc.stdout.readline().decode().strip()
            assert self.bus, "dbus-daemon printed no address"
            dmenu = self.root / "dmenu.sh"
            dmenu.write_text(DMENU.format(actions=self.actions_file, pick=self.pick_file))
            dmenu.chmod(0o755)
            rc = self.root / "dunstrc"
            rc.write_text(DUNSTRC.format(dmenu=dmenu))
            self._spawn("dunst", "-conf", str(rc))
            wait_until(
                lambda: self.run("dunstctl", "is-paused", check=False).returncode == 0,
                10,
                "dunst on the private bus",
            )
            with open(self.monitor_log, "wb") as out:
                self._spawn(
                    "dbus-monitor", "--address", self.bus,
                    "interface='org.freedesktop.Notifications',member='Notify'",
                    stdout=out,
                )  # fmt: skip
            wait_until(lambda: self.monitor_log.stat().st_size > 0, 10, "dbus-monitor")

    def _start_x(self) -> None:
        """Xvfb on a display it picks itself: choosing a free number here raced other test
        runs on the machine (two Xvfb on one number, and a tray host docked into the other
        run's screen)."""
        w, h = SCREEN
        ready, told = os.pipe()
        try:
            with open(self.root / "Xvfb.log", "ab") as log:
                proc = subprocess.Popen(
                    ["Xvfb", "-displayfd", str(told), "-screen", "0", f"{w}x{h}x24",
                     "-nolisten", "tcp", "-noreset"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    pass_fds=(told,),
                )  # fmt: skip
        finally:
            os.close(told)
        self.procs.append(proc)
        with os.fdopen(ready, "rb") as pipe:
            said = b""
            deadline = time.monotonic() + 10
            while not said.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([pipe], [], [], left)[0]:
                    raise TimeoutError("timed out after 10 s waiting for Xvfb")
                chunk = os.read(pipe.fileno(), 16)
                if not chunk:
                    raise RuntimeError(f"Xvfb exited with {proc.wait(5)} before it was ready")
                said += chunk
        self.display = f":{int(said)}"

    def _tray_owner(self) -> bool:
        return bool(self.window_ids("--classname", "trayer"))

    def run(
        self, *cmd: str, check: bool = True, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            timeout=timeout,
            check=check,
        )

    # -- looking at the screen

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run("import", "-window", "root", str(path))
        return path

    def window_ids(self, *search: str) -> list[str]:
        res = self.run("xdotool", "search", *search, check=False)
        return res.stdout.split()

    def tray_icon(self, timeout: float = 15) -> str:
        """The icon's window once it is docked: mapped in the tray and wider than 1 px.
        (The window exists before the tray maps it; grabbing it then failed: issue 12
        item 22's `import -window ... returned non-zero`.)"""
        ids = wait_until(
            lambda: self.window_ids("--classname", "glosmsdSystemTrayIcon"),
            timeout,
            "the tray icon",
        )
        wait_until(lambda: self.docked(ids[0]), timeout, "the tray icon to dock")
        return ids[0]

    def docked(self, wid: str) -> bool:
        """The window is on screen (viewable) with a real size."""
        info = self.run("xwininfo", "-id", wid, check=False).stdout
        fields = {
            k.strip(): v.strip() for k, _c, v in (line.partition(":") for line in info.splitlines())
        }
        width = fields.get("Width", "0")
        return fields.get("Map State") == "IsViewable" and width.isdigit() and int(width) > 1

    def window_name(self, wid: str) -> str:
        return self.run("xdotool", "getwindowname", wid, check=False).stdout.strip()

    def window_geometry(self, wid: str) -> tuple[int, int, int, int]:
        out = self.run("xdotool", "getwindowgeometry", "--shell", wid).stdout
        vals = dict(line.split("=", 1) for line in out.split() if "=" in line)
        return int(vals["X"]), int(vals["Y"]), int(vals["WIDTH"]), int(vals["HEIGHT"])

    def grab(self, wid: str, path: Path) -> Path:
        self.run("import", "-window", wid, str(path))
        return path

    def click(self, wid: str, button: int = 1) -> None:
        self.run("xdotool", "mousemove", "--window", wid, "4", "4", "click", str(button))

    def key(self, *keys: str) -> None:
        self.run("xdotool", "key", "--delay", "30", *keys)

    # -- clipboard and notifications

    def clipboard(self) -> str:
        res = self.run("xclip", "-o", "-selection", "clipboard", check=False, timeout=5)
        return res.stdout if res.returncode == 0 else ""

    def history(self) -> list[dict[str, Any]]:
        """What dunst shows and showed: summary, body, appname (closes what is open)."""
        self.run("dunstctl", "close-all")
        data = json.loads(self.run("dunstctl", "history").stdout)
        return [{k: v["data"] for k, v in n.items()} for n in data["data"][0]]

    def displayed(self) -> int:
        out = self.run("dunstctl", "count", "displayed").stdout.strip()
        return int(out or 0)

    def notification_window(self, timeout: float = 10) -> str:
        ids = wait_until(lambda: self.window_ids("--classname", "Dunst"), timeout, "dunst's window")
        return ids[0]

    def click_notification(self, button: int = 2) -> None:
        """Click the top notification with the mouse (dunst: 2 runs its default action)."""
        x, y, w, _h = self.window_geometry(self.notification_window())
        self.run("xdotool", "mousemove", str(x + w // 2), str(y + 12), "click", str(button))

    def choose_action(self, title: str, timeout: float = 10) -> list[str]:
        """Open dunst's context menu and pick the action `title` (of the notifications on
        screen, the first that has it). Returns the lines dunst offered."""
        self.actions_file.unlink(missing_ok=True)
        self.pick_file.write_text(f"#{title} (")
        try:
            self.run("dunstctl", "context")
            wait_until(self.actions_file.exists, timeout, "dunst to offer the actions")
        finally:
            self.pick_file.unlink(missing_ok=True)
        return self.actions_file.read_text().splitlines()

    def notify_calls(self) -> str:
        """What went over the bus to the notification server (hints and actions included)."""
        return self.monitor_log.read_text(errors="replace")

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                with contextlib.suppress(OSError):
                    proc.stdout.close()
        self.procs.clear()

    def __enter__(self) -> DesktopEnv:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


RECORDER = """#!/bin/sh
# What the daemon ran as its window_command: one line per run, the arguments as given.
printf '%s\\n' "$*" >> "{out}"
"""


class WindowRecorder:
    """A `window_command` that only writes down each URL it is given (one line per run)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.script = root / "window-recorder.sh"
        self.out = root / "window-recorder.txt"
        self.script.write_text(RECORDER.format(out=self.out))
        self.script.chmod(0o755)

    @property
    def command(self) -> str:
        return f"{self.script} {{url}}"

    def urls(self) -> list[str]:
        return self.out.read_text().split() if self.out.exists() else []


class TrayDaemon(DaemonProcess):
    """A real glosmsd with its tray (not --headless), on the test desktop; `config` is the
    text of its config.toml (the command line gives the server and the token)."""

    def __init__(
        self, home: Path, server: ServerProcess, token: str, desk: DesktopEnv, config: str = ""
    ) -> None:
        super().__init__(home, server, token, ())
        self.desk = desk
        if config:
            path = home / "config" / "glosmsd" / "config.toml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(config)

    @classmethod
    def start_on(
        cls, desk: DesktopEnv, home: Path, server: ServerProcess, token: str, config: str = ""
    ) -> TrayDaemon:
        d = cls(home, server, token, desk, config)
        d.spawn()
        return d

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.desk.env}

    def spawn(self) -> None:
        cmd = [
            sys.executable, "-m", "glosmsd.cli.glosmsd", "--server", self.server.url,
            "--token-file", str(self.token_file), "--device-id", self.home.name, "-v",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env, cwd=ROOT
            )
        self.wait_until(self._answers, START_TIMEOUT, "the daemon's socket to answer")
