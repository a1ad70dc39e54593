"""The outbox's deliverer (`glosmsd.daemon.sender`) on a real store, with the server's side
played by a link that answers `send` as the reference server does (the whole path against
the real server is tests/daemon/test_service.py and test_chaos.py)."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from glosmsd.core.protocol import LinkStatus, State
from glosmsd.daemon.sender import Sender
from glosmsd.daemon.store import AsyncStore, OutboxItem, Store
from tests.support.daemonproc import until

OWN = "+15550001001"
BOB = "+15557654321"


class AnsweringLink:
    """`send` answered with the server's MESSAGE once `gate` opens; calls are recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.gate = asyncio.Event()

    @property
    def status(self) -> LinkStatus:
        return LinkStatus(State.LIVE)

    def describe(self) -> str:
        return "live"

    async def call(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> Any:
        self.calls.append((method, params))
        await self.gate.wait()
        return {
            "id": 900 + len(self.calls),
            "client_id": params["client_id"],
            "number": params["from"],
            "remote": params["to"],
            "direction": "out",
            "text": params["text"],
            "state": "sent",
            "reason": None,
            "at": time.time(),
            "files": [],
            "sender": None,
        }


async def accept(astore: AsyncStore, sender: Sender, client_id: str, text: str) -> None:
    """What `Service.send` does: the durable accept, then the outbox row to the sender."""
    row, _new = await astore.run(Store.accept_send, client_id, OWN, BOB, text, [])
    item = OutboxItem.accepted(client_id, row, OWN, BOB, text)
    sender.add(client_id, row.id, item)


def attempts_named() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks()}


async def test_an_accepted_send_is_attempted_at_once_and_merged(tmp_path: Path) -> None:
    astore = await AsyncStore.open(tmp_path / "store.db")
    link = AnsweringLink()
    sender = Sender(
        astore, link=lambda: link, own_ext=lambda: "1001", clock=time.time, rng=random.Random(7)
    )
    runner = asyncio.create_task(sender.run())
    try:
        await until(lambda: sender._attempts is not None, 10, "the sender running")
        await accept(astore, sender, "c-1", "hello")
        # Its attempt is a task as `add` returns, not after the run loop's next turn.
        assert "send c-1" in attempts_named()
        await until(lambda: link.calls, 10, "the send call")
        assert link.calls == [
            ("send", {"client_id": "c-1", "to": BOB, "text": "hello", "files": [], "from": OWN})
        ]
        link.gate.set()
        await until(lambda: _sent(astore, "c-1"), 10, "the send merged")
        row = await astore.run(Store.message_by_client_id, "c-1")
        assert row is not None
        assert (row.state, row.server_id) == ("sent", 901)
        assert await astore.run(Store.outbox_items) == []
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await astore.close()


async def test_a_send_added_before_the_sender_runs_goes_when_it_starts(tmp_path: Path) -> None:
    astore = await AsyncStore.open(tmp_path / "store.db")
    link = AnsweringLink()
    link.gate.set()
    sender = Sender(
        astore, link=lambda: link, own_ext=lambda: "1001", clock=time.time, rng=random.Random(7)
    )
    await accept(astore, sender, "early", "queued before run")
    assert "send early" not in attempts_named()  # nothing runs attempts yet
    runner = asyncio.create_task(sender.run())
    try:
        await until(lambda: [c for c in link.calls if c[1]["client_id"] == "early"], 10, "the send")
        await until(lambda: _sent(astore, "early"), 10, "the early send merged")
        # Once: the run loaded it from the store and the add queued it, one attempt.
        assert [c[1]["client_id"] for c in link.calls] == ["early"]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await astore.close()


async def _sent(astore: AsyncStore, client_id: str) -> bool:
    row = await astore.run(Store.message_by_client_id, client_id)
    return row is not None and row.state == "sent"
