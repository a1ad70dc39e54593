"""`glosmsd doctor`: what this desktop has and lacks for glosmsd, and what to install.

Two halves. The pure half (`assess` and the `judge_*` functions) turns observations
(`Seen`: plain frozen values saying which programs exist and what the X server, the
session bus, the daemon's socket, the config and the server answered) into one `Result`
per check: ok, warning or missing, with the advice for a missing piece (the Debian/Ubuntu
package, the Fedora and Arch names, and what stops working without it). It is tested with
tables, without a display. The probing half (`probe_*`, `look`) looks at the real system,
every probe bounded by a timeout.

The doctor only looks: it writes no file, stops nothing, and says only `hello` to the
server (and `status` to the daemon). Asking the notification server who it is may start
one by D-Bus activation, as the daemon's first notification would.

Its server probe opens its own WebSocket instead of going through `glosmsd.daemon.link`: the link
retries forever and folds every failure into a status line, while the doctor needs one
attempt and the failure's kind (name lookup, refused, TLS, token, not a glosmsd server).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import shutil
import socket
import ssl
import stat
import sys
import textwrap
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from glosmsd import __version__
from glosmsd.cli import trayping
from glosmsd.cli.trayping import IconSeen

Status = Literal["ok", "warning", "missing"]
SocketState = Literal[
    "answers", "absent", "stale", "not-socket", "not-ours", "denied", "silent", "broken"
]
ServerOutcome = Literal[
    "ok",
    "skipped",
    "bad-url",
    "dns",
    "refused",
    "timeout",
    "tls",
    "unauthorized",
    "http",
    "not-websocket",
    "hello",
    "unreachable",
]

CHECKS: Final = (
    "display",
    "tray",
    "notifications",
    "clipboard",
    "sound",
    "daemon",
    "config",
    "server",
)
DEFAULT_TIMEOUT: Final = 5.0
NOTIFICATIONS: Final = "org.freedesktop.Notifications"
SNI_WATCHER: Final = "org.kde.StatusNotifierWatcher"
#: Sound players `glosmsd.desktop.notify` tries, in its order (kept in step by a test).
PLAYERS: Final = ("pw-play", "paplay", "aplay", "afplay", "ffplay")
#: The programs the doctor looks for on PATH.
PROGRAMS: Final = ("xclip", "xsel", "wl-copy", "wl-paste", "klipper", "qdbus", *PLAYERS)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Result:
    """One check's verdict. `fix` says what to do and what stops working until then."""

    check: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True, slots=True)
class Packages:
    """A piece's package on Debian/Ubuntu, and on Fedora and Arch where the name is known."""

    debian: str
    fedora: str = ""
    arch: str = ""

    def install(self) -> str:
        """`apt install X (Fedora: dnf install Y; Arch: pacman -S Z)`."""
        others = []
        if self.fedora:
            others.append(f"Fedora: dnf install {self.fedora}")
        if self.arch:
            others.append(f"Arch: pacman -S {self.arch}")
        tail = f" ({'; '.join(others)})" if others else ""
        return f"apt install {self.debian}{tail}"


PACKAGES: Final[Mapping[str, Packages]] = {
    "tray": Packages("trayer", "stalonetray", "stalonetray"),
    "appindicator": Packages(
        "gnome-shell-extension-appindicator",
        "gnome-shell-extension-appindicator",
        "gnome-shell-extension-appindicator",
    ),
    "notifications": Packages("dunst", "dunst", "dunst"),
    "bus": Packages("dbus-user-session"),
    "x-clipboard": Packages("xclip", "xclip", "xclip"),
    "wl-clipboard": Packages("wl-clipboard", "wl-clipboard", "wl-clipboard"),
    "sound": Packages("pulseaudio-utils", "pulseaudio-utils", "libpulse"),
}

WITHOUT: Final[Mapping[str, str]] = {
    "display": "no tray icon, no notification popups and no clipboard (glosmsd runs "
    "headless: use `glosms status` and `glosms watch`)",
    "tray": "no tray icon: no unread badge and no tray menu (glosms still works)",
    "notifications": "no popup (and no chime) for new messages; the tray badge still counts",
    "clipboard": "the tray's number item and `glosms number --copy` cannot copy",
    "sound": "the chime for new messages stays silent (when the sound preference is on)",
    "daemon": "`glosms` and the tray have nothing to talk to",
    "config": "glosmsd cannot start (except `glosmsd --demo`)",
    "server": "no messages are sent or received; sends wait in the outbox",
}


def _advice(check: str, what: str) -> str:
    return f"{what} Without it: {WITHOUT[check]}."


