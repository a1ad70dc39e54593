"""The one error tree of glosmsd.

Every error a user or a client can see is a `GlosmsdError`. Each class carries the
JSON-RPC code it maps to, so the local socket and the server link report it the same
way and nothing else leaks a traceback to a client. Messages say what happened and what
to do. This module must never import anything from the rest of the package.

The tree (code, `data.kind`; a subclass without a code of its own shares its parent's
and is told apart by its kind; tests/core/test_errors.py checks this drawing is whole)::

    GlosmsdError                -32000 error
    ├── ConfigError             -32001 config
    ├── ProtocolError           -32002 protocol
    │   ├── LocalProtocolError         local-protocol      we broke it
    │   └── RemoteProtocolError        remote-protocol     the peer broke it
    │       └── PoisonEvent            poison-event        one server event we cannot use
    ├── LinkClosed              -32003 link-closed         the server (or daemon) is away
    │   ├── AuthFailed          -32004 auth-failed         the token was refused
    │   ├── ServerUnreachable          server-unreachable  no connection to the server opened
    │   │   ├── BadServerUrl           bad-server-url      not a URL it can connect to
    │   │   ├── NameNotResolved        name-not-resolved   the host name does not resolve
    │   │   ├── ServerRefused          server-refused      nothing listens at that port
    │   │   ├── ServerTimeout          server-timeout      no answer in time
    │   │   ├── TlsFailed              tls-failed          the TLS handshake or certificate
    │   │   ├── HttpStatus             http-status         an HTTP status, not a WebSocket
    │   │   └── NotWebSocket           not-websocket       an answer, but not a WebSocket
    │   ├── DaemonNotRunning           daemon-not-running  nothing answers on the socket
    │   ├── SocketUnusable             socket-unusable     something there we may not use
    │   │   └── SocketNotOurs          socket-not-ours     another user's socket or folder
    │   └── ConnectionLost             connection-lost     the daemon went away mid-call
    ├── StoreError              -32005 store
    │   ├── SchemaTooNew               schema-too-new
    │   ├── StoreLocked                store-locked        another program holds a lock
    │   ├── StoreReadOnly              store-read-only     the file or its folder is
    │   │                                                  read-only
    │   ├── DiskFull                   disk-full           no space left; nothing lost
    │   └── StoreDamaged               store-damaged       not a database, or corrupt
    ├── SendFailed              -32006 send-failed
    │   └── NoSmsNumber         -32007 no-sms-number
    ├── LimitExceeded           -32008 limit-exceeded
    │   └── SubscriberDropped          subscriber-dropped  an event reader fell behind
    ├── NotFound                -32009 not-found
    ├── BadInput                -32010 bad-input
    │   ├── InvalidNumber              invalid-number      not a phone number
    │   └── AmbiguousRecipient         ambiguous-recipient several contacts or numbers
    ├── Unsupported             -32011 unsupported
    ├── DaemonFailed                   daemon-failed       a task it cannot live without ended
    └── RpcError                (its own code) rpc         JSON-RPC's -32700..-32600 and
                                                           codes this version does not know

The client-side classes (`DaemonNotRunning`, `SocketUnusable`, `SocketNotOurs`,
`ConnectionLost`) are raised by `glosmsd.client.ipc` and never cross the socket;
`ServerUnreachable` and its subclasses (and `AuthFailed` for an HTTP 401 at the
handshake) come from `glosmsd.daemon.linkerrors.connect_error`, the one mapping of
websockets' and the OS's connect failures, for the link, `glosmsd doctor` and `glosmsd
setup`; they never cross the socket either (the daemon reports a status line).
`SubscriberDropped` is raised to an in-process event reader by `glosmsd.daemon.hub`;
`DaemonFailed` ends `glosmsd.daemon.root.Daemon.run` (the entry point prints it).
"""

# The class names are the public vocabulary of STYLE.md §3 (LinkClosed, SchemaTooNew, ...);
# an "Error" suffix on each would only make them longer.
# ruff: noqa: N818

from __future__ import annotations

