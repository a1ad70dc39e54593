"""The desktop loop end to end: a real server, a real daemon with its tray in trayer on
Xvfb, dunst on a private session bus, xclip, and a second device of the same extension.

Screenshots land in $TMPDIR/glosmsd-shots/ (or $GLOSMSD_SHOTS) to be looked at.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tests.support.daemonproc import DaemonProcess, wait_until
from tests.support.desktop import DesktopEnv, TrayDaemon, WindowRecorder
from tests.support.serverproc import ROOT, ServerProcess, running_server

pytestmark = pytest.mark.desktop

ANN = "+15550001001"
BOB = "+15557654321"
SHOTS = Path(os.environ.get("GLOSMSD_SHOTS", Path(tempfile.gettempdir()) / "glosmsd-shots"))


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[DesktopEnv]:
    with DesktopEnv.start(tmp_path / "desk") as d:
        yield d


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def red_pixels(path: Path) -> int:
    r, g, b = Image.open(path).convert("RGB").split()
    red = r.point(lambda v: 255 if v > 180 else 0)
    not_green = g.point(lambda v: 255 if v < 80 else 0)
    not_blue = b.point(lambda v: 255 if v < 80 else 0)
    mask = ImageChops.multiply(ImageChops.multiply(red, not_green), not_blue)
    return int(sum(mask.histogram()[255:]))


def blue_pixels(path: Path) -> int:
    """The online icon's blue fill (30, 136, 229); offline it is grey."""
    r, g, b = Image.open(path).convert("RGB").split()
    blue = b.point(lambda v: 255 if v > 180 else 0)
    not_red = r.point(lambda v: 255 if v < 80 else 0)
    mid_green = g.point(lambda v: 255 if 100 < v < 170 else 0)
    mask = ImageChops.multiply(ImageChops.multiply(blue, not_red), mid_green)
    return int(sum(mask.histogram()[255:]))


def visible_menus(desk: DesktopEnv) -> list[str]:
    """The tray menu's window while it is posted (it runs in a process of its own)."""
    return desk.window_ids("--onlyvisible", "--class", "^Menu$")


def notify_count(desk: DesktopEnv) -> int:
    return desk.notify_calls().count("member=Notify")


def test_inbound_badge_notification_menu_mark_read_and_copy(
    desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.admin("add-contact", "Bob Roe", "--number", f"mobile={BOB}")
    other_token = server.admin("token", "1001").strip().split()[-1]
    with (
        TrayDaemon.start_on(desk, tmp_path / "ann", server, token) as ann,
        DaemonProcess.start(tmp_path / "ann-laptop", server, other_token) as laptop,
    ):
        ann.wait_online()
        laptop.wait_online()
        icon = desk.tray_icon()
        wait_until(lambda: "no unread" in desk.window_name(icon), 10, "the online tooltip")
        assert red_pixels(desk.grab(icon, tmp_path / "icon0.png")) == 0

        # Notifications are off by default: the badge rises, nothing pops.
        before = notify_count(desk)
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "first, quietly")
        wait_until(lambda: "1 unread" in desk.window_name(icon), 10, "the badge to say 1")
        assert red_pixels(desk.grab(icon, tmp_path / "icon1.png")) > 10
        wait_until(lambda: laptop.call("status")["unread"] == 1, 10, "the laptop to see it")
        assert notify_count(desk) == before

        # "Mark all as read" from the menu clears this device and the other one.
        desk.click(icon)
        wait_until(lambda: "Bob Roe (1)" in ann.log(), 10, "the menu to show Bob Roe (1)")
        menu = wait_until(lambda: visible_menus(desk), 10, "menu")
        _ix, icon_y, _iw, icon_h = desk.window_geometry(icon)
        assert desk.window_geometry(menu[0])[1] >= icon_y + icon_h  # under the icon, not on it
        desk.screenshot(SHOTS / "menu-1-unread.png")
        desk.key("M")
        wait_until(lambda: "no unread" in desk.window_name(icon), 10, "the badge to clear")
        wait_until(lambda: laptop.call("status")["unread"] == 0, 10, "the laptop to clear")
        assert red_pixels(desk.grab(icon, tmp_path / "icon2.png")) == 0

        # With the pref on, one notification with the chime hint and the three actions.
        ann.call("prefs_set", key="notify", value=True)
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "Lunch at 12?")
        wait_until(lambda: "1 unread" in desk.window_name(icon), 10, "the badge to say 1 again")
        wait_until(lambda: desk.displayed() == 1, 10, "dunst to show the notification")
        calls = desk.notify_calls()
        assert calls.count("member=Notify") == before + 1
        for expected in ('"Bob Roe"', '"Lunch at 12?"', '"sound-file"', "chime.wav", '"Open"'):
            assert expected in calls
        assert '"Reply"' in calls
        assert '"Mark as read"' in calls
        desk.screenshot(SHOTS / "notification.png")

        # A second message replaces the conversation's notification instead of piling up.
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "or 1?")
        wait_until(lambda: "2 unread" in desk.window_name(icon), 10, "the badge to say 2")
        wait_until(lambda: notify_count(desk) == before + 2, 10, "the second notification")
        wait_until(lambda: desk.displayed() == 1, 10, "one notification on screen")
        summaries = [n["summary"] for n in desk.history()]
        assert "Bob Roe (2)" in summaries

        # The own number goes to the clipboard from the menu, and the tray says so.
        wait_until(lambda: not visible_menus(desk), 10, "the first menu to be gone")
        desk.click(icon)
        wait_until(lambda: ann.log().count("tray menu:") >= 2, 10, "the menu again")
        wait_until(lambda: visible_menus(desk), 10, "the menu on screen")  # keys go to it
        desk.key("y")
        wait_until(lambda: desk.clipboard() == ANN, 10, "the number on the clipboard")
        wait_until(lambda: "Copied" in desk.window_name(icon), 10, "the tooltip to say so")


