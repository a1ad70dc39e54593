"""Notifications: a hung notification server never blocks (bounded calls)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest

from glosmsd.notify import ACTIONS, SOUND_FILE, Alert, Notifier


def test_bundled_assets_exist() -> None:
    assert SOUND_FILE.exists()
    assert SOUND_FILE.read_bytes()[:4] == b"RIFF"
    assert [a for a, _t in ACTIONS] == ["open", "reply", "read"]


async def test_a_bus_that_never_answers_costs_a_timeout_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bus"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accepts and then says nothing, ever
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={path}")
    try:
        notifier = Notifier(lambda *_a: None, timeout=0.5)
        started = time.monotonic()
        shown = await notifier.show(Alert("1", "Bob Roe", "hi", sound=True))
        assert not shown
        assert time.monotonic() - started < 3
        assert notifier.shown == frozenset()
        await asyncio.wait_for(notifier.clear("1"), 1)
    finally:
        stop.set()
        thread.join(5)
        for s in held:
            s.close()
        srv.close()