# --------------------------------------------------------------------------- observations


@dataclass(frozen=True, slots=True)
class DisplaySeen:
    """`$DISPLAY`, `$WAYLAND_DISPLAY`, `$XDG_CURRENT_DESKTOP`, and whether X answered."""

    x_display: str = ""
    wayland_display: str = ""
    desktop: str = ""
    #: Why the X server did not answer; None when it did or when there is no DISPLAY.
    x_error: str | None = None

    @property
    def x_ok(self) -> bool:
        return bool(self.x_display) and self.x_error is None


@dataclass(frozen=True, slots=True)
class TraySeen:
    #: The X selection a system tray owns, e.g. `_NET_SYSTEM_TRAY_S0`.
    selection: str = ""
    #: Who owns it (its WM_CLASS, or its window id); None when nobody does.
    owner: str | None = None
    #: A StatusNotifierWatcher (AppIndicator host) is on the session bus.
    sni_host: bool = False
    #: glosmsd's own tray icons on the display, and whether each one's thread answered.
    icons: tuple[IconSeen, ...] = ()


@dataclass(frozen=True, slots=True)
class BusSeen:
    address: str = ""
    #: `$XDG_RUNTIME_DIR/bus` when that socket exists (the usual session bus, unexported).
    runtime_bus: str = ""
    #: Why the bus could not be reached; None when it was (or when there is no address).
    error: str | None = None
    #: GetServerInformation: name, vendor, version, spec version.
    server: tuple[str, ...] = ()
    capabilities: frozenset[str] = frozenset()
    #: Why no notification server answered; None when one did.
    server_error: str | None = None


@dataclass(frozen=True, slots=True)
class SocketSeen:
    path: str
    state: SocketState
    status: Mapping[str, Any] | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class ConfigSeen:
    path: str
    exists: bool
    #: The config's own error message (ConfigError); None when it loaded.
    error: str | None = None
    server: str = ""
    #: The file that holds the token (the token file, or the config itself) and its mode.
    secret_file: str = ""
    secret_mode: int | None = None
    ca_file: str = ""


@dataclass(frozen=True, slots=True)
class ServerSeen:
    url: str = ""
    outcome: ServerOutcome = "skipped"
    detail: str = ""
    hello: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Seen:
    """Everything the probes found, in one value."""

    display: DisplaySeen = field(default_factory=DisplaySeen)
    tray: TraySeen = field(default_factory=TraySeen)
    bus: BusSeen = field(default_factory=BusSeen)
    programs: frozenset[str] = frozenset()
    socket: SocketSeen = field(default_factory=lambda: SocketSeen("", "absent"))
    config: ConfigSeen = field(default_factory=lambda: ConfigSeen("", exists=False))
    server: ServerSeen = field(default_factory=ServerSeen)


# --------------------------------------------------------------------------- the pure half


def judge_display(d: DisplaySeen) -> Result:
    if d.x_ok:
        extra = f" (Wayland {d.wayland_display} with XWayland)" if d.wayland_display else ""
        return Result("display", "ok", f"X11 display {d.x_display} answers{extra}")
    if d.x_display:
        return Result(
            "display",
            "missing",
            f"the X server at DISPLAY={d.x_display} does not answer: {d.x_error}",
            _advice(
                "display",
                "Check DISPLAY (and XAUTHORITY); run this from a terminal inside your desktop "
                "session.",
            ),
        )
    if d.wayland_display:
        return Result(
            "display",
            "warning",
            f"Wayland {d.wayland_display} without X11 (DISPLAY is not set)",
            "glosmsd's tray icon and clipboard use X11: enable XWayland (most desktops "
            "have it on) so that DISPLAY is set.",
        )
    return Result(
        "display",
        "missing",
        "no display: neither DISPLAY nor WAYLAND_DISPLAY is set",
        _advice("display", "Run glosmsd (and this doctor) inside your desktop session."),
    )


def _gnome(desktop: str) -> bool:
    return "gnome" in desktop.lower()


def _tray_fix(d: DisplaySeen) -> str:
    if _gnome(d.desktop):
        return _advice(
            "tray",
            "GNOME shows tray icons only with the AppIndicator extension: "
            f"{PACKAGES['appindicator'].install()}; then enable it in Extensions and log in "
            "again.",
        )
    return _advice(
        "tray",
        "Turn on your panel's system tray (notification area) applet, or run a tray host: "
        f"{PACKAGES['tray'].install()}.",
    )


