"""What a README reader has: a reference server with the demo company, and their daemon.

`demo_world(tmp_path)` starts a real `glosmsd-server` seeded like `glosmsd --demo` (the
`seed-demo` admin command, then the demo's welcome text from Bob Roe) and a real `glosmsd`
whose home looks like a user's: `~/.config/glosmsd/config.toml` naming the server and
`~/.config/glosmsd/token` (0600), data in `~/.local/share/glosmsd`, the socket in
`$XDG_RUNTIME_DIR/glosmsd/socket`. The daemon reads only that config file (no
`--server`), as after setup. With `desktop=True` it runs with its tray on a private
desktop (`tests.support.desktop.DesktopEnv`: Xvfb, trayer, dunst, xclip); otherwise headless.

The server uses the `test` carrier, which accepts every message at once: unlike the
demo's carrier it sends no echo reply a few seconds later, which would make what
`glosms read` prints depend on timing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.daemonproc import START_TIMEOUT, DaemonProcess
from tests.support.serverproc import ROOT, ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"
#: What `glosmsd --demo` says first (glosmsd.cli.glosmsd.run_demo), from Bob Roe's mobile.
WELCOME = "Welcome to the glosmsd demo! Text me back and I will answer."
#: The port the README shows for the server (glosmsd-server's default).
SHOWN_PORT = "8765"
#: Where the README says the runtime directory is (a systemd login's XDG_RUNTIME_DIR).
RUNTIME_SHOWN = "/run/user/1000"
#: Variables of the machine running the tests that would leak into a user's session.
NOT_INHERITED = (
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "GLOSMSD_SOCKET",
    "PYSTRAY_BACKEND",
    "GLOSMSD_TRAY_BG",
)


def user_env(home: Path, bin_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A login's environment: this HOME, a runtime dir in it, the venv's commands on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    runtime = home / "run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime),
        PATH=os.pathsep.join((str(bin_dir), env.get("PATH", os.defpath))),
        PYTHONPATH=path,
        PYTHONUTF8="1",
        COLUMNS="80",
        LC_ALL="C.UTF-8",
    )
    env.update(extra or {})
    return env


def user_places(home: Path) -> dict[str, str]:
    """This run's paths -> what the README shows for them."""
    return {str(home / "run"): RUNTIME_SHOWN, str(home): "~"}


class UserDaemon(DaemonProcess):
    """A glosmsd started the way a user's login starts it: `glosmsd`, config file only."""

    def __init__(
        self, home: Path, server: ServerProcess, token: str, desktop_env: dict[str, str]
    ) -> None:
        super().__init__(home, server, token, ())
        self.desktop_env = desktop_env
        config = home / ".config" / "glosmsd"
        config.mkdir(mode=0o700, parents=True, exist_ok=True)
        token_file = config / "token"
        self.token_file.replace(token_file)
        self.token_file = token_file
        (config / "config.toml").write_text(
            f'server = "{server.url}"\ntoken_file = "~/.config/glosmsd/token"\n'
        )

    @classmethod
    def start_user(
        cls, home: Path, server: ServerProcess, token: str, desktop_env: dict[str, str]
    ) -> UserDaemon:
        daemon = cls(home, server, token, desktop_env)
        daemon.spawn()
        return daemon

    @property
    def env(self) -> dict[str, str]:
        env = user_env(self.home, Path(sys.executable).parent, self.desktop_env)
        env["GLOSMSD_SOCKET"] = str(self.socket)
        return env

    def spawn(self) -> None:
        cmd = [sys.executable, "-m", "glosmsd.cli.glosmsd", "-v"]
        if not self.desktop_env:
            cmd.append("--headless")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env, cwd=ROOT
            )
        self.wait_until(self._answers, START_TIMEOUT, "the daemon's socket to answer")

    def wait_caught_up(self) -> None:
        """Online, and the catch-up sync done (the welcome text is in)."""
        self.wait_until(
            lambda: self.call("status")["link"]["line"] == "Online",
            START_TIMEOUT,
            "the daemon to be online and caught up",
        )
        self.wait_until(
            lambda: any(c["last_text"] == WELCOME for c in self.call("conversations", limit=10)),
            START_TIMEOUT,
            "the welcome text to reach the daemon",
        )


@dataclass(frozen=True, slots=True)
class World:
    """What the README's commands run against; `ports` maps the README's 8765 to the server's."""

    server: ServerProcess
    daemon: UserDaemon | None
    env: dict[str, str]
    places: dict[str, str]
    ports: dict[str, int]


def _seeded_server(stack: contextlib.ExitStack, tmp_path: Path) -> tuple[ServerProcess, str]:
    srv = stack.enter_context(running_server(tmp_path))
    token = srv.admin("seed-demo").strip().splitlines()[-1]
    srv.admin("inject", "--from", BOB, "--to", ANN, "--text", WELCOME)
    return srv, token


@contextlib.contextmanager
def demo_world(tmp_path: Path, *, desktop: bool = False) -> Iterator[World]:
    """The demo company's server and Ann Lee's running daemon (headless, or with its tray)."""
    with contextlib.ExitStack() as stack:
        desktop_env: dict[str, str] = {}
        places: dict[str, str] = {}
        if desktop:
            from tests.support.desktop import DesktopEnv

            desk = stack.enter_context(DesktopEnv.start(tmp_path / "desktop"))
            desktop_env = desk.env
            places[f"display {desk.display} "] = "display :0 "
        srv, token = _seeded_server(stack, tmp_path)
        home = tmp_path / "home"
        daemon = UserDaemon.start_user(home, srv, token, desktop_env)
        stack.enter_context(daemon)
        daemon.wait_caught_up()
        places.update(user_places(home))
        yield World(srv, daemon, daemon.env, places, {SHOWN_PORT: srv.port})


@contextlib.contextmanager
def firstrun_world(tmp_path: Path) -> Iterator[World]:
    """The demo company's server, and Ann Lee before her first run of glosmsd.

    Her home has no glosmsd files and nothing runs for her; the token her administrator
    sent (`admin token 1001`) is in `~/Downloads/sms-token.txt`, readable by all as a
    download is.
    """
    with contextlib.ExitStack() as stack:
        srv, _ = _seeded_server(stack, tmp_path)
        home = tmp_path / "home"
        downloads = home / "Downloads"
        downloads.mkdir(parents=True)
        token_file = downloads / "sms-token.txt"
        token_file.write_text(srv.admin("token", "1001"))
        token_file.chmod(0o644)
        env = user_env(home, Path(sys.executable).parent)
        yield World(srv, None, env, user_places(home), {SHOWN_PORT: srv.port})
