"""`glosmsd setup`: the first run. A server URL and a token in, a working config out.

It asks for what the command line did not give (a terminal gets prompts and reads the
token without echo; a pipe gives one answer per line), checks the URL and the token with
the config's own rules, proves them by connecting exactly as the daemon does (its `Link`:
the same handshake, bearer token, TLS settings and `hello`), and only then writes
`config.toml` and the token file beside it (0600 in a 0700 directory, each replaced
atomically). What an existing config holds beyond the server and the token (device id,
prefs, ping interval, CA file) is kept. Last, it offers to start glosmsd at login
(`glosmsd.cli.autostart`).

Any failure before the write leaves every file as it was and ends with one line saying
what to do. This module must never decide protocol questions (the link and its core do),
nor touch the store or the daemon's socket.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from glosmsd.cli import autostart
from glosmsd.core.errors import (
    AuthFailed,
    BadInput,
    ConfigError,
    GlosmsdError,
    HttpStatus,
    LinkClosed,
    ServerRefused,
    TlsFailed,
)
from glosmsd.core.protocol import LinkStatus, State
from glosmsd.daemon.config import MAX_TOKEN_BYTES, SERVER_EXAMPLE, Config, save_token, tls_context
from glosmsd.system.atomicwrite import write_atomic
from glosmsd.system.paths import Paths

EXIT_OK: Final = 0
EXIT_SERVER: Final = 1  # the server refused the token, or could not be reached
EXIT_INPUT: Final = 2  # a bad URL, token or existing config; usage errors
EXIT_AUTOSTART: Final = 3  # the config was written, autostart could not be set up

DEFAULT_TIMEOUT: Final = 20.0
TOKEN_NAME: Final = "token"  # noqa: S105 - the file's name, not a secret
#: Settings of an existing config that setup keeps (it replaces server, token, insecure).
KEPT_KEYS: Final = ("device_id", "ping_interval", "ca_file", "prefs")

EPILOG = (
    f"exit codes: {EXIT_OK} done, {EXIT_SERVER} the server refused the token or could not "
    f"be reached, {EXIT_INPUT} bad input (URL, token, existing config), {EXIT_AUTOSTART} the "
    "config was written but autostart failed. Nothing is written unless the server accepted "
    "the token."
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 600")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glosmsd setup",
        description="First run: ask for the server URL and your token, check them with the "
        "server, write the config (readable only by you), and offer to start glosmsd at login.",
        epilog=EPILOG,
    )
    p.add_argument("--server", metavar="URL", help=f"the server, e.g. {SERVER_EXAMPLE}")
    token = p.add_mutually_exclusive_group()
    token.add_argument(
        "--token-file", metavar="FILE", type=Path, help="read the token from FILE (chmod 600)"
    )
    token.add_argument(
        "--token",
        metavar="-",
        help="'-': read the token from standard input (never on the command line: ps and "
        "shell history would show it)",
    )
    p.add_argument("--ca-file", metavar="FILE", type=Path, help="trust this CA (PEM) for wss://")
    p.add_argument(
        "--insecure", action="store_true", help="allow ws:// (no TLS) to a host other than loopback"
    )
    p.add_argument("-y", "--yes", action="store_true", help="answer yes to questions (autostart)")
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--autostart",
        nargs="?",
        const="auto",
        choices=("auto", *autostart.METHODS),
        help="start glosmsd at login without asking (default: the usual way on this system)",
    )
    start.add_argument("--no-autostart", action="store_true", help="do not ask about autostart")
    start.add_argument(
        "--remove-autostart",
        action="store_true",
        help="only stop glosmsd from starting at login, and exit",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the server (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show the link's log on stderr")
    return p


# --------------------------------------------------------------------------- answers


class Asker:
    """Questions on a terminal (prompts; the token unechoed) or answers read from a pipe."""

    def __init__(self) -> None:
        self.tty = sys.stdin.isatty()

    def line(self, prompt: str) -> str | None:
        """One answer, or None at end of input."""
        if self.tty:
            try:
                return input(prompt).strip()
            except EOFError:
                print()
                return None
        print(prompt.rstrip(), flush=True)
        answer = sys.stdin.readline()
        return answer.strip() if answer else None

    def secret(self, prompt: str) -> str | None:
        if self.tty:
            try:
                return getpass.getpass(prompt).strip()
            except EOFError:
                print()
                return None
        return self.line(prompt)

    def confirm(self, question: str, *, default: bool) -> bool:
        """Yes or no; an empty answer is `default`, the end of input is no."""
        hint = "[Y/n]" if default else "[y/N]"
        while True:
            answer = self.line(f"{question} {hint} ")
            if answer is None:
                return False
            word = answer.lower()
            if not word:
                return default
            if word in ("y", "yes"):
                return True
            if word in ("n", "no"):
                return False
            if not self.tty:
                return False
            print("Please answer y or n.")


def check_token(token: str | None) -> str:
    """The token if it has the shape of one (one word, not too long); else `BadInput`."""
    if not token:
        raise BadInput("no token given: paste the token your administrator gave you")
    if any(c.isspace() for c in token) or len(token.encode()) > MAX_TOKEN_BYTES:
        raise BadInput(
            "that is not a token (a token is one word, without spaces): paste it again, whole"
        )
    return token


def read_server(args: argparse.Namespace, ask: Asker) -> str:
    """The server URL from --server, or asked for."""
    server = args.server or ask.line(f"Server URL (e.g. {SERVER_EXAMPLE}): ")
    if not server:
        raise BadInput(f"no server URL given: pass --server URL, e.g. {SERVER_EXAMPLE}")
    return str(server)


def read_token(args: argparse.Namespace, ask: Asker) -> str:
    """The token from --token-file, from stdin (--token -), or asked for."""
    from glosmsd.daemon.config import read_token_file

    if args.token_file is not None:
        return read_token_file(args.token_file, "--token-file")
    if args.token is not None:
        if args.token != "-":  # noqa: S105 - "-" means stdin
            raise BadInput(
                "--token takes only '-' (read the token from standard input): on the command "
                "line, ps and your shell history would show it. Or use --token-file FILE."
            )
        raw = getpass.getpass("") if ask.tty else sys.stdin.readline()
        return check_token(raw.strip())
    return check_token(ask.secret("Token (it is not shown as you type): "))


# --------------------------------------------------------------------------- the config


def toml_string(value: str) -> str:
    """`value` as a TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for c in value:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or c == "\x7f":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    raise ConfigError(f"cannot keep the value {value!r}")


