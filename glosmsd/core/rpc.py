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

from glosmsd.core.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    GlosmsdError,
    LimitExceeded,
    RpcError,
    error_from_rpc,
)
from glosmsd.core.record import field, record

TYPE_CHECKING = False  # typing costs `glosms` ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Any, Final

    from jsonschema.exceptions import ValidationError

    JsonValue = Any

DEFAULT_MAX_LINE: Final = 1024 * 1024
#: The largest integer every JSON parser keeps exact (I-JSON, RFC 7493): the bound of the
#: integer params that have no smaller one of their own.
MAX_SAFE_INT: Final = 2**53 - 1
_SENTINEL: Final = object()

RequestId = str | int | float | None


# --------------------------------------------------------------------------- framing


@record
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


@record
class Request:
    """One well-formed call. `is_notification` calls get no reply."""

    method: str
    params: dict[str, Any] | list[Any] | None
    id: RequestId = None
    is_notification: bool = False
    #: The line had a \uD800-\uDFFF escape, so a param may hold a lone surrogate (raw
    #: bytes cannot: the line is strict UTF-8); `MethodTable.bind` then looks.
    maybe_surrogates: bool = False


@record
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


def _parse_one(obj: Any, maybe_surrogates: bool = False) -> Request | dict[str, Any]:
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
    return Request(
        method=method,
        params=params,
        id=reply_id,
        is_notification=not has_id,
        maybe_surrogates=maybe_surrogates and params is not None,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit in a double")
    return value


# One decoder and two encoders for the life of the process: json.loads/json.dumps with
# non-default options build a new (JSONDecoder|JSONEncoder) on every call.
#: Strict JSON (no NaN/Infinity, no number past a double): also `fastjson.loads`'s second look.
STRICT_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_ASCII_ENCODER: Final = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))
# A surrogate escape, lone or paired; an escaped backslash before a `u` also matches, which
# only costs a look at the params.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def parse(line: bytes | str, *, max_batch: int | None = None) -> Parsed:
    """Parse one line (a single call or a batch) into calls and ready error replies.

    A batch of more than `max_batch` calls is one -32600 error (`data.limit`), none of
    its calls run: the caller need not do work it would refuse to answer in full.
    Never raises: whatever arrives, the caller gets something it can reply with.
    """
    try:
        # Strict UTF-8: json.loads would otherwise guess UTF-16/32 from the first bytes,
        # which a newline-framed stream can never carry.
        text = line if isinstance(line, str) else bytes(line).decode("utf-8")
        # Python's json accepts NaN/Infinity and turns 1e400 into inf; none of them is
        # JSON, and none could be echoed back in a reply.
        obj = STRICT_DECODER.decode(text)
    except (ValueError, RecursionError):
        return Parsed((error_reply(None, _err(PARSE_ERROR, "Parse error: not valid JSON")),), False)
    suspect = _SURROGATE_ESCAPE.search(text) is not None
    if isinstance(obj, list):
        if not obj:
            return Parsed(
                (error_reply(None, _err(INVALID_REQUEST, "Invalid Request: empty batch")),), False
            )
        if max_batch is not None and len(obj) > max_batch:
            err = _err(
                INVALID_REQUEST,
                f"Invalid Request: a batch holds at most {max_batch} calls, this one has "
                f"{len(obj)}; none of them ran. Split it into smaller batches.",
            )
            err["data"] = {"limit": max_batch}
            return Parsed((error_reply(None, err),), False)
        return Parsed(tuple(_parse_one(o, suspect) for o in obj), True)
    return Parsed((_parse_one(obj, suspect),), False)


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
    out = Replies(parsed)
    for reply in replies:
        out.add(reply)
    return out.encode()


