"""The doctor's pure half: what was seen (`Seen`) in, one `Result` per check out.

Each result is ok, warning or missing, with the advice for a missing piece (the
Debian/Ubuntu package, the Fedora and Arch names, and what stops working without it).
Tested with tables, without a display. This module must never look at the system.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from glosmsd.cli.doctor.seen import (
    BusSeen,
    ConfigSeen,
    DisplaySeen,
    Seen,
    ServerSeen,
    SocketSeen,
    Status,
    TraySeen,
)

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
#: Sound players `glosmsd.desktop.notify` tries, in its order (kept in step by a test).
PLAYERS: Final = ("pw-play", "paplay", "aplay", "afplay", "ffplay")


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
    if s.outcome == "ok":
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
    if s.outcome == "skipped":
        return Result(
            "server",
            "warning",
            "not checked: the config is not usable",
            "Fix the config first; then run glosmsd doctor again.",
        )
    words, what = _server_failure(s, c)
    return Result("server", "missing", f"{url}: {words}", _advice("server", what))


def _server_failure(s: ServerSeen, c: ConfigSeen) -> tuple[str, str]:
    """(what happened, what to do) for a server probe that failed."""
    setup = "Check `server` in the config (or run `glosmsd setup`)."
    match s.outcome:
        case "unauthorized":
            return (
                f"the server refused the token ({s.detail})",
                "Get a new token from your administrator and run `glosmsd setup`, or put it "
                "in the token file.",
            )
        case "dns":
            return (
                f"the host name does not resolve ({s.detail})",
                f"Check the host name and your network/VPN. {setup}",
            )
        case "refused":
            return (
                f"connection refused ({s.detail})",
                f"The server is down or the port is wrong. {setup}",
            )
        case "timeout":
            return (
                f"no answer in time ({s.detail})",
                "A firewall, a VPN or a stopped server: check the network.",
            )
        case "tls":
            ca = (
                f"Check that {c.ca_file} is the CA that signed the server's certificate."
                if c.ca_file
                else "For a server with a private CA, set ca_file in the config to that CA's "
                "PEM file."
            )
            return f"TLS failed: {s.detail}", ca
        case "http":
            return s.detail, f"Is the path right (e.g. /v1)? {setup}"
        case "not-websocket":
            return (
                f"not a glosmsd WebSocket server ({s.detail})",
                f"Wrong port, or ws:// to a TLS port (use wss://)? {setup}",
            )
        case "hello":
            return (
                f"the server refused hello: {s.detail}",
                "The server and this glosmsd do not fit: update glosmsd.",
            )
        case "bad-url":
            return f"not a usable URL ({s.detail})", setup
    return f"cannot reach it ({s.detail})", "Check the network (routes, VPN, proxy)."


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
