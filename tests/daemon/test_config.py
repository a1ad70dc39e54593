"""Config and paths: XDG placement, overrides, token files, device id, clear errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from glosmsd.client.ipc import Client
from glosmsd.core.errors import ConfigError
from glosmsd.daemon.config import (
    PREF_DEFAULTS,
    Config,
    load_device_id,
    read_token_file,
    save_token,
    tls_context,
)
from glosmsd.system.paths import Paths, runtime_dir

SERVER = "wss://sms.example.com/v1"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def token_file(tmp_path: Path, mode: int = 0o600, text: str = "tok-123\n") -> Path:
    return write(tmp_path / "token", text, mode)


# --------------------------------------------------------------------------- paths


def test_paths_follow_xdg(isolated_xdg: Path) -> None:
    p = Paths.default()
    assert p.config_file == isolated_xdg / "xdg_config_home" / "glosmsd" / "config.toml"
    assert p.data_dir == isolated_xdg / "xdg_data_home" / "glosmsd"
    assert p.db_path.parent == p.data_dir
    assert p.files_dir == p.data_dir / "files"
    assert p.device_id_file == p.data_dir / "device_id"
    assert p.state_dir == isolated_xdg / "xdg_state_home" / "glosmsd"
    assert p.log_file.parent == p.state_dir
    assert p.runtime_dir == isolated_xdg / "run" / "glosmsd"
    assert p.socket_path == p.runtime_dir / "socket"
    assert p.socket_path == Client().path


def test_socket_override_and_runtime_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GLOSMSD_SOCKET", str(tmp_path / "s.sock"))
    assert Paths.default().socket_path == tmp_path / "s.sock"
    monkeypatch.delenv("GLOSMSD_SOCKET")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    p = Paths.default()
    assert p.runtime_dir == Path(f"/tmp/glosmsd-{os.getuid()}")
    assert p.socket_path == Client().path  # the CLI looks where the daemon listens
    assert runtime_dir({"XDG_RUNTIME_DIR": "/r"}) == Path("/r/glosmsd")


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32", "freebsd14"])
@pytest.mark.parametrize("xdg_runtime", [True, False])
@pytest.mark.parametrize("explicit", [True, False])
def test_the_daemon_and_the_client_agree_on_the_socket_everywhere(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    platform: str,
    xdg_runtime: bool,
    explicit: bool,
) -> None:
    # Issue 12 item 15: on macOS without XDG_RUNTIME_DIR the daemon bound under
    # ~/Library/... while glosms dialled /tmp/glosmsd-UID/socket.
    monkeypatch.setattr("sys.platform", platform)
    # platformdirs picked its backend for the real OS at import: stand in for the other's.
    library = tmp_path / "Library" / "Caches" / "TemporaryItems"
    monkeypatch.setattr("platformdirs.user_runtime_dir", lambda app, *_a, **_k: str(library / app))
    if xdg_runtime:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    else:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    if explicit:
        monkeypatch.setenv("GLOSMSD_SOCKET", str(tmp_path / "mine.sock"))
    else:
        monkeypatch.delenv("GLOSMSD_SOCKET", raising=False)
    daemon_side = Paths.default().socket_path
    assert Client().path == daemon_side
    if explicit:
        assert daemon_side == tmp_path / "mine.sock"
    elif xdg_runtime:
        assert daemon_side == tmp_path / "run" / "glosmsd" / "socket"


def test_ensure_dirs_are_private(isolated_xdg: Path) -> None:
    p = Paths.default()
    p.ensure_dirs()
    for d in (p.data_dir, p.files_dir, p.state_dir):
        assert d.is_dir()
        assert d.stat().st_mode & 0o077 == 0


# --------------------------------------------------------------------------- loading


def test_load_from_the_default_file(tmp_path: Path) -> None:
    tok = token_file(tmp_path)
    paths = Paths.default()
    write(
        paths.config_file,
        f'server = "{SERVER}"\ntoken_file = "{tok}"\nping_interval = 5\n[prefs]\nnotify = true\n',
    )
    cfg = Config.load()
    assert cfg.server == SERVER
    assert cfg.token == "tok-123"
    assert cfg.token_file == tok
    assert cfg.ping_interval == 5.0
    assert cfg.prefs == {**PREF_DEFAULTS, "notify": True}
    assert cfg.source == paths.config_file
    assert cfg.paths == paths
    assert len(cfg.device_id) == 32
    assert "tok-123" not in repr(cfg)


def test_command_line_alone_works_without_a_file(tmp_path: Path) -> None:
    tok = token_file(tmp_path)
    cfg = Config.load(overrides={"server": "ws://127.0.0.1:8765/v1", "token_file": str(tok)})
    assert cfg.source is None
    assert cfg.token == "tok-123"
    assert cfg.prefs == PREF_DEFAULTS
    assert cfg.prefs["notify"] is False  # notifications are off until the user opts in
    assert cfg.ping_interval == 20.0


def test_overrides_win_and_none_is_ignored(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", f'server = "{SERVER}"\ntoken = "abc"\ndevice_id = "pc"\n')
    cfg = Config.load(f, {"server": "wss://other.example/v1", "device_id": None})
    assert cfg.server == "wss://other.example/v1"
    assert cfg.device_id == "pc"
    assert cfg.token == "abc"


def test_device_id_is_generated_once_and_kept(tmp_path: Path) -> None:
    over = {"server": SERVER, "token": "t"}
    first = Config.load(overrides=over).device_id
    assert Config.load(overrides=over).device_id == first
    path = Paths.default().device_id_file
    assert path.read_text().strip() == first
    assert path.stat().st_mode & 0o077 == 0
    assert load_device_id(path) == first
    write(path, "x" * 65)
    with pytest.raises(ConfigError, match="device_id"):
        load_device_id(path)


def test_relative_token_file_is_relative_to_the_config(tmp_path: Path) -> None:
    token_file(tmp_path / "conf")
    f = write(tmp_path / "conf" / "config.toml", f'server = "{SERVER}"\ntoken_file = "token"\n')
    assert Config.load(f).token == "tok-123"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('server = "http://x/v1"\ntoken = "t"', "'server' must be a ws:// or wss:// URL, e.g. wss"),
        ('server = 5\ntoken = "t"', "'server' must be a ws"),
        ('server = "wss://"\ntoken = "t"', "'server' must be a ws"),
        ('server = "wss://h:99999/v1"\ntoken = "t"', "'server' must be a ws"),
        ('token = "t"', "'server' is missing"),
        ('server = "ws://sms.example.com/v1"\ntoken = "t"', "in clear"),
        (f'server = "{SERVER}"', "no token"),
        (f'server = "{SERVER}"\ntoken = "t"\ntoken_file = "f"', "not both"),
        (f'server = "{SERVER}"\ntoken = ""', "'token' must be a non-empty"),
        (f'server = "{SERVER}"\ntoken = "t"\nping_interval = 0', "'ping_interval' must be"),
        (f'server = "{SERVER}"\ntoken = "t"\nping_interval = true', "'ping_interval' must be"),
        (f'server = "{SERVER}"\ntoken = "t"\nping_interval = "20"', "'ping_interval' must be"),
        (f'server = "{SERVER}"\ntoken = "t"\nping_interval = nan', "'ping_interval' must be"),
        (f'server = "{SERVER}"\ntoken = "t"\nsrever = 1', "unknown key 'srever'"),
        (f'server = "{SERVER}"\ntoken = "t"\ninsecure = "yes"', "'insecure' must be"),
        (f'server = "{SERVER}"\ntoken = "t"\nprefs = 1', r"\[prefs\] must be a table"),
        (f'server = "{SERVER}"\ntoken = "t"\n[prefs]\nloud = true', "unknown preference 'loud'"),
        (f'server = "{SERVER}"\ntoken = "t"\n[prefs]\nnotify = 1', "'notify' must be true"),
        (f'server = "{SERVER}"\ntoken = "t"\ndevice_id = ""', "'device_id' must be"),
        (f'server = "{SERVER}"\ntoken = "t"\ndevice_id = "a\\u0000b"', "'device_id' must be"),
        (f'server = "{SERVER}"\ntoken_file = 3', "'token_file' must be a file path"),
        ("server = ", "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, complaint: str) -> None:
    f = write(tmp_path / "config.toml", text + "\n")
    with pytest.raises(ConfigError, match=complaint) as info:
        Config.load(f)
    assert str(f) in info.value.message


def test_insecure_allows_plain_ws_and_loopback_needs_nothing(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", 'server = "ws://sms.lan/v1"\ntoken = "t"\ninsecure = true\n')
    assert Config.load(f).insecure
    for host in ("127.0.0.1", "[::1]", "localhost", "[::ffff:127.0.0.1]"):
        assert Config.load(overrides={"server": f"ws://{host}:1/v1", "token": "t"}).server


def test_override_errors_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--server: 'server' must be"):
        Config.load(overrides={"server": "ftp://x", "token": "t"})
    with pytest.raises(ConfigError, match="unknown override 'colour'"):
        Config.load(overrides={"colour": "red"})


def test_explicit_missing_file_and_unreadable_bytes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        Config.load(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Config.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Config.load(tmp_path)  # a directory


# --------------------------------------------------------------------------- secrets


def test_world_readable_token_file_is_refused(tmp_path: Path) -> None:
    tok = token_file(tmp_path, mode=0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {tok}"):
        Config.load(overrides={"server": SERVER, "token_file": str(tok)})


def test_world_readable_config_with_inline_token_is_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", f'server = "{SERVER}"\ntoken = "t"\n', mode=0o604)
    with pytest.raises(ConfigError, match="other users can read"):
        Config.load(f)
    # Without a token inside, a readable config file is fine.
    tok = token_file(tmp_path)
    f.write_text(f'server = "{SERVER}"\ntoken_file = "{tok}"\n')
    assert Config.load(f).token == "tok-123"


def test_group_readable_token_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tok = token_file(tmp_path, mode=0o640)
    with caplog.at_level(logging.WARNING, logger="glosmsd.daemon.config"):
        assert read_token_file(tok) == "tok-123"
    assert "group can read" in caplog.text


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "token alone"),
        ("a b\n", "token alone"),
        ("x" * 5000, "too big"),
        (b"\xff", "not a text"),
    ],
)
def test_bad_token_file_contents(tmp_path: Path, text: Any, complaint: str) -> None:
    path = tmp_path / "token"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=complaint):
        read_token_file(path)


def test_token_file_must_exist_and_be_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        read_token_file(tmp_path / "missing")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_token_file(tmp_path)


def test_save_token_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "token"
    save_token(path, "  secret-1 \n")
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_token_file(path) == "secret-1"
    with pytest.raises(ConfigError, match="one word"):
        save_token(path, "two words")


def test_ca_file_is_resolved_next_to_the_config_and_must_exist(tmp_path: Path) -> None:
    tok = token_file(tmp_path)
    cfg = write(
        tmp_path / "conf" / "config.toml",
        f'server = "{SERVER}"\ntoken_file = "{tok}"\nca_file = "ca.pem"\n',
    )
    with pytest.raises(ConfigError, match=r"config.toml: ca_file .*ca.pem: no such file"):
        Config.load(cfg)
    write(tmp_path / "conf" / "ca.pem", "-----BEGIN CERTIFICATE-----\n")
    assert Config.load(cfg).ca_file == tmp_path / "conf" / "ca.pem"
    with pytest.raises(ConfigError, match="must be the path of a PEM file"):
        Config.load(cfg, {"ca_file": "  "})
    plain = Config.load(cfg, {"server": "ws://127.0.0.1:9/v1"})
    assert tls_context(plain) is None  # no TLS, nothing to trust
    with pytest.raises(ConfigError, match="not a PEM file of CA certificates"):
        tls_context(Config.load(cfg))


def test_every_preference_can_have_a_default_in_the_config() -> None:
    from glosmsd.daemon.service import PREFS

    assert {key: spec[0] for key, spec in PREFS.items()} == PREF_DEFAULTS


# --------------------------------------------------------------------------- the SMS window


def test_the_window_keys_take_a_port_and_command_lines(tmp_path: Path) -> None:
    f = write(
        tmp_path / "config.toml",
        f'server = "{SERVER}"\ntoken = "t"\nwindow_port = 8790\n'
        "window_command = \"firefox --new-window '{url}'\"\n"
        'call_command = ["linphonec", "-c", "call {number}"]\n',
    )
    config = Config.load(f)
    assert config.window_port == 8790
    assert config.window_command == ("firefox", "--new-window", "{url}")
    assert config.call_command == ("linphonec", "-c", "call {number}")
    plain = Config.load(write(tmp_path / "plain.toml", f'server = "{SERVER}"\ntoken = "t"\n'))
    assert (plain.window_port, plain.window_command, plain.call_command) == (0, None, None)


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("window_port = 80", "'window_port' must be a port number from 1024 to 65535"),
        ("window_port = 70000", "'window_port' must be a port number"),
        ("window_port = true", "'window_port' must be a port number"),
        ('window_port = "8790"', "'window_port' must be a port number"),
        ('window_command = ""', "'window_command' must be a command line"),
        ('window_command = "firefox \'unclosed"', "'window_command' must be a command line"),
        ("window_command = [1, 2]", "'window_command' must be a command line"),
        ("call_command = 5", r"'call_command' must be a command line, e.g. \"myapp --open"),
    ],
)
def test_bad_window_keys_say_what_a_good_value_is(
    tmp_path: Path, line: str, complaint: str
) -> None:
    f = write(tmp_path / "config.toml", f'server = "{SERVER}"\ntoken = "t"\n{line}\n')
    with pytest.raises(ConfigError, match=complaint) as info:
        Config.load(f)
    assert str(f) in info.value.message