class Replies:
    """The replies owed for one parsed line, encoded as they come in, within a byte budget.

    A batch's replies are the one thing a small line can make large: one 49-byte
    `rpc.discover` call is answered with 48 KB. Once the encoded replies pass `budget`
    bytes, `full` is true: the caller runs none of the batch's remaining calls and
    answers each with `not_run`, an error that says so, so the client knows exactly which
    calls to send again. What was run is always answered, so a line's replies stay under
    `budget` plus one reply.
    """

    __slots__ = ("_batch", "_parts", "budget", "size")

    def __init__(self, parsed: Parsed, budget: int | None = None) -> None:
        self._batch = parsed.is_batch
        self._parts: list[bytes] = []
        self.budget = budget
        self.size = 0

    @property
    def full(self) -> bool:
        return self.budget is not None and self.size > self.budget

    def add(self, reply: dict[str, Any] | None) -> None:
        if reply is None:
            return
        try:
            data = encode(reply)
        except (TypeError, ValueError, RecursionError):
            data = encode(_encodable(reply))
        self._parts.append(data[:-1])
        self.size += len(data)

    def not_run(self, req: Request) -> dict[str, Any] | None:
        """The reply for a call of this batch that was not run because it is `full`."""
        err = LimitExceeded(
            f"Not run: this batch's replies passed {self.budget:,} bytes before this call. "
            "Send it again, in a smaller batch.",
            data={"limit": self.budget},
        )
        return reply_for(req, error=err)

    def encode(self) -> bytes | None:
        """The line to send: one reply, or the batch's array; None when nothing is owed."""
        if not self._parts:
            return None
        if self._batch:
            return b"[" + b",".join(self._parts) + b"]\n"
        return self._parts[0] + b"\n"


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


@record
class Param:
    """One named parameter: a JSON Schema fragment and whether it must be present."""

    name: str
    schema: Mapping[str, Any]
    required: bool = True
    description: str = ""


@record
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
        self._checks: dict[str, _ParamsCheck] = {}

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
        if req.maybe_surrogates:
            where = _lone_surrogate(kwargs, [])
            if where is not None:
                raise _invalid(method, f"{where} holds a {_SURROGATE_WORDS}")
        if not kwargs and not any(p.required for p in method.params):
            # Nothing given, nothing required: valid whatever the schema (so a daemon
            # that is only asked `status` never loads fastjsonschema, issue 16).
            return method, kwargs
        check = self._checks.get(method.name)
        if check is None:
            check = self._checks[method.name] = _ParamsCheck(method.params_schema())
        problem = check(kwargs)
        if problem is not None:
            raise _invalid(
                method, _describe(problem, {p.name: i for i, p in enumerate(method.params)})
            )
        return method, kwargs


_SURROGATE_WORDS: Final = (
    "lone surrogate (a \\uD800-\\uDFFF escape without its pair), which is not Unicode "
    "text: send the character itself, or both halves of its pair"
)


def _invalid(method: Method, what: str) -> RpcError:
    return RpcError(
        INVALID_PARAMS,
        f"Invalid params for {method.name}: {what}",
        data={"expected": method.params_schema()},
    )


