"""The one error tree of glosmsd.

Every error a user or a client can see is a `GlosmsdError`. Each class carries the
JSON-RPC code it maps to, so the local socket and the server link report it the same
way and nothing else leaks a traceback to a client. Messages say what happened and what
to do. This module must never import anything from the rest of the package.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GlosmsdError(Exception):
    """Root of every error glosmsd raises on purpose."""

    code: ClassVar[int] = -32000
    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_rpc(self) -> dict[str, Any]:
        """The JSON-RPC error object for this error."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.data:
            data.update(self.data)
        return {"code": self.code, "message": self.message, "data": data}


class ConfigError(GlosmsdError):
    """Configuration is missing or wrong; the message says which file and key."""

    code = -32001
    kind = "config"


class ProtocolError(GlosmsdError):
    """Somebody broke a protocol."""

    code = -32002
    kind = "protocol"


class LocalProtocolError(ProtocolError):
    """We broke the protocol (a bug on our side)."""

    kind = "local-protocol"


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol (bad frame, wrong shape, unknown reply)."""

    kind = "remote-protocol"


class LinkClosed(GlosmsdError):
    """The link to the server is down; the operation may be retried later."""

    code = -32003
    kind = "link-closed"


class AuthFailed(LinkClosed):
    """The server refused our credentials; retrying will not help."""

    code = -32004
    kind = "auth-failed"


class StoreError(GlosmsdError):
    """The local database failed."""

    code = -32005
    kind = "store"


class SchemaTooNew(StoreError):
    """The database was written by a newer glosmsd; it is left untouched."""

    kind = "schema-too-new"


class SendFailed(GlosmsdError):
    """A message could not be sent; `message` is the reason in the user's words."""

    code = -32006
    kind = "send-failed"


class NoSmsNumber(SendFailed):
    """The extension has no SMS number, so it can neither send nor receive."""

    code = -32007
    kind = "no-sms-number"


class LimitExceeded(GlosmsdError):
    """A text, file or rate limit was exceeded."""

    code = -32008
    kind = "limit-exceeded"


class NotFound(GlosmsdError):
    """The named message, conversation, contact or file does not exist (for this user)."""

    code = -32009
    kind = "not-found"


class BadInput(GlosmsdError):
    """Input a user or client gave is not acceptable; the message says how to fix it."""

    code = -32010
    kind = "bad-input"


class Unsupported(GlosmsdError):
    """The server or this platform does not support the request (e.g. MMS switched off)."""

    code = -32011
    kind = "unsupported"


class RpcError(GlosmsdError):
    """A JSON-RPC error with an explicit code (the standard -32700..-32600 range included)."""

    kind = "rpc"

    def __init__(self, code: int, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message, data=data)
        self.rpc_code = code

    def to_rpc(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"code": self.rpc_code, "message": self.message}
        if self.data is not None:
            obj["data"] = self.data
        return obj


# JSON-RPC 2.0 standard codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: Every application error class, for the error tables in the docs.
APPLICATION_ERRORS: tuple[type[GlosmsdError], ...] = (
    GlosmsdError,
    ConfigError,
    ProtocolError,
    LinkClosed,
    AuthFailed,
    StoreError,
    SendFailed,
    NoSmsNumber,
    LimitExceeded,
    NotFound,
    BadInput,
    Unsupported,
)

_BY_CODE: dict[int, type[GlosmsdError]] = {cls.code: cls for cls in reversed(APPLICATION_ERRORS)}


def error_from_rpc(obj: dict[str, Any]) -> GlosmsdError:
    """Rebuild the error a peer reported, so callers can catch it by class."""
    code = obj.get("code")
    message = str(obj.get("message", "error"))
    data = obj.get("data") if isinstance(obj.get("data"), dict) else None
    if isinstance(code, int) and code in _BY_CODE:
        cls = _BY_CODE[code]
        if cls is ProtocolError and data and data.get("kind") == "remote-protocol":
            cls = RemoteProtocolError
        return cls(message, data=data)
    return RpcError(code if isinstance(code, int) else INTERNAL_ERROR, message, data=data)
