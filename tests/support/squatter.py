"""Another user squatting the daemon's socket: a real second uid making the folder and
the socket and listening like a daemon would (issue 13 item 4).

The tests run as root, which may start a process as any uid: the squatter runs as uid
4242, makes `glosmsd-UID/socket` in a sticky, world-writable folder like /tmp, answers
every line with a `queued` message (what the CLI printed before the fix) and records
every byte it gets. `needs_root` skips where the tests are not root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SQUATTER_UID = 4242
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root to run a process as a second user",
)

# Runs as the squatter: binds the socket in a folder of its own, answers like a daemon.
SQUATTER = r"""
import json, os, socket, sys
folder, log = sys.argv[1], sys.argv[2]
os.makedirs(folder, mode=0o755, exist_ok=True)
path = os.path.join(folder, "socket")
server = socket.socket(socket.AF_UNIX)
server.bind(path)
os.chmod(path, 0o777)
server.listen(8)
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    got = b""
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            got += data
            with open(log, "ab") as fh:
                fh.write(data)
            while b"\n" in got:
                line, got = got.split(b"\n", 1)
                req = json.loads(line)
                message = {"id": 1, "remote": "+15557654321", "state": "sending", "files": []}
                result = {"message": message, "dropped": [], "notice": None}
                reply = {"jsonrpc": "2.0", "id": req.get("id"), "result": result}
                conn.sendall(json.dumps(reply).encode() + b"\n")
"""


@dataclass
class Squatter:
    folder: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.folder / "socket"

    def received(self) -> bytes:
        return self.log.read_bytes() if self.log.exists() else b""


@contextlib.contextmanager
def shared_tmp() -> Iterator[Path]:
    """A fresh world-writable, sticky folder like /tmp (pytest's tmp_path is root's 0700)."""
    base = Path(tempfile.mkdtemp(prefix="glosmsd-squat-", dir="/tmp"))
    base.chmod(0o1777)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def squatting() -> Iterator[Squatter]:
    """A squatter listening on `<a /tmp-like folder>/glosmsd-UID/socket`."""
    with shared_tmp() as base, _squatter(base) as squatter:
        yield squatter


@contextlib.contextmanager
def _squatter(base: Path) -> Iterator[Squatter]:
    folder = base / f"glosmsd-{os.getuid()}"
    log = base / "received"
    proc = subprocess.Popen(
        [PYTHON, "-c", SQUATTER, str(folder), str(log)],
        user=SQUATTER_UID,
        group=SQUATTER_UID,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"listening\n", proc.stderr
        yield Squatter(folder, log, proc)
    finally:
        proc.kill()
        proc.communicate(timeout=10)  # and closes its pipes
