"""`glosms open [CONVERSATION]` against a real daemon (issue 15).

The daemon's config sets `window_command` to a small recorder script, so what `glosms
open` starts is seen without a browser: the one-time URL it was given, for which
conversation. `--url` prints that URL; the daemon's window server takes it (a real HTTP
request); opening again while the window is starting focuses it instead of a second one.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import stat
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.cli import glosms as cli
from tests.support.daemonproc import DaemonProcess, wait_until
from tests.support.ipcworld import BOB_MOBILE, seed, wait_seeded
from tests.support.serverproc import running_server


class Opened:
    """A daemon whose window_command records its arguments, one line per start."""

    def __init__(self, daemon: DaemonProcess, record: Path) -> None:
        self.daemon = daemon
        self.record = record

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.daemon.env, "LC_ALL": "C.UTF-8"}

    def starts(self) -> list[str]:
        try:
            return self.record.read_text().splitlines()
        except FileNotFoundError:
            return []


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Opened]:
    with opened_world(tmp_path_factory.mktemp("open")) as world:
        yield world


@contextlib.contextmanager
def opened_world(tmp: Path) -> Iterator[Opened]:
    record = tmp / "started.txt"
    recorder = tmp / "recorder"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {record}\n')
    recorder.chmod(recorder.stat().st_mode | stat.S_IXUSR)
    home = tmp / "ann"
    config = home / "config" / "glosmsd" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'window_command = "{recorder} {{url}}"\n')
    with running_server(tmp) as srv:
        token = seed(srv)
        with DaemonProcess.start(home, srv, token) as daemon:
            wait_seeded(daemon)
            yield Opened(daemon, record)


def glosms(
    opened: Opened, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosms", *args],
        capture_output=True,
        text=True,
        env={**opened.env, **(env or {})},
        timeout=60,
        check=False,
    )


def test_open_url_prints_a_one_time_url_the_window_takes(opened: Opened) -> None:
    conv = opened.daemon.call("messages", conversation="Bob Roe")["conversation"]
    proc = glosms(opened, "open", "--url", "Bob Roe")
    assert proc.returncode == 0, proc.stderr
    url = proc.stdout.strip()
    assert proc.stdout.count("\n") == 1
    assert url.startswith("http://127.0.0.1:")
    assert "?token=" in url
    assert url.endswith(f"#/c/{conv['id']}")
    assert opened.starts() == []  # --url opens nothing

    parts = urllib.parse.urlsplit(url)
    target = f"{parts.path}?{parts.query}"

    def get() -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            conn.request("GET", target)
            res = conn.getresponse()
            res.read()
            return res
        finally:
            conn.close()

    first = get()
    assert first.status in (302, 303)  # the token swapped for the cookie
    assert first.getheader("Set-Cookie")
    assert get().status == 401  # spent: one time only


def test_open_starts_the_window_command_then_focuses_it(tmp_path: Path) -> None:
    # A world of its own: in the module's, an earlier open (of this test's earlier run,
    # under pytest --count) leaves the window "starting" for a while, and opens focus.
    with opened_world(tmp_path) as opened:
        _starts_then_focuses(opened)


def _starts_then_focuses(opened: Opened) -> None:
    env = {"DISPLAY": ":987"}
    proc = glosms(opened, "open", BOB_MOBILE, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Opened the SMS window at the conversation")
    conv = opened.daemon.call("messages", conversation=BOB_MOBILE)["conversation"]
    starts = wait_until(opened.starts, 10, "the window command to run")
    assert len(starts) == 1
    assert "?token=" in starts[0]
    assert starts[0].endswith(f"#/c/{conv['id']}")
    # Opening it again while it starts brings that one forward: never a second window.
    second = glosms(opened, "open", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("The SMS window is already open: showing the conversation list")
    assert len(opened.starts()) == 1


def test_open_headless_says_there_is_no_display(opened: Opened) -> None:
    proc = glosms(opened, "open", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert proc.returncode == cli.EXIT_FAIL
    assert proc.stderr.startswith("glosms: cannot show the SMS window: no display")
    assert "glosms open --url" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_open_an_unknown_conversation_is_a_clear_line(opened: Opened) -> None:
    proc = glosms(opened, "open", "--url", "Nobody Here")
    assert proc.returncode == cli.EXIT_USAGE
    assert "No conversation matches" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
