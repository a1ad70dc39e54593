"""What a failed attempt to open the server's WebSocket was, as one typed error.

The one place that maps websockets' and the OS's connect failures onto
`glosmsd.core.errors` (`ServerUnreachable` and its kinds, `AuthFailed` for an HTTP 401):
the link reports its message as its status line, `glosmsd doctor` tells the kinds apart
by class and shows `detail`, and `glosmsd setup` picks its advice by class, so none of
them reads the other's words.

Each error's message is the link's status line (short: "connection refused"); its
`detail` is the cause's own words (the OS's strerror, the certificate check's, the HTTP
status line). This module must never open a connection itself.
"""

from __future__ import annotations

import socket
import ssl

from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from glosmsd.core.errors import (
    AuthFailed,
    BadServerUrl,
    HttpStatus,
    LinkClosed,
    NameNotResolved,
    NotWebSocket,
    ServerRefused,
    ServerTimeout,
    ServerUnreachable,
    TlsFailed,
)
from glosmsd.core.protocol import AUTH_FAILED_LINE

#: What the link catches from an attempt to connect: anything else is a bug of ours.
CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError)


def connect_error(exc: BaseException) -> LinkClosed:
    """The typed error for `exc`, raised while opening the WebSocket to the server."""
    words = str(exc) or type(exc).__name__
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        line = f"HTTP {code} {exc.response.reason_phrase}".strip()
        data = {"detail": line, "status": code}
        if code == 401:
            return AuthFailed(AUTH_FAILED_LINE, data=data)
        if code == 404:
            # A URL without its path (ws://host:8765): say what setup says (issue 12 item 8).
            message = "server answered HTTP 404: check the URL's path (often /v1)"
        else:
            message = f"server answered HTTP {code}"
        return HttpStatus(message, data=data)
    if isinstance(exc, InvalidURI):
        return BadServerUrl(words, data={"detail": str(exc)})
    if isinstance(exc, ssl.SSLError):
        # An SSLError made by hand (not by the ssl module) has no `reason`.
        reason = getattr(exc, "reason", None) or exc
        message = f"TLS error: {reason}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = getattr(exc, "verify_message", None) or reason
            return TlsFailed(message, data={"detail": f"certificate not trusted: {why}"})
        return TlsFailed(message, data={"detail": str(reason)})
    if isinstance(exc, socket.gaierror):
        return NameNotResolved(words, data={"detail": exc.strerror or str(exc)})
    if isinstance(exc, ConnectionRefusedError):
        detail = exc.strerror or "connection refused"
        return ServerRefused("connection refused", data={"detail": detail})
    if isinstance(exc, TimeoutError):
        detail = str(exc) or "timed out"
        return ServerTimeout("the server did not answer in time", data={"detail": detail})
    if isinstance(exc, InvalidHandshake | EOFError | ConnectionResetError):
        return NotWebSocket(words, data={"detail": words})
    if isinstance(exc, OSError):
        return ServerUnreachable(words, data={"detail": exc.strerror or str(exc)})
    if isinstance(exc, ValueError):
        # websockets rejects some malformed URLs (a bad port) with a plain ValueError.
        return BadServerUrl(words, data={"detail": str(exc)})
    return ServerUnreachable(words, data={"detail": f"{type(exc).__name__}: {exc}"})
