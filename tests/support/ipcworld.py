"""A small, deterministic world for the socket and CLI tests: a real server, a real daemon.

Ann Lee (extension 1001) has +15550001001, which she shares with Bo Diaz (1002). The
directory knows Bob Roe (two numbers) and Cy Ng (one). Ann has received two messages
from Bob (the second with a small text file), one from Cy with a file too big to
download automatically, and Bo has written to Bob from the shared number. `seed()`
returns when Ann's daemon shows all of it, so tests start from the same state every
time; `ipc/SPEC.md`'s examples are generated from (and replayed against) this world.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ServerProcess, running_server

ANN = "+15550001001"
BOB_MOBILE = "+15557654321"
BOB_WORK = "+15557654322"
CY = "+15557650000"
SMALL_FILE = b"Shopping list:\n- bread\n- milk\n"
#: Over the 500 KB MMS limit: not downloaded automatically (F10).
BIG_FILE = b"0123456789abcdef" * (48 * 1024)


@dataclass
class World:
    server: ServerProcess
    daemon: DaemonProcess

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.daemon.env}


def seed(server: ServerProcess) -> str:
    """Fill the server; return Ann's token."""
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        st.add_extension("1002", "Bo Diaz")
        st.assign_number("1002", ANN)
        st.add_contact("Bob Roe", [("mobile", BOB_MOBILE), ("work", BOB_WORK)])
        st.add_contact("Cy Ng", [("mobile", CY)])
        st.receive(BOB_MOBILE, ANN, "Hi Ann, lunch at noon?")
        st.receive(BOB_MOBILE, ANN, "Here is the list", [(SMALL_FILE, "list.txt")])
        st.receive(CY, ANN, "The scans, as promised", [(BIG_FILE, "scans.txt")])
        st.send("1002", "bo-1", BOB_MOBILE, "Bo here: I will join you too", [], from_=ANN)
    return token


def wait_seeded(daemon: DaemonProcess) -> None:
    daemon.wait_online()

    def ready() -> bool:
        convs = daemon.call("conversations")
        if len(convs) != 2:
            return False
        msgs = daemon.call("messages", conversation=BOB_MOBILE)["messages"]
        files = [f for m in msgs for f in m["files"]]
        return len(msgs) == 3 and bool(files) and all(f["state"] == "done" for f in files)

    daemon.wait_until(ready, 20, "the seeded messages and the small file")


@contextlib.contextmanager
def running_world(tmp: Path, *extra: str) -> Iterator[World]:
    with running_server(tmp) as srv:
        token = seed(srv)
        with DaemonProcess.start(tmp / "ann", srv, token, *extra) as daemon:
            wait_seeded(daemon)
            yield World(srv, daemon)
