"""`connect_error`: each connect failure the link, the doctor and setup meet is one typed
error, with the link's status words as its message and the cause's words as its detail."""

from __future__ import annotations

import socket
import ssl

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidStatus, InvalidURI
from websockets.http11 import Response

from glosmsd.core import errors
from glosmsd.core.protocol import AUTH_FAILED_LINE
from glosmsd.daemon.linkerrors import CONNECT_ERRORS, connect_error


def _status(code: int, reason: str) -> InvalidStatus:
    return InvalidStatus(Response(code, reason, Headers()))


@pytest.mark.parametrize(
    ("exc", "cls", "message", "detail"),
    [
        (_status(401, "Unauthorized"), errors.AuthFailed, AUTH_FAILED_LINE,
         "HTTP 401 Unauthorized"),
        (_status(403, "Forbidden"), errors.HttpStatus, "server answered HTTP 403",
         "HTTP 403 Forbidden"),
        (_status(404, "Not Found"), errors.HttpStatus,
         "server answered HTTP 404: check the URL's path (often /v1)", "HTTP 404 Not Found"),
        (InvalidURI("ftp://x", "scheme isn't ws or wss"), errors.BadServerUrl, "ftp://x",
         "ftp://x"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), errors.TlsFailed,
         "TLS error: ", "certificate not trusted"),
        (ssl.SSLError(1, "wrong version number"), errors.TlsFailed, "TLS error: ",
         "wrong version number"),
        (socket.gaierror(-2, "Name or service not known"), errors.NameNotResolved,
         "Name or service not known", "Name or service not known"),
        (ConnectionRefusedError(111, "Connection refused"), errors.ServerRefused,
         "connection refused", "Connection refused"),
        (TimeoutError(), errors.ServerTimeout, "the server did not answer in time", "timed out"),
        (InvalidMessage("did not receive a valid HTTP response"), errors.NotWebSocket,
         "did not receive a valid HTTP response", "did not receive a valid HTTP response"),
        (ConnectionResetError(104, "reset"), errors.NotWebSocket, "reset", "reset"),
        (OSError(101, "Network is unreachable"), errors.ServerUnreachable,
         "Network is unreachable", "Network is unreachable"),
        (ValueError("bad port"), errors.BadServerUrl, "bad port", "bad port"),
    ],
)  # fmt: skip
def test_each_failure_is_one_typed_error(
    exc: BaseException, cls: type[errors.LinkClosed], message: str, detail: str
) -> None:
    assert isinstance(exc, CONNECT_ERRORS)
    error = connect_error(exc)
    assert type(error) is cls
    assert message in error.message
    assert detail in error.detail


def test_an_http_status_says_which() -> None:
    error = connect_error(_status(502, "Bad Gateway"))
    assert isinstance(error, errors.HttpStatus)
    assert error.status == 502


def test_anything_else_is_unreachable_with_its_type() -> None:
    error = connect_error(RuntimeError("odd"))
    assert type(error) is errors.ServerUnreachable
    assert error.detail == "RuntimeError: odd"
