"""`glosmsd doctor` as a process: with nothing (no display, no bus, no programs, no config),
on the real test desktop with a server and a daemon (every check ok), and with the usual
faults: a wrong token, a killed daemon's stale socket, a closed port, an untrusted
certificate, a bus without a notification server, an X server without a tray, an X server
that is not there.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from glosmsd.cli.doctor import verdicts
from tests.daemon.test_link_tls import pki  # noqa: F401 - the private CA fixture, shared
from tests.support.daemonproc import DaemonProcess
from tests.support.desktop import DesktopEnv, TrayDaemon
from tests.support.serverproc import ROOT, ServerProcess, running_server

ANN = "+15550001001"


# --------------------------------------------------------------------------- processes

Checks = dict[str, dict[str, str]]


def bare_env(**extra: str) -> dict[str, str]:
    """The test's own XDG dirs, and nothing of a desktop unless `extra` brings it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")
        and k not in ("XDG_CURRENT_DESKTOP", "GLOSMSD_SOCKET", "PYSTRAY_BACKEND")
    }
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path, **extra}


def run_doctor(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosmsd", "doctor", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
        check=False,
    )


def checks(env: Mapping[str, str], *args: str, code: int | None = None) -> Checks:
    proc = run_doctor(env, "--json", *args)
    assert proc.stderr == ""
    if code is not None:
        assert proc.returncode == code, proc.stdout
    listed: list[dict[str, str]] = json.loads(proc.stdout)
    assert [c["check"] for c in listed] == list(verdicts.CHECKS)
    assert all(set(c) == {"check", "status", "detail", "fix"} for c in listed)
    return {c["check"]: c for c in listed}


def write_config(env: Mapping[str, str], body: str) -> Path:
    cfg = Path(env["XDG_CONFIG_HOME"]) / "glosmsd" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(body)
    return cfg


