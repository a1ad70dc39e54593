"""The socket client refuses a socket another user holds, before it sends a byte.

Issue 13 item 4: with XDG_RUNTIME_DIR unset the socket lives in /tmp/glosmsd-UID/, which
any user can create first. A real second user squats it (tests/support/squatter.py); the
client must refuse on each of the three things that give it away (the folder's owner,
the socket's owner, the uid of the process behind it) and the squatter must have
received nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.cli.doctor import probes, verdicts
from glosmsd.client.ipc import Client
from glosmsd.core.errors import DaemonNotRunning, SocketNotOurs, SocketUnusable
from tests.support.squatter import SQUATTER_UID, Squatter, needs_root, squatting


@pytest.fixture
def squatter() -> Iterator[Squatter]:
    with squatting() as s:
        yield s


def _call(path: Path) -> object:
    with Client(path, timeout=5) as client:
        return client.call("send", {"to": "+15557654321", "text": "my bank PIN is 4321"})


@needs_root
def test_the_squatters_folder_is_refused(squatter: Squatter) -> None:
    assert squatter.folder.stat().st_uid == SQUATTER_UID
    with pytest.raises(SocketNotOurs, match=rf"its folder .* belongs to uid {SQUATTER_UID}"):
        _call(squatter.socket)
    assert squatter.received() == b""


@needs_root
def test_the_squatters_socket_in_our_own_folder_is_refused(
    squatter: Squatter, tmp_path: Path
) -> None:
    ours = tmp_path / "run"
    ours.mkdir(mode=0o700)
    # The squatter's socket, moved into a folder of ours: the socket file is still theirs.
    os.rename(squatter.socket, ours / "socket")
    with pytest.raises(SocketNotOurs, match=rf"the socket belongs to uid {SQUATTER_UID}"):
        _call(ours / "socket")
    assert squatter.received() == b""


@needs_root
def test_the_process_behind_the_socket_is_checked_too(squatter: Squatter, tmp_path: Path) -> None:
    ours = tmp_path / "run"
    ours.mkdir(mode=0o700)
    os.rename(squatter.socket, ours / "socket")
    os.chown(ours / "socket", os.getuid(), os.getgid())  # every file looks like ours now
    with pytest.raises(
        SocketNotOurs, match=rf"the process listening on it runs as uid {SQUATTER_UID}"
    ):
        _call(ours / "socket")
    assert squatter.received() == b""


def test_a_folder_others_may_write_is_refused(tmp_path: Path) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    with pytest.raises(SocketNotOurs, match=r"can be changed by other users \(mode 0777\)"):
        Client(open_folder / "socket").connect()


def test_nothing_there_is_still_not_running(tmp_path: Path) -> None:
    with pytest.raises(DaemonNotRunning, match="not running"):
        Client(tmp_path / "nope" / "socket").connect()
    with pytest.raises(DaemonNotRunning, match="not running"):
        Client(tmp_path / "socket").connect()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SocketUnusable, match="is not a socket"):
        Client(tmp_path / "file").connect()


@needs_root
def test_glosms_send_says_why_it_refuses_and_sends_nothing(
    squatter: Squatter, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("my bank PIN is 4321\n")
    env = {**os.environ, "GLOSMSD_SOCKET": str(squatter.socket), "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosms", "send", "+15557654321", "PIN", str(secret)],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1, (proc.stdout, err)
    assert proc.stdout == b""
    assert err.count("\n") == 1, err
    assert f"belongs to uid {SQUATTER_UID}" in err
    assert "Nothing was sent" in err
    assert squatter.received() == b""


@needs_root
def test_the_doctor_names_the_squatter(squatter: Squatter) -> None:
    seen = probes.probe_socket(squatter.socket, timeout=5)
    assert seen.state == "not-ours"
    assert seen.error == f"its folder {squatter.folder} belongs to uid {SQUATTER_UID}"
    result = verdicts.judge_daemon(seen)
    assert result.status == "missing"
    assert "Another user may be listening there" in result.fix
    assert squatter.received() == b""
