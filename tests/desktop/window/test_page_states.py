"""The SMS window's states in a real Chromium against a real daemon and server: the link
down (a banner, sends queue, gone when it is back), no SMS number assigned, the daemon
asking the open window to show a conversation (window.show), the daemon going away, and
arrivals announced to screen readers once per burst, not once per message."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.daemonproc import DaemonProcess, wait_until
from tests.support.ipcworld import BOB_MOBILE, CY, World
from tests.support.windowpage import WindowWorld


def test_window_show_brings_the_open_window_to_the_conversation(window: WindowWorld) -> None:
    page = window.open_page()
    opened = window.daemon.call("window.open", conversation=CY)
    assert opened["action"] == "focus"
    expect(page).to_have_url(re.compile(rf"#/c/{opened['conversation_id']}$"))
    expect(page.get_by_role("log", name="Messages")).to_contain_text("The scans, as promised")


def test_a_burst_of_arrivals_is_announced_once(window: WindowWorld) -> None:
    page = window.open_page()
    spoken = page.evaluate("window.glosms.spoken || 0")
    for i in range(6):
        window.receive(BOB_MOBILE, f"Burst {i}")
    option = page.get_by_role("option", name=re.compile(r"^Bob Roe, \d+ unread, Burst 5"))
    expect(option).to_have_count(1)
    # One announcement per burst (1.5 s): 6 at once are "6 new messages from Bob Roe"; a
    # loaded machine may split them in two, never into one per message.
    expect(page.locator("#announce")).to_have_text(
        re.compile(r"^(\d new messages|New message) from Bob Roe")
    )
    page.wait_for_function("() => !window.glosms.announceTimer")
    assert 1 <= page.evaluate("window.glosms.spoken") - spoken <= 2
    assert page.locator("#announce").get_attribute("aria-live") == "polite"


def test_a_failed_download_can_be_retried(window: WindowWorld) -> None:
    # 640 KB: over the MMS limit, not fetched by itself. Its own bytes and text each run,
    # so a repeat in the same world (pytest --count) is not offered the copy already kept.
    tag = uuid.uuid4().hex
    data = (f"{tag}\n".encode() + b"big report line\n" * 40_000)[:640_000]
    window.receive(CY, f"The report {tag}", [(data, "report.txt")])
    sha = hashlib.sha256(data).hexdigest()
    with window.server.store() as st:
        blob = st._blob_path(sha)  # where the server keeps it
    hidden = blob.with_name(blob.name + ".away")
    page = window.open_page(conversation=CY)
    msg = (
        page.get_by_role("log", name="Messages")
        .get_by_role("article")
        .filter(has_text=f"The report {tag}")
    )
    blob.rename(hidden)  # the server cannot read it: the download fails
    try:
        msg.get_by_role("button", name="Download report.txt").click()
        retry = msg.get_by_role("button", name="Retry download of report.txt")
        expect(retry).to_be_visible(timeout=30_000)
        expect(msg).to_contain_text("Download failed")
    finally:
        hidden.rename(blob)
    retry.click()
    expect(msg.get_by_role("link", name=re.compile(r"^report\.txt, 625 KB$"))).to_be_visible()


def test_the_link_down_banner_and_sends_queue(window: WindowWorld) -> None:
    page = window.open_page(conversation=CY)
    banner = page.get_by_role("alert").filter(has_text="Not connected to the SMS server")
    window.server.stop()
    expect(banner).to_be_visible(timeout=30_000)
    text = f"Queued while offline {uuid.uuid4().hex[:8]}"  # its own each run (--count)
    window.daemon.call("send", to=CY, text=text)
    msg = page.get_by_role("log", name="Messages").get_by_role("article").filter(has_text=text)
    expect(msg.locator(".state")).to_have_text("Sending…")
    window.server.restart()
    expect(banner).to_be_hidden(timeout=60_000)
    expect(msg.locator(".state")).to_have_text("Sent", timeout=30_000)


def test_no_sms_number_assigned(window: WindowWorld) -> None:
    with window.server.store() as st:
        st.add_extension("1009", "Eve Park")
        token = st.new_token("1009")
    with DaemonProcess.start(window.tmp / "eve", window.server, token) as eve:
        eve.wait_online()
        eves = WindowWorld(World(window.server, eve), window.browser, window.tmp)
        try:
            page = eves.open_page()
            note = page.get_by_role("note").filter(has_text="No SMS number assigned")
            expect(note).to_be_visible()
            expect(page.get_by_role("button", name="Copy my number")).to_have_count(0)
            expect(page.locator("#me")).to_contain_text("Eve Park")
        finally:
            eves.close_contexts()


def test_the_daemon_going_away_says_how_to_open_the_window_again(window: WindowWorld) -> None:
    page = window.open_page()
    window.daemon.restart()
    expect(page.get_by_role("alert").filter(has_text="glosms open")).to_have_text(
        "The SMS window was closed by glosmsd; open it again with `glosms open`."
    )


def test_a_link_opens_in_the_users_browser_not_in_the_window(
    window: WindowWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {opened}\n')
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", f"{browser} %s")
    window.daemon.restart()  # the daemon's browser is the recorder now
    window.daemon.wait_online()
    url = f"https://example.com/menu?day=fri&for={uuid.uuid4().hex[:8]}"  # its own each run
    window.receive(CY, f"The menu: {url}")
    page = window.open_page(conversation=CY)
    link = page.get_by_role("link", name=url)
    link.click()
    wait_until(
        lambda: opened.exists() and url in opened.read_text(),
        15,
        "the link handed to the browser",
    )
    assert page.url.startswith(window.url().split("/?", 1)[0])  # the window stayed put
    expect(page.get_by_role("log", name="Messages")).to_be_visible()


def test_call_runs_the_configured_call_command(window: WindowWorld, tmp_path: Path) -> None:
    called = tmp_path / "called.txt"
    dialer = tmp_path / "dialer"
    dialer.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {called}\n')
    dialer.chmod(0o755)
    config = window.daemon.home / "config" / "glosmsd" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'call_command = ["{dialer}", "{{number}}"]\n')
    window.daemon.restart()
    window.daemon.wait_online()
    page = window.open_page(conversation=CY)
    page.get_by_role("button", name="Call").click()
    wait_until(lambda: called.exists() and called.read_text() == f"{CY}\n", 15, "the dialer")
    expect(page.locator("#announce")).to_have_text(f"Calling {CY}")
