"""The daemon's configuration: `config.toml` plus command-line overrides, checked once.

File (`$XDG_CONFIG_HOME/glosmsd/config.toml`; every key optional when the command line
gives it)::

    server = "wss://sms.example.com/v1"
    token_file = "~/.config/glosmsd/token"   # or: token = "..."
    # device_id = "laptop"                   # default: generated once, kept in the data dir
    # ping_interval = 20                     # seconds; a dead server is noticed in 2x this
    # insecure = false                       # allow ws:// to a host other than loopback
    # ca_file = "~/.config/glosmsd/ca.pem"  # trust this CA for wss:// (a private server)
    # window_port = 8790                     # the SMS window's port on 127.0.0.1 (default:
    #                                        # a free one at each start)
    # window_command = "firefox --new-window {url}"  # how `glosms open` shows the window
    # call_command = "linphonec -c 'call {number}'"  # what the window's Call button runs

    [prefs]                                  # defaults; the store keeps the user's changes
    notify = false                           # "Notify me when I receive a new SMS message"
    sound = true                             # "New SMS Message Received" sound
    sms_enabled = true                       # "Enable the SMS messaging on Desktop"
    hide_text = false                        # hide message text in notifications
    auto_download = true                     # fetch incoming files under the MMS limit

Secrets: a file that holds the token (the token file, or `config.toml` when it has
`token`) is refused when other users can read or write it ("chmod 600 FILE" says the
error), and accepted with a logged warning when only its group can read it. Unknown keys
are errors, so a typo never silently means "default". Every error names the file (or the
command-line option) and the key, and says what a good value looks like.

This module reads the config, token and device-id files and writes only the device id;
it must never touch the network, the store or the socket.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import stat
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

from glosmsd.core import wire
from glosmsd.core.errors import ConfigError
from glosmsd.core.loopback import is_loopback
from glosmsd.system.atomicwrite import write_atomic
from glosmsd.system.paths import Paths

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES: Final = 4096
MAX_DEVICE_ID: Final = wire.MAX_DEVICE
PING_RANGE: Final = (0.1, 600.0)
SERVER_EXAMPLE: Final = "wss://sms.example.com/v1"

#: Preferences and their defaults (F12, F14): notifications are off until the user opts in.
PREF_DEFAULTS: Final[Mapping[str, bool]] = {
    "notify": False,
    "sound": True,
    "sms_enabled": True,
    "hide_text": False,
    "auto_download": True,
}

_KEYS: Final = frozenset(
    {
        "server",
        "token",
        "token_file",
        "device_id",
        "ping_interval",
        "insecure",
        "ca_file",
        "prefs",
        "window_port",
        "window_command",
        "call_command",
    }
)


@dataclass(frozen=True, slots=True)
class Config:
    """A checked configuration. `token` is the secret itself, read from wherever it was.

    `source` is the config file that was read, or None when there was none.
    """

    server: str
    token: str
    device_id: str
    paths: Paths
    ping_interval: float = 20.0
    token_file: Path | None = None
    insecure: bool = False
    ca_file: Path | None = None
    prefs: Mapping[str, bool] = field(default_factory=lambda: dict(PREF_DEFAULTS))
    source: Path | None = None
    #: The SMS window's port on 127.0.0.1; 0 takes a free one at each start.
    window_port: int = 0
    #: A command line for the window (`{url}` where the URL goes), split like a shell does.
    window_command: tuple[str, ...] | None = None
    #: What Call runs (`{number}` where the number goes); None: the system's tel: handler.
    call_command: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        # Never let the token reach a log line or a traceback.
        return (
            f"Config(server={self.server!r}, token=<{len(self.token)} chars>, "
            f"device_id={self.device_id!r}, ping_interval={self.ping_interval!r}, "
            f"source={self.source!r})"
        )

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        paths: Paths | None = None,
    ) -> Config:
        """Read `path` (default: the user's config.toml), apply `overrides`, check all.

        `overrides` uses the file's key names (`server`, `token`, `token_file`,
        `device_id`, `ping_interval`, `insecure`, `ca_file`); None values are ignored, so argparse
        results can be passed as they are. An explicit `path` must exist; the default one
        may be missing when the overrides say enough.
        """
        paths = paths or Paths.default()
        explicit = path is not None
        file = path if path is not None else paths.config_file
        raw = _read_toml(file, required=explicit)
        source = file if raw is not None else None
        values: dict[str, Any] = dict(raw or {})
        where: dict[str, str] = dict.fromkeys(values, str(file))
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key not in _KEYS - {"prefs"}:
                raise ConfigError(f"unknown override {key!r}")
            values[key] = value
            where[key] = f"--{key.replace('_', '-')}"
        return _build(values, where, file, source, paths)


def _read_toml(file: Path, *, required: bool) -> dict[str, Any] | None:
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{file}: no such file") from None
        return None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None


def _build(
    values: dict[str, Any], where: dict[str, str], file: Path, source: Path | None, paths: Paths
) -> Config:
    def at(key: str) -> str:
        return where.get(key, str(file))

    unknown = sorted(set(values) - _KEYS)
    if unknown:
        known = ", ".join(sorted(_KEYS))
        raise ConfigError(f"{file}: unknown key {unknown[0]!r} (known: {known})")

    insecure = values.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"{at('insecure')}: 'insecure' must be true or false")
    server = _check_server(values.get("server"), at("server"), insecure=insecure)
    token, token_file = _resolve_token(values, at, file)
    ping = _check_ping(values.get("ping_interval", 20.0), at("ping_interval"))
    prefs = _check_prefs(values.get("prefs", {}), at("prefs"))
    ca_file = _check_ca_file(values.get("ca_file"), at("ca_file"), file)
    window_port = _check_port(values.get("window_port", 0), at("window_port"))
    window_command = _check_command(
        values.get("window_command"), at("window_command"), "window_command", "url"
    )
    call_command = _check_command(
        values.get("call_command"), at("call_command"), "call_command", "number"
    )
    device_id = values.get("device_id")
    if device_id is None:
        device_id = load_device_id(paths.device_id_file)
    else:
        device_id = _check_device_id(device_id, at("device_id"))
    return Config(
        server=server,
        token=token,
        device_id=device_id,
        paths=paths,
        ping_interval=ping,
        token_file=token_file,
        insecure=insecure,
        ca_file=ca_file,
        prefs=prefs,
        source=source,
        window_port=window_port,
        window_command=window_command,
        call_command=call_command,
    )


def _check_port(value: Any, where: str) -> int:
    wanted = "'window_port' must be a port number from 1024 to 65535 (or 0: any free port)"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: {wanted}")
    if value != 0 and not 1024 <= value <= 65535:
        raise ConfigError(f"{where}: {wanted}")
    return value


def _check_command(value: Any, where: str, key: str, slot: str) -> tuple[str, ...] | None:
    """A command line as a string (split as a POSIX shell would, but never run by one) or
    a list of words; `{slot}` marks where the URL or number goes (else it is appended)."""
    if value is None:
        return None
    wanted = (
        f"'{key}' must be a command line, e.g. \"myapp --open {{{slot}}}\" "
        f"({{{slot}}} is replaced; without it, it is added at the end)"
    )
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {wanted}: {exc}") from None
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        words = list(value)
    else:
        raise ConfigError(f"{where}: {wanted}")
    if not words or not words[0].strip():
        raise ConfigError(f"{where}: {wanted}")
    return tuple(words)


def _check_ca_file(value: Any, where: str, file: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ConfigError(f"{where}: 'ca_file' must be the path of a PEM file of CA certificates")
    path = Path(value).expanduser()
    if not path.is_absolute() and where == str(file):
        path = file.parent / path
    if not path.is_file():
        raise ConfigError(f"{where}: ca_file {path}: no such file")
    return path


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The TLS settings for a wss:// server: the system's trust store, plus `ca_file`.

    None for ws:// (no TLS) or when the defaults will do.
    """
    if config.ca_file is None or not config.server.startswith("wss://"):
        return None
    import ssl

    ctx = ssl.create_default_context()
    try:
        ctx.load_verify_locations(cafile=str(config.ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"ca_file {config.ca_file}: not a PEM file of CA certificates "
            f"({getattr(exc, 'reason', None) or exc})"
        ) from None
    return ctx


def _check_server(value: Any, where: str, *, insecure: bool) -> str:
    wanted = f"'server' must be a ws:// or wss:// URL, e.g. {SERVER_EXAMPLE}"
    if value is None:
        raise ConfigError(f"{where}: 'server' is missing; {wanted}")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {wanted}")
    try:
        url = urlsplit(value.strip())
        host, _port = url.hostname, url.port
    except ValueError:
        raise ConfigError(f"{where}: {wanted}") from None
    if url.scheme not in ("ws", "wss") or not host:
        raise ConfigError(f"{where}: {wanted}")
    if url.scheme == "ws" and not insecure and not is_loopback(host):
        raise ConfigError(
            f"{where}: 'server' uses ws:// (no TLS) to {host}: the token would travel in "
            f"clear. Use wss://, or set insecure = true if you really mean it."
        )
    return value.strip()


def _resolve_token(
    values: Mapping[str, Any], at: Callable[[str], str], file: Path
) -> tuple[str, Path | None]:
    has_token, has_file = "token" in values, "token_file" in values
    if has_token and has_file:
        raise ConfigError(f"{at('token')}: set 'token' or 'token_file', not both")
    if not has_token and not has_file:
        raise ConfigError(
            f"{file}: no token: set 'token_file' (or 'token'), or run `glosmsd setup`"
        )
    if has_token:
        token = values["token"]
        if not isinstance(token, str) or not token.strip():
            raise ConfigError(f"{at('token')}: 'token' must be a non-empty string")
        if at("token") == str(file):
            _check_secret_file(file, "the config file holds the token")
        return token.strip(), None
    raw = values["token_file"]
    if not isinstance(raw, str | os.PathLike) or not str(raw).strip():
        raise ConfigError(f"{at('token_file')}: 'token_file' must be a file path")
    path = Path(os.path.expanduser(str(raw).strip()))
    if not path.is_absolute() and at("token_file") == str(file):
        path = file.parent / path  # relative to the config file, not the current dir
    return read_token_file(path, at("token_file")), path


def read_token_file(path: Path, where: str = "token_file") -> str:
    """The token in `path` (surrounding whitespace removed), after the permission check."""
    _check_secret_file(path, "it holds the token")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot read the token file {path}: {exc.strerror or exc}"
        ) from exc
    if len(data) > MAX_TOKEN_BYTES:
        raise ConfigError(f"{where}: {path} is too big to be a token file")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not a text file with a token") from None
    if not token or any(c.isspace() for c in token):
        raise ConfigError(f"{where}: {path} must hold the token alone, on one line")
    return token


