"""`glosmsd`: start the daemon (or the demo), with a clear line for every start-up problem.

Parses the command line, sets up logging (the log file in the state dir, and stderr),
builds the `Config`, and runs `Daemon`. With `--demo` it first starts the embedded
reference server (`glosmsd.cli.demo`). Without a display it says once that it runs headless.
It must not hold any use case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import logging.handlers
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from glosmsd import __version__
from glosmsd.core.errors import ConfigError, GlosmsdError

if TYPE_CHECKING:
    from glosmsd.cli.demo import DemoPlaces, EmbeddedServer
    from glosmsd.daemon.config import Config
    from glosmsd.daemon.root import Daemon, Frontend
    from glosmsd.daemon.service import Service
    from glosmsd.desktop.bridge import Desktop
    from glosmsd.desktop.tray import MenuCommand, Tray
    from glosmsd.system.paths import Paths

log = logging.getLogger("glosmsd")

HEADLESS_LINE = (
    "glosmsd: no display found, running headless without the tray icon "
    "(use `glosms status` and `glosms watch` to see what the tray would show)."
)


def glosms_command() -> str:
    """How the user runs `glosms` from here: its name when PATH finds this installation's,
    else its path (`.venv/bin/glosms` in a checkout after `make demo`)."""
    here = Path(sys.executable).parent / "glosms"
    found = shutil.which("glosms")
    if found is not None and Path(found).resolve() == here.resolve():
        return "glosms"
    if not here.exists():
        return "glosms"
    with contextlib.suppress(ValueError):
        return str(here.relative_to(Path.cwd()))
    return str(here)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glosmsd",
        description="glosmsd: the desktop SMS/MMS daemon (tray, notifications, local socket).",
        epilog="other commands: `glosmsd setup` (first run: server, token, autostart) and "
        "`glosmsd doctor` (what this desktop is missing)",
    )
    p.add_argument("--version", action="version", version=f"glosmsd {__version__}")
    p.add_argument("--config", type=Path, help="config file (default: the user's config.toml)")
    p.add_argument("--server", help="server URL, e.g. wss://sms.example.com/v1")
    p.add_argument("--token-file", type=Path, help="file holding the login token (chmod 600)")
    p.add_argument(
        "--ca-file", type=Path, help="PEM CA certificates to trust for a wss:// server of your own"
    )
    p.add_argument("--device-id", help="a stable name for this device")
    p.add_argument("--ping-interval", type=float, help="keepalive seconds (default 20)")
    p.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow ws:// to a host other than loopback",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="start an embedded reference server with a demo account and use it",
    )
    p.add_argument(
        "--reset",
        action="store_true",
        help="with --demo: forget the demo's messages and start it over as on its first run",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="take over from a glosmsd already running for this user",
    )
    p.add_argument("--headless", action="store_true", help="run without the tray icon")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log on stderr")
    return p


def setup_logging(log_file: Path, verbose: int) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fh = logging.handlers.RotatingFileHandler(log_file, maxBytes=2_000_000, backupCount=2)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(fh)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.INFO if verbose else logging.WARNING)
    err.setFormatter(logging.Formatter("glosmsd: %(message)s"))
    root.addHandler(err)
    for noisy in ("websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def window_frontend(config: Config, service: Service) -> Frontend:
    """The SMS window (its HTTP + WebSocket adapter on 127.0.0.1), for every daemon: with
    or without a display, `glosms open --url` gives a link to it."""
    from glosmsd.desktop.window.frontend import WindowFrontend

    return WindowFrontend(config, service)


def can_notify() -> bool:
    """Whether desktop notifications can reach anyone: a session bus, or macOS/Windows."""
    return bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS")) or sys.platform in (
        "darwin",
        "win32",
    )


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Session:
    """What the main thread (tray, signals) and the asyncio thread share: set once, read."""

    def __init__(self, tray: Tray | None) -> None:
        self.tray = tray
        self.daemon: Daemon | None = None
        self.desktop: Desktop | None = None
        self.stop_asked = False

    def attach(self, daemon: Daemon) -> Daemon:
        self.daemon = daemon
        if self.stop_asked:
            daemon.request_stop()
        return daemon

    def request_stop(self, *_args: object) -> None:
        """From a signal handler or the tray thread."""
        self.stop_asked = True
        if self.daemon is not None:
            self.daemon.request_stop()

    def on_tray_command(self, command: MenuCommand) -> None:
        """Runs on the tray's thread: hand the click to the event loop."""
        if self.desktop is not None:
            self.desktop.command_threadsafe(command)

    async def run_desktop(self, daemon: Daemon) -> None:
        """The tray feed and notifications, on the daemon's loop (its `on_ready` hook)."""
        if self.tray is None and not can_notify():
            # Headless with no notification bus: the bridge would feed nobody, so it (and
            # the tray code it imports) is neither loaded nor run (issue 16).
            return
        from glosmsd.desktop.bridge import Desktop

        service, tasks = daemon.service, daemon.tasks
        assert service is not None
        window = getattr(daemon.frontend, "actions", None)
        assert tasks is not None
        desktop = Desktop(
            service,
            daemon.hub,
            tray=self.tray,
            notifier=None,
            socket_path=daemon.config.paths.socket_path,
            on_quit=daemon.request_stop,
            show_window=getattr(window, "show", None),
            tasks=tasks,
        )
        if can_notify():
            try:
                from glosmsd.desktop.notify import Notifier

                desktop.notifier = Notifier(desktop.on_notification_action, tasks=tasks)
            except Exception:
                log.warning("notifications are not available here", exc_info=True)
        self.desktop = desktop
        await desktop.run()


