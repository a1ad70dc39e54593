"""`glosmsd doctor`: the pure verdicts with tables and properties, then the real thing as a
process: with nothing (no display, no bus, no programs, no config), on the real test
desktop with a server and a daemon (every check ok), and with the usual faults: a wrong
token, a killed daemon's stale socket, a closed port, an untrusted certificate, a bus
without a notification server, an X server without a tray, an X server that is not there.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidStatus, InvalidURI
from websockets.http11 import Response

from glosmsd.cli.doctor import probes, verdicts
from glosmsd.cli.doctor.seen import (
    BusSeen,
    ConfigSeen,
    DisplaySeen,
    Seen,
    ServerOutcome,
    ServerSeen,
    SocketSeen,
    SocketState,
    TraySeen,
)
from glosmsd.cli.doctor.verdicts import Result
from glosmsd.desktop import notify
from glosmsd.system.paths import Paths
from tests.daemon.test_link_tls import pki  # noqa: F401 - the private CA fixture, shared
from tests.support.daemonproc import DaemonProcess
from tests.support.desktop import DesktopEnv, TrayDaemon
from tests.support.serverproc import ROOT, ServerProcess, running_server

ANN = "+15550001001"
X = DisplaySeen(x_display=":5")
DUNST = BusSeen(
    address="unix:path=/run/user/1000/bus",
    server=("dunst", "knopwob", "1.9.0", "1.2"),
    capabilities=frozenset({"body", "actions"}),
)
CONFIG_OK = ConfigSeen(
    "/home/ann/.config/glosmsd/config.toml",
    exists=True,
    server="wss://sms.example.com/v1",
    secret_file="/home/ann/.config/glosmsd/token",
    secret_mode=0o600,
)


# --------------------------------------------------------------------------- pure: tables


@pytest.mark.parametrize(
    ("seen", "status", "words"),
    [
        (X, "ok", "X11 display :5 answers"),
        (replace(X, wayland_display="wayland-0"), "ok", "Wayland wayland-0 with XWayland"),
        (replace(X, x_error="Connection refused"), "missing", "does not answer: Connection"),
        (DisplaySeen(wayland_display="wayland-0"), "warning", "without X11"),
        (DisplaySeen(), "missing", "neither DISPLAY nor WAYLAND_DISPLAY"),
    ],
)
def test_display(seen: DisplaySeen, status: str, words: str) -> None:
    r = verdicts.judge_display(seen)
    assert (r.check, r.status) == ("display", status)
    assert words in r.detail
    assert bool(r.fix) == (status != "ok")


@pytest.mark.parametrize(
    ("display", "tray", "status", "detail", "fix"),
    [
        (X, TraySeen("_NET_SYSTEM_TRAY_S0", "trayer"), "ok",
         "trayer (owns _NET_SYSTEM_TRAY_S0)", ""),
        (X, TraySeen("_NET_SYSTEM_TRAY_S0"), "missing", "nobody owns _NET_SYSTEM_TRAY_S0",
         "apt install trayer (Fedora: dnf install stalonetray; Arch: pacman -S stalonetray)"),
        (replace(X, desktop="ubuntu:GNOME"), TraySeen("_NET_SYSTEM_TRAY_S0", sni_host=True),
         "missing", "AppIndicator host is on the bus",
         "apt install gnome-shell-extension-appindicator"),
        (DisplaySeen(wayland_display="wayland-0", desktop="GNOME"), TraySeen(), "missing",
         "Wayland without X11", "gnome-shell-extension-appindicator"),
        (DisplaySeen(wayland_display="wayland-0", desktop="KDE"), TraySeen(sni_host=True),
         "missing", "an AppIndicator host runs", "Enable XWayland"),
        (replace(X, x_error="gone"), TraySeen(), "missing", "no display", "apt install trayer"),
        (DisplaySeen(), TraySeen(), "missing", "no display, so no system tray",
         "gnome-shell-extension-appindicator"),
    ],
)  # fmt: skip
def test_tray(display: DisplaySeen, tray: TraySeen, status: str, detail: str, fix: str) -> None:
    r = verdicts.judge_tray(display, tray)
    assert (r.check, r.status) == ("tray", status)
    assert detail in r.detail
    assert fix in r.fix
    if status == "missing":
        assert "no unread badge" in r.fix


@pytest.mark.parametrize(
    ("bus", "status", "detail", "fix"),
    [
        (DUNST, "ok", "dunst 1.9.0 (knopwob) on the session bus; no sound of its own", ""),
        (replace(DUNST, capabilities=frozenset({"sound"})), "ok", "plays sounds", ""),
        (BusSeen(), "missing", "DBUS_SESSION_BUS_ADDRESS is not set",
         "apt install dbus-user-session"),
        (BusSeen(runtime_bus="/run/user/1000/bus"), "missing", "not set",
         "export DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"),
        (BusSeen(address="unix:path=/nope", error="No such file or directory"), "missing",
         "cannot reach the session bus at unix:path=/nope", "log in again"),
        (BusSeen(address="unix:path=/b", server_error="org.freedesktop.DBus.Error.ServiceUnknown"),
         "missing", "no notification server on the session bus: org.freedesktop.DBus.Error",
         "apt install dunst (Fedora: dnf install dunst; Arch: pacman -S dunst)"),
        (BusSeen(address="unix:path=/b", server_error="no answer within 5 s"), "missing",
         "no answer within 5 s", "xfce4-notifyd"),
    ],
)  # fmt: skip
def test_notifications(bus: BusSeen, status: str, detail: str, fix: str) -> None:
    r = verdicts.judge_notifications(bus)
    assert (r.check, r.status) == ("notifications", status)
    assert detail in r.detail
    assert fix in r.fix
    if status == "missing":
        assert "no popup" in r.fix


WL = DisplaySeen(wayland_display="wayland-0")
BOTH = DisplaySeen(x_display=":0", wayland_display="wayland-0")


@pytest.mark.parametrize(
    ("display", "programs", "tool"),
    [
        (X, {"xclip", "xsel"}, "xclip"),
        (X, {"xsel"}, "xsel"),
        (X, {"klipper", "qdbus"}, "klipper"),
        (X, {"klipper"}, None),
        (X, {"wl-copy", "wl-paste"}, None),
        (WL, {"wl-copy", "wl-paste", "xclip"}, "wl-copy"),
        (WL, {"wl-copy"}, None),
        (WL, {"xclip"}, None),
        (BOTH, {"wl-copy", "xclip"}, "xclip"),
        (BOTH, {"wl-copy", "wl-paste", "xclip"}, "wl-copy"),
        (DisplaySeen(), {"xclip", "wl-copy", "wl-paste"}, None),
    ],
)
def test_clipboard_tool_is_the_one_pyperclip_picks(
    display: DisplaySeen, programs: set[str], tool: str | None
) -> None:
    assert verdicts.clipboard_tool(display, frozenset(programs)) == tool


@pytest.mark.parametrize(
    ("display", "programs", "status", "detail", "fix"),
    [
        (X, {"xclip"}, "ok", "copies with xclip", ""),
        (WL, {"wl-copy", "wl-paste"}, "ok", "copies with wl-copy", ""),
        (X, set(), "missing", "pyperclip needs xclip or xsel", "apt install xclip"),
        (WL, set(), "missing", "needs wl-copy and wl-paste", "apt install wl-clipboard"),
        (replace(X, x_error="gone"), {"xclip"}, "missing", "no working display", "session"),
        (DisplaySeen(), set(), "missing", "no clipboard tool", "apt install xclip"),
        (DisplaySeen(), {"xclip"}, "missing", "xclip installed, but there is no display",
         "desktop session"),
    ],
)  # fmt: skip
def test_clipboard(
    display: DisplaySeen, programs: set[str], status: str, detail: str, fix: str
) -> None:
    r = verdicts.judge_clipboard(display, frozenset(programs))
    assert (r.check, r.status) == ("clipboard", status)
    assert detail in r.detail
    assert fix in r.fix


def test_clipboard_tool_installed_without_a_display_gets_no_install_advice() -> None:
    # Issue 12 item 11: it said "xclip found, but no display" and still `apt install xclip`.
    r = verdicts.judge_clipboard(DisplaySeen(), frozenset({"xclip"}))
    assert "apt install" not in r.fix
    assert "apt" not in r.detail


@pytest.mark.parametrize(
    ("bus", "programs", "status", "detail"),
    [
        (replace(DUNST, capabilities=frozenset({"sound"})), set(), "ok", "server plays"),
        (DUNST, {"aplay", "paplay"}, "ok", "played with paplay"),
        (DUNST, {"ffplay"}, "ok", "played with ffplay"),
        (BusSeen(), {"pw-play"}, "ok", "played with pw-play"),
        (DUNST, set(), "warning", "no sound player (pw-play, paplay, aplay)"),
    ],
)
def test_sound(bus: BusSeen, programs: set[str], status: str, detail: str) -> None:
    r = verdicts.judge_sound(bus, frozenset(programs))
    assert (r.check, r.status) == ("sound", status)
    assert detail in r.detail
    if status == "warning":
        assert "apt install pulseaudio-utils" in r.fix
        assert "chime" in r.fix


def test_sound_players_are_the_ones_notify_tries() -> None:
    assert tuple(p[0] for p in notify.PLAYERS) == verdicts.PLAYERS


STATUS = {
    "extension": {"ext": "1001", "name": "Ann Lee"},
    "link": {"online": True, "line": "Online"},
}


@pytest.mark.parametrize(
    ("seen", "status", "detail", "fix"),
    [
        (SocketSeen("/run/s", "answers", STATUS), "ok",
         "glosmsd answers at /run/s: Ann Lee (extension 1001); server link: Online", ""),
        (SocketSeen("/run/s", "absent"), "warning", "not running (no socket at /run/s)",
         "glosmsd &"),
        (SocketSeen("/run/s", "stale"), "warning", "/run/s is a stale socket",
         "removes the stale socket"),
        (SocketSeen("/run/s", "not-socket"), "missing", "is not a socket", "GLOSMSD_SOCKET"),
        (SocketSeen("/run/s", "not-ours", error="its folder /run belongs to uid 4242"),
         "missing", "refusing /run/s: its folder /run belongs to uid 4242",
         "Another user may be listening there"),
        (SocketSeen("/run/s", "denied", error="Permission denied"), "missing",
         "cannot use /run/s: Permission denied", "GLOSMSD_SOCKET"),
        (SocketSeen("/run/s", "silent", error="glosmsd did not answer in time"), "missing",
         "does not answer: glosmsd did not answer in time", "--replace"),
        (SocketSeen("/run/s", "broken", error="sent something odd"), "missing",
         "sent something odd", "permissions"),
    ],
)  # fmt: skip
def test_daemon(seen: SocketSeen, status: str, detail: str, fix: str) -> None:
    r = verdicts.judge_daemon(seen)
    assert (r.check, r.status) == ("daemon", status)
    assert detail in r.detail
    assert fix in r.fix


@pytest.mark.parametrize(
    ("seen", "status", "detail", "fix"),
    [
        (CONFIG_OK, "ok", "config.toml: server wss://sms.example.com/v1, token in "
         "/home/ann/.config/glosmsd/token (0600)", ""),
        (replace(CONFIG_OK, ca_file="/ca.pem"), "ok", "trusts /ca.pem", ""),
        (replace(CONFIG_OK, exists=False), "ok", "the command line: server", ""),
        (replace(CONFIG_OK, secret_mode=0o640), "warning", "readable by its group (mode 0640)",
         "chmod 600 /home/ann/.config/glosmsd/token"),
        (ConfigSeen("/c.toml", exists=False, error="/c.toml: no such file"), "missing",
         "no config at /c.toml", "glosmsd setup"),
        (ConfigSeen("/c.toml", exists=True, error="/t: other users can read or change it, and "
                    "it holds the token. Run: chmod 600 /t"), "missing", "chmod 600 /t",
         "refuses a token other users can read"),
        (ConfigSeen("/c.toml", exists=True, error="/c.toml: not valid TOML"), "missing",
         "not valid TOML", "Fix the file"),
    ],
)  # fmt: skip
def test_config(seen: ConfigSeen, status: str, detail: str, fix: str) -> None:
    r = verdicts.judge_config(seen)
    assert (r.check, r.status) == ("config", status)
    assert detail in r.detail
    assert fix in r.fix


HELLO = {
    "protocol": 1,
    "server": "glosmsd-server/0.1.0",
    "extension": {"ext": "1001", "name": "Ann Lee"},
    "numbers": [{"number": ANN, "shared_with": []}],
}
URL = "wss://sms.example.com/v1"


@pytest.mark.parametrize(
    ("seen", "config", "status", "detail", "fix"),
    [
        (ServerSeen(URL, "ok", hello=HELLO), CONFIG_OK, "ok",
         f"{URL}: glosmsd-server/0.1.0, protocol 1, extension 1001 (Ann Lee), SMS number {ANN}",
         ""),
        (ServerSeen(URL, "ok", hello={**HELLO, "numbers": []}), CONFIG_OK, "ok",
         "no SMS number assigned", ""),
        (ServerSeen(), ConfigSeen("/c", exists=False, error="x"), "warning", "not checked",
         "Fix the config first"),
        (ServerSeen(URL, "unauthorized", "HTTP 401 Unauthorized"), CONFIG_OK, "missing",
         "the server refused the token (HTTP 401 Unauthorized)", "new token"),
        (ServerSeen(URL, "dns", "Name or service not known"), CONFIG_OK, "missing",
         "does not resolve (Name or service not known)", "host name"),
        (ServerSeen(URL, "refused", "Connection refused"), CONFIG_OK, "missing",
         "connection refused", "port is wrong"),
        (ServerSeen(URL, "timeout", "timed out"), CONFIG_OK, "missing", "no answer in time",
         "firewall"),
        (ServerSeen(URL, "tls", "certificate not trusted: self-signed"), CONFIG_OK, "missing",
         "TLS failed: certificate not trusted", "set ca_file"),
        (ServerSeen(URL, "tls", "certificate not trusted: x"), replace(CONFIG_OK, ca_file="/ca"),
         "missing", "TLS failed", "Check that /ca is the CA"),
        (ServerSeen(URL, "http", "the server answered HTTP 404 Not Found"), CONFIG_OK,
         "missing", "HTTP 404", "path"),
        (ServerSeen(URL, "not-websocket", "did not receive a valid HTTP response"), CONFIG_OK,
         "missing", "not a glosmsd WebSocket server", "wss://"),
        (ServerSeen(URL, "hello", "Protocol 1 is not supported"), CONFIG_OK, "missing",
         "refused hello: Protocol 1", "update glosmsd"),
        (ServerSeen(URL, "bad-url", "no host"), CONFIG_OK, "missing", "not a usable URL", "server"),
        (ServerSeen(URL, "unreachable", "Network is unreachable"), CONFIG_OK, "missing",
         "cannot reach it (Network is unreachable)", "VPN"),
    ],
)  # fmt: skip
def test_server(seen: ServerSeen, config: ConfigSeen, status: str, detail: str, fix: str) -> None:
    r = verdicts.judge_server(seen, config)
    assert (r.check, r.status) == ("server", status)
    assert detail in r.detail
    assert fix in r.fix


def _status(code: int, reason: str) -> InvalidStatus:
    return InvalidStatus(Response(code, reason, Headers()))


@pytest.mark.parametrize(
    ("exc", "outcome", "detail"),
    [
        (_status(401, "Unauthorized"), "unauthorized", "HTTP 401 Unauthorized"),
        (_status(403, "Forbidden"), "unauthorized", "HTTP 403 Forbidden"),
        (_status(404, "Not Found"), "http", "the server answered HTTP 404 Not Found"),
        (InvalidURI("ftp://x", "scheme isn't ws or wss"), "bad-url", "ftp://x"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls",
         "certificate not trusted"),
        (ssl.SSLError(1, "wrong version number"), "tls", "wrong version number"),
        (socket.gaierror(-2, "Name or service not known"), "dns", "Name or service not known"),
        (ConnectionRefusedError(111, "Connection refused"), "refused", "Connection refused"),
        (TimeoutError(), "timeout", "timed out"),
        (InvalidMessage("did not receive a valid HTTP response"), "not-websocket",
         "did not receive a valid HTTP response"),
        (EOFError(), "not-websocket", "EOFError"),
        (OSError(101, "Network is unreachable"), "unreachable", "Network is unreachable"),
        (ValueError("bad port"), "bad-url", "bad port"),
        (RuntimeError("odd"), "unreachable", "RuntimeError: odd"),
    ],
)  # fmt: skip
def test_connection_failures_are_told_apart(exc: BaseException, outcome: str, detail: str) -> None:
    assert probes.classify_failure(exc)[0] == outcome
    assert detail in probes.classify_failure(exc)[1]


def test_warnings_alone_do_not_fail_and_the_report_says_so() -> None:
    ok = Result("display", "ok", "fine")
    warn = Result("daemon", "warning", "not running", "Start it.")
    gone = Result("tray", "missing", "no tray", "apt install trayer.")
    assert verdicts.exit_code([ok, warn]) == 0
    assert verdicts.exit_code([ok, warn, gone]) == 1
    assert verdicts.render([ok]) == [
        "ok       display        fine",
        "Everything glosmsd needs works.",
    ]
    assert verdicts.render([ok, warn, gone]) == [
        "ok       display        fine",
        "warning  daemon         not running",
        "                       Start it.",
        "missing  tray           no tray",
        "                       apt install trayer.",
        "1 missing, 1 warning.",
    ]
    long = Result("tray", "missing", "x", "word " * 40)
    assert all(len(line) <= 100 for line in verdicts.render([long]))


# --------------------------------------------------------------------------- pure: properties

texts = st.text(alphabet="abc :/01", max_size=12)
seens = st.builds(
    Seen,
    display=st.builds(
        DisplaySeen,
        x_display=texts,
        wayland_display=texts,
        desktop=st.sampled_from(["", "GNOME", "KDE", "XFCE"]),
        x_error=st.none() | texts,
    ),
    tray=st.builds(TraySeen, selection=texts, owner=st.none() | texts, sni_host=st.booleans()),
    bus=st.builds(
        BusSeen,
        address=texts,
        runtime_bus=texts,
        error=st.none() | texts,
        server=st.tuples(texts, texts, texts, texts) | st.just(()),
        capabilities=st.frozensets(st.sampled_from(["sound", "body", "actions"])),
        server_error=st.none() | texts,
    ),
    programs=st.frozensets(st.sampled_from(probes.PROGRAMS)),
    socket=st.builds(
        SocketSeen,
        path=texts,
        state=st.sampled_from(get_args(SocketState)),
        status=st.none() | st.just(STATUS),
        error=texts,
    ),
    config=st.just(CONFIG_OK)
    | st.builds(ConfigSeen, path=texts, exists=st.booleans(), error=st.none() | texts),
    server=st.builds(
        ServerSeen,
        url=texts,
        outcome=st.sampled_from(get_args(ServerOutcome)),
        detail=texts,
        hello=st.none() | st.just(HELLO),
    ),
)


@settings(max_examples=100)
@given(seens)
def test_every_check_once_in_order_and_every_problem_has_a_fix(seen: Seen) -> None:
    results = verdicts.assess(seen)
    assert tuple(r.check for r in results) == verdicts.CHECKS
    for r in results:
        assert r.status in ("ok", "warning", "missing")
        assert r.detail
        assert (r.status == "ok") or r.fix
    assert verdicts.exit_code(results) == int(any(r.status == "missing" for r in results))
    lines = verdicts.render(results)
    assert [line.split()[0] for line in lines if not line.startswith(" ")][:-1] == [
        r.status for r in results
    ]


# --------------------------------------------------------------------------- probes in process


def test_probe_config_reads_like_the_daemon_and_writes_nothing(tmp_path: Path) -> None:
    paths = Paths.default()
    token = tmp_path / "token"
    token.write_text("secret\n")
    token.chmod(0o640)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'server = "ws://127.0.0.1:1/v1"\ntoken_file = "{token}"\n')
    seen, config, tls = probes.probe_config(cfg, {}, paths)
    assert (seen.exists, seen.error, seen.secret_mode) == (True, None, 0o640)
    assert config is not None
    assert config.token == "secret"
    assert tls is None
    assert verdicts.judge_config(seen).status == "warning"
    assert not paths.device_id_file.exists()  # the doctor only looks
    token.chmod(0o604)
    seen, config, _ = probes.probe_config(cfg, {}, paths)
    assert config is None
    assert seen.error is not None
    assert f"chmod 600 {token}" in seen.error
    seen, _, _ = probes.probe_config(None, {}, paths)
    assert (seen.exists, seen.path) == (False, str(paths.config_file))
    assert verdicts.judge_config(seen).detail == f"no config at {paths.config_file}"


def test_probe_socket_tells_a_file_from_a_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "socket"
    assert probes.probe_socket(path, 1).state == "absent"
    path.write_text("")
    assert probes.probe_socket(path, 1).state == "not-socket"
    path.unlink()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    assert probes.probe_socket(path, 1).state == "stale"


def test_a_listener_that_never_answers_is_silent(tmp_path: Path) -> None:
    path = tmp_path / "socket"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen()
        seen = probes.probe_socket(path, 0.3)
    assert (seen.state, seen.error) == ("silent", "glosmsd did not answer in time; is it stuck?")


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
