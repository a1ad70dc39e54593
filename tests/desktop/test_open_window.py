"""Issue 15 (and issue 12 item 20): the tray's unread menu and a click on a notification
bring up the SMS window at that conversation.

A real server, a real daemon with its tray in trayer on Xvfb and dunst on a private bus;
`window_command` is a recorder script, so what the daemon would show is the URL it was
given: a one-time URL of the daemon's own window server, at `#/c/<conversation id>`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemonproc import DaemonProcess, wait_until
from tests.support.desktop import DesktopEnv, TrayDaemon, WindowRecorder
from tests.support.serverproc import ServerProcess, running_server

pytestmark = pytest.mark.desktop

ANN = "+15550001001"
BOB = "+15557654321"
BOB_WORK = "+15557654322"
SHOTS = Path(os.environ.get("GLOSMSD_SHOTS", Path(tempfile.gettempdir()) / "glosmsd-shots"))


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[DesktopEnv]:
    with DesktopEnv.start(tmp_path / "desk") as d:
        yield d


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def window_config(recorder: WindowRecorder) -> str:
    return f"window_command = {recorder.command!r}\n"


def conversation_id(daemon: DaemonProcess, number: str) -> int:
    convs = daemon.call("conversations")
    return int(next(c["id"] for c in convs if c["remote"] == number))


def assert_window_url(url: str, daemon: DaemonProcess, cid: int) -> None:
    status = daemon.call("window.open", launch=False)
    origin = status["url"].split("/?", 1)[0]
    assert url.startswith(f"{origin}/?token="), url
    assert url.endswith(f"#/c/{cid}"), url


def test_a_conversation_in_the_unread_menu_opens_the_window_at_it(
    desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.admin(
        "add-contact", "Bob Roe", "--number", f"mobile={BOB}", "--number", f"work={BOB_WORK}"
    )
    recorder = WindowRecorder(tmp_path / "rec")
    with TrayDaemon.start_on(desk, tmp_path / "ann", server, token, window_config(recorder)) as ann:
        ann.wait_online()
        icon = desk.tray_icon()
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "on the mobile")
        server.admin("inject", "--from", BOB_WORK, "--to", ANN, "--text", "on the work phone")
        wait_until(lambda: "2 unread" in desk.window_name(icon), 10, "2 unread")
        work = conversation_id(ann, BOB_WORK)

        # Issue 12 item 19: Bob's two numbers are two lines that say which is which.
        desk.click(icon)
        line = f"Bob Roe · {BOB_WORK} (1)"
        wait_until(lambda: line in ann.log(), 10, "the menu with Bob's two numbers")
        assert f"Bob Roe · {BOB} (1)" in ann.log()
        wait_until(lambda: desk.window_ids("--onlyvisible", "--class", "^Menu$"), 10, "the menu")
        desk.screenshot(SHOTS / "menu-two-numbers.png")
        # The newest first: My number, then the work line (Tk skips the separator).
        desk.key("Down", "Down", "Return")
        urls = wait_until(recorder.urls, 10, "the window command to run")
        assert len(urls) == 1
        assert_window_url(urls[0], ann, work)
        assert not desk.window_ids("--name", "^Bob Roe ")  # the window, not the popup


def test_a_left_click_on_a_notification_opens_the_window_at_its_conversation(
    desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    """dunst's default left click only closes a notification: on dunst that close is the
    click, so it opens the conversation (issue 12 item 20)."""
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.admin("add-contact", "Bob Roe", "--number", f"mobile={BOB}")
    recorder = WindowRecorder(tmp_path / "rec")
    with TrayDaemon.start_on(desk, tmp_path / "ann", server, token, window_config(recorder)) as ann:
        ann.wait_online()
        ann.call("prefs_set", key="notify", value=True)
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "Lunch at 12?")
        wait_until(lambda: desk.displayed() == 1, 10, "the notification")
        desk.screenshot(SHOTS / "notification-left-click.png")
        desk.click_notification(button=1)
        wait_until(lambda: desk.displayed() == 0, 10, "the notification to close")
        urls = wait_until(recorder.urls, 10, "the window command to run")
        assert len(urls) == 1
        assert_window_url(urls[0], ann, conversation_id(ann, BOB))
        assert "Traceback" not in ann.log()
        assert "KeyError" not in ann.log()


def test_where_the_window_cannot_open_the_menu_falls_back_to_the_popup(
    desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    """A click must never do nothing: when the window's command cannot start, the
    conversation opens in the quick-send popup, and the log says why."""
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.admin("add-contact", "Bob Roe", "--number", f"mobile={BOB}")
    config = f"window_command = {str(tmp_path / 'no-such-browser') + ' {url}'!r}\n"
    with TrayDaemon.start_on(desk, tmp_path / "ann", server, token, config) as ann:
        ann.wait_online()
        icon = desk.tray_icon()
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "hello?")
        wait_until(lambda: "1 unread" in desk.window_name(icon), 10, "1 unread")
        desk.click(icon)
        wait_until(lambda: desk.window_ids("--onlyvisible", "--class", "^Menu$"), 10, "the menu")
        desk.key("Down", "Down", "Return")
        popup = wait_until(lambda: desk.window_ids("--name", "^Bob Roe "), 20, "the popup")
        assert "no-such-browser" in ann.log()
        desk.run("xdotool", "windowfocus", "--sync", popup[0])
        desk.key("Escape")
        wait_until(lambda: not desk.window_ids("--name", "^Bob Roe "), 10, "the popup to close")