async def run_demo(args: argparse.Namespace, session: Session | None = None) -> int:
    from glosmsd.cli.demo import DemoPlaces, EmbeddedServer, ensure_seeded, reset
    from glosmsd.daemon.root import Daemon
    from glosmsd.system.paths import Paths

    base = Paths.default()
    places = DemoPlaces.under(base.data_dir)
    if args.reset:
        refuse_reset_while_running(base.socket_path)
        reset(places)
    first_run = not places.server_db.exists()
    token = await ensure_seeded(places)
    server = EmbeddedServer(places)
    url = await server.start()
    config = demo_config(base, places, url, token, args.ping_interval or 20.0)

    async def welcome(daemon: Daemon) -> None:
        await welcome_to_demo(daemon, server, url, first_run=first_run)

    ended: list[int] = []

    async def keep_server(daemon: Daemon) -> None:
        """A demo server that dies is said in the terminal and started again on its port
        once; if it dies again the demo ends (it left the daemon reconnecting in silence)."""
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        for again in (True, False):
            code = await server.wait_exit()
            # Ctrl+C reaches the server too: a stopping daemon cancels this meanwhile.
            await asyncio.sleep(1.0)
            what = "starting it again." if again else "the demo ends."
            print(
                f"glosmsd demo: the demo server stopped (exit code {code}; its log: "
                f"{server.log_path}); {what}",
                file=sys.stderr,
                flush=True,
            )
            if not again:
                break
            try:
                await server.start(port)
            except GlosmsdError as exc:
                print(f"glosmsd demo: {exc.message} The demo ends.", file=sys.stderr, flush=True)
                break
        ended.append(1)
        daemon.request_stop()

    async def ready(daemon: Daemon) -> None:
        tasks = daemon.tasks
        assert tasks is not None
        watch = tasks.spawn(keep_server(daemon), name="demo server")  # ends with the daemon
        if session is None:
            await welcome(daemon)
            await watch
            return
        tasks.spawn(welcome(daemon), name="demo welcome")
        await session.run_desktop(daemon)

    daemon = Daemon(config, replace=args.replace, on_ready=ready, frontend=window_frontend)
    if session is not None:
        session.attach(daemon)
    try:
        await daemon.run()
    finally:
        await server.stop()
    return 1 if ended else 0


def demo_config(
    base: Paths, places: DemoPlaces, url: str, token: str, ping_interval: float
) -> Config:
    """The demo daemon's config: its own data folder under the demo's, every notice on."""
    from glosmsd.daemon.config import Config, load_device_id

    data = places.root / "desktop"
    paths = dataclasses.replace(
        base,
        data_dir=data,
        db_path=data / "glosmsd.sqlite3",
        files_dir=data / "files",
        device_id_file=data / "device_id",
    )
    paths.ensure_dirs()
    prefs = {"notify": True, "sound": True, "sms_enabled": True}
    return Config(
        server=url,
        token=token,
        device_id=load_device_id(paths.device_id_file),
        paths=paths,
        ping_interval=ping_interval,
        prefs=prefs,
    )


async def welcome_to_demo(
    daemon: Daemon, server: EmbeddedServer, url: str, *, first_run: bool
) -> None:
    """Say in the terminal what to try; on the first run, a message from the demo's Bob."""
    from glosmsd.cli.demo import DEMO_EXT

    g = glosms_command()
    svc = daemon.service
    assert svc is not None
    for _ in range(200):
        if svc.account.number:
            break
        await asyncio.sleep(0.05)
    window = f"  open the SMS window: {g} open\n" if has_display() else ""
    print(
        f"glosmsd demo: extension {DEMO_EXT} ({svc.account.name}), SMS number "
        f"{svc.account.number}, server {url}\n"
        f"  try: {g} status | {g} ls | "
        f'{g} send "Bob Roe" --pick 1 "Hello"\n'
        f"{window}"
        "  stop with Ctrl+C (`glosmsd --demo --reset` starts the demo over)",
        flush=True,
    )
    if not first_run:
        return  # a welcome on every start piled up unread messages (issue 12 item 17)
    await asyncio.sleep(2)
    text = "Welcome to the glosmsd demo! Text me back and I will answer."
    await server.inject("+15557654321", svc.account.number or "+15550001001", text)


