"""JSON-RPC 2.0, as plain data: parse, validate, bind, encode; and newline framing.

Used by both the local socket (`ipc`) and the server link (`link`, the reference server).
Nothing here touches a socket, a clock or an event loop: bytes go in, values come out,
and the adapters do the awaiting. Param schemas are described once per method in a
`MethodTable`; the same description validates calls and generates `ipc/openrpc.json`.

This module must never import asyncio, sockets or any adapter.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from glosmsd.core.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    GlosmsdError,
    RpcError,
    error_from_rpc,
)

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

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
        if max_line < 1:
            raise ValueError(f"max_line must be at least 1 byte, got {max_line}")
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | Overflow]:
        """The complete lines in `data` (blank ones skipped, `\r\n` accepted), in order.

        The `\r` of a `\r\n` counts towards the limit: the limit is on what we buffer.
        """
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
    """A reply carrying `error`; `req_id` is None when the request's id could not be read."""
    return {"jsonrpc": "2.0", "error": error, "id": req_id}


def result_reply(req_id: RequestId, result: Any) -> dict[str, Any]:
    """A successful reply."""
    return {"jsonrpc": "2.0", "result": result, "id": req_id}


def _valid_id(value: Any) -> bool:
    # bool is an int subclass but not a JSON number; NaN and infinities cannot be echoed
    # back as JSON, so the caller could never match the reply to its request.
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _parse_one(obj: Any) -> Request | dict[str, Any]:
    if not isinstance(obj, dict):
        return error_reply(None, _err(INVALID_REQUEST, "Invalid Request: expected an object"))
    req_id = obj.get("id", _SENTINEL)
    has_id = req_id is not _SENTINEL
    if has_id and not _valid_id(req_id):
        return error_reply(
            None, _err(INVALID_REQUEST, "Invalid Request: id must be a string, number or null")
        )
    reply_id: RequestId = req_id if has_id else None
    if obj.get("jsonrpc") != "2.0":
        return error_reply(
            reply_id, _err(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
        )
    method = obj.get("method")
    # Any string is a valid method name per the spec; an empty or unknown one is -32601.
    if not isinstance(method, str):
        return error_reply(
            reply_id, _err(INVALID_REQUEST, 'Invalid Request: "method" must be a string')
        )
    params = obj.get("params")
    if "params" in obj and not isinstance(params, dict | list):
        return error_reply(
            reply_id, _err(INVALID_REQUEST, 'Invalid Request: "params" must be an object or array')
        )
    return Request(method=method, params=params, id=reply_id, is_notification=not has_id)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit in a double")
    return value


# One decoder and two encoders for the life of the process: json.loads/json.dumps with
# non-default options build a new (JSONDecoder|JSONEncoder) on every call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_ASCII_ENCODER: Final = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def parse(line: bytes | str) -> Parsed:
    """Parse one line (a single call or a batch) into calls and ready error replies.

    Never raises: whatever arrives, the caller gets something it can reply with.
    """
    try:
        # Strict UTF-8: json.loads would otherwise guess UTF-16/32 from the first bytes,
        # which a newline-framed stream can never carry.
        text = line if isinstance(line, str) else bytes(line).decode("utf-8")
        # Python's json accepts NaN/Infinity and turns 1e400 into inf; none of them is
        # JSON, and none could be echoed back in a reply.
        obj = _DECODER.decode(text)
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
    """One compact JSON line, newline-terminated, non-ASCII kept as UTF-8.

    Raises `ValueError` or `TypeError` for what JSON cannot carry (NaN, infinities,
    non-JSON types), so nothing invalid ever reaches the wire.
    """
    try:
        return _ENCODER.encode(obj).encode() + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate (legal in a JSON string escape) has no UTF-8 form; escaping
        # everything to ASCII keeps it intact and the line still valid.
        return _ASCII_ENCODER.encode(obj).encode() + b"\n"


def assemble(parsed: Parsed, replies: Sequence[dict[str, Any] | None]) -> bytes | None:
    """Encode the replies of a parsed line; `None` when nothing is owed (notifications).

    A reply that cannot be encoded (a handler returned NaN or a non-JSON object) is
    replaced by a -32603 error for the same id instead of failing the whole line.
    """
    kept = [r for r in replies if r is not None]
    if not kept:
        return None
    try:
        return encode(kept if parsed.is_batch else kept[0])
    except (TypeError, ValueError, RecursionError):
        safe = [_encodable(r) for r in kept]
        return encode(safe if parsed.is_batch else safe[0])


def _encodable(reply: dict[str, Any]) -> dict[str, Any]:
    try:
        encode(reply)
    except (TypeError, ValueError, RecursionError):
        req_id = reply.get("id")
        return error_reply(
            req_id if _valid_id(req_id) else None,
            _err(INTERNAL_ERROR, "Internal error: the result could not be encoded as JSON"),
        )
    return reply


def reply_for(
    req: Request, outcome: Any = None, error: BaseException | None = None
) -> dict[str, Any] | None:
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
    # Every message starts with the spec's own wording ("Parse error", "Invalid Request",
    # ...) so a client matching on it still works; what follows says what to fix.
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
        self._validators: dict[str, Validator] = {}
        self._quick: dict[str, Check] = {}

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
            doc = summary or (fn.__doc__ or "").strip()
            self.add(Method(name, fn, tuple(params), doc, result or {}))
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
        quick = self._quick.get(method.name)
        if quick is None:
            quick = self._quick[method.name] = quick_check(method.params_schema()) or _unproven
        if quick(kwargs):
            return method, kwargs
        # Not proven valid: jsonschema decides, and words the error.
        order = {p.name: i for i, p in enumerate(method.params)}

        def rank(err: ValidationError) -> tuple[int, int, list[str]]:
            # Report the first param in declared order; missing/unknown names (errors at
            # the top level) sort by the name they mention. Paths are compared as text
            # because a path mixes str keys and int indexes.
            path = [str(p) for p in err.absolute_path]
            name = path[0] if path else _named_in(err, order)
            return (order.get(name, len(order)), len(path), path)

        errors = sorted(self._validator(method).iter_errors(kwargs), key=rank)
        if errors:
            raise RpcError(
                INVALID_PARAMS,
                f"Invalid params for {method.name}: {_describe(errors[0], order)}",
                data={"expected": method.params_schema()},
            )
        return method, kwargs

    def _validator(self, method: Method) -> Validator:
        v = self._validators.get(method.name)
        if v is None:
            # jsonschema is imported here, not at module top, so the CLI never pays for it.
            from jsonschema import Draft202012Validator

            v = Draft202012Validator(method.params_schema())
            self._validators[method.name] = v
        return v


Check = Callable[[Any], bool]

# Keywords that never reject anything.
_ANNOTATIONS: Final = frozenset({"description", "title", "default", "examples", "$comment"})


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_TYPES: Final[Mapping[str, Check]] = {
    "string": lambda v: isinstance(v, str),
    # jsonschema also takes 1.0 as an integer; this check leaves floats to it.
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _unproven(_value: Any) -> bool:
    return False


def _accept(_value: Any) -> bool:
    return True


def quick_check(schema: Any) -> Check | None:
    """A plain-Python check for the few JSON Schema keywords method params use, or None
    when `schema` uses any other.

    jsonschema took ~25 us a call, half of a pipelined socket call. The check only ever
    answers True for what jsonschema accepts too; False is not a verdict but "ask
    jsonschema", which decides and words the error, so errors read exactly as before.
    """
    if schema is True:
        return _accept
    if not isinstance(schema, Mapping):
        return None
    checks: list[Check] = []
    for key, value in schema.items():
        check: Check | None = _accept if key in _ANNOTATIONS else None
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if isinstance(names, list) and names and all(n in _TYPES for n in names):
                tests = tuple(_TYPES[n] for n in names)
                check = tests[0] if len(tests) == 1 else _any_of(tests)
        elif key in _BOUNDS and isinstance(value, int | float) and not isinstance(value, bool):
            check = _BOUNDS[key](value)
        elif key == "pattern" and isinstance(value, str):
            check = _pattern(re.compile(value))
        elif key == "items":
            inner = quick_check(value)
            check = None if inner is None else _items(inner)
        elif key == "properties" and isinstance(value, Mapping):
            props = {name: quick_check(sub) for name, sub in value.items()}
            if all(c is not None for c in props.values()):
                check = _properties({k: c for k, c in props.items() if c is not None})
        elif key == "required" and isinstance(value, list):
            check = _required(tuple(value))
        elif key == "additionalProperties" and value is False:
            known = schema.get("properties", {})
            check = _closed(frozenset(known)) if isinstance(known, Mapping) else None
        if check is None:
            return None
        if check is not _accept:
            checks.append(check)
    return _all_of(tuple(checks))


def _any_of(tests: tuple[Check, ...]) -> Check:
    return lambda v: any(t(v) for t in tests)


def _all_of(checks: tuple[Check, ...]) -> Check:
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]

    def check(v: Any) -> bool:
        # A loop, not all(genexpr): this runs on every call and the generator cost more
        # than the checks.
        for c in checks:  # noqa: SIM110
            if not c(v):
                return False
        return True

    return check


def _min_length(n: float) -> Check:
    return lambda v: not isinstance(v, str) or len(v) >= n


def _max_length(n: float) -> Check:
    return lambda v: not isinstance(v, str) or len(v) <= n


def _minimum(n: float) -> Check:
    return lambda v: not _is_number(v) or v >= n


def _maximum(n: float) -> Check:
    return lambda v: not _is_number(v) or v <= n


def _min_items(n: float) -> Check:
    return lambda v: not isinstance(v, list) or len(v) >= n


def _max_items(n: float) -> Check:
    return lambda v: not isinstance(v, list) or len(v) <= n


_BOUNDS: Final[Mapping[str, Callable[[float], Check]]] = {
    "minLength": _min_length,
    "maxLength": _max_length,
    "minimum": _minimum,
    "maximum": _maximum,
    "minItems": _min_items,
    "maxItems": _max_items,
}


def _pattern(regex: re.Pattern[str]) -> Check:
    # jsonschema searches (the pattern is not anchored unless it says so).
    return lambda v: not isinstance(v, str) or regex.search(v) is not None


def _items(inner: Check) -> Check:
    return lambda v: not isinstance(v, list) or all(inner(x) for x in v)


def _properties(props: Mapping[str, Check]) -> Check:
    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for name, value in v.items():
            sub = props.get(name)
            if sub is not None and not sub(value):
                return False
        return True

    return check


def _required(names: tuple[str, ...]) -> Check:
    return lambda v: not isinstance(v, dict) or all(n in v for n in names)


def _closed(known: frozenset[str]) -> Check:
    return lambda v: not isinstance(v, dict) or known.issuperset(v)


def _named_in(err: ValidationError, names: Mapping[str, int]) -> str:
    """The param a top-level schema error is about ("required", "additionalProperties")."""
    instance, wanted = err.instance, err.validator_value
    if err.validator == "required" and isinstance(instance, dict) and isinstance(wanted, list):
        missing = [n for n in wanted if n not in instance]
        return min(missing, key=lambda n: names.get(n, len(names)), default="")
    if err.validator == "additionalProperties" and isinstance(instance, dict):
        extra = sorted(k for k in instance if k not in names)
        return extra[0] if extra else ""
    return ""


def _describe(err: ValidationError, names: Mapping[str, int]) -> str:
    path = [str(p) for p in err.absolute_path]
    if path:
        return f"param {'.'.join(path)!r}: {_clip(err.message)}"
    name = _named_in(err, names)
    if err.validator == "required" and name:
        return f"param {name!r} is required"
    if err.validator == "additionalProperties" and name:
        known = ", ".join(repr(n) for n in names) or "none"
        return f"unknown param {name!r} (known: {known})"
    return _clip(err.message)


def _clip(text: str, limit: int = 200) -> str:
    # jsonschema quotes the offending value; a megabyte of it helps nobody in a message.
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _by_name(method: Method, params: dict[str, Any] | list[Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, dict):
        return dict(params)
    if len(params) > len(method.params):
        names = ", ".join(p.name for p in method.params) or "none"
        raise RpcError(
            INVALID_PARAMS,
            f"Invalid params for {method.name}: takes at most {len(method.params)} "
            f"positional params ({names}), got {len(params)}",
            data={"expected": method.params_schema()},
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


def request(
    method: str, params: dict[str, Any] | list[Any] | None, req_id: RequestId
) -> dict[str, Any]:
    """A call that expects a reply; `params=None` leaves the member out."""
    obj: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": req_id}
    if params is not None:
        obj["params"] = params
    return obj


def notification(method: str, params: dict[str, Any] | list[Any] | None = None) -> dict[str, Any]:
    """A call that gets no reply."""
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
        # A reply has exactly one of result/error; `{"result": 1, "error": null}` is not one.
        elif "id" in obj and _valid_id(obj["id"]) and ("result" in obj) != ("error" in obj):
            if "result" in obj:
                return Reply(obj["id"], result=obj["result"])
            err = obj["error"]
            if isinstance(err, dict) and _valid_error(err):
                return Reply(obj["id"], error=err)
    raise RpcError(INVALID_REQUEST, "Invalid message: neither a JSON-RPC call nor a reply")


def _valid_error(err: dict[str, Any]) -> bool:
    code = err.get("code")
    return (
        isinstance(code, int) and not isinstance(code, bool) and isinstance(err.get("message"), str)
    )