def render_config(server: str, *, insecure: bool, kept: Mapping[str, Any]) -> str:
    """config.toml text: the server, the token file beside it, and the settings kept."""
    lines = [
        "# glosmsd settings, written by `glosmsd setup` (run it again to change the server",
        "# or the token). The keys are described in glosmsd/daemon/config.py.",
        f"server = {toml_string(server)}",
        f"token_file = {toml_string(TOKEN_NAME)}  # beside this file, readable only by you",
    ]
    if insecure:
        lines.append("insecure = true")
    lines += [
        f"{key} = {_toml_value(kept[key])}" for key in KEPT_KEYS if key in kept and key != "prefs"
    ]
    prefs = kept.get("prefs")
    if isinstance(prefs, Mapping) and prefs:
        lines += ["", "[prefs]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in prefs.items()]
    elif prefs is not None and not isinstance(prefs, Mapping):
        raise ConfigError("[prefs] must be a table")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class SetupPlan:
    """What setup will write, already loaded the way the daemon will load it."""

    config_file: Path
    token_file: Path
    text: str
    token: str
    config: Config
    kept: tuple[str, ...]
    replaces: bool


def _kept_settings(
    file: Path, ca_file: Path | None
) -> tuple[dict[str, Any], tuple[str, ...], bool]:
    """The settings to write besides the server and the token.

    Returns them (the existing config's at `file`, plus `ca_file` from --ca-file), the keys
    the old config had, and whether it exists.
    """
    try:
        old = tomllib.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        old = None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{file} exists but cannot be read ({exc}): fix or remove it, then run "
            "glosmsd setup again"
        ) from None
    kept: dict[str, Any] = {k: old[k] for k in KEPT_KEYS if old is not None and k in old}
    carried = tuple(kept)
    if ca_file is not None:
        kept["ca_file"] = str(ca_file.expanduser().absolute())
    elif isinstance(kept.get("ca_file"), str):
        # The written file is checked from a scratch copy first: make the path absolute.
        path = Path(kept["ca_file"]).expanduser()
        kept["ca_file"] = str(path if path.is_absolute() else file.parent / path)
    return kept, carried, old is not None