TYPE_CHECKING = False  # typing costs `glosms` ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
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
        # `kind` goes last so caller data can never relabel the class a peer rebuilds.
        data: dict[str, Any] = {**(self.data or {}), "kind": self.kind}
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


class PoisonEvent(RemoteProtocolError):
    """One event from the server cannot be used or stored (a wrong shape, a field out of
    bounds, a value the store refuses). It is logged, skipped and counted in the link's
    status, and never holds back the events after it: a batch that cannot be applied
    names the event that stopped it here, so the link can drop that one and go on.

    `seq` and `event_kind` name the event (None when it had none); `index` is its place
    in the batch it came in (how a snapshot's events, which share one seq, are told
    apart); all three travel in `data`.
    """

    kind = "poison-event"

    def __init__(
        self,
        message: str,
        *,
        seq: int | None = None,
        event_kind: str | None = None,
        index: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        named = {"seq": seq, "event": event_kind, "index": index}
        merged = {**(data or {}), **{k: v for k, v in named.items() if v is not None}}
        super().__init__(message, data=merged or None)

    @property
    def seq(self) -> int | None:
        value = (self.data or {}).get("seq")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def event_kind(self) -> str | None:
        value = (self.data or {}).get("event")
        return value if isinstance(value, str) else None

    @property
    def index(self) -> int | None:
        value = (self.data or {}).get("index")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class LinkClosed(GlosmsdError):
    """The link to the server is down; the operation may be retried later.

    `detail` is the cause in its own words (the OS's, TLS's, the HTTP status line) where
    one was given in `data`, else the message.
    """

    code = -32003
    kind = "link-closed"

    @property
    def detail(self) -> str:
        value = (self.data or {}).get("detail")
        return value if isinstance(value, str) else self.message


class AuthFailed(LinkClosed):
    """The server refused our credentials; retrying will not help."""

    code = -32004
    kind = "auth-failed"


class ServerUnreachable(LinkClosed):
    """A connection to the server could not be opened (the network, a route, a proxy)."""

    kind = "server-unreachable"


class BadServerUrl(ServerUnreachable):
    """The server URL is not one a WebSocket can be opened to (scheme, port, host)."""

    kind = "bad-server-url"


class NameNotResolved(ServerUnreachable):
    """The server's host name does not resolve."""

    kind = "name-not-resolved"


class ServerRefused(ServerUnreachable):
    """The server's host refused the connection: nothing listens at that port."""

    kind = "server-refused"


class ServerTimeout(ServerUnreachable):
    """The server did not answer the connection or its handshake in time."""

    kind = "server-timeout"


class TlsFailed(ServerUnreachable):
    """The TLS handshake failed: an untrusted certificate, or TLS spoken to a plain port."""

    kind = "tls-failed"


class HttpStatus(ServerUnreachable):
    """The server answered the WebSocket handshake with an HTTP status; `status` says which."""

    kind = "http-status"

    @property
    def status(self) -> int | None:
        value = (self.data or {}).get("status")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class NotWebSocket(ServerUnreachable):
    """Something answered, but not with a WebSocket handshake (a wrong port, ws:// to TLS)."""

    kind = "not-websocket"


class DaemonNotRunning(LinkClosed):
    """Nothing answers on the daemon's socket (no socket, or a stale one)."""

    kind = "daemon-not-running"


class SocketUnusable(LinkClosed):
    """Something is at the socket path, but this user may not use it."""

    kind = "socket-unusable"


class SocketNotOurs(SocketUnusable):
    """The socket, its folder or the process behind it belongs to another user.

    The client refuses before it sends a byte: whatever it would send (a message, a
    file) would go to that user.
    """

    kind = "socket-not-ours"


class ConnectionLost(LinkClosed):
    """The daemon closed or reset the connection in the middle of a call."""

    kind = "connection-lost"


class StoreError(GlosmsdError):
    """The local database failed."""

    code = -32005
    kind = "store"


class SchemaTooNew(StoreError):
    """The database was written by a newer glosmsd; it is left untouched."""

    kind = "schema-too-new"


class StoreLocked(StoreError):
    """Another program holds a lock on the database: retry once it lets go."""

    kind = "store-locked"


class StoreReadOnly(StoreError):
    """The database (or its folder) cannot be written."""

    kind = "store-read-only"


class DiskFull(StoreError):
    """The disk holding the database is full; the change was not made, nothing is lost."""

    kind = "disk-full"


class StoreDamaged(StoreError):
    """The file is not a database or is corrupt: the only store error to move aside."""

    kind = "store-damaged"


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


class SubscriberDropped(LimitExceeded):
    """An event subscriber fell too far behind and was cut off (it stopped reading)."""

    kind = "subscriber-dropped"


class NotFound(GlosmsdError):
    """The named message, conversation, contact or file does not exist (for this user)."""

    code = -32009
    kind = "not-found"


class BadInput(GlosmsdError):
    """Input a user or client gave is not acceptable; the message says how to fix it."""

    code = -32010
    kind = "bad-input"


class InvalidNumber(BadInput):
    """What was given as a phone number is not one; the message shows the form to use."""

    kind = "invalid-number"


class AmbiguousRecipient(BadInput):
    """A name fits several contacts, or a contact has several numbers.

    `data` says which: `{"contact": NAME, "choices": [{"pick", "label", "number"}, ...]}`
    for one contact's numbers (send again with `pick`), or `{"contacts": [CONTACT, ...]}`
    for several contacts (use the full name or a number).
    """

    kind = "ambiguous-recipient"


class Unsupported(GlosmsdError):
    """The server or this platform does not support the request (e.g. MMS switched off)."""

    code = -32011
    kind = "unsupported"


class DaemonFailed(GlosmsdError):
    """A task the daemon cannot live without (the link, the outbox) ended on its own; the
    daemon stopped cleanly and says which (the log has the traceback)."""

    kind = "daemon-failed"


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

# Subclasses that share their parent's code are told apart by `data.kind`; the list is
# explicit so an error class defined elsewhere cannot change how replies are decoded.
_SHARED_CODE: tuple[type[GlosmsdError], ...] = (
    LocalProtocolError,
    RemoteProtocolError,
    PoisonEvent,
    ServerUnreachable,
    BadServerUrl,
    NameNotResolved,
    ServerRefused,
    ServerTimeout,
    TlsFailed,
    HttpStatus,
    NotWebSocket,
    DaemonNotRunning,
    SocketUnusable,
    SocketNotOurs,
    ConnectionLost,
    SchemaTooNew,
    StoreLocked,
    StoreReadOnly,
    DiskFull,
    StoreDamaged,
    SubscriberDropped,
    InvalidNumber,
    AmbiguousRecipient,
    DaemonFailed,
)
#: Every class of the tree but `RpcError`, in the order of the drawing's codes.
ALL_ERRORS: tuple[type[GlosmsdError], ...] = (*APPLICATION_ERRORS, *_SHARED_CODE)
_BY_KIND: dict[str, type[GlosmsdError]] = {cls.kind: cls for cls in ALL_ERRORS}


def error_from_rpc(obj: dict[str, Any]) -> GlosmsdError:
    """Rebuild the error a peer reported, so callers can catch it by class.

    The result's `data` is what the peer's error carried, without the `kind` label that
    `to_rpc` adds, so `error_from_rpc(e.to_rpc())` is equal to `e` field by field.
    """
    code = obj.get("code")
    message = obj.get("message", "error")
    message = message if isinstance(message, str) else str(message)
    raw = obj.get("data")
    data = dict(raw) if isinstance(raw, dict) else None
    # bool is an int subclass, but `true` is not a JSON-RPC error code.
    if not isinstance(code, int) or isinstance(code, bool):
        return RpcError(INTERNAL_ERROR, message, data=data)
    cls = _BY_CODE.get(code)
    if cls is None:
        return RpcError(code, message, data=data)
    if data is not None:
        kind = data.pop("kind", None)
        sub = _BY_KIND.get(kind) if isinstance(kind, str) else None
        if sub is not None and sub.code == code:
            cls = sub
    return cls(message, data=data or None)
