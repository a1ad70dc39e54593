"""Another local user, for the tests that prove what a second uid on the machine cannot do.

`run_as_other(args)` runs a command as the system user `glosmsd-peer` (made once with
useradd; no home, no shell) through util-linux's setpriv. It needs root; elsewhere the
test is skipped with why. The command gets a bare environment: none of the test's
XDG dirs, no display.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence

import pytest

USER = "glosmsd-peer"


def other_user() -> pwd.struct_passwd:
    """The second user, made if missing; skips the test where that cannot be done."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as a second local user")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run as a second local user")
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(USER)


def run_as_other(args: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    user = other_user()
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "--",
            *args,
        ],
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
