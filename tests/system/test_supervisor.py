"""The supervisor: background tasks under one TaskGroup, each failure logged by name."""

from __future__ import annotations

import asyncio
import logging

import pytest

from glosmsd.core.errors import NotFound
from glosmsd.system.supervisor import Supervisor


async def _fail(exc: Exception) -> None:
    await asyncio.sleep(0)
    raise exc


async def test_a_failing_chore_is_logged_with_its_name_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="glosmsd.system.supervisor")
    release = asyncio.Event()

    async def steady() -> str:
        await release.wait()
        return "done"

    async with Supervisor("test") as tasks:
        other = tasks.spawn(steady(), name="steady chore")
        failed = tasks.spawn(_fail(ValueError("boom")), name="broken chore")
        with pytest.raises(ValueError, match="boom"):
            await failed
        assert tasks.running == ["steady chore"]
        release.set()
        assert await other == "done"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["test: broken chore failed"]
    assert errors[0].exc_info is not None  # a bug: its traceback is in the log


async def test_a_known_failure_is_one_line_and_unawaited_outcomes_are_not_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="glosmsd.system.supervisor")
    async with Supervisor("test") as tasks:
        gone = tasks.spawn(_fail(NotFound("No such file.")), name="download a.jpg")
        await asyncio.wait([gone])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["test: download a.jpg failed: No such file."]
    # Nobody awaited `gone`: with filterwarnings=error and asyncio's own logging, an
    # exception never retrieved would show up here at garbage collection.
    del gone


async def test_a_kept_task_that_fails_or_returns_tells_its_owner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="glosmsd.system.supervisor")
    ended: list[tuple[str, BaseException | None]] = []
    both = asyncio.Event()

    def on_exit(name: str, failure: BaseException | None) -> None:
        ended.append((name, failure))
        if len(ended) == 2:
            both.set()

    async def returns() -> None:
        await asyncio.sleep(0)

    async with Supervisor("daemon", on_exit=on_exit) as tasks:
        tasks.keep(_fail(RuntimeError("outbox broke")), name="outbox")
        tasks.keep(returns(), name="link")
        await both.wait()
    assert sorted(name for name, _f in ended) == ["link", "outbox"]
    failure = dict(ended)["outbox"]
    assert isinstance(failure, RuntimeError)
    assert dict(ended)["link"] is None
    messages = [r.getMessage() for r in caplog.records]
    assert "daemon: outbox failed" in messages
    assert "daemon: link ended" in messages


async def test_leaving_cancels_and_awaits_every_task() -> None:
    cleaned: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits still runs to its end
            cleaned.append(name)

    async with Supervisor("test") as tasks:
        chore = tasks.spawn(forever("chore"), name="chore")
        tasks.keep(forever("kept"), name="kept")
        await asyncio.sleep(0)
        assert tasks.running == ["chore", "kept"]
    assert sorted(cleaned) == ["chore", "kept"]
    assert tasks.running == []
    assert chore.cancelled()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_chore_spawned_while_closing_is_dropped_not_raised() -> None:
    ran: list[str] = []

    async def late() -> None:
        ran.append("late")

    async with Supervisor("test") as tasks:
        pass
    dropped = tasks.spawn(late(), name="late")
    tasks.keep(late(), name="late kept")
    assert dropped.cancelled()
    await asyncio.sleep(0)
    assert ran == []  # closed, never awaited: no "coroutine was never awaited" either


async def test_starting_outside_the_async_with_is_a_bug_said_plainly() -> None:
    tasks = Supervisor("test")

    async def nothing() -> None:
        return None

    with pytest.raises(RuntimeError, match="inside `async with`"):
        tasks.spawn(nothing(), name="early")


async def test_an_awaiter_that_goes_away_leaves_the_chore_running() -> None:
    release = asyncio.Event()

    async def slow() -> int:
        await release.wait()
        return 7

    async with Supervisor("test") as tasks:
        outcome = tasks.spawn(slow(), name="shared download")
        waiter = asyncio.create_task(asyncio.wait_for(asyncio.shield(outcome), 10))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert tasks.running == ["shared download"]
        release.set()
        assert await outcome == 7


async def test_the_owners_own_exception_comes_out_as_it_was_after_the_tasks_end() -> None:
    cleaned: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("chore")

    async def owner() -> None:
        async with Supervisor("test") as tasks:
            tasks.spawn(forever(), name="chore")
            await asyncio.sleep(0)
            raise NotFound("no socket")  # not an ExceptionGroup: the entry point prints it

    with pytest.raises(NotFound, match="no socket"):
        await owner()
    assert cleaned == ["chore"]
    assert asyncio.all_tasks() == {asyncio.current_task()}