def write_token(path: Path, token: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def test_with_nothing_everything_missing_is_named_with_its_package(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = bare_env(PATH=str(empty))
    got = checks(env, code=1)
    assert {k: v["status"] for k, v in got.items()} == {
        "display": "missing",
        "tray": "missing",
        "notifications": "missing",
        "clipboard": "missing",
        "sound": "warning",
        "daemon": "warning",
        "config": "missing",
        "server": "warning",
    }
    assert "apt install trayer" in got["tray"]["fix"]
    assert "apt install gnome-shell-extension-appindicator" in got["tray"]["fix"]
    assert "apt install dbus-user-session" in got["notifications"]["fix"]
    assert (
        "apt install dunst (Fedora: dnf install dunst; Arch: pacman -S dunst)"
        in (got["notifications"]["fix"])
    )
    assert "apt install xclip" in got["clipboard"]["fix"]
    assert "apt install pulseaudio-utils" in got["sound"]["fix"]
    assert "Without it: no tray icon" in got["tray"]["fix"]
    socket_path = Path(env["XDG_RUNTIME_DIR"]) / "glosmsd" / "socket"
    assert got["daemon"]["detail"] == f"glosmsd is not running (no socket at {socket_path})"
    assert "glosmsd setup" in got["config"]["fix"]
    # The same as text: one line per check, the fixes under them, a summary.
    proc = run_doctor(env)
    assert proc.returncode == 1
    heads = [line for line in proc.stdout.splitlines() if not line.startswith(" ")]
    assert [h.split()[:2] for h in heads[:-1]] == [[got[c]["status"], c] for c in verdicts.CHECKS]
    assert heads[-1] == "5 missing, 3 warnings."
    assert "apt install" in proc.stdout


@pytest.mark.desktop
def test_on_the_test_desktop_with_a_server_and_a_daemon_everything_is_ok(
    tmp_path: Path, server: ServerProcess
) -> None:
    if not any(shutil.which(p) for p in verdicts.PLAYERS):
        pytest.skip("needs a sound player for the chime (apt-get install alsa-utils)")
    token = server.add_extension("1001", "Ann Lee", ANN)
    with (
        DesktopEnv.start(tmp_path / "desk") as desk,
        TrayDaemon.start_on(desk, tmp_path / "ann", server, token) as ann,
    ):
        ann.wait_online()
        desk.tray_icon()
        env = ann.env  # the daemon's XDG dirs and socket, the desktop's DISPLAY and bus
        write_config(env, f'server = "{server.url}"\ntoken_file = "{ann.token_file}"\n')
        proc = run_doctor(env)
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout
        lines = proc.stdout.splitlines()
        assert [line.split()[:2] for line in lines[:-1]] == [["ok", c] for c in verdicts.CHECKS]
        assert lines[-1] == "Everything glosmsd needs works."
        got = checks(env, code=0)
    assert got["display"]["detail"] == f"X11 display {desk.display} answers"
    assert got["tray"]["detail"] == "system tray host: trayer (owns _NET_SYSTEM_TRAY_S0)"
    assert got["notifications"]["detail"].startswith("dunst ")
    assert got["clipboard"]["detail"] == "copies with xclip"
    assert got["daemon"]["detail"] == (
        f"glosmsd answers at {ann.socket}: Ann Lee (extension 1001); server link: Online"
    )
    assert got["config"]["detail"].endswith(f"token in {ann.token_file} (0600)")
    assert got["server"]["detail"] == (
        f"{server.url}: glosmsd-server/{_server_version()}, protocol 1, extension 1001 "
        f"(Ann Lee), SMS number {ANN}"
    )
    assert all(c["fix"] == "" for c in got.values())


def _server_version() -> str:
    from glosmsd import __version__

    return __version__


def test_a_wrong_token_is_named(tmp_path: Path, server: ServerProcess) -> None:
    server.add_extension("1001", "Ann Lee", ANN)
    env = bare_env()
    token = write_token(tmp_path / "token", "not-the-token")
    write_config(env, f'server = "{server.url}"\ntoken_file = "{token}"\n')
    got = checks(env, code=1)
    assert got["config"]["status"] == "ok"
    assert got["server"]["status"] == "missing"
    assert got["server"]["detail"] == (
        f"{server.url}: the server refused the token (HTTP 401 Unauthorized)"
    )
    assert "new token" in got["server"]["fix"]


def test_a_killed_daemon_leaves_a_stale_socket_and_the_doctor_says_so(
    tmp_path: Path, server: ServerProcess
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with DaemonProcess.start(tmp_path / "ann", server, token) as ann:
        ann.wait_online()
        env = bare_env(**{k: v for k, v in ann.env.items() if k.startswith(("XDG_", "GLOSMSD"))})
        write_config(env, f'server = "{server.url}"\ntoken_file = "{ann.token_file}"\n')
        got = checks(env)
        assert got["daemon"]["status"] == "ok"
        assert got["server"]["status"] == "ok"
        ann.kill()
        assert ann.socket.is_socket()
        got = checks(env)
    assert got["daemon"]["status"] == "warning"
    assert got["daemon"]["detail"] == (
        f"glosmsd is not running: {ann.socket} is a stale socket left by a daemon that stopped "
        "without cleaning up (a crash or a kill)"
    )
    assert "removes the stale socket by itself" in got["daemon"]["fix"]


def test_a_closed_port_is_refused_and_a_non_websocket_port_is_told_apart(
    tmp_path: Path, server: ServerProcess
) -> None:
    token = write_token(tmp_path / "token", server.add_extension("1001", "Ann Lee", ANN))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = bare_env()
    write_config(env, f'server = "ws://127.0.0.1:{closed}/v1"\ntoken_file = "{token}"\n')
    got = checks(env, code=1)
    assert got["server"]["detail"].startswith(f"ws://127.0.0.1:{closed}/v1: connection refused")
    write_config(env, f'server = "{server.url}x"\ntoken_file = "{token}"\n')
    got = checks(env, code=1)
    assert got["server"]["detail"] == (f"{server.url}x: the server answered HTTP 404 Not Found")
    assert "Is the path right" in got["server"]["fix"]


def test_tls_an_untrusted_certificate_then_the_private_ca(
    tmp_path: Path,
    pki: Path,  # noqa: F811 - the fixture imported above
) -> None:
    extra = ("--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"))
    with running_server(tmp_path, "test", *extra) as srv:
        token = write_token(tmp_path / "token", srv.add_extension("1001", "Ann Lee", ANN))
        env = bare_env()
        write_config(env, f'server = "{srv.url}"\ntoken_file = "{token}"\n')
        got = checks(env, code=1)
        assert got["server"]["detail"].startswith(f"{srv.url}: TLS failed: certificate not")
        assert "set ca_file" in got["server"]["fix"]
        got = checks(env, "--ca-file", str(pki / "ca.pem"))
        assert got["server"]["status"] == "ok", got["server"]
        assert got["config"]["detail"].endswith(f"trusts {pki / 'ca.pem'}")
        plain = srv.url.replace("wss://", "ws://")
        got = checks(env, "--server", plain)
        assert got["server"]["detail"].startswith(f"{plain}: not a glosmsd WebSocket server")


BARE_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@pytest.mark.desktop
def test_an_x_server_without_a_tray_and_a_bus_without_a_notification_server(
    tmp_path: Path,
) -> None:
    with DesktopEnv.start(tmp_path / "desk", tray=False, notifications=False) as desk:
        # A session bus without service files: nothing to activate, so no notification
        # server at all (the standard dirs would start the installed dunst on demand).
        conf = tmp_path / "bus.conf"
        conf.write_text(BARE_BUS.format(dir=tmp_path))
        bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile",
             "--print-address=1"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert bus.stdout is not None
            address = bus.stdout.readline().decode().strip()
            env = bare_env(DISPLAY=desk.display, DBUS_SESSION_BUS_ADDRESS=address)
            got = checks(env, code=1)
        finally:
            bus.terminate()
            bus.wait(10)
            assert bus.stdout is not None
            bus.stdout.close()
    assert got["display"]["status"] == "ok"
    assert got["tray"]["status"] == "missing"
    assert got["tray"]["detail"] == (
        f"no system tray on {desk.display}: nobody owns _NET_SYSTEM_TRAY_S0"
    )
    assert "apt install trayer" in got["tray"]["fix"]
    assert got["notifications"]["status"] == "missing"
    assert "org.freedesktop.DBus.Error.ServiceUnknown" in got["notifications"]["detail"]
    assert "apt install dunst" in got["notifications"]["fix"]
    assert got["clipboard"]["status"] == "ok"


def test_an_x_display_that_is_not_there(tmp_path: Path) -> None:
    gone = ":399"
    assert not Path("/tmp/.X11-unix/X399").exists()
    got = checks(bare_env(DISPLAY=gone), "--timeout", "3", code=1)
    assert got["display"]["status"] == "missing"
    assert got["display"]["detail"].startswith(f"the X server at DISPLAY={gone} does not answer")
    assert got["tray"]["detail"] == "no display, so no system tray"