def plan(
    server: str,
    token: str,
    *,
    insecure: bool,
    ca_file: Path | None,
    paths: Paths,
    scratch: Path,
) -> SetupPlan:
    """Check the answers with the config's rules and render the files (writes only `scratch`).

    The new config is written to `scratch` and loaded from there as the daemon will load
    it, so a value kept from the old config that the daemon would refuse fails here,
    before anything of the user's is touched.
    """
    real_id = paths.device_id_file
    check_paths = dataclasses.replace(
        paths,
        config_file=scratch / "config.toml",
        # Checking must not create the device id: the daemon makes it on its first start.
        device_id_file=real_id if real_id.is_file() else scratch / "device_id",
    )
    # The answers alone first, so a mistake is named after what the user typed.
    answers = {
        "server": server,
        "token": token,
        "insecure": insecure or None,
        "ca_file": None if ca_file is None else str(ca_file),
    }
    try:
        Config.load(None, answers, paths=check_paths)
    except ConfigError as exc:
        raise ConfigError(exc.message.replace("set insecure = true", "pass --insecure")) from None
    kept, carried, replaces = _kept_settings(paths.config_file, ca_file)
    text = render_config(server.strip(), insecure=insecure, kept=kept)
    staged = scratch / "config.toml"
    save_token(scratch / TOKEN_NAME, token)
    write_atomic(staged, text, mode=0o600)
    try:
        config = Config.load(staged, paths=check_paths)
    except ConfigError as exc:
        raise ConfigError(
            exc.message.replace(str(staged), str(paths.config_file))
            + " (kept from the existing config: fix or remove it, then run glosmsd setup again)"
        ) from None
    return SetupPlan(
        config_file=paths.config_file,
        token_file=paths.config_file.parent / TOKEN_NAME,
        text=text,
        token=token,
        config=dataclasses.replace(
            config,
            paths=paths,
            source=paths.config_file,
            token_file=paths.config_file.parent / TOKEN_NAME,
        ),
        kept=carried,
        replaces=replaces,
    )


def write(p: SetupPlan) -> None:
    """Write the token file and config.toml: 0600, in a 0700 directory, atomically."""
    directory = p.config_file.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        save_token(p.token_file, p.token)
        write_atomic(p.config_file, p.text, mode=0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {directory}: {exc.strerror or exc}: check that it is yours"
        ) from exc


# --------------------------------------------------------------------------- the server


async def check_server(config: Config, wait: float) -> dict[str, Any]:
    """Connect the way the daemon does and return the server's hello result.

    Uses the daemon's own `Link` for one attempt: its first outcome (hello answered, the
    token refused, or the connection failed) decides. Then its task is cancelled where it
    waits for the cursor, so it never asks for a sync (`Link.stop()` would let it send one
    on a closing connection first). Raises `AuthFailed` or `LinkClosed` with a line for
    the user.
    """
    from glosmsd.daemon.link import Link

    url = config.server
    outcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def on_status(status: LinkStatus) -> None:
        if outcome.done():
            return
        if status.state is State.AUTH_FAILED:
            outcome.set_exception(
                AuthFailed(
                    f"the server at {url} refused the token (HTTP 401): check that you "
                    "copied all of it, or ask your administrator for a new one"
                )
            )
        elif status.state in (State.BACKOFF, State.DISCONNECTED) and status.detail:
            line = unreachable_line(url, link.failure, status.detail)
            outcome.set_exception(LinkClosed(line))

    async def on_hello(hello: dict[str, Any]) -> None:
        if not outcome.done():
            outcome.set_result(hello)

    async def get_cursor() -> int:
        # The hello was all we wanted: hold the link here until its task is cancelled.
        await asyncio.Future()
        return 0

    async def ignore(*_args: Any, **_kwargs: Any) -> None:
        return None

    link = Link(
        url,
        config.token,
        device_id=config.device_id,
        on_event=ignore,
        on_status=on_status,
        get_cursor=get_cursor,
        apply_batch=ignore,
        on_hello=on_hello,
        ping_interval=config.ping_interval,
        ssl_context=tls_context(config),
    )
    running = asyncio.create_task(link.run(), name="glosmsd-setup-link")
    try:
        async with asyncio.timeout(wait):
            return await outcome
    except TimeoutError:
        raise LinkClosed(
            f"{url} did not answer within {wait:g} s: check the URL and that the server "
            "is running, or try again with a larger --timeout"
        ) from None
    finally:
        outcome.cancel()  # a late outcome must find nobody waiting, not a lost exception
        running.cancel()
        await asyncio.wait([running])
        if not running.cancelled() and running.exception() is not None:
            logging.getLogger(__name__).debug("the link ended", exc_info=running.exception())


def unreachable_line(url: str, failure: LinkClosed | None, detail: str) -> str:
    """What to do when the link's first attempt failed with `detail` (its status words).

    `failure` is the link's typed error for a connection that did not open; None when it
    opened and the session ended before hello was answered in a way we can use.
    """
    if failure is None:
        return (
            f"{url} answered, but not as a glosmsd server this version can use ({detail}): "
            "check the URL, or update glosmsd"
        )
    if isinstance(failure, ServerRefused):
        return (
            f"nothing answers at {url} ({detail}): check the host and port, and that the "
            "server is running"
        )
    if isinstance(failure, TlsFailed):
        return (
            f"cannot trust the server at {url} ({detail}): if it uses a private CA, pass "
            "--ca-file FILE with that CA's certificate"
        )
    if isinstance(failure, HttpStatus):
        # The link's own words already give the advice for a 404 (issue 12 item 8).
        advice = "" if failure.status == 404 else ": check the URL's path (often /v1)"
        return f"{url} is not a glosmsd server ({detail}){advice}"
    return f"cannot connect to {url} ({detail}): check the URL and your network"