def _lone_surrogate(value: Any, path: list[str]) -> str | None:
    """Where in `value` a string holds a lone surrogate ("param 'a.0'"), if anywhere."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"param {'.'.join(path)!r}" if path else "a param name"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if _lone_surrogate(key, []) is not None:
                return f"a param name under {'.'.join(path)!r}" if path else "a param name"
            found = _lone_surrogate(item, [*path, str(key)])
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _lone_surrogate(item, [*path, str(i)])
            if found is not None:
                return found
    return None


@record
class _Problem:
    """Why params were refused: the path to the value and a sentence about it."""

    path: tuple[str, ...]
    message: str
    validator: str = ""
    instance: Any = None
    wanted: Any = None


class _ParamsCheck:
    """Validates one method's params: a compiled validator decides, jsonschema words.

    fastjsonschema turns the schema into Python code once (about 1 us a call, where
    jsonschema takes 13-27 us); only a refusal pays for jsonschema, which explains the
    first error as clients have always read it. Both are held to one rule JSON Schema
    does not have: an integer is written without a fraction or an exponent. JSON Schema
    counts 1.0 and 1e20 as integers, but the handlers take Python ints (SQLite binds,
    `str` methods, list slices), so a float reaching them was a -32603.

    The explanation is the error jsonschema reports first in declared param order, and
    only that param is handed to jsonschema: each param's own compiled check finds it
    (explaining every param of a refused call was a fifth of the server's event loop
    under the soak's fuzzer, and rebuilding a jsonschema validator per refusal a fifth
    of that). A schema this shortcut does not fit (`$ref`, open objects) is explained
    whole, as before.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        import fastjsonschema  # the CLI imports this module and never validates

        self.schema = schema
        # use_default=False: a `default` in a schema documents; it must not add params.
        self._compiled = fastjsonschema.compile(schema, use_default=False)
        self._floats = _float_finder(schema)
        self._error = fastjsonschema.JsonSchemaValueException
        self._whole: Any = None
        props = schema.get("properties")
        #: Whether a refusal may be explained one param at a time (see the class doc).
        self._by_param = (
            isinstance(props, dict)
            and schema.get("additionalProperties") is False
            and "$ref" not in json.dumps(schema)
        )
        # Built at the first refusal, as jsonschema is (most tables never refuse a call).
        self._each: dict[str, tuple[Callable[[Any], Any], FloatFinder | None]] = {}
        self._one: dict[str, Any] = {}

    def __call__(self, params: dict[str, Any]) -> _Problem | None:
        try:
            self._compiled(params)
        except self._error as exc:
            return self._explain(params) or _Problem(
                tuple(str(p) for p in (exc.path or [])[1:]), _clip(exc.message)
            )
        if self._floats is not None:
            path = self._floats(params, ())
            if path is not None:
                return self._explain(params) or _Problem(path, "is not an integer")
        return None

    def _explain(self, params: dict[str, Any]) -> _Problem | None:
        if not self._by_param:
            return self._explain_whole(params)
        if not self._each:
            import fastjsonschema

            self._each = {
                name: (fastjsonschema.compile(sub, use_default=False), _float_finder(sub))
                for name, sub in self.schema["properties"].items()
            }
        required = self.schema.get("required", [])
        for name, (check, floats) in self._each.items():
            if name not in params:
                if name in required:
                    return _Problem(
                        (), f"{name!r} is a required property", "required", params, required
                    )
                continue
            value = params[name]
            try:
                check(value)
            except self._error:
                pass
            else:
                if floats is None or floats(value, ()) is None:
                    continue
            problem = self._explain_one(name, value)
            if problem is not None:
                return problem
        return self._explain_whole(params)  # unknown params, or the checks disagree

    def _explain_one(self, name: str, value: Any) -> _Problem | None:
        """jsonschema's first error for one param, as `_explain_whole` would rank it."""
        validator = self._one.get(name)
        if validator is None:
            validator = self._one[name] = _strict_validator(self.schema["properties"][name])
        errors = sorted(
            validator.iter_errors(value),
            key=lambda err: (len(err.absolute_path), [str(p) for p in err.absolute_path]),
        )
        if not errors:
            return None
        err = errors[0]
        return _Problem(
            (name, *(str(p) for p in err.absolute_path)),
            err.message,
            str(err.validator),
            err.instance,
            err.validator_value,
        )

    def _explain_whole(self, params: dict[str, Any]) -> _Problem | None:
        names = self.schema["properties"]
        order = {name: i for i, name in enumerate(names)}

        def rank(err: ValidationError) -> tuple[int, int, list[str]]:
            # Report the first param in declared order; missing/unknown names (errors at
            # the top level) sort by the name they mention. Paths are compared as text
            # because a path mixes str keys and int indexes.
            path = [str(p) for p in err.absolute_path]
            name = (
                path[0]
                if path
                else _named_in(err.validator, err.instance, err.validator_value, order)
            )
            return (order.get(name, len(order)), len(path), path)

        if self._whole is None:
            self._whole = _strict_validator(self.schema)
        errors = sorted(self._whole.iter_errors(params), key=rank)
        if not errors:
            return None
        err = errors[0]
        return _Problem(
            tuple(str(p) for p in err.absolute_path),
            err.message,
            str(err.validator),
            err.instance,
            err.validator_value,
        )