def judge_tray(d: DisplaySeen, t: TraySeen) -> Result:
    hung = [i for i in t.icons if not i.answered]
    if d.x_ok and hung:
        title = hung[0].title or "no tooltip"
        return Result(
            "tray",
            "missing",
            f"glosmsd's tray icon does not answer (its thread is stuck; tooltip: {title})",
            _advice(
                "tray",
                "Restart glosmsd: stop it (its icon and menu are dead; `kill` the glosmsd "
                "process if SIGTERM does not end it) and start it again.",
            ),
        )
    if d.x_ok and t.owner:
        return Result("tray", "ok", f"system tray host: {t.owner} (owns {t.selection})")
    if d.x_ok:
        sni = "; an AppIndicator host is on the bus, but no X11 tray" if t.sni_host else ""
        return Result(
            "tray",
            "missing",
            f"no system tray on {d.x_display}: nobody owns {t.selection or 'the tray selection'}"
            f"{sni}",
            _tray_fix(d),
        )
    if d.wayland_display:
        return Result(
            "tray",
            "missing",
            f"Wayland without X11: no X11 system tray for the icon"
            f"{' (an AppIndicator host runs)' if t.sni_host else ''}",
            _tray_fix(d)
            if _gnome(d.desktop)
            else _advice(
                "tray",
                "Enable XWayland and a system tray in your panel (KDE and most panels "
                "have one; GNOME needs the AppIndicator extension: "
                f"{PACKAGES['appindicator'].install()}).",
            ),
        )
    return Result(
        "tray",
        "missing",
        "no display, so no system tray",
        _advice(
            "tray",
            "In your desktop session the panel needs a system tray: its tray applet, or "
            f"{PACKAGES['tray'].install()}; on GNOME the AppIndicator extension: "
            f"{PACKAGES['appindicator'].install()}.",
        ),
    )


def _bus_fix(b: BusSeen) -> str:
    if b.runtime_bus:
        return (
            f"A session bus is at {b.runtime_bus} but not exported: "
            f"export DBUS_SESSION_BUS_ADDRESS=unix:path={b.runtime_bus} (your session "
            "start-up should do it)."
        )
    return (
        f"Start a D-Bus session bus with your login: {PACKAGES['bus'].install()} (Fedora and "
        "Arch have it with systemd), then log in again."
    )


def judge_notifications(b: BusSeen) -> Result:
    if not b.address:
        return Result(
            "notifications",
            "missing",
            "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set",
            _advice(
                "notifications",
                _bus_fix(b) + f" A notification server too, if the desktop has none: "
                f"{PACKAGES['notifications'].install()}.",
            ),
        )
    if b.error is not None:
        return Result(
            "notifications",
            "missing",
            f"cannot reach the session bus at {b.address}: {b.error}",
            _advice("notifications", _bus_fix(b)),
        )
    if b.server_error is not None or not b.server:
        return Result(
            "notifications",
            "missing",
            f"no notification server on the session bus: {b.server_error or 'no answer'}",
            _advice(
                "notifications",
                "Desktops (GNOME, KDE, XFCE: xfce4-notifyd) bring one; elsewhere install one: "
                f"{PACKAGES['notifications'].install()}.",
            ),
        )
    name, vendor, version = (*b.server, "", "", "")[:3]
    sound = "plays sounds" if "sound" in b.capabilities else "no sound of its own"
    return Result("notifications", "ok", f"{name} {version} ({vendor}) on the session bus; {sound}")


def clipboard_tool(d: DisplaySeen, programs: frozenset[str]) -> str | None:
    """The helper pyperclip would use here (its own order), or None."""
    if d.wayland_display and {"wl-copy", "wl-paste"} <= programs:
        return "wl-copy"
    if d.x_display:
        for tool in ("xclip", "xsel"):
            if tool in programs:
                return tool
        if {"klipper", "qdbus"} <= programs:
            return "klipper"
    return None


def judge_clipboard(d: DisplaySeen, programs: frozenset[str]) -> Result:
    tool = clipboard_tool(d, programs)
    wayland_only = bool(d.wayland_display) and not d.x_display
    pkg = PACKAGES["wl-clipboard" if wayland_only else "x-clipboard"]
    if tool is not None and (d.x_ok or tool == "wl-copy"):
        return Result("clipboard", "ok", f"copies with {tool}")
    if tool is not None:
        return Result(
            "clipboard",
            "missing",
            f"{tool} is installed but has no working display to copy on",
            _advice("clipboard", "Run glosmsd inside your desktop session."),
        )
    if not d.x_display and not d.wayland_display:
        found = sorted({"xclip", "xsel", "wl-copy"} & programs)
        if found:
            # Installed: the display is what is missing, so no install advice (issue 12
            # item 11).
            return Result(
                "clipboard",
                "missing",
                f"{', '.join(found)} installed, but there is no display to copy on",
                _advice("clipboard", "Run glosmsd inside your desktop session."),
            )
        return Result(
            "clipboard",
            "missing",
            "no clipboard tool (pyperclip needs xclip or xsel on X11, wl-clipboard on Wayland)",
            _advice("clipboard", f"In your desktop session: {pkg.install()}."),
        )
    need = "wl-copy and wl-paste" if wayland_only else "xclip or xsel"
    return Result(
        "clipboard",
        "missing",
        f"no clipboard tool: pyperclip needs {need}",
        _advice("clipboard", f"{pkg.install()}."),
    )