def test_screenshots_at_0_3_120_online_and_offline(
    desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with TrayDaemon.start_on(desk, tmp_path / "ann", server, token) as ann:
        ann.wait_online()
        icon = desk.tray_icon()
        wait_until(lambda: "no unread" in desk.window_name(icon), 10, "the online tooltip")
        desk.screenshot(SHOTS / "tray-0-online.png")
        with server.store() as st:
            for i in range(3):
                st.receive(BOB, ANN, f"message {i}", [])
        wait_until(lambda: "3 unread" in desk.window_name(icon), 10, "3 unread")
        desk.screenshot(SHOTS / "tray-3-online.png")
        desk.grab(icon, SHOTS / "icon-3-online.png")
        with server.store() as st:
            for i in range(117):
                st.receive("+1555000" + str(2000 + i % 5), ANN, f"bulk {i}", [])
        wait_until(lambda: "120 unread" in desk.window_name(icon), 20, "120 unread")
        desk.screenshot(SHOTS / "tray-120-online.png")
        desk.grab(icon, SHOTS / "icon-120-online.png")
        assert blue_pixels(SHOTS / "icon-120-online.png") > 10
        server.stop()
        # The tooltip turns to the link's line ("Offline: reconnecting in 2 s (...)"), the
        # icon turns grey and keeps the badge: the unread count is still true offline.
        wait_until(lambda: "Offline" in desk.window_name(icon), 20, "the offline tooltip")
        assert re.match(r"glosmsd: Offline\b", desk.window_name(icon)), desk.window_name(icon)
        grey = wait_until(
            lambda: blue_pixels(desk.grab(icon, SHOTS / "icon-120-offline.png")) == 0,
            10,
            "the icon to turn grey",
        )
        assert grey
        assert red_pixels(SHOTS / "icon-120-offline.png") > 10
        assert ann.call("status")["unread"] == 120
        desk.screenshot(SHOTS / "tray-120-offline.png")


def server_texts(server: ServerProcess, number: str) -> list[str]:
    with server.store() as st:
        return [str(m["text"]) for m in st.messages_of(number)]


def popup_window(desk: DesktopEnv, title: str) -> str:
    ids = wait_until(lambda: desk.window_ids("--name", f"^{title} "), 20, f"a popup on {title}")
    return ids[0]


def type_into(desk: DesktopEnv, wid: str, *keys: str, text: str = "") -> None:
    """Give the window the keyboard (there is no window manager to do it) and type."""
    desk.run("xdotool", "windowfocus", "--sync", wid)
    if text:
        desk.run("xdotool", "type", "--delay", "20", text)
    if keys:
        desk.key(*keys)


def test_notification_actions_taken_in_dunst_mark_read_open_and_reply(
    desk: DesktopEnv, server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    server.admin("add-contact", "Bob Roe", "--number", f"mobile={BOB}")
    other_token = server.admin("token", "1001").strip().split()[-1]
    recorder = WindowRecorder(tmp_path / "rec")
    config = f"window_command = {recorder.command!r}\n"
    with (
        TrayDaemon.start_on(desk, tmp_path / "ann", server, token, config) as ann,
        DaemonProcess.start(tmp_path / "ann-laptop", server, other_token) as laptop,
    ):
        ann.wait_online()
        laptop.wait_online()
        ann.call("prefs_set", key="notify", value=True)
        icon = desk.tray_icon()

        def unread_everywhere(n: int) -> bool:
            return bool(ann.call("status")["unread"] == n and laptop.call("status")["unread"] == n)

        # "Mark as read" from dunst's context menu: read here, on the server (the laptop
        # hears it from there), and the notification goes away.
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "Lunch at 12?")
        wait_until(lambda: desk.displayed() == 1, 10, "the notification")
        wait_until(lambda: unread_everywhere(1), 10, "1 unread on both devices")
        desk.choose_action("Mark as read")
        wait_until(lambda: unread_everywhere(0), 10, "read on both devices")
        wait_until(lambda: desk.displayed() == 0, 10, "the notification to close")
        wait_until(lambda: "no unread" in desk.window_name(icon), 10, "the badge to clear")
        assert not desk.window_ids("--name", "^Bob Roe ")  # no popup for that one

        # A (middle) click on the notification runs its default action: the SMS window at
        # that conversation (issue 15), not the popup.
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "Are you there?")
        wait_until(lambda: desk.displayed() == 1, 10, "the second notification")
        desk.screenshot(SHOTS / "notification-before-click.png")
        desk.click_notification()
        urls = wait_until(recorder.urls, 10, "the SMS window to be opened")
        cid = ann.call("messages", conversation=BOB)["conversation"]["id"]
        assert len(urls) == 1
        assert urls[0].endswith(f"#/c/{cid}"), urls
        wait_until(lambda: desk.displayed() == 0, 10, "the notification to close")
        assert not desk.window_ids("--name", "^Bob Roe ")  # no popup for that one
        ann.call("mark_read", conversation=BOB)  # as the window does when it opens
        wait_until(lambda: unread_everywhere(0), 10, "read on both devices again")

        # "Reply" (dunst has no inline reply field) opens the popup too; what is typed
        # there and sent with Ctrl+Enter reaches the server, and the popup closes.
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "Shall I wait?")
        wait_until(lambda: desk.displayed() == 1, 10, "the third notification")
        desk.choose_action("Reply")
        wid = popup_window(desk, "Bob Roe")
        wait_until(lambda: unread_everywhere(0), 10, "the reply popup to read it")
        type_into(desk, wid, "ctrl+Return", text="On my way")
        wait_until(lambda: "On my way" in server_texts(server, ANN), 20, "the reply to go out")
        wait_until(lambda: not desk.window_ids("--name", "^Bob Roe "), 10, "the popup to close")
        sent = laptop.call("messages", conversation=BOB)["messages"]
        assert sent[0]["text"] == "On my way"
        assert sent[0]["direction"] == "out"