def _check_secret_file(path: Path, why: str) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file ({why})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path}: not a regular file ({why})")
    if st.st_mode & 0o007:
        raise ConfigError(
            f"{path}: other users can read or change it, and {why}. Run: chmod 600 {path}"
        )
    if st.st_mode & 0o070:
        log.warning("%s: its group can read it, and %s; consider chmod 600", path, why)


def _check_ping(value: Any, where: str) -> float:
    low, high = PING_RANGE
    wanted = f"'ping_interval' must be a number of seconds from {low:g} to {high:g}, e.g. 20"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {wanted}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ConfigError(f"{where}: {wanted}")
    return number


def _check_prefs(value: Any, where: str) -> dict[str, bool]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [prefs] must be a table")
    prefs = dict(PREF_DEFAULTS)
    for key, pref in value.items():
        if key not in PREF_DEFAULTS:
            known = ", ".join(PREF_DEFAULTS)
            raise ConfigError(f"{where}: unknown preference {key!r} (known: {known})")
        if not isinstance(pref, bool):
            raise ConfigError(f"{where}: preference {key!r} must be true or false")
        prefs[key] = pref
    return prefs


def _check_device_id(value: Any, where: str) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value.strip()) <= MAX_DEVICE_ID
        or not value.strip().isprintable()
    ):
        raise ConfigError(
            f"{where}: 'device_id' must be printable text of 1 to {MAX_DEVICE_ID} characters"
        )
    return value.strip()


def load_device_id(path: Path) -> str:
    """The device id kept in `path`; made (random hex) and saved (0600) the first time."""
    try:
        text = path.read_text("utf-8").strip()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the device id: {exc}") from exc
    if text:
        return _check_device_id(text, str(path))
    device_id = uuid.uuid4().hex
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, device_id + "\n", mode=0o600)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot save the device id: {exc.strerror or exc}") from exc
    return device_id


def save_token(path: Path, token: str) -> None:
    """Write a token file the way `read_token_file` wants it (0600, one line), atomically."""
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise ConfigError("a token is one word without spaces")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, token + "\n", mode=0o600)
