"""`glosmsd.cli.doctor.probes`: connect failures told apart, and the probes run in process
against real files and sockets."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidStatus, InvalidURI
from websockets.http11 import Response

from glosmsd.cli.doctor import probes, verdicts
from glosmsd.system.paths import Paths


def _status(code: int, reason: str) -> InvalidStatus:
    return InvalidStatus(Response(code, reason, Headers()))


@pytest.mark.parametrize(
    ("exc", "outcome", "detail"),
    [
        (_status(401, "Unauthorized"), "unauthorized", "HTTP 401 Unauthorized"),
        (_status(403, "Forbidden"), "unauthorized", "HTTP 403 Forbidden"),
        (_status(404, "Not Found"), "http", "the server answered HTTP 404 Not Found"),
        (InvalidURI("ftp://x", "scheme isn't ws or wss"), "bad-url", "ftp://x"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls",
         "certificate not trusted"),
        (ssl.SSLError(1, "wrong version number"), "tls", "wrong version number"),
        (socket.gaierror(-2, "Name or service not known"), "dns", "Name or service not known"),
        (ConnectionRefusedError(111, "Connection refused"), "refused", "Connection refused"),
        (TimeoutError(), "timeout", "timed out"),
        (InvalidMessage("did not receive a valid HTTP response"), "not-websocket",
         "did not receive a valid HTTP response"),
        (EOFError(), "not-websocket", "EOFError"),
        (OSError(101, "Network is unreachable"), "unreachable", "Network is unreachable"),
        (ValueError("bad port"), "bad-url", "bad port"),
        (RuntimeError("odd"), "unreachable", "RuntimeError: odd"),
    ],
)  # fmt: skip
def test_connection_failures_are_told_apart(exc: BaseException, outcome: str, detail: str) -> None:
    assert probes.classify_failure(exc)[0] == outcome
    assert detail in probes.classify_failure(exc)[1]


# --------------------------------------------------------------------------- probes in process


def test_probe_config_reads_like_the_daemon_and_writes_nothing(tmp_path: Path) -> None:
    paths = Paths.default()
    token = tmp_path / "token"
    token.write_text("secret\n")
    token.chmod(0o640)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'server = "ws://127.0.0.1:1/v1"\ntoken_file = "{token}"\n')
    seen, config, tls = probes.probe_config(cfg, {}, paths)
    assert (seen.exists, seen.error, seen.secret_mode) == (True, None, 0o640)
    assert config is not None
    assert config.token == "secret"
    assert tls is None
    assert verdicts.judge_config(seen).status == "warning"
    assert not paths.device_id_file.exists()  # the doctor only looks
    token.chmod(0o604)
    seen, config, _ = probes.probe_config(cfg, {}, paths)
    assert config is None
    assert seen.error is not None
    assert f"chmod 600 {token}" in seen.error
    seen, _, _ = probes.probe_config(None, {}, paths)
    assert (seen.exists, seen.path) == (False, str(paths.config_file))
    assert verdicts.judge_config(seen).detail == f"no config at {paths.config_file}"


def test_probe_socket_tells_a_file_from_a_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "socket"
    assert probes.probe_socket(path, 1).state == "absent"
    path.write_text("")
    assert probes.probe_socket(path, 1).state == "not-socket"
    path.unlink()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    assert probes.probe_socket(path, 1).state == "stale"


def test_a_listener_that_never_answers_is_silent(tmp_path: Path) -> None:
    path = tmp_path / "socket"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen()
        seen = probes.probe_socket(path, 0.3)
    assert (seen.state, seen.error) == ("silent", "glosmsd did not answer in time; is it stuck?")
