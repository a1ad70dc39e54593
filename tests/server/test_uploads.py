"""Upload quota and expiry (issue 13 item 8: 200 unreferenced 500 KB uploads added 99 MB in
3 s, never removed), against a real server process on 127.0.0.1 with short settings."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from glosmsd.core.errors import LimitExceeded, NotFound
from tests.support.serverproc import Client, ServerProcess

ANN, DEE = "+15550001001", "+15550001004"
KB = 1024


def note(i: int, size: int = 10 * KB) -> bytes:
    """A plain-text file of `size` bytes, different for each `i`."""
    head = f"note {i}\n".encode()
    return head + b"x" * (size - len(head))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def blob(server: ServerProcess, sha: str) -> Path:
    return server.db.with_name(server.db.name + ".files") / sha[:2] / sha


def stored_bytes(server: ServerProcess) -> int:
    files = server.db.with_name(server.db.name + ".files")
    return sum(p.stat().st_size for p in files.rglob("*") if p.is_file())


async def test_unsent_uploads_past_the_quota_are_refused_saying_what_to_do(
    tmp_path: Path,
) -> None:
    srv = ServerProcess.start(tmp_path, "test", "--upload-quota", str(1000 * KB))
    try:
        token = srv.add_extension("1001", "Ann Lee", ANN)
        srv.add_extension("1004", "Dee Ng", DEE)
        async with await Client.connect(srv.url, token) as ann:
            shas, refused = [], []
            for i in range(200):  # the 200 uploads, at 10 KB each
                try:
                    info = await ann.call("upload", data=b64(note(i)), name=f"n{i}.txt")
                    shas.append(info["sha256"])
                except LimitExceeded as exc:
                    refused.append(exc)
            assert len(shas) == 100
            assert len(refused) == 100
            assert refused[0].message == (
                f"Your uploads not yet sent in a message hold {1000 * KB} of your "
                f"{1000 * KB} bytes, and this file is {10 * KB}: send them (or wait: unsent "
                "uploads are removed after 1 day), then upload again."
            )
            assert refused[0].data is not None
            assert refused[0].data["limit_bytes"] == 1000 * KB
            assert stored_bytes(srv) < 1010 * KB
            # The same file again costs nothing more.
            again = await ann.call("upload", data=b64(note(0)), name="again.txt")
            assert again["sha256"] == shas[0]
            # A file sent in a message no longer counts: there is room for one more.
            await ann.call(
                "send",
                client_id="m1",
                to=DEE,
                text="",
                files=[{"sha256": shas[0], "name": "n0.txt"}],
            )
            await ann.call("upload", data=b64(note(500)), name="n500.txt")
            with_other = srv.add_extension("1002", "Bo Diaz", "+15550001002")
        # The quota is per extension: another one has its own.
        async with await Client.connect(srv.url, with_other) as bo:
            await bo.call("upload", data=b64(note(900)), name="bo.txt")
    finally:
        assert srv.stop() == 0, srv.log()


async def test_uploads_no_message_carries_expire_and_their_files_go(tmp_path: Path) -> None:
    srv = ServerProcess.start(tmp_path, "test", "--upload-max-age", "1")
    try:
        token = srv.add_extension("1001", "Ann Lee", ANN)
        srv.add_extension("1004", "Dee Ng", DEE)
        async with await Client.connect(srv.url, token) as ann:
            sent = await ann.call("upload", data=b64(note(1)), name="sent.txt")
            await ann.call(
                "send",
                client_id="m1",
                to=DEE,
                text="",
                files=[{"sha256": sent["sha256"], "name": "sent.txt"}],
            )
            lost = await ann.call("upload", data=b64(note(2)), name="lost.txt")
            assert blob(srv, lost["sha256"]).exists()
            for _ in range(300):  # the sweep runs every 0.25 s: wait for it, 30 s at most
                if not blob(srv, lost["sha256"]).exists():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the unsent upload was never removed: {srv.log()}")
            # What a message carries stays, and can still be downloaded and forwarded.
            assert blob(srv, sent["sha256"]).exists()
            got = await ann.call("download", sha256=sent["sha256"])
            assert base64.b64decode(got["data"]) == note(1)
            # An expired upload is gone for good: sending it says to upload it again.
            with pytest.raises(NotFound, match="call upload first"):
                await ann.call(
                    "send",
                    client_id="m2",
                    to=DEE,
                    text="",
                    files=[{"sha256": lost["sha256"], "name": "lost.txt"}],
                )
            assert "removed 1 expired uploads" in srv.log()
    finally:
        assert srv.stop() == 0, srv.log()
