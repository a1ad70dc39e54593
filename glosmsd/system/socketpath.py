"""Where the daemon's socket is: `socket_path`, the one function that decides it (the
daemon binds there and `glosms`, the socket client, dials there), and `runtime_dir`.

`$GLOSMSD_SOCKET` when set, else `socket` in `$XDG_RUNTIME_DIR/glosmsd`; without
`XDG_RUNTIME_DIR` (a cron job, a bare ssh session) `/tmp/glosmsd-UID/` on Linux and the
BSDs, and platformdirs' per-user runtime folder on macOS and Windows.

Apart from `system.paths` (the `Paths` dataclass, which re-exports these) so that every
`glosms` call, which needs the socket alone, loads neither dataclasses nor platformdirs.
It only computes paths.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TYPE_CHECKING = False  # typing costs `glosms` ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Final

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