def judge_sound(b: BusSeen, programs: frozenset[str]) -> Result:
    player = next((p for p in PLAYERS if p in programs), None)
    if "sound" in b.capabilities:
        return Result("sound", "ok", "the notification server plays the chime")
    if player is not None:
        return Result("sound", "ok", f"the chime is played with {player}")
    return Result(
        "sound",
        "warning",
        f"no sound player ({', '.join(PLAYERS[:3])}) and the notification server plays none",
        _advice("sound", f"Install one: {PACKAGES['sound'].install()} (or alsa-utils for aplay)."),
    )


def judge_daemon(s: SocketSeen) -> Result:
    start = "Start it: `glosmsd &` (or log in again if autostart is set up with `glosmsd setup`)."
    match s.state:
        case "answers":
            st = s.status or {}
            ext = st.get("extension") or {}
            link = st.get("link") or {}
            who = f"{ext.get('name') or '?'} (extension {ext.get('ext') or '?'})"
            line = link.get("line") or link.get("state") or "?"
            return Result(
                "daemon", "ok", f"glosmsd answers at {s.path}: {who}; server link: {line}"
            )
        case "absent":
            return Result(
                "daemon",
                "warning",
                f"glosmsd is not running (no socket at {s.path})",
                _advice("daemon", start),
            )
        case "stale":
            return Result(
                "daemon",
                "warning",
                f"glosmsd is not running: {s.path} is a stale socket left by a daemon that "
                "stopped without cleaning up (a crash or a kill)",
                _advice("daemon", f"{start} It removes the stale socket by itself."),
            )
        case "not-socket":
            return Result(
                "daemon",
                "missing",
                f"{s.path} exists and is not a socket",
                _advice(
                    "daemon", "Move it away (or set GLOSMSD_SOCKET elsewhere), then start glosmsd."
                ),
            )
        case "not-ours":
            return Result(
                "daemon",
                "missing",
                f"refusing {s.path}: {s.error}",
                _advice(
                    "daemon",
                    "Another user may be listening there: remove that folder or socket (or "
                    "run glosmsd with XDG_RUNTIME_DIR set, as a desktop login does), then "
                    "start glosmsd.",
                ),
            )
        case "denied":
            return Result(
                "daemon",
                "missing",
                f"cannot use {s.path}: {s.error}",
                _advice(
                    "daemon",
                    "Run as the user who owns it, or set GLOSMSD_SOCKET to your "
                    "own daemon's socket.",
                ),
            )
        case "silent":
            return Result(
                "daemon",
                "missing",
                f"a glosmsd holds {s.path} but does not answer: {s.error}",
                _advice(
                    "daemon",
                    "It may be stuck: restart it with `glosmsd --replace &` (see "
                    "its log in the state dir).",
                ),
            )
    return Result(
        "daemon",
        "missing",
        f"{s.path}: {s.error or 'unusable'}",
        _advice("daemon", "Check the path and its directory's permissions."),
    )


def judge_config(c: ConfigSeen) -> Result:
    if not c.exists and c.error is not None:
        return Result(
            "config",
            "missing",
            f"no config at {c.path}",
            _advice("config", "Run `glosmsd setup` (server, token and autostart in one go)."),
        )
    if c.error is not None:
        how = (
            "Run the chmod in the message: glosmsd refuses a token other users can read."
            if "chmod 600" in c.error
            else "Fix the file (README: configuration), or run `glosmsd setup` again."
        )
        return Result(
            "config", "missing", c.error or f"{c.path}: not usable", _advice("config", how)
        )
    where = c.path if c.exists else "the command line"
    if c.secret_mode is not None and c.secret_mode & 0o077:
        return Result(
            "config",
            "warning",
            f"{where}: the token in {c.secret_file} is readable by its group "
            f"(mode {c.secret_mode:04o})",
            f"Run: chmod 600 {c.secret_file} (the token logs in as you).",
        )
    mode = f" ({c.secret_mode:04o})" if c.secret_mode is not None else ""
    ca = f", trusts {c.ca_file}" if c.ca_file else ""
    return Result("config", "ok", f"{where}: server {c.server}, token in {c.secret_file}{mode}{ca}")


