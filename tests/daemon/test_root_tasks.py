"""The daemon's background work is supervised by its composition root (issue 14).

A helper that fails is logged by name and the daemon runs on; a task the daemon cannot
live without that fails ends the daemon cleanly (its socket gone, run() raising
DaemonFailed naming it); after run() returns, no task is left pending.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from glosmsd.core.errors import DaemonFailed
from glosmsd.daemon.config import Config
from glosmsd.daemon.root import Daemon
from glosmsd.daemon.store import Store
from glosmsd.system.paths import Paths
from tests.support.daemonproc import until
from tests.support.serverproc import running_server


def _config(server_url: str, token: str) -> Config:
    return Config(
        server=server_url, token=token, device_id="tasks", paths=Paths.default(), ping_interval=5
    )


def _others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def test_a_failing_helper_is_logged_by_name_and_the_daemon_runs_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = _others()

    async def broken_helper(_daemon: Daemon) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("the desktop broke")

    with running_server(tmp_path) as server:
        token = server.add_extension("1001", "Ann", "+15550001001")
        daemon = Daemon(_config(server.url, token), on_ready=broken_helper)
        run = asyncio.create_task(daemon.run())
        await until(lambda: daemon.service is not None and daemon.service.account.number, 20, "hi")
        await until(lambda: "glosmsd: on-ready failed" in caplog.messages, 20, "the log")
        svc = daemon.service
        assert svc is not None
        assert daemon.tasks is not None
        running = daemon.tasks.running
        assert {"link", "outbox"} <= set(running)  # not half-alive: both still run
        assert "on-ready" not in running
        sent = await svc.send("+15557654321", "still here")
        assert sent["message"]["state"] == "sending"

        async def delivered() -> bool:
            shown = await svc.messages("+15557654321")
            return [m["state"] for m in shown["messages"]] == ["sent"]

        await until(delivered, 20, "the outbox delivering it")
        daemon.request_stop()
        await asyncio.wait_for(run, 20)
    assert daemon.failure is None
    assert daemon.tasks.running == []
    assert _others() == before


async def test_a_task_the_daemon_needs_that_fails_ends_it_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = _others()
    paths = Paths.default()
    paths.ensure_dirs()
    # A damaged store: a queued send whose files are not JSON. The outbox cannot load it.
    store = Store.open(paths.db_path)
    store.enqueue_send("c-1", "+15550001001", "+15557654321", "hi")
    store.close()
    with sqlite3.connect(paths.db_path) as db:
        db.execute("UPDATE outbox SET files = '{not json'")
    db.close()
    with running_server(tmp_path) as server:
        token = server.add_extension("1001", "Ann", "+15550001001")
        daemon = Daemon(_config(server.url, token))
        with pytest.raises(DaemonFailed, match="its outbox ended") as failed:
            await asyncio.wait_for(daemon.run(), 20)
    assert "JSONDecodeError" in failed.value.message
    assert "glosmsd: outbox failed" in caplog.messages
    assert not paths.socket_path.exists()
    assert daemon.tasks is not None
    assert daemon.tasks.running == []
    assert _others() == before
