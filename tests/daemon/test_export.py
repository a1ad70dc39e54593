"""Export (F15) through the service of a real daemon (real store, real server)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.core.errors import BadInput, NotFound
from glosmsd.daemon.service import Service
from tests.daemon.test_service import started, svc_of
from tests.support.daemonproc import until
from tests.support.serverproc import ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"
CY = "+15557650000"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    (tmp_path / "srv").mkdir()
    with running_server(tmp_path / "srv") as srv:
        with srv.store() as st:
            st.add_contact("Bob Roe", [("mobile", BOB)])
        yield srv


async def test_export_makes_a_new_folder_each_time_and_never_overwrites(
    server: ServerProcess, tmp_path: Path
) -> None:
    daemon = await started(server, "1001", ANN)
    task = asyncio.create_task(daemon.run())
    try:
        await until(lambda: daemon.service is not None and daemon.service.account.number, 20, "hi")
        svc = svc_of(daemon)
        target = tmp_path / "out"
        target.mkdir()
        with pytest.raises(NotFound, match="no SMS history"):
            await svc.export(str(target))
        assert list(target.iterdir()) == []

        big = b"%PDF-1.4\n" + b"1" * 600_000  # not downloaded by itself: fetched for export
        with server.store() as st:
            st.receive(BOB, ANN, "Hi Ann\nsecond line", [(b"list one", "list.txt")])
            st.receive(BOB, ANN, "again", [(b"list two", "list.txt")])
            st.receive(CY, ANN, "scans", [(big, "../scan.pdf")])
        await until(lambda: _synced(svc), 20, "the 3 messages")
        await svc.send(BOB, "Sure!")

        (target / "SMS").mkdir()
        (target / "SMS" / "keep.txt").write_text("mine")
        seen: list[tuple[int, int]] = []
        result = await svc.export(str(target), progress=lambda d, t: seen.append((d, t)))
        folder = Path(result["folder"])
        assert folder == target / "SMS (2)"
        assert (target / "SMS" / "keep.txt").read_text() == "mine"
        assert result["conversations"] == 2
        assert result["files"] == 3
        assert result["missing_files"] == 0
        assert seen[-1] == (2, 2)
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted(
            ["Bob Roe +15557654321.txt", "+15557650000.txt", "list.txt", "list (2).txt", "scan.pdf"]
        )
        bob = (folder / "Bob Roe +15557654321.txt").read_text(encoding="utf-8")
        assert "SMS conversation with Bob Roe (+15557654321)" in bob
        assert "Hi Ann\n    second line" in bob
        assert "[file: list.txt]" in bob
        assert "Sure!" in bob
        assert bob.index("Hi Ann") < bob.index("again") < bob.index("Sure!")
        assert sorted((folder / n).read_bytes() for n in ("list.txt", "list (2).txt")) == [
            b"list one",
            b"list two",
        ]
        assert (folder / "scan.pdf").read_bytes() == big

        again = await svc.export(str(target))
        assert Path(again["folder"]) == target / "SMS (3)"
        with pytest.raises(BadInput, match="not a folder"):
            await svc.export(str(target / "SMS (3)" / "list.txt"))
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, 20)


async def _synced(svc: Service) -> bool:
    convs = await svc.conversations()
    return len(convs) == 2 and all(c["last_text"] for c in convs)
