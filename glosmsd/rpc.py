"""JSON-RPC 2.0, as plain data: parse, validate, bind, encode; and newline framing.

Used by both the local socket (`ipc`) and the server link (`link`, the reference server).
Nothing here touches a socket, a clock or an event loop: bytes go in, values come out,
and the adapters do the awaiting. Param schemas are described once per method in a
`MethodTable`; the same description validates calls and generates `ipc/openrpc.json`.

This module must never import asyncio, sockets or any adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from glosmsd.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    GlosmsdError,
    RpcError,
    error_from_rpc,
)

DEFAULT_MAX_LINE: Final = 1024 * 1024
_SENTINEL: Final = object()

JsonValue = Any
RequestId = str | int | float | None


# --------------------------------------------------------------------------- framing


@dataclass(frozen=True, slots=True)
class Overflow:
    """A line went past the limit; its bytes were discarded up to the next newline."""

    limit: int


class LineFramer:
    """Split a byte stream into newline-terminated lines with a hard length limit.

    Memory stays bounded by `max_line`: an over-long line is reported once as
    `Overflow` and the rest of it is dropped as it arrives, so a hostile peer cannot
    make us buffer more than the limit.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | Overflow]:
        out: list[bytes | Overflow] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            chunk = data[start:] if nl < 0 else data[start:nl]
            if self._discarding:
                if nl >= 0:
                    self._discarding = False
            elif len(self._buf) + len(chunk) > self.max_line:
                self._buf.clear()
                out.append(Overflow(self.max_line))
                self._discarding = nl < 0
            elif nl >= 0:
                self._buf += chunk
                line = bytes(self._buf).rstrip(b"\r")
                self._buf.clear()
                if line.strip():
                    out.append(line)
            else:
                self._buf += chunk
            if nl < 0:
                return out
            start = nl + 1

    @property
    def pending(self) -> int:
        """Bytes held for an unfinished line."""
        return len(self._buf)


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Request:
    """One well-formed call. `is_notification` calls get no reply."""

    method: str
    params: dict[str, Any] | list[Any] | None
    id: RequestId = None
    is_notification: bool = False


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed line: calls to run and error replies that are already decided.

    `items` keeps the order of the batch; each is a `Request` or a ready reply dict.
    """

    items: tuple[Request | dict[str, Any], ...]
    is_batch: bool


def error_reply(req_id: RequestId, error: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error, "id": req_id}


def result_reply(req_id: RequestId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": req_id}


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _parse_one(obj: Any) -> Request | dict[str, Any]:
    if not isinstance(obj, dict):
        return error_reply(None, _err(INVALID_REQUEST, "Invalid Request: expected an object"))
    req_id = obj.get("id", _SENTINEL)
    has_id = req_id is not _SENTINEL
    if has_id and not _valid_id(req_id):
        return error_reply(
            None, _err(INVALID_REQUEST, "Invalid Request: id must be a string, number or null")
        )
    reply_id: RequestId = req_id if has_id else None  # type: ignore[assignment]
    if obj.get("jsonrpc") != "2.0":
        return error_reply(reply_id, _err(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"'))
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        return error_reply(
            reply_id, _err(INVALID_REQUEST, 'Invalid Request: "method" must be a non-empty string')
        )
    params = obj.get("params")
    if "params" in obj and not isinstance(params, dict | list):
        return error_reply(
            reply_id, _err(INVALID_REQUEST, 'Invalid Request: "params" must be an object or array')
        )
    return Request(method=method, params=params, id=reply_id, is_notification=not has_id)


def parse(line: bytes | str) -> Parsed:
    """Parse one line (a single call or a batch) into calls and ready error replies."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return Parsed((error_reply(None, _err(PARSE_ERROR, "Parse error: not valid JSON")),), False)
    if isinstance(obj, list):
        if not obj:
            return Parsed(
                (error_reply(None, _err(INVALID_REQUEST, "Invalid Request: empty batch")),), False
            )
        return Parsed(tuple(_parse_one(o) for o in obj), True)
    return Parsed((_parse_one(obj),), False)