def judge_server(s: ServerSeen, c: ConfigSeen) -> Result:
    url = s.url or c.server
    setup = "Check `server` in the config (or run `glosmsd setup`)."
    match s.outcome:
        case "ok":
            h = s.hello or {}
            ext = h.get("extension") or {}
            numbers = [n.get("number") for n in h.get("numbers") or () if n.get("number")]
            number = f", SMS number {numbers[0]}" if numbers else ", no SMS number assigned"
            return Result(
                "server",
                "ok",
                f"{url}: {h.get('server') or 'server'}, protocol {h.get('protocol')}, "
                f"extension {ext.get('ext') or '?'} ({ext.get('name') or '?'}){number}",
            )
        case "skipped":
            return Result(
                "server",
                "warning",
                "not checked: the config is not usable",
                "Fix the config first; then run glosmsd doctor again.",
            )
        case "unauthorized":
            return Result(
                "server",
                "missing",
                f"{url}: the server refused the token ({s.detail})",
                _advice(
                    "server",
                    "Get a new token from your administrator and run "
                    "`glosmsd setup`, or put it in the token file.",
                ),
            )
        case "dns":
            return Result(
                "server",
                "missing",
                f"{url}: the host name does not resolve ({s.detail})",
                _advice("server", f"Check the host name and your network/VPN. {setup}"),
            )
        case "refused":
            return Result(
                "server",
                "missing",
                f"{url}: connection refused ({s.detail})",
                _advice("server", f"The server is down or the port is wrong. {setup}"),
            )
        case "timeout":
            return Result(
                "server",
                "missing",
                f"{url}: no answer in time ({s.detail})",
                _advice("server", "A firewall, a VPN or a stopped server: check the network."),
            )
        case "tls":
            ca = (
                f"Check that {c.ca_file} is the CA that signed the server's certificate."
                if c.ca_file
                else "For a server with a private CA, set ca_file in the config to that CA's "
                "PEM file."
            )
            return Result(
                "server",
                "missing",
                f"{url}: TLS failed: {s.detail}",
                _advice("server", ca),
            )
        case "http":
            return Result(
                "server",
                "missing",
                f"{url}: {s.detail}",
                _advice("server", f"Is the path right (e.g. /v1)? {setup}"),
            )
        case "not-websocket":
            return Result(
                "server",
                "missing",
                f"{url}: not a glosmsd WebSocket server ({s.detail})",
                _advice("server", f"Wrong port, or ws:// to a TLS port (use wss://)? {setup}"),
            )
        case "hello":
            return Result(
                "server",
                "missing",
                f"{url}: the server refused hello: {s.detail}",
                _advice("server", "The server and this glosmsd do not fit: update glosmsd."),
            )
        case "bad-url":
            return Result(
                "server",
                "missing",
                f"{url}: not a usable URL ({s.detail})",
                _advice("server", setup),
            )
    return Result(
        "server",
        "missing",
        f"{url}: cannot reach it ({s.detail})",
        _advice("server", "Check the network (routes, VPN, proxy)."),
    )


def assess(seen: Seen) -> list[Result]:
    """Every check's result, in `CHECKS` order."""
    return [
        judge_display(seen.display),
        judge_tray(seen.display, seen.tray),
        judge_notifications(seen.bus),
        judge_clipboard(seen.display, seen.programs),
        judge_sound(seen.bus, seen.programs),
        judge_daemon(seen.socket),
        judge_config(seen.config),
        judge_server(seen.server, seen.config),
    ]


def exit_code(results: Iterable[Result]) -> int:
    """1 when something needed is missing; warnings alone do not fail."""
    return 1 if any(r.status == "missing" for r in results) else 0


def summary(results: Sequence[Result]) -> str:
    missing = sum(r.status == "missing" for r in results)
    warnings = sum(r.status == "warning" for r in results)
    if not missing and not warnings:
        return "Everything glosmsd needs works."
    parts = []
    if missing:
        parts.append(f"{missing} missing")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts) + "."


def render(results: Sequence[Result], width: int = 100) -> list[str]:
    """The report for people: one line per check, then its fix indented under it."""
    lines = []
    indent = " " * 23
    for r in results:
        lines.append(f"{r.status:<8} {r.check:<13}  {r.detail}")
        if r.fix and r.status != "ok":
            lines += textwrap.wrap(
                r.fix, width, initial_indent=indent, subsequent_indent=indent,
                break_on_hyphens=False, break_long_words=False,
            )  # fmt: skip
    lines.append(summary(results))
    return lines