@pytest.mark.timeout(90)
def test_make_demo_on_the_desktop_badge_notification_and_a_reply_from_it(
    desk: DesktopEnv, tmp_path: Path
) -> None:
    """What `make demo` shows a person: the tray icon with the unread count and the welcome
    notification within seconds; Reply on it opens the popup; the echo answers."""
    env = {k: v for k, v in os.environ.items() if k not in ("GLOSMSD_SOCKET", "WAYLAND_DISPLAY")}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(tmp_path / var.lower())
    (tmp_path / "run").mkdir(mode=0o700)
    env.update(desk.env, XDG_RUNTIME_DIR=str(tmp_path / "run"), PYTHONPATH=str(ROOT))
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "glosmsd.cli.glosmsd", "--demo"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        icon = desk.tray_icon(30)

        def unread() -> int:
            assert proc.poll() is None, log_path.read_text()
            found = re.search(r"(\d+) unread", desk.window_name(icon))
            return int(found.group(1)) if found else 0

        wait_until(unread, 30, "the demo's unread count on the tray")
        assert red_pixels(desk.grab(icon, tmp_path / "demo-icon.png")) > 10
        wait_until(lambda: desk.displayed() == 1, 30, "the welcome notification")
        assert "Welcome to the glosmsd demo" in desk.notify_calls()
        desk.screenshot(SHOTS / "demo.png")

        desk.choose_action("Reply")
        wid = popup_window(desk, "Bob Roe")
        type_into(desk, wid, "ctrl+Return", text="Hello from the desktop")
        wait_until(lambda: not desk.window_ids("--name", "^Bob Roe "), 20, "the popup to close")
        echo = 'You wrote: "Hello from the desktop"'
        wait_until(lambda: echo in desk.notify_calls(), 30, "the echo's notification")
        wait_until(lambda: desk.displayed() == 1, 10, "the echo on screen")
        desk.screenshot(SHOTS / "demo-echo.png")
    finally:
        # Reaped whatever happens, so one failure never leaks a running demo (and its
        # ResourceWarning) into the next test.
        proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.wait(20)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert code == 0, f"exit {code} after SIGTERM\n{log_path.read_text()}"