def describe_hello(hello: Mapping[str, Any]) -> str:
    """One line: who the server says we are."""

    def table(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, Mapping) else {}

    ext = table(hello.get("extension"))
    numbers = hello.get("numbers")
    first = table(numbers[0]) if isinstance(numbers, list) and numbers else {}
    who = f"{ext.get('name') or '?'}, extension {ext.get('ext') or '?'}"
    if first.get("number"):
        where = f"SMS number {first['number']}"
    else:
        where = (
            "no SMS number assigned yet (ask your administrator to assign one to extension "
            f"{ext.get('ext') or '?'}; until then nothing can be sent or received)"
        )
    return f"Connected to {hello.get('server') or 'the server'}: {who}, {where}."


# --------------------------------------------------------------------------- main


def _quiet_logging(verbose: bool) -> None:
    # The link logs every status change; setup says what happened in its own one line.
    logger = logging.getLogger("glosmsd")
    logger.propagate = False
    if not logger.handlers:
        handler: logging.Handler = logging.NullHandler()
        if verbose:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("glosmsd setup: %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def _fail(message: str, code: int) -> int:
    print(f"glosmsd setup: {message.rstrip('.')}", file=sys.stderr, flush=True)
    return code


def _autostart(args: argparse.Namespace, ask: Asker) -> tuple[int, autostart.Method | None]:
    """Offer autostart (or do what the flags say); the exit code and the method used."""
    if args.no_autostart:
        return EXIT_OK, None
    method = args.autostart
    if method is None:
        question = "Start glosmsd when you log in?"
        if not (args.yes or ask.confirm(question, default=True)):
            # No means no: an earlier run's unit or entry would still start it (issue 12
            # item 14).
            try:
                removed = autostart.remove()
            except GlosmsdError as exc:
                return _fail(f"could not stop the autostart: {exc.message}", EXIT_AUTOSTART), None
            for path in removed:
                print(f"Removed {path}")
            print("Not starting at login; `glosmsd setup --autostart` changes that.")
            return EXIT_OK, None
        method = "auto"
    try:
        chosen = autostart.detect_method() if method == "auto" else method
        done = autostart.install(chosen)
    except GlosmsdError as exc:
        message = f"the config is written, but autostart failed: {exc.message}"
        return _fail(message, EXIT_AUTOSTART), None
    print(done.line)
    return EXIT_OK, done.method


def _remove_autostart() -> int:
    try:
        removed = autostart.remove()
    except GlosmsdError as exc:
        return _fail(exc.message, EXIT_AUTOSTART)
    for path in removed:
        print(f"Removed {path}")
    if not removed:
        print("glosmsd was not set to start at login.")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_logging(args.verbose)
    if args.remove_autostart:
        return _remove_autostart()
    ask = Asker()
    paths = Paths.default()
    try:
        server = read_server(args, ask)
        token = read_token(args, ask)
        with tempfile.TemporaryDirectory(prefix="glosmsd-setup-") as scratch:
            todo = plan(
                server,
                token,
                insecure=args.insecure,
                ca_file=args.ca_file,
                paths=paths,
                scratch=Path(scratch),
            )
        print(f"Checking {todo.config.server} ...", flush=True)
        hello = asyncio.run(check_server(todo.config, args.timeout))
        print(describe_hello(hello))
        write(todo)
    except (ConfigError, BadInput) as exc:
        return _fail(f"{exc.message.rstrip('.')}; nothing was written", EXIT_INPUT)
    except LinkClosed as exc:
        return _fail(f"{exc.message.rstrip('.')}; nothing was written", EXIT_SERVER)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", 130)
    kept = f", kept {', '.join(todo.kept)}" if todo.kept else ""
    verb = "Updated" if todo.replaces else "Wrote"
    print(f"{verb} {todo.config_file} and {todo.token_file} (readable only by you{kept}).")
    code, method = _autostart(args, ask)
    if method == "systemd":
        print(f"Start it now with `systemctl --user restart {autostart.UNIT_NAME}`.")
    else:
        print("Start it now with `glosmsd` (`glosmsd --replace` if one is running already).")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
