"""wss:// end to end: a reference server with a certificate from a private CA, and daemons.

The certificates are made by the `openssl` command for each run (a CA, and a server
certificate for 127.0.0.1 signed by it). A daemon told to trust that CA (`--ca-file`)
connects and sends; one that is not refuses the server and says why in its status; plain
ws:// to the TLS port gets nowhere; a ca_file that is not PEM stops the daemon with one line.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ROOT, Client, ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (apt-get install openssl)")
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=glosmsd test CA", cwd=d)  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf",
            cwd=d)  # fmt: skip
    return d


@pytest.fixture
def tls_server(tmp_path: Path, pki: Path) -> Iterator[ServerProcess]:
    extra = ("--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"))
    with running_server(tmp_path, "test", *extra) as srv:
        yield srv


def test_server_speaks_wss_and_a_daemon_trusting_the_ca_sends(
    tls_server: ServerProcess, pki: Path, tmp_path: Path
) -> None:
    assert tls_server.url.startswith("wss://127.0.0.1:")
    token = tls_server.add_extension("1001", "Ann Lee", ANN)
    with DaemonProcess.start(tmp_path / "ann", tls_server, token, "--ca-file",
                             str(pki / "ca.pem")) as ann:  # fmt: skip
        ann.wait_online()
        sent = ann.call("send", to=BOB, text="over TLS", client_id="tls-1")["message"]
        ann.wait_until(
            lambda: ann.call("messages", conversation=BOB)["messages"][-1]["state"] == "sent",
            20,
            "the send to be carried",
        )
        assert sent["text"] == "over TLS"


def test_a_daemon_that_does_not_trust_the_certificate_says_why(
    tls_server: ServerProcess, tmp_path: Path
) -> None:
    token = tls_server.add_extension("1001", "Ann Lee", ANN)
    with DaemonProcess.start(tmp_path / "ann", tls_server, token) as ann:
        link = ann.wait_until(
            lambda: (s := ann.call("status")["link"])["detail"] and s, 20, "a failed attempt"
        )
        assert not link["online"]
        assert "certificate" in link["detail"].lower(), link


async def test_protocol_clients_need_tls_and_the_right_ca(
    tls_server: ServerProcess, pki: Path
) -> None:
    token = tls_server.add_extension("1001", "Ann Lee", ANN)
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    async with await Client.connect(tls_server.url, token, ssl=ctx) as ann:
        assert ann.hello["numbers"][0]["number"] == ANN
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(tls_server.url, open_timeout=10)
    plain = tls_server.url.replace("wss://", "ws://")
    with pytest.raises((InvalidMessage, ConnectionError, EOFError, asyncio.TimeoutError)):
        await connect(plain, open_timeout=10)


def test_a_ca_file_that_is_not_pem_stops_the_daemon_with_one_line(
    tls_server: ServerProcess, tmp_path: Path
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    token_file = tmp_path / "token"
    token_file.write_text(tls_server.add_extension("1001", "Ann Lee", ANN))
    token_file.chmod(0o600)
    done = subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosmsd", "--headless", "--server", tls_server.url,
         "--token-file", str(token_file), "--ca-file", str(bad)],
        capture_output=True, text=True, timeout=30, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if "ca_file" in ln]
    assert lines, done.stderr
    assert "not a PEM file of CA certificates" in lines[0]
    assert "Traceback" not in done.stderr