def classify_failure(exc: BaseException) -> tuple[ServerOutcome, str]:
    """What kind of failure a connection attempt to the server ended in, and its words."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        reason = exc.response.reason_phrase
        if code in (401, 403):
            return "unauthorized", f"HTTP {code} {reason}".strip()
        return "http", f"the server answered HTTP {code} {reason}".strip()
    if isinstance(exc, InvalidURI):
        return "bad-url", str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
        return "tls", f"certificate not trusted: {why}"
    if isinstance(exc, ssl.SSLError):
        return "tls", str(getattr(exc, "reason", None) or exc)
    if isinstance(exc, socket.gaierror):
        return "dns", exc.strerror or str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "refused", exc.strerror or "connection refused"
    if isinstance(exc, TimeoutError):
        return "timeout", str(exc) or "timed out"
    if isinstance(exc, InvalidHandshake | EOFError | ConnectionResetError):
        return "not-websocket", str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        return "unreachable", exc.strerror or str(exc)
    if isinstance(exc, ValueError):
        return "bad-url", str(exc)
    return "unreachable", f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- probing


XSeen = tuple[str | None, str, str | None, tuple[IconSeen, ...]]


def probe_x(name: str, timeout: float) -> XSeen:
    """(x_error, tray selection, its owner, glosmsd's icons) for the X display `name`,
    within `timeout`."""
    out: list[XSeen] = []

    def run() -> None:
        out.append(_probe_x(name))

    # python-xlib has no timeouts: a wedged X server must not wedge the doctor.
    worker = threading.Thread(target=run, name="doctor-x", daemon=True)
    worker.start()
    worker.join(timeout)
    if not out:
        return f"no answer within {timeout:g} s", "", None, ()
    return out[0]


def _probe_x(name: str) -> XSeen:
    try:
        from Xlib import X
        from Xlib import display as xdisplay
    except ImportError as exc:  # pragma: no cover - python-xlib comes with pystray
        return f"python-xlib is not installed ({exc})", "", None, ()
    try:
        d = xdisplay.Display(name)
    except Exception as exc:  # Xlib raises its own classes, OSError, or worse
        return str(exc) or type(exc).__name__, "", None, ()
    try:
        selection = f"_NET_SYSTEM_TRAY_S{d.get_default_screen()}"
        owner = d.get_selection_owner(d.intern_atom(selection))
        if not owner or owner == X.NONE or getattr(owner, "id", 0) == X.NONE:
            return None, selection, None, ()
        return None, selection, _window_label(owner), tuple(trayping.ping_icons(d))
    except Exception as exc:
        return str(exc) or type(exc).__name__, "", None, ()
    finally:
        d.close()


def _window_label(window: Any) -> str:
    """A window's program name (WM_CLASS, else WM_NAME), else its id."""
    try:
        wm_class = window.get_wm_class()
        name = wm_class[0] if wm_class else window.get_wm_name()
    except Exception:  # the owner went away in between, or an odd window
        name = None
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return str(name) if name else f"window 0x{window.id:x}"


async def probe_bus(address: str, seconds: float) -> tuple[BusSeen, bool]:
    """Reach the session bus at `address`, ask the notification server who it is, and
    whether an AppIndicator host (StatusNotifierWatcher) is there."""
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    try:
        bus = await asyncio.wait_for(MessageBus(bus_address=address).connect(), seconds)
    except Exception as exc:
        return BusSeen(address=address, error=_words(exc, seconds)), False

    async def call(msg: Message) -> tuple[list[Any] | None, str | None]:
        try:
            reply = await asyncio.wait_for(bus.call(msg), seconds)
        except Exception as exc:
            return None, _words(exc, seconds)
        if reply.message_type == MessageType.ERROR:
            text = str(reply.body[0]) if reply.body else ""
            return None, f"{reply.error_name}: {text}" if text else str(reply.error_name)
        return list(reply.body), None

    def notifications(member: str) -> Message:
        return Message(
            destination=NOTIFICATIONS,
            path="/org/freedesktop/Notifications",
            interface=NOTIFICATIONS,
            member=member,
        )

    caps: frozenset[str] = frozenset()
    try:
        info, info_error = await call(notifications("GetServerInformation"))
        if info_error is None:
            body, _ = await call(notifications("GetCapabilities"))
            caps = frozenset(str(c) for c in (body[0] if body else ()))
        has_sni, _ = await call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="NameHasOwner",
                signature="s",
                body=[SNI_WATCHER],
            )
        )
    finally:
        bus.disconnect()
    seen = BusSeen(
        address=address,
        server=tuple(str(x) for x in info) if info else (),
        capabilities=caps,
        server_error=info_error,
    )
    return seen, bool(has_sni and has_sni[0])


