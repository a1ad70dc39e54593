"""A real daemon catching up from a real server when what it missed is bigger than a frame.

Issue 13 item 1: the server put a whole snapshot, or 500 events, in one reply; past the
daemon's 4 MiB frame limit the daemon closed, reconnected and was sent the same frame
again, forever. Both ways it happened are reproduced here, each with a fresh device.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import Client, ServerProcess, running_server

ANN = "+15550001001"
BEA = "+15550001002"
WAIT = 60.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path, "test", "--log-horizon", "1000") as srv:
        yield srv


def unread(d: DaemonProcess) -> int:
    return int(d.call("status")["unread"])


def test_a_snapshot_bigger_than_a_frame_reaches_a_new_device(
    server: ServerProcess, tmp_path: Path
) -> None:
    # The natural case: 15,000 SMS of 160 characters, and a log that keeps only 1,000
    # events, so a new device gets a snapshot (6 MB as one reply).
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        for i in range(15_000):
            st.receive(f"+1555765{i % 40:04d}", ANN, f"{i:05d} " + "s" * 154)
    server.restart()  # prunes at start: the horizon is certain
    with DaemonProcess.start(tmp_path / "ann", server, token) as ann:
        ann.wait_until(lambda: unread(ann) == 15_000, WAIT, "all 15,000 messages")
        status = ann.wait_online()
        assert status["link"]["skipped"] == 0
        convs = ann.call("conversations", limit=100)
        assert len(convs) == 40
        assert sum(c["unread"] for c in convs) == 15_000
        newest = ann.call("messages", conversation="+15557650039", limit=1)["messages"]
        assert newest[0]["text"].startswith("14999 ")
    assert "exceeds limit" not in ann.log()


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2), (seed, 7, 7)).save(out, format="PNG")
    return out.getvalue()


async def test_350_mms_with_long_texts_and_names_reach_a_device_that_was_offline(
    server: ServerProcess, tmp_path: Path
) -> None:
    # The deliberate case: while Ann is offline, Bea sends her 350 MMS of 1,000
    # characters with 10 files of long names each: about 15 KB of UTF-8 an event, 5.2 MB
    # for what one page of 500 events used to be.
    t_ann = server.add_extension("1001", "Ann Lee", ANN)
    t_bea = server.add_extension("1002", "Bea Cho", BEA)
    async with await Client.connect(server.url, t_bea) as bea:
        files = []
        for i in range(10):
            up = await bea.call("upload", data=base64.b64encode(png(i)).decode(), name="x.png")
            files.append({"sha256": up["sha256"], "name": f"{i}" + "🙂" * 240 + ".png"})
        for i in range(350):
            await bea.call(
                "send", client_id=f"b{i}", to=ANN, text=f"{i:03d}" + "🙂" * 997, files=files
            )
    with DaemonProcess.start(tmp_path / "ann", server, t_ann) as ann:
        ann.wait_until(lambda: unread(ann) == 350, WAIT, "all 350 MMS")
        got = ann.call("messages", conversation=BEA, limit=1)["messages"][0]
        assert got["text"].startswith("349")
        assert len(got["files"]) == 10
        assert got["files"][3]["name"] == "3" + "🙂" * 240 + ".png"
    assert "exceeds limit" not in ann.log()
