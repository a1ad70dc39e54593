"""Where glosmsd keeps its files: one `Paths` value, worked out once at start.

Config in the user config dir, data (SQLite, downloaded files, the device id) in the
user data dir, the log in the user state dir, the socket in the runtime dir, all from
platformdirs for "glosmsd", so every one of them moves with the XDG variables
(`XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `XDG_STATE_HOME`, `XDG_RUNTIME_DIR`) and
`GLOSMSD_SOCKET` moves the socket alone. Without `XDG_RUNTIME_DIR` (a cron job, a bare
ssh session) the socket goes to `/tmp/glosmsd-UID/` on Linux and the BSDs, and to
platformdirs' per-user runtime folder on macOS and Windows. `socket_path` is the one
function that decides it: the daemon binds there and `glosms` (the socket client) dials
there.

This module only computes paths and creates directories (0700 whatever the umask, looser
ones of ours tightened: `system.private`); it must never read or write the files
themselves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from glosmsd.system.private import private_dir

APP: Final = "glosmsd"


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_RUNTIME_DIR/glosmsd`, or a per-user directory when it is unset."""
    env = os.environ if env is None else env
    base = env.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / APP
    if sys.platform in ("darwin", "win32"):
        import platformdirs  # only here: `glosms` pays for it only where it needs it

        return Path(platformdirs.user_runtime_dir(APP))
    # platformdirs would warn and pick /tmp/runtime-UID: a name of our own instead, whose
    # owner and mode both the daemon and the client check (anyone may create it first).
    return Path(f"/tmp/{APP}-{os.getuid()}")  # noqa: S108 - a 0700 dir of our own


def socket_path(env: Mapping[str, str] | None = None) -> Path:
    """The daemon's socket: `$GLOSMSD_SOCKET`, else `socket` in `runtime_dir`."""
    env = os.environ if env is None else env
    explicit = env.get("GLOSMSD_SOCKET")
    return Path(explicit) if explicit else runtime_dir(env) / "socket"


@dataclass(frozen=True, slots=True)
class Paths:
    """Every file and directory glosmsd uses."""

    config_file: Path
    data_dir: Path
    db_path: Path
    files_dir: Path
    device_id_file: Path
    state_dir: Path
    log_file: Path
    runtime_dir: Path
    socket_path: Path

    @classmethod
    def default(cls, env: Mapping[str, str] | None = None) -> Paths:
        """The paths for this user, from platformdirs and the environment.

        `env` is only consulted for `XDG_RUNTIME_DIR` and `GLOSMSD_SOCKET`; platformdirs
        reads the other XDG variables from `os.environ` itself.
        """
        import platformdirs

        env = os.environ if env is None else env
        config = Path(platformdirs.user_config_dir(APP, appauthor=False, roaming=True))
        data = Path(platformdirs.user_data_dir(APP, appauthor=False, roaming=True))
        state = Path(platformdirs.user_state_dir(APP, appauthor=False))
        run = runtime_dir(env)
        return cls(
            config_file=config / "config.toml",
            data_dir=data,
            db_path=data / "glosmsd.sqlite3",
            files_dir=data / "files",
            device_id_file=data / "device_id",
            state_dir=state,
            log_file=state / "glosmsd.log",
            runtime_dir=run,
            socket_path=socket_path(env),
        )

    def ensure_dirs(self) -> None:
        """Create the data, files and state directories, readable only by this user.

        The runtime (socket) directory is the IPC server's to create and check.
        """
        for directory in (self.data_dir, self.files_dir, self.state_dir):
            private_dir(directory)
