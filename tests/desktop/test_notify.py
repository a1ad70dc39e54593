"""Notifications: a hung notification server never blocks (bounded calls); actions taken
in a real dunst (its context menu, a mouse click) come back and close the notification."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from glosmsd.desktop.notify import ACTIONS, SOUND_FILE, Alert, Notifier
from glosmsd.system.supervisor import Supervisor
from tests.support.daemonproc import wait_until
from tests.support.desktop import DesktopEnv


@pytest.fixture
async def tasks() -> AsyncIterator[Supervisor]:
    """What the daemon gives the notifier: its chores (closing, the chime) run there."""
    async with Supervisor("test") as supervisor:
        yield supervisor


def test_bundled_assets_exist() -> None:
    assert SOUND_FILE.exists()
    assert SOUND_FILE.read_bytes()[:4] == b"RIFF"
    assert [a for a, _t in ACTIONS] == ["open", "reply", "read"]


async def test_a_bus_that_never_answers_costs_a_timeout_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tasks: Supervisor
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
        notifier = Notifier(lambda *_a: None, tasks=tasks, timeout=0.5)
        # A hung bus is given up on (timeout=0.5), never waited on: wait_for is the guard.
        shown = await asyncio.wait_for(notifier.show(Alert("1", "Bob Roe", "hi", sound=True)), 10)
        assert not shown
        assert notifier.shown == frozenset()
        await asyncio.wait_for(notifier.clear("1"), 1)
    finally:
        stop.set()
        thread.join(5)
        for s in held:
            s.close()
        srv.close()


async def next_action(got: asyncio.Queue[tuple[str, str, str | None]]) -> tuple[str, ...]:
    key, action, text = await asyncio.wait_for(got.get(), 10)
    return (key, action, text or "")


@pytest.mark.desktop
async def test_actions_taken_in_dunst_reach_on_action_and_close_the_notification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tasks: Supervisor
) -> None:
    with DesktopEnv.start(tmp_path / "desk", tray=False) as desk:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desk.bus)
        got: asyncio.Queue[tuple[str, str, str | None]] = asyncio.Queue()
        notifier = Notifier(lambda *a: got.put_nowait(a), tasks=tasks)

        async def shown_once() -> None:
            await asyncio.to_thread(wait_until, lambda: desk.displayed() == 1, 10, "one shown")

        async def gone() -> None:
            await asyncio.to_thread(wait_until, lambda: desk.displayed() == 0, 10, "it to close")

        # Picked in dunst's context menu: dunst offers the default action and the buttons.
        assert await notifier.show(Alert("7", "Bob Roe", "Lunch at 12?", sound=False))
        await shown_once()
        offered = await asyncio.to_thread(desk.choose_action, "Mark as read")
        titles = {line.split(" (")[0] for line in offered}
        assert titles == {"#", "#Open", "#Reply", "#Mark as read"}, offered
        assert await next_action(got) == ("7", "read", "")
        await gone()  # dunst leaves that to the app: closed here after the action
        assert notifier.shown == frozenset()

        # dunst has no inline reply: "Reply" is a button (the daemon opens the popup).
        assert await notifier.show(Alert("7", "Bob Roe", "or 1?", sound=False))
        await shown_once()
        await asyncio.to_thread(desk.choose_action, "Reply")
        assert await next_action(got) == ("7", "reply", "")
        await gone()

        # A click on the notification runs the default action: open.
        assert await notifier.show(Alert("8", "Cat Poe", "hi", sound=False))
        await shown_once()
        await asyncio.to_thread(desk.click_notification)
        assert await next_action(got) == ("8", "open", "")
        await gone()

        # One per conversation: a newer one replaces the older instead of piling up.
        assert await notifier.show(Alert("8", "Cat Poe", "one", sound=False))
        assert await notifier.show(Alert("8", "Cat Poe (2)", "two", sound=False))
        await shown_once()
        await asyncio.to_thread(desk.choose_action, "Open")
        assert await next_action(got) == ("8", "open", "")
        await gone()
        assert got.empty()


@pytest.mark.desktop
async def test_on_dunst_a_left_click_opens_and_close_all_opens_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tasks: Supervisor,
) -> None:
    """Issue 12 item 20: dunst's default left click only closes a notification; that close
    is the click. Its right click closes all of them: that opens none. A notification
    closed on dunst's side and then cleared by the daemon (it was read elsewhere) raised
    KeyError inside desktop-notifier, and the traceback reached the terminal."""
    with DesktopEnv.start(tmp_path / "desk", tray=False) as desk:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desk.bus)
        got: asyncio.Queue[tuple[str, str, str | None]] = asyncio.Queue()
        notifier = Notifier(lambda *a: got.put_nowait(a), tasks=tasks)

        async def shown(n: int) -> None:
            await asyncio.to_thread(wait_until, lambda: desk.displayed() == n, 10, f"{n} shown")

        assert await notifier.show(Alert("7", "Bob Roe", "Lunch at 12?", sound=False))
        await shown(1)
        await asyncio.to_thread(desk.click_notification, 1)
        assert await next_action(got) == ("7", "open", "")
        await shown(0)
        assert notifier.shown == frozenset()

        # Right click: dunst closes all; two dismissed at once are no click on either.
        assert await notifier.show(Alert("8", "Cat Poe", "one", sound=False))
        assert await notifier.show(Alert("9", "Dan Fox", "two", sound=False))
        await shown(2)
        await asyncio.to_thread(desk.click_notification, 3)
        await shown(0)
        await asyncio.to_thread(wait_until, lambda: not notifier.shown, 10, "both dismissed")
        # The gesture window passes with nothing opened: the next action is the next one.
        assert await notifier.show(Alert("8", "Cat Poe", "three", sound=False))
        await shown(1)
        await asyncio.to_thread(desk.choose_action, "Mark as read")
        assert await next_action(got) == ("8", "read", "")

        # Closed on dunst's side (`dunstctl close`, not a click: no action), then cleared
        # here as when it is read elsewhere: no KeyError, no traceback.
        assert await notifier.show(Alert("9", "Dan Fox", "four", sound=False))
        await shown(1)
        caplog.clear()
        await asyncio.to_thread(desk.run, "dunstctl", "close")
        await shown(0)
        await notifier.clear("9")
        assert "KeyError" not in caplog.text
        assert "Traceback" not in caplog.text
        assert got.empty()
