"""`glosmsd setup` as a user runs it: a real process against a real reference server.

Answers come through stdin (one per line), through flags, or, for the interactive path,
through a pseudo-terminal (the token must not echo). The written config is then used by a
real daemon. Every way it can go wrong ends with one line on stderr, a non-zero exit, and
no file written.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glosmsd.cli import autostart
from glosmsd.cli import setup as firstrun
from glosmsd.client.ipc import Client, DaemonNotRunning
from glosmsd.core.errors import HttpStatus, LinkClosed, NameNotResolved, ServerRefused, TlsFailed
from glosmsd.daemon.config import PREF_DEFAULTS, Config
from glosmsd.system.paths import Paths
from tests.daemon.test_link_tls import openssl
from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ROOT, ServerProcess, running_server

ANN = "+15550001001"
GLOSMSD = Path(sys.executable).parent / "glosmsd"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    (tmp_path / "srv").mkdir()
    with running_server(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def home(tmp_path: Path, isolated_xdg: Path) -> Path:
    """The user's home; the XDG dirs are the autouse fixture's (already in os.environ)."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # systemctl --user must not reach a real manager
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    return env


def setup(
    home: Path, *args: str, answers: str = "", timeout: float = 40
) -> subprocess.CompletedProcess[str]:
    """`glosmsd setup ARGS` with `answers` on stdin."""
    return subprocess.run(
        [str(GLOSMSD), "setup", *args],
        input=answers,
        capture_output=True,
        text=True,
        env=env_for(home),
        cwd=home,
        timeout=timeout,
        check=False,
    )


def config_dir() -> Path:
    return Paths.default().config_file.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def token_file(tmp_path: Path, token: str, perms: int = 0o600) -> Path:
    path = tmp_path / "provisioned-token"
    path.write_text(token + "\n")
    path.chmod(perms)
    return path


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("glosmsd setup: "), lines[0]
    return lines[0]


# --------------------------------------------------------------------------- success


