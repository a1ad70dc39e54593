"""What the doctor's probes saw: plain frozen values, one per part of the desktop.

`glosmsd.cli.doctor.probes` fills them in from the real system; `glosmsd.cli.doctor.verdicts`
judges them. Nothing here looks at anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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