def refuse_reset_while_running(socket_path: Path) -> None:
    """`--reset` removes the demo's data: never under a demo daemon that runs on it."""
    from glosmsd.client.ipc import Client

    try:
        with Client(socket_path, timeout=5) as client:
            client.call("status")
    except GlosmsdError:
        return
    raise ConfigError(
        "a glosmsd is running: stop it (Ctrl+C in its terminal) before `glosmsd --demo --reset`"
    )


def require_config(args: argparse.Namespace, config_file: Path) -> None:
    """No config file and nothing on the command line: say that, and what to run, instead
    of the config's "'server' is missing" (issue 12 item 12)."""
    if args.config is None and args.server is None and not config_file.exists():
        raise ConfigError(
            f"there is no config file ({config_file}): run `glosmsd setup` to connect to "
            "your SMS server (it asks for the URL and your token), or `glosmsd --demo` to "
            "try glosmsd with a demo server"
        )


async def run_daemon(args: argparse.Namespace, session: Session | None = None) -> int:
    from glosmsd.daemon.config import Config
    from glosmsd.daemon.root import Daemon
    from glosmsd.system.paths import Paths

    require_config(args, Paths.default().config_file)
    config = Config.load(
        args.config,
        {
            "server": args.server,
            "token_file": str(args.token_file) if args.token_file else None,
            "device_id": args.device_id,
            "ping_interval": args.ping_interval,
            "insecure": args.insecure,
            "ca_file": str(args.ca_file) if args.ca_file else None,
        },
    )
    daemon = Daemon(
        config,
        replace=args.replace,
        frontend=window_frontend,
        on_ready=session.run_desktop if session is not None else None,
    )
    if session is not None:
        session.attach(daemon)
    await daemon.run()
    return 0


def run_async(args: argparse.Namespace, session: Session | None) -> int:
    try:
        return asyncio.run(run_demo(args, session) if args.demo else run_daemon(args, session))
    except GlosmsdError as exc:
        print(f"glosmsd: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


#: SIGTERM, SIGINT or Quit ends the process within this, whatever hangs (issue 12 item 2).
STOP_BOUND = 1.8


def run_with_tray(args: argparse.Namespace, session: Session, tray: Tray) -> int:
    """The tray on the main thread (pystray wants it), the daemon's loop in a worker."""
    result: list[int] = []
    tray_done = threading.Event()
    finished = threading.Event()

    def worker() -> None:
        try:
            result.append(run_async(args, session))
        finally:
            tray.stop()
            # The tray's thread leaves run() when told to; should it be stuck (in a library
            # call nobody can interrupt), the process still ends: the daemon's work is
            # done and committed by now.
            if not tray_done.wait(STOP_BOUND):
                log.error("the tray did not stop; exiting without it")
                logging.shutdown()
                os._exit(result[0] if result else 1)

    def stop(*_args: object) -> None:
        session.request_stop()
        threading.Thread(target=bound, name="stop-bound", daemon=True).start()

    def bound() -> None:
        if not finished.wait(STOP_BOUND):
            log.error("glosmsd did not stop within %.1f s; exiting now", STOP_BOUND)
            logging.shutdown()
            os._exit(1)

    thread = threading.Thread(target=worker, name="asyncio")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    thread.start()
    try:
        tray.run()
    except Exception as exc:
        print(
            f"glosmsd: the tray icon cannot be shown ({exc}); running headless.",
            file=sys.stderr,
            flush=True,
        )
        log.debug("tray failed", exc_info=True)
    tray_done.set()
    # A Quit from the menu, a signal or a fatal error ends the worker; wait for it.
    while thread.is_alive():
        thread.join(0.5)
    finished.set()
    return result[0] if result else 1


#: `glosmsd NAME ...` runs these tools instead of the daemon: `glosmsd.cli.<module>.main()`.
SUBCOMMANDS = {"setup": "setup", "doctor": "doctor"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        tool = importlib.import_module(f"glosmsd.cli.{SUBCOMMANDS[argv[0]]}")
        code: int = tool.main(argv[1:])
        return code
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.reset and not args.demo:
        parser.error("--reset goes with --demo (it starts the demo over)")
    from glosmsd.system.paths import Paths

    setup_logging(Paths.default().log_file, args.verbose)
    if args.headless or not has_display():
        print(HEADLESS_LINE, file=sys.stderr, flush=True)
        return run_async(args, Session(None))
    from glosmsd.desktop.tray import Tray

    session = Session(None)
    tray = Tray(session.on_tray_command)
    session.tray = tray
    return run_with_tray(args, session, tray)


if __name__ == "__main__":
    raise SystemExit(main())
