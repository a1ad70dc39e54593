"""The doctor's probing half: look at the real system, every probe bounded by a timeout.

It only looks: it writes no file, stops nothing, and says only `hello` to the server (and
`status` to the daemon). Asking the notification server who it is may start one by D-Bus
activation, as the daemon's first notification would.

Its server probe opens its own WebSocket instead of going through `glosmsd.daemon.link`: the
link retries forever and folds every failure into a status line, while the doctor needs one
attempt and the failure's kind (name lookup, refused, TLS, token, not a glosmsd server),
which it takes from the link's own mapping, `glosmsd.daemon.linkerrors.connect_error`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import ssl
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from glosmsd import __version__
from glosmsd.cli import trayping
from glosmsd.cli.doctor.seen import (
    BusSeen,
    ConfigSeen,
    DisplaySeen,
    Seen,
    ServerOutcome,
    ServerSeen,
    SocketSeen,
    TraySeen,
)
from glosmsd.cli.doctor.verdicts import PLAYERS
from glosmsd.cli.trayping import IconSeen

DEFAULT_TIMEOUT: Final = 5.0
NOTIFICATIONS: Final = "org.freedesktop.Notifications"
SNI_WATCHER: Final = "org.kde.StatusNotifierWatcher"
#: The programs the doctor looks for on PATH.
PROGRAMS: Final = ("xclip", "xsel", "wl-copy", "wl-paste", "klipper", "qdbus", *PLAYERS)


def classify_failure(exc: BaseException) -> tuple[ServerOutcome, str]:
    """What kind of failure a connection attempt to the server ended in, and its words."""
    from glosmsd.core.errors import (
        AuthFailed,
        BadServerUrl,
        HttpStatus,
        NameNotResolved,
        NotWebSocket,
        ServerRefused,
        ServerTimeout,
        TlsFailed,
    )
    from glosmsd.daemon.linkerrors import connect_error

    error = connect_error(exc)
    if isinstance(error, HttpStatus):
        if error.status == 403:
            return "unauthorized", error.detail
        return "http", f"the server answered {error.detail}"
    outcomes: tuple[tuple[type[Exception], ServerOutcome], ...] = (
        (AuthFailed, "unauthorized"),
        (BadServerUrl, "bad-url"),
        (TlsFailed, "tls"),
        (NameNotResolved, "dns"),
        (ServerRefused, "refused"),
        (ServerTimeout, "timeout"),
        (NotWebSocket, "not-websocket"),
    )
    unreachable: ServerOutcome = "unreachable"
    outcome = next((o for cls, o in outcomes if isinstance(error, cls)), unreachable)
    return outcome, error.detail


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
        bus=dataclasses.replace(bus_seen, address=address, runtime_bus=runtime_bus),
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