if TYPE_CHECKING:
    FloatFinder = Callable[[Any, tuple[str, ...]], tuple[str, ...] | None]


def _float_finder(schema: Any) -> FloatFinder | None:
    """A function that finds a float where `schema` wants an integer, or None when the
    schema has no integer anywhere (then there is nothing to look for).

    It follows `properties` and `items`, the keywords that param schemas nest with.
    """
    if not isinstance(schema, Mapping):
        return None
    types = schema.get("type")
    names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    strict = "integer" in names and "number" not in names
    props = schema.get("properties")
    inner = (
        {k: f for k, f in ((k, _float_finder(v)) for k, v in props.items()) if f is not None}
        if isinstance(props, Mapping)
        else {}
    )
    items = _float_finder(schema.get("items"))
    if not (strict or inner or items):
        return None

    def find(value: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if isinstance(value, float):
            return path if strict else None
        if inner and isinstance(value, dict):
            for key, sub in inner.items():
                if key in value:
                    found = sub(value[key], (*path, key))
                    if found is not None:
                        return found
        elif items is not None and isinstance(value, list):
            for i, item in enumerate(value):
                found = items(item, (*path, str(i)))
                if found is not None:
                    return found
        return None

    return find


_STRICT: dict[str, Any] = {}


def _strict_validator(schema: dict[str, Any]) -> Any:
    """jsonschema's draft-07 validator (the dialect ipc/openrpc.json declares) with
    integers that are ints, as `_ParamsCheck` holds them."""
    cls = _STRICT.get("cls")
    if cls is None:
        # jsonschema is imported here, not at module top, so the CLI never pays for it.
        from jsonschema import Draft7Validator, validators

        def is_integer(_checker: Any, instance: Any) -> bool:
            return isinstance(instance, int) and not isinstance(instance, bool)

        checker = Draft7Validator.TYPE_CHECKER.redefine("integer", is_integer)
        cls = _STRICT["cls"] = validators.extend(  # type: ignore[no-untyped-call]
            Draft7Validator, type_checker=checker
        )
    return cls(schema)


def _named_in(validator: Any, instance: Any, wanted: Any, names: Mapping[str, int]) -> str:
    """The param a top-level schema error is about ("required", "additionalProperties")."""
    if validator == "required" and isinstance(instance, dict) and isinstance(wanted, list):
        missing = [n for n in wanted if n not in instance]
        return min(missing, key=lambda n: names.get(n, len(names)), default="")
    if validator == "additionalProperties" and isinstance(instance, dict):
        extra = sorted(k for k in instance if k not in names)
        return extra[0] if extra else ""
    return ""


def _describe(problem: _Problem, names: Mapping[str, int]) -> str:
    if problem.path:
        message = problem.message
        if (
            problem.validator == "type"
            and isinstance(problem.instance, float)
            and "integer"
            in ([problem.wanted] if isinstance(problem.wanted, str) else problem.wanted)
        ):
            message = (
                f"{problem.instance!r} is not an integer: write a whole number without a "
                "fraction or an exponent"
            )
        return f"param {'.'.join(problem.path)!r}: {_clip(message)}"
    name = _named_in(problem.validator, problem.instance, problem.wanted, names)
    if problem.validator == "required" and name:
        return f"param {name!r} is required"
    if problem.validator == "additionalProperties" and name:
        known = ", ".join(repr(n) for n in names) or "none"
        return f"unknown param {name!r} (known: {known})"
    return _clip(problem.message)


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


@record
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