def test_setup_from_stdin_writes_a_private_config_that_the_daemon_runs_on(
    server: ServerProcess, home: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    done = setup(home, answers=f"{server.url}\n{token}\nn\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout
    assert f"Checking {server.url} ..." in out
    assert f"Connected to glosmsd-server/0.1.0: Ann Lee, extension 1001, SMS number {ANN}." in out
    assert token not in out
    assert "Not starting at login" in out

    directory = config_dir()
    assert mode(directory) == 0o700
    assert mode(directory / "config.toml") == 0o600
    assert mode(directory / "token") == 0o600
    assert (directory / "token").read_text() == token + "\n"
    assert token not in (directory / "config.toml").read_text()
    assert f"Wrote {directory / 'config.toml'} and {directory / 'token'}" in out
    assert sorted(p.name for p in directory.iterdir()) == ["config.toml", "token"]
    assert autostart.installed() == []

    config = Config.load()
    assert (config.server, config.token) == (server.url, token)
    assert config.token_file == directory / "token"

    # The daemon starts on that config alone: no --server, no --token-file.
    log = (home / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [str(GLOSMSD), "--headless"],
        env=env_for(home),
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:

        def online() -> dict[str, Any] | None:
            if proc.poll() is not None:
                raise RuntimeError((home / "daemon.log").read_text())
            try:
                with Client(Paths.default().socket_path, timeout=15) as c:
                    status: dict[str, Any] = c.call("status")
            except DaemonNotRunning:
                return None
            return status if status["link"]["online"] else None

        status = DaemonProcess.wait_until(online, 30, "the daemon to come online")
        assert status is not None
        assert status["extension"]["ext"] == "1001"
        assert status["number"] == ANN
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        log.close()


def test_setup_for_scripts_with_flags_and_autostart(
    server: ServerProcess, home: Path, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    provisioned = token_file(tmp_path, token)
    done = setup(
        home, "--server", server.url, "--token-file", str(provisioned), "--autostart", "xdg"
    )
    assert done.returncode == 0, done.stderr
    places = autostart.Places.for_user(env_for(home), home)
    assert f"glosmsd will start with your desktop session ({places.autostart_entry})." in (
        done.stdout
    )
    entry = places.autostart_entry.read_text()
    assert f"Exec={GLOSMSD}\n" in entry
    assert places.launcher.read_text().count(" compose\n") == 1
    assert (config_dir() / "token").read_text() == token + "\n"

    removed = setup(home, "--remove-autostart")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines() == [
        f"Removed {places.autostart_entry}",
        f"Removed {places.launcher}",
    ]
    assert autostart.installed(places) == []
    again = setup(home, "--remove-autostart")
    assert again.stdout == "glosmsd was not set to start at login.\n"


def test_setup_yes_enables_the_usual_autostart_and_systemd_on_request(
    server: ServerProcess, home: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    done = setup(home, "--server", server.url, "--token", "-", "--yes", answers=token + "\n")
    assert done.returncode == 0, done.stderr
    places = autostart.Places.for_user(env_for(home), home)
    # No systemd user manager runs the session here, so the usual way is the XDG entry.
    assert places.autostart_entry.exists()
    if shutil.which("systemctl") is None:
        return
    # Issue 12 item 14: no systemd user manager runs here, so a unit would never start:
    # say so, and never advise systemctl.
    assert not autostart.user_manager_running(env_for(home))
    done = setup(
        home, "--server", server.url, "--token", "-", "--autostart", "systemd", answers=token
    )
    assert done.returncode == firstrun.EXIT_AUTOSTART, done.stderr
    assert "no systemd user manager runs for you here" in one_line(done)
    assert "--autostart xdg" in done.stderr
    assert "systemctl --user restart" not in done.stdout + done.stderr
    assert not places.systemd_unit.exists()
    assert places.autostart_entry.exists()  # the earlier xdg entry is untouched


def test_answering_no_to_autostart_removes_what_an_earlier_run_installed(
    server: ServerProcess, home: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    args = ("--server", server.url, "--token", "-")
    done = setup(home, *args, "--autostart", "xdg", answers=token + "\n")
    assert done.returncode == 0, done.stderr
    places = autostart.Places.for_user(env_for(home), home)
    assert places.autostart_entry.exists()
    # A second run, answering no: nothing starts at login any more.
    done = setup(home, *args, answers=token + "\nn\n")
    assert done.returncode == 0, done.stderr
    assert f"Removed {places.autostart_entry}" in done.stdout
    assert "Not starting at login" in done.stdout
    assert autostart.installed(places) == []


def test_an_extension_without_a_number_is_told_what_to_ask_for(
    server: ServerProcess, home: Path
) -> None:
    token = server.add_extension("1002", "Bo Diaz")
    done = setup(home, "--server", server.url, "--token", "-", "--no-autostart", answers=token)
    assert done.returncode == 0, done.stderr
    assert (
        "Bo Diaz, extension 1002, no SMS number assigned yet (ask your administrator to "
        "assign one to extension 1002" in done.stdout
    )


def test_setup_again_keeps_the_other_settings(server: ServerProcess, home: Path) -> None:
    directory = config_dir()
    directory.mkdir(parents=True)
    old = directory / "config.toml"
    old.write_text(
        'server = "ws://127.0.0.1:1/v1"\ntoken = "old-token"\ndevice_id = "laptop"\n'
        "ping_interval = 7.5\n\n[prefs]\nnotify = true\nsound = false\n"
    )
    old.chmod(0o600)
    token = server.add_extension("1001", "Ann Lee", ANN)
    done = setup(home, "--server", server.url, "--token", "-", "--no-autostart", answers=token)
    assert done.returncode == 0, done.stderr
    assert "Updated" in done.stdout
    assert "kept device_id, ping_interval, prefs" in done.stdout
    config = Config.load()
    assert (config.server, config.token, config.device_id) == (server.url, token, "laptop")
    assert config.ping_interval == 7.5
    assert config.prefs == {**PREF_DEFAULTS, "notify": True, "sound": False}
    assert "old-token" not in old.read_text()
    assert mode(old) == 0o600


# --------------------------------------------------------------------------- failures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def assert_nothing_written(home: Path) -> None:
    assert not config_dir().exists()
    assert autostart.installed(autostart.Places.for_user(env_for(home), home)) == []


def test_wrong_token_says_so(server: ServerProcess, home: Path) -> None:
    server.add_extension("1001", "Ann Lee", ANN)
    done = setup(home, "--server", server.url, "--token", "-", "--yes", answers="not-it\n")
    assert done.returncode == firstrun.EXIT_SERVER
    line = one_line(done)
    assert "refused the token (HTTP 401)" in line
    assert "ask your administrator for a new one" in line
    assert line.endswith("; nothing was written")
    assert_nothing_written(home)


def test_nothing_listening_says_check_the_server(home: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/v1"
    done = setup(home, "--server", url, "--token", "-", "--yes", answers="abc\n")
    assert done.returncode == firstrun.EXIT_SERVER
    line = one_line(done)
    assert f"nothing answers at {url} (connection refused)" in line
    assert "that the server is running" in line
    assert_nothing_written(home)


def test_a_server_that_went_down_says_check_the_server(tmp_path: Path, home: Path) -> None:
    (tmp_path / "gone").mkdir()
    with running_server(tmp_path / "gone") as srv:
        token = srv.add_extension("1001", "Ann Lee", ANN)
        url = srv.url
        assert srv.stop() == 0
    done = setup(home, "--server", url, "--token", "-", "--yes", answers=token)
    assert done.returncode == firstrun.EXIT_SERVER
    assert f"nothing answers at {url}" in one_line(done)
    assert_nothing_written(home)


def test_a_wrong_path_says_it_is_not_a_glosmsd_server(server: ServerProcess, home: Path) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    url = server.url.replace("/v1", "/v2")
    done = setup(home, "--server", url, "--token", "-", "--yes", answers=token)
    assert done.returncode == firstrun.EXIT_SERVER
    line = one_line(done)
    assert f"{url} is not a glosmsd server (server answered HTTP 404" in line
    assert line.count("check the URL's path (often /v1)") == 1, line
    assert_nothing_written(home)


@pytest.mark.parametrize(
    ("args", "answers", "expected"),
    [
        (["--server", "http://sms.example.com/v1", "--token", "-"], "abc", "ws:// or wss://"),
        (["--server", "sms.example.com"], "abc", "ws:// or wss://"),
        (["--server", "ws://sms.example.com/v1", "--token", "-"], "abc", "pass --insecure"),
        (["--server", "ws://127.0.0.1:9/v1", "--token", "-"], "two words", "without spaces"),
        (["--server", "ws://127.0.0.1:9/v1", "--token", "-"], "", "no token given"),
        (["--server", "ws://127.0.0.1:9/v1", "--token", "abc"], "", "shell history"),
        ([], "", "no server URL given: pass --server URL"),
    ],
)
def test_bad_input_is_named_before_any_connection(
    home: Path, args: list[str], answers: str, expected: str
) -> None:
    done = setup(home, *args, answers=answers)
    assert done.returncode == firstrun.EXIT_INPUT
    line = one_line(done)
    assert expected in line
    assert "Checking" not in done.stdout
    assert_nothing_written(home)


def test_a_server_that_never_answers_is_given_up_after_the_timeout(home: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}/v1"
        done = setup(home, "--server", url, "--timeout", "1", "--token", "-", answers="abc")
    assert done.returncode == firstrun.EXIT_SERVER
    line = one_line(done)
    assert f"{url} did not answer within 1 s" in line
    assert "larger --timeout" in line
    assert_nothing_written(home)
    bad = setup(home, "--timeout", "0")
    assert bad.returncode == 2
    assert "'0' is not a number of seconds" in bad.stderr


def test_a_token_file_others_can_read_is_refused(home: Path, tmp_path: Path) -> None:
    loose = token_file(tmp_path, "abc", 0o644)
    done = setup(home, "--server", "ws://127.0.0.1:9/v1", "--token-file", str(loose))
    assert done.returncode == firstrun.EXIT_INPUT
    assert f"chmod 600 {loose}" in one_line(done)
    assert_nothing_written(home)


def test_an_existing_config_that_is_broken_is_left_alone(server: ServerProcess, home: Path) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    directory = config_dir()
    directory.mkdir(parents=True)
    for text, expected in [
        ("server = [unclosed\n", "exists but cannot be read"),
        ("ping_interval = -1\n", "'ping_interval' must be a number of seconds"),
    ]:
        old = directory / "config.toml"
        old.write_text(text)
        done = setup(home, "--server", server.url, "--token", "-", "--yes", answers=token)
        assert done.returncode == firstrun.EXIT_INPUT
        line = one_line(done)
        assert str(old) in line, "the user's file is named, not a scratch copy"
        assert expected in line
        assert "Checking" not in done.stdout
        assert old.read_text() == text
        assert sorted(p.name for p in directory.iterdir()) == ["config.toml"]


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    """A wss:// server whose certificate a private CA signed (made with openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (apt-get install openssl)")
    pki = tmp_path / "pki"
    pki.mkdir()
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=glosmsd setup test CA", cwd=pki)  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
            cwd=pki)  # fmt: skip
    (pki / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf",
            cwd=pki)  # fmt: skip
    (tmp_path / "tls").mkdir()
    extra = ("--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"))
    with running_server(tmp_path / "tls", "test", *extra) as srv:
        yield srv, pki / "ca.pem"


def test_a_private_ca_needs_ca_file_and_setup_keeps_it(
    tls_server: tuple[ServerProcess, Path], home: Path
) -> None:
    srv, ca = tls_server
    assert srv.url.startswith("wss://")
    token = srv.add_extension("1001", "Ann Lee", ANN)
    done = setup(home, "--server", srv.url, "--token", "-", "--no-autostart", answers=token)
    assert done.returncode == firstrun.EXIT_SERVER
    line = one_line(done)
    assert f"cannot trust the server at {srv.url}" in line
    assert "pass --ca-file FILE" in line
    assert_nothing_written(home)

    done = setup(
        home, "--server", srv.url, "--ca-file", str(ca), "--token", "-", "--no-autostart",
        answers=token,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "kept" not in done.stdout
    assert (
        f"ca_file = {firstrun.toml_string(str(ca))}" in (config_dir() / "config.toml").read_text()
    )
    config = Config.load()
    assert config.ca_file == ca


# --------------------------------------------------------------------------- a terminal


class Terminal:
    """A child on a pseudo-terminal that is its controlling terminal (getpass uses it)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        # Opening the tty as a new session's leader makes it the controlling terminal.
        claim = (
            "import os, sys; os.close(os.open(os.ttyname(0), os.O_RDWR)); "
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", claim, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = b""

    def expect(self, text: str, timeout: float = 30) -> None:
        want = text.encode()
        deadline = time.monotonic() + timeout
        while want not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {text!r} in {self.seen!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready and not self._read():
                raise EOFError(f"no {text!r} in {self.seen!r}")

    def _read(self) -> bool:
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.seen += chunk
        return bool(chunk)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        while select.select([self.master], [], [], 0)[0] and self._read():
            pass
        os.close(self.master)
        return code


def test_interactive_setup_on_a_terminal_hides_the_token(server: ServerProcess, home: Path) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    term = Terminal([str(GLOSMSD), "setup"], env_for(home), home)
    try:
        term.expect("Server URL (e.g. wss://sms.example.com/v1): ")
        term.type(server.url + "\n")
        term.expect("Token (it is not shown as you type): ")
        term.type(token + "\n")
        term.expect("Start glosmsd when you log in? [Y/n] ")
        term.type("maybe\n")
        term.expect("Please answer y or n.")
        term.type("n\n")
        assert term.finish() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
            term.proc.wait()
    seen = term.seen.decode()
    assert token not in seen, "the token was echoed"
    assert server.url in seen  # the URL is echoed as typed
    assert "Connected to glosmsd-server/0.1.0: Ann Lee, extension 1001" in seen
    assert Config.load().token == token


# --------------------------------------------------------------------------- pure parts


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_toml_strings_round_trip(text: str) -> None:
    assert tomllib.loads(f"k = {firstrun.toml_string(text)}")["k"] == text


def test_rendered_config_keeps_values_and_types() -> None:
    kept = {
        "device_id": 'desk "1"',
        "ping_interval": 12,
        "ca_file": "/etc/ssl/ca dir/ca.pem",
        "prefs": {"notify": True},
    }
    text = firstrun.render_config("wss://sms.example.com/v1", insecure=True, kept=kept)
    assert tomllib.loads(text) == {
        "server": "wss://sms.example.com/v1",
        "token_file": "token",
        "insecure": True,
        **kept,
    }


def test_hello_lines() -> None:
    hello = {
        "server": "glosmsd-server/9",
        "extension": {"ext": "1001", "name": "Ann Lee"},
        "numbers": [{"number": ANN, "shared_with": []}],
    }
    assert firstrun.describe_hello(hello) == (
        f"Connected to glosmsd-server/9: Ann Lee, extension 1001, SMS number {ANN}."
    )
    assert "no SMS number assigned yet" in firstrun.describe_hello({"numbers": "junk"})


@pytest.mark.parametrize(
    ("failure", "detail", "expected"),
    [
        (ServerRefused("connection refused"), "connection refused", "nothing answers at"),
        (TlsFailed("x"), "TLS error: CERTIFICATE_VERIFY_FAILED", "pass --ca-file FILE"),
        (HttpStatus("x", data={"status": 500}), "server answered HTTP 500",
         "check the URL's path"),
        (HttpStatus("x", data={"status": 404}),
         "server answered HTTP 404: check the URL's path (often /v1)", "check the URL's path"),
        (None, "bad hello from the server: server speaks protocol 2", "update glosmsd"),
        (None, "hello refused by the server: protocol", "update glosmsd"),
        (NameNotResolved("x"), "[Errno -2] Name or service not known",
         "check the URL and your network"),
    ],
)  # fmt: skip
def test_unreachable_lines_say_what_to_do(
    failure: LinkClosed | None, detail: str, expected: str
) -> None:
    line = firstrun.unreachable_line("wss://sms.example.com/v1", failure, detail)
    assert expected in line
    assert line.count("often /v1") <= 1
    assert detail in line
