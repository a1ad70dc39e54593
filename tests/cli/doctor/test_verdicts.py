"""`glosmsd.cli.doctor.verdicts`: the pure verdicts, with tables and properties."""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