def encode(obj: Any) -> bytes:
    """One compact JSON line, newline-terminated, non-ASCII kept as UTF-8."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def assemble(parsed: Parsed, replies: Sequence[dict[str, Any] | None]) -> bytes | None:
    """Encode the replies of a parsed line; `None` when nothing is owed (notifications)."""
    kept = [r for r in replies if r is not None]
    if not kept:
        return None
    if parsed.is_batch:
        return encode(kept)
    return encode(kept[0])


def reply_for(req: Request, outcome: Any = None, error: BaseException | None = None) -> dict[str, Any] | None:
    """The reply owed for a finished call: `None` for a notification."""
    if req.is_notification:
        return None
    if error is None:
        return result_reply(req.id, outcome)
    return error_reply(req.id, error_object(error))


def error_object(exc: BaseException) -> dict[str, Any]:
    """Map an exception to a JSON-RPC error object; unknown errors never leak details."""
    if isinstance(exc, GlosmsdError):
        return exc.to_rpc()
    return _err(INTERNAL_ERROR, "Internal error: the daemon logged the details")


def _err(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True, slots=True)
class Param:
    """One named parameter: a JSON Schema fragment and whether it must be present."""

    name: str
    schema: Mapping[str, Any]
    required: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    handler: Callable[..., Any]
    params: tuple[Param, ...] = ()
    summary: str = ""
    result: Mapping[str, Any] = field(default_factory=dict)
    examples: tuple[Mapping[str, Any], ...] = ()

    def params_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {p.name: dict(p.schema) for p in self.params},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }


class MethodTable:
    """The dispatch table: each method's params described once, used to validate and bind."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}
        self._validators: dict[str, Any] = {}

    def add(self, method: Method) -> Method:
        if method.name in self._methods:
            raise ValueError(f"method {method.name!r} registered twice")
        self._methods[method.name] = method
        return method

    def method(
        self,
        name: str,
        *params: Param,
        summary: str = "",
        result: Mapping[str, Any] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of `add`."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add(Method(name, fn, tuple(params), summary or (fn.__doc__ or "").strip(), result or {}))
            return fn

        return register

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self) -> Iterator[Method]:
        return iter(sorted(self._methods.values(), key=lambda m: m.name))

    def get(self, name: str) -> Method | None:
        return self._methods.get(name)

    def bind(self, req: Request) -> tuple[Method, dict[str, Any]]:
        """Find the method and turn its params into validated keyword arguments.

        Raises `RpcError` -32601 for an unknown method and -32602 for bad params, with a
        message that names the parameter and what was expected.
        """
        method = self._methods.get(req.method)
        if method is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {req.method!r}")
        kwargs = _by_name(method, req.params)
        errors = sorted(self._validator(method).iter_errors(kwargs), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.absolute_path)
            where = f"param {where!r}: " if where else ""
            raise RpcError(
                INVALID_PARAMS,
                f"Invalid params for {method.name}: {where}{first.message}",
                data={"expected": method.params_schema()},
            )
        return method, kwargs

    def _validator(self, method: Method) -> Any:
        v = self._validators.get(method.name)
        if v is None:
            # jsonschema is imported here, not at module top, so the CLI never pays for it.
            from jsonschema import Draft202012Validator

            v = Draft202012Validator(method.params_schema())
            self._validators[method.name] = v
        return v


def _by_name(method: Method, params: dict[str, Any] | list[Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, dict):
        return dict(params)
    if len(params) > len(method.params):
        raise RpcError(
            INVALID_PARAMS,
            f"Invalid params for {method.name}: takes at most {len(method.params)} "
            f"positional params, got {len(params)}",
        )
    return {p.name: v for p, v in zip(method.params, params, strict=False)}


# --------------------------------------------------------------------------- client side


class IdSource:
    """Monotonic integer ids for outgoing requests."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self) -> int:
        self._next += 1
        return self._next


def request(method: str, params: dict[str, Any] | list[Any] | None, req_id: RequestId) -> dict[str, Any]:
    obj: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": req_id}
    if params is not None:
        obj["params"] = params
    return obj


def notification(method: str, params: dict[str, Any] | list[Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        obj["params"] = params
    return obj


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply from a peer: exactly one of `result` and `error` is meaningful."""

    id: RequestId
    result: Any = None
    error: dict[str, Any] | None = None

    def unwrap(self) -> Any:
        """The result, or the peer's error raised as its class from the error tree."""
        if self.error is not None:
            raise error_from_rpc(self.error)
        return self.result


def classify(obj: Any) -> Reply | Request:
    """Tell a reply from a call (a peer may send both on one connection).

    Raises `RpcError` -32600 when the object is neither.
    """
    if isinstance(obj, dict) and obj.get("jsonrpc") == "2.0":
        if "method" in obj:
            parsed = _parse_one(obj)
            if isinstance(parsed, Request):
                return parsed
        elif "id" in obj and _valid_id(obj["id"]):
            err = obj.get("error")
            if "result" in obj and err is None:
                return Reply(obj["id"], result=obj["result"])
            if isinstance(err, dict) and isinstance(err.get("code"), int):
                return Reply(obj["id"], error=err)
    raise RpcError(INVALID_REQUEST, "Invalid message: neither a JSON-RPC call nor a reply")
