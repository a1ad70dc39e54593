"""Where glosmsd keeps its files: one `Paths` value, worked out once at start.

Config in the user config dir, data (SQLite, downloaded files, the device id) in the
user data dir, the log in the user state dir, the socket in the runtime dir, all from
platformdirs for "glosmsd", so every one of them moves with the XDG variables
(`XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `XDG_STATE_HOME`, `XDG_RUNTIME_DIR`) and
`GLOSMSD_SOCKET` moves the socket alone. Where the socket goes is `system.socketpath`'s
to say (`socket_path`, re-exported here).

This module only computes paths and creates directories (0700 whatever the umask, looser
ones of ours tightened: `system.private`); it must never read or write the files
themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from glosmsd.system.private import private_dir
from glosmsd.system.socketpath import APP, runtime_dir, socket_path

__all__ = ["APP", "Paths", "runtime_dir", "socket_path"]


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