def _words(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    return str(exc) or type(exc).__name__


def probe_socket(path: Path, timeout: float) -> SocketSeen:
    """Is a daemon at `path`, and does it answer `status`?"""
    from glosmsd.client.ipc import Client
    from glosmsd.core.errors import (
        DaemonNotRunning,
        GlosmsdError,
        LinkClosed,
        SocketNotOurs,
        SocketUnusable,
    )

    where = str(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return SocketSeen(where, "absent")
    except OSError as exc:
        return SocketSeen(where, "denied", error=exc.strerror or str(exc))
    if not stat.S_ISSOCK(st.st_mode):
        return SocketSeen(where, "not-socket")
    try:
        with Client(path, timeout=timeout) as client:
            status = client.call("status")
    except DaemonNotRunning:
        return SocketSeen(where, "stale")
    except SocketNotOurs as exc:
        # The client's own words, less its advice (the doctor gives its own).
        why = exc.message.split(": ", 1)[-1].split(", so ", 1)[0]
        return SocketSeen(where, "not-ours", error=why)
    except SocketUnusable as exc:
        return SocketSeen(where, "denied", error=exc.message)
    except LinkClosed as exc:
        return SocketSeen(where, "silent", error=exc.message)
    except GlosmsdError as exc:
        return SocketSeen(where, "broken", error=exc.message)
    return SocketSeen(where, "answers", status=status if isinstance(status, dict) else {})


def probe_config(
    path: Path | None, overrides: Mapping[str, Any], paths: Any
) -> tuple[ConfigSeen, Any, ssl.SSLContext | None]:
    """The config as the daemon would load it: (what was seen, the Config, its TLS context)."""
    from glosmsd.core.errors import ConfigError
    from glosmsd.daemon.config import Config, tls_context

    file = path if path is not None else paths.config_file
    exists = file.exists()
    try:
        # The doctor's own device id: loading must not create the daemon's device-id file.
        config = Config.load(path, {**overrides, "device_id": "glosmsd-doctor"}, paths=paths)
        tls = tls_context(config)
    except ConfigError as exc:
        return ConfigSeen(str(file), exists, error=exc.message), None, None
    secret = config.token_file or config.source
    mode: int | None = None
    if secret is not None:
        try:
            mode = stat.S_IMODE(secret.stat().st_mode)
        except OSError:
            mode = None
    seen = ConfigSeen(
        str(file),
        exists,
        server=config.server,
        secret_file=str(secret) if secret is not None else "the command line",
        secret_mode=mode,
        ca_file=str(config.ca_file or ""),
    )
    return seen, config, tls


def probe_demo(
    no_config: ConfigSeen, paths: Any
) -> tuple[ConfigSeen, Any, ssl.SSLContext | None] | None:
    """The running demo's server and token as a config (issue 12 item 11: during `make
    demo` the doctor said "missing config" and "server not checked"); None without one."""
    from glosmsd.cli.demo import DemoPlaces

    places = DemoPlaces.under(paths.data_dir)
    try:
        url = places.url_file.read_text("utf-8").strip()
    except OSError:
        return None
    if not url or not places.token_file.is_file():
        return None
    seen, config, tls = probe_config(
        None, {"server": url, "token_file": str(places.token_file)}, paths
    )
    if config is None:
        return None
    where = f"no config at {no_config.path}; the running demo's (glosmsd --demo)"
    return dataclasses.replace(seen, path=where, exists=True), config, tls


async def probe_server(
    url: str, token: str, tls: ssl.SSLContext | None, seconds: float
) -> ServerSeen:
    """One WebSocket handshake with the token, then `hello`; what came of it."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from glosmsd.core import rpc
    from glosmsd.core.protocol import PROTOCOL_VERSION

    headers = {"Authorization": f"Bearer {token}", "X-Glosmsd-Device": "glosmsd-doctor"}
    extra: dict[str, Any] = {} if tls is None else {"ssl": tls}
    hello = rpc.request(
        "hello", {"protocol": PROTOCOL_VERSION, "client": f"glosmsd-doctor/{__version__}"}, 1
    )
    try:
        async with asyncio.timeout(seconds):
            async with connect(
                url,
                additional_headers=headers,
                user_agent_header=f"glosmsd-doctor/{__version__}",
                compression=None,
                open_timeout=None,
                **extra,
            ) as ws:
                await ws.send(json.dumps(hello))
                while True:
                    reply = json.loads(await ws.recv())
                    if isinstance(reply, dict) and reply.get("id") == 1:
                        break
    except ConnectionClosed as exc:
        return ServerSeen(url, "hello", f"the server closed the connection ({exc})")
    except json.JSONDecodeError:
        return ServerSeen(url, "hello", "the server's answer is not JSON")
    except Exception as exc:
        outcome, detail = classify_failure(exc)
        return ServerSeen(url, outcome, detail)
    error = reply.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        return ServerSeen(url, "hello", str(message))
    result = reply.get("result")
    return ServerSeen(url, "ok", hello=result if isinstance(result, dict) else {})


def look(
    *,
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> Seen:
    """Probe everything (concurrently, each within `timeout`) and return what was seen."""
    from glosmsd.system.paths import Paths

    env = os.environ if env is None else env
    paths = Paths.default(env)
    x_name = env.get("DISPLAY", "")
    address = env.get("DBUS_SESSION_BUS_ADDRESS", "")
    runtime = env.get("XDG_RUNTIME_DIR", "")
    runtime_bus = os.path.join(runtime, "bus") if runtime else ""
    if not runtime_bus or not _is_socket(runtime_bus):
        runtime_bus = ""
    search = env.get("PATH", os.defpath)
    programs = frozenset(p for p in PROGRAMS if shutil.which(p, path=search))
    config_seen, config, tls = probe_config(config_path, overrides or {}, paths)
    if config is None and not config_seen.exists and config_path is None:
        # No config of the user's: while `glosmsd --demo` runs, check the demo's instead.
        config_seen, config, tls = probe_demo(config_seen, paths) or (config_seen, config, tls)

    async def everything() -> tuple[Any, ...]:
        async def nothing() -> None:
            return None

        return tuple(
            await asyncio.gather(
                asyncio.to_thread(probe_x, x_name, timeout) if x_name else nothing(),
                asyncio.to_thread(probe_socket, paths.socket_path, timeout),
                probe_bus(address, timeout) if address else nothing(),
                probe_server(config.server, config.token, tls, timeout)
                if config is not None
                else nothing(),
            )
        )

    x, sock, bus, server = asyncio.run(everything())
    x_error, selection, owner, icons = x if x is not None else (None, "", None, ())
    bus_seen, sni = bus if bus is not None else (BusSeen(), False)
    return Seen(
        display=DisplaySeen(
            x_display=x_name,
            wayland_display=env.get("WAYLAND_DISPLAY", ""),
            desktop=env.get("XDG_CURRENT_DESKTOP", ""),
            x_error=x_error,
        ),
        tray=TraySeen(selection=selection, owner=owner, sni_host=sni, icons=icons),
        bus=BusSeen(
            address=address,
            runtime_bus=runtime_bus,
            error=bus_seen.error,
            server=bus_seen.server,
            capabilities=bus_seen.capabilities,
            server_error=bus_seen.server_error,
        ),
        programs=programs,
        socket=sock,
        config=config_seen,
        server=server if server is not None else ServerSeen(),
    )


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glosmsd doctor",
        description="Check what glosmsd needs on this desktop (display, tray, notifications, "
        "clipboard, sound, the daemon, the config, the server) and say what to install.",
        epilog="exit codes: 0 everything needed works (warnings alone do not fail), "
        "1 something is missing",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of the checks")
    p.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: the user's config.toml)"
    )
    p.add_argument("--server", metavar="URL", help="check this server URL instead of the config's")
    p.add_argument("--token-file", type=Path, metavar="FILE", help="use the token in this file")
    p.add_argument("--ca-file", type=Path, metavar="FILE", help="trust this CA (PEM) for wss://")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"for each probe (default {DEFAULT_TIMEOUT:g})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    # Probes log (websockets, the config's group-readable warning); the report says it all.
    logging.getLogger().addHandler(logging.NullHandler())
    overrides = {
        "server": args.server,
        "token_file": str(args.token_file) if args.token_file else None,
        "ca_file": str(args.ca_file) if args.ca_file else None,
    }
    seen = look(config_path=args.config, overrides=overrides, timeout=max(0.1, args.timeout))
    results = assess(seen)
    if args.json:
        sys.stdout.write(json.dumps([r.to_json() for r in results], indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(render(results)) + "\n")
    sys.stdout.flush()
    return exit_code(results)


if __name__ == "__main__":
    raise SystemExit(main())
