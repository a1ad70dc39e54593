"""JSON-RPC 2.0 core: the spec's own examples replayed, edge cases, and properties."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glosmsd.core import rpc, wire
from glosmsd.core.errors import (
    BadInput,
    LimitExceeded,
    NotFound,
    RemoteProtocolError,
    RpcError,
    SendFailed,
)

# --------------------------------------------------------------------------- helpers


def make_table(calls: list[tuple[str, Any]] | None = None) -> rpc.MethodTable:
    """The methods the spec's examples call, plus a few that fail on purpose."""
    seen = calls if calls is not None else []
    table = rpc.MethodTable()
    integer = {"type": "integer"}

    @table.method("subtract", rpc.Param("minuend", integer), rpc.Param("subtrahend", integer))
    def subtract(minuend: int, subtrahend: int) -> int:
        return minuend - subtrahend

    @table.method(
        "sum",
        rpc.Param("a", integer, required=False),
        rpc.Param("b", integer, required=False),
        rpc.Param("c", integer, required=False),
    )
    def sum_(**values: int) -> int:
        return sum(values.values())

    @table.method("get_data")
    def get_data() -> list[Any]:
        return ["hello", 5]

    @table.method("notify_hello", rpc.Param("n", integer))
    def notify_hello(n: int) -> None:
        seen.append(("notify_hello", n))

    @table.method(
        "notify_sum", rpc.Param("a", integer), rpc.Param("b", integer), rpc.Param("c", integer)
    )
    def notify_sum(a: int, b: int, c: int) -> None:
        seen.append(("notify_sum", a + b + c))

    @table.method("update", *(rpc.Param(n, integer, required=False) for n in "abcde"))
    def update(**values: int) -> None:
        seen.append(("update", sorted(values.values())))

    @table.method(
        "send",
        rpc.Param("to", {"type": "array", "items": {"type": "string"}, "minItems": 1}),
        rpc.Param("text", {"type": "string"}),
        rpc.Param("subject", {"type": "string"}, required=False),
    )
    def send(to: list[str], text: str, subject: str = "") -> dict[str, Any]:
        return {"to": to, "text": text, "subject": subject}

    @table.method(
        "ints",
        rpc.Param("xs", {"type": "array", "items": integer}),
        rpc.Param("f", {"type": "number"}, required=False),
    )
    def ints(xs: list[int], f: float | None = None) -> list[Any]:
        return [xs, f] if f is not None else [xs]

    @table.method("crash")
    def crash() -> None:
        raise KeyError("secret-token-abc123 at /home/alice/.config")

    @table.method("fail", rpc.Param("which", {"type": "string"}))
    def fail(which: str) -> None:
        raise {
            "not-found": NotFound("No message 7: it may have been deleted.", data={"id": 7}),
            "limit": LimitExceeded("Too long: at most 10 segments.", data={"max": 10}),
            "send": SendFailed("No SMS number assigned: ask your administrator."),
        }[which]

    @table.method("nan")
    def nan() -> float:
        return math.nan

    @table.method("opaque")
    def opaque() -> object:
        return object()

    return table


def dispatch(table: rpc.MethodTable, line: bytes | str) -> bytes | None:
    """What an adapter does with one line, minus the awaiting."""
    parsed = rpc.parse(line)
    replies: list[dict[str, Any] | None] = []
    for item in parsed.items:
        if isinstance(item, rpc.Request):
            try:
                method, kwargs = table.bind(item)
                outcome = method.handler(**kwargs)
            except Exception as exc:
                replies.append(rpc.reply_for(item, error=exc))
            else:
                replies.append(rpc.reply_for(item, outcome))
        else:
            replies.append(item)
    return rpc.assemble(parsed, replies)


def call(table: rpc.MethodTable, line: bytes | str) -> Any:
    out = dispatch(table, line)
    assert out is not None
    assert out.endswith(b"\n")
    assert b"\n" not in out[:-1]
    return json.loads(out.decode("utf-8"))


def spec_shaped(reply: Any, expected: Any) -> Any:
    """`reply` with each error message cut to the spec's wording, where ours goes on to say
    what to fix. Fails if a message does not start with the spec's wording."""
    if isinstance(reply, list) and isinstance(expected, list) and len(reply) == len(expected):
        return [spec_shaped(r, e) for r, e in zip(reply, expected, strict=True)]
    if isinstance(reply, dict) and isinstance(expected, dict) and "error" in expected:
        msg = expected["error"]["message"]
        assert reply["error"]["message"].startswith(msg), reply
        return {**reply, "error": {**reply["error"], "message": msg}}
    return reply


# --------------------------------------------------------------------------- the spec's examples

SPEC_EXAMPLES: list[tuple[str, str, Any]] = [
    (
        "positional-1",
        '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
        {"jsonrpc": "2.0", "result": 19, "id": 1},
    ),
    (
        "positional-2",
        '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
        {"jsonrpc": "2.0", "result": -19, "id": 2},
    ),
    (
        "named-1",
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42},'
        ' "id": 3}',
        {"jsonrpc": "2.0", "result": 19, "id": 3},
    ),
    (
        "named-2",
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23},'
        ' "id": 4}',
        {"jsonrpc": "2.0", "result": 19, "id": 4},
    ),
    (
        "notification-known",
        '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}',
        None,
    ),
    ("notification-unknown", '{"jsonrpc": "2.0", "method": "foobar"}', None),
    (
        "non-existent-method",
        '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"},
    ),
    (
        "invalid-json",
        '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
    ),
    (
        "invalid-request-object",
        '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
    ),
    (
        "batch-invalid-json",
        '[ {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        ' {"jsonrpc": "2.0", "method" ]',
        {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
    ),
    (
        "empty-array",
        "[]",
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
    ),
    (
        "invalid-batch-not-empty",
        "[1]",
        [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}],
    ),
    (
        "invalid-batch",
        "[1,2,3]",
        [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}]
        * 3,
    ),
    (
        "rpc-call-batch",
        """[
            {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
            {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
            {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
            {"foo": "boo"},
            {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
            {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
        ]""",
        [
            {"jsonrpc": "2.0", "result": 7, "id": "1"},
            {"jsonrpc": "2.0", "result": 19, "id": "2"},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
            {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
        ],
    ),
    (
        "batch-all-notifications",
        """[
            {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
            {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
        ]""",
        None,
    ),
]


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [pytest.param(text, exp, id=name) for name, text, exp in SPEC_EXAMPLES],
)
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_spec_example(request_text: str, expected: Any, as_bytes: bool) -> None:
    line: bytes | str = request_text.encode() if as_bytes else request_text
    out = dispatch(make_table(), line)
    if expected is None:
        assert out is None
        return
    assert out is not None
    reply = json.loads(out)
    assert spec_shaped(reply, expected) == expected


def test_spec_notifications_still_run() -> None:
    calls: list[tuple[str, Any]] = []
    table = make_table(calls)
    for name in ("notification-known", "rpc-call-batch", "batch-all-notifications"):
        text = next(t for n, t, _ in SPEC_EXAMPLES if n == name)
        dispatch(table, text)
    assert calls == [
        ("update", [1, 2, 3, 4, 5]),
        ("notify_hello", 7),
        ("notify_sum", 7),
        ("notify_hello", 7),
    ]


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("id_text", "echoed"),
    [
        ("1.5", b'"id":1.5'),
        ("1.0", b'"id":1.0'),
        ("-0.25", b'"id":-0.25'),
        ("7", b'"id":7'),
        ("123456789012345678901234567890", b'"id":123456789012345678901234567890'),
        ('"7"', b'"id":"7"'),
        ('""', b'"id":""'),
        ('"\\u00e9t\\u00e9"', '"id":"été"'.encode()),
        ("null", b'"id":null'),
    ],
)
def test_id_is_echoed_with_its_json_type(id_text: str, echoed: bytes) -> None:
    for method in ("get_data", "foobar"):
        out = dispatch(make_table(), f'{{"jsonrpc":"2.0","method":"{method}","id":{id_text}}}')
        assert out is not None
        assert echoed in out
        sent = json.loads(id_text)
        got = json.loads(out)["id"]
        assert got == sent
        assert type(got) is type(sent)


def test_null_id_is_a_call_not_a_notification() -> None:
    (req,) = rpc.parse('{"jsonrpc":"2.0","method":"get_data","id":null}').items
    assert isinstance(req, rpc.Request)
    assert not req.is_notification
    assert call(make_table(), '{"jsonrpc":"2.0","method":"get_data","id":null}') == {
        "jsonrpc": "2.0",
        "result": ["hello", 5],
        "id": None,
    }


@pytest.mark.parametrize("bad_id", ["true", "false", "{}", '{"a":1}', "[]", "[1]"])
def test_bool_object_or_array_id_is_invalid_with_null_id(bad_id: str) -> None:
    reply = call(make_table(), f'{{"jsonrpc":"2.0","method":"get_data","id":{bad_id}}}')
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert "id" in reply["error"]["message"]


def test_lone_surrogate_id_is_echoed_as_an_escape() -> None:
    out = dispatch(make_table(), '{"jsonrpc":"2.0","method":"get_data","id":"\\ud800x"}')
    assert out is not None
    out.decode("ascii")  # fell back to ASCII escapes: still valid UTF-8 and JSON
    assert json.loads(out)["id"] == "\ud800x"


# --------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"   ",
        b"\xff\xfe{}",
        '{"jsonrpc":"2.0","method":"get_data","id":1}'.encode("utf-16"),
        b'{"jsonrpc":"2.0","method":"get_data","id":NaN}',
        b'{"jsonrpc":"2.0","method":"get_data","id":Infinity}',
        b'{"jsonrpc":"2.0","method":"get_data","id":-Infinity}',
        b'{"jsonrpc":"2.0","method":"get_data","id":1e400}',
        b'{"jsonrpc":"2.0","method":"subtract","params":[1e999, 1],"id":1}',
        b"[" * 100_000,
        b"9" * 5000,
        b"\xef\xbb\xbf{}",
        "{\ud800".encode("utf-8", "surrogatepass"),
    ],
    ids=lambda b: repr(b[:24]),
)
def test_not_json_is_parse_error(line: bytes) -> None:
    assert call(make_table(), line) == {
        "jsonrpc": "2.0",
        "error": {"code": -32700, "message": "Parse error: not valid JSON"},
        "id": None,
    }


@pytest.mark.parametrize(
    ("line", "expected_id", "names"),
    [
        ('{"method":"get_data","id":1}', 1, '"jsonrpc"'),
        ('{"jsonrpc":"1.0","method":"get_data","id":"a"}', "a", '"jsonrpc"'),
        ('{"jsonrpc":2.0,"method":"get_data","id":1}', 1, '"jsonrpc"'),
        ('{"jsonrpc":"2.0","id":1}', 1, '"method"'),
        ('{"jsonrpc":"2.0","method":null,"id":1}', 1, '"method"'),
        ('{"jsonrpc":"2.0","method":"get_data","params":null,"id":1}', 1, '"params"'),
        ('{"jsonrpc":"2.0","method":"get_data","params":3,"id":1}', 1, '"params"'),
        ('{"jsonrpc":"2.0","method":"get_data","params":"x"}', None, '"params"'),
        ('"just a string"', None, "object"),
        ("42", None, "object"),
        ("null", None, "object"),
    ],
)
def test_invalid_request(line: str, expected_id: Any, names: str) -> None:
    reply = call(make_table(), line)
    assert reply["id"] == expected_id
    assert reply["error"]["code"] == -32600
    assert names in reply["error"]["message"]


def test_invalid_notification_still_gets_an_error() -> None:
    # Without a readable request we cannot know it was meant as a notification.
    reply = call(make_table(), '{"jsonrpc":"2.0","method":7}')
    assert reply["error"]["code"] == -32600


def test_nested_batch_is_one_invalid_request() -> None:
    reply = call(make_table(), '[[{"jsonrpc":"2.0","method":"get_data","id":1}]]')
    assert [r["error"]["code"] for r in reply] == [-32600]


def test_a_batch_over_the_limit_is_one_error_and_nothing_runs() -> None:
    call_ = '{"jsonrpc":"2.0","method":"get_data","id":1}'
    parsed = rpc.parse("[" + ",".join([call_] * 4) + "]", max_batch=3)
    assert not parsed.is_batch
    (reply,) = parsed.items
    assert isinstance(reply, dict)
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert reply["error"]["data"] == {"limit": 3}
    assert "at most 3 calls" in reply["error"]["message"]
    assert "has 4" in reply["error"]["message"]
    assert "Split" in reply["error"]["message"]
    at_limit = rpc.parse("[" + ",".join([call_] * 3) + "]", max_batch=3)
    assert at_limit.is_batch
    assert all(isinstance(i, rpc.Request) for i in at_limit.items)


def test_batch_replies_past_the_budget_say_which_calls_did_not_run() -> None:
    """Issue 13 item 5: a 1 MiB line of rpc.discover calls drew gigabytes of replies.
    Once a batch's replies pass the budget, the rest of its calls are not run, and each
    is answered so: the client knows exactly what to send again."""
    line = "[" + ",".join(f'{{"jsonrpc":"2.0","method":"get_data","id":{i}}}' for i in range(10))
    parsed = rpc.parse(line + "]")
    out = rpc.Replies(parsed, budget=100)
    ran = 0
    for item in parsed.items:
        assert isinstance(item, rpc.Request)
        if out.full:
            out.add(out.not_run(item))
        else:
            out.add(rpc.reply_for(item, ["hello", 5]))
            ran += 1
    data = out.encode()
    assert data is not None
    assert data.endswith(b"\n")
    replies = json.loads(data)
    assert [r["id"] for r in replies] == list(range(10))
    done = [r for r in replies if "result" in r]
    assert len(done) == ran
    assert 1 < ran < 10
    assert sum(len(json.dumps(r, separators=(",", ":"))) for r in done[:-1]) <= 100
    for r in replies[ran:]:
        assert r["error"]["code"] == -32008
        assert r["error"]["data"] == {"limit": 100, "kind": "limit-exceeded"}
        assert r["error"]["message"].startswith("Not run:")


def test_replies_without_a_budget_are_what_assemble_gives() -> None:
    parsed = rpc.parse('[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b"}]')
    replies = [{"jsonrpc": "2.0", "result": math.nan, "id": 1}, None]
    out = rpc.Replies(parsed)
    for r in replies:
        out.add(r)
    assert not out.full
    assert out.encode() == rpc.assemble(parsed, replies)
    assert json.loads(out.encode() or b"")[0]["error"]["code"] == -32603
    assert rpc.Replies(parsed).encode() is None


def test_empty_method_name_is_method_not_found() -> None:
    reply = call(make_table(), '{"jsonrpc":"2.0","method":"","id":1}')
    assert reply["error"]["code"] == -32601


# --------------------------------------------------------------------------- params


def test_named_and_positional_bind_the_same() -> None:
    table = make_table()
    by_pos = table.bind(rpc.Request("send", [["+15551230000"], "hi"], 1))
    by_name = table.bind(rpc.Request("send", {"text": "hi", "to": ["+15551230000"]}, 1))
    assert by_pos == by_name
    assert by_pos[1] == {"to": ["+15551230000"], "text": "hi"}


def test_no_params_binds_to_nothing() -> None:
    method, kwargs = make_table().bind(rpc.Request("get_data", None, 1))
    assert method.name == "get_data"
    assert kwargs == {}


def invalid_params(params: Any, method: str = "send") -> RpcError:
    with pytest.raises(RpcError) as info:
        make_table().bind(rpc.Request(method, params, 1))
    assert info.value.rpc_code == -32602
    assert info.value.message.startswith(f"Invalid params for {method}: ")
    assert info.value.data is not None
    assert info.value.data["expected"]["additionalProperties"] is False
    return info.value


def test_too_many_positional_params() -> None:
    err = invalid_params([["+1"], "hi", "subj", "extra"])
    assert "at most 3 positional params (to, text, subject), got 4" in err.message
    assert "(none), got 1" in invalid_params([1], "get_data").message


def test_missing_required_param_is_named() -> None:
    assert "param 'text' is required" in invalid_params({"to": ["+1"]}).message
    assert "param 'text' is required" in invalid_params([["+1"]]).message
    # With both missing the first declared one is named.
    assert "param 'to' is required" in invalid_params(None).message


def test_additional_properties_refused_and_named() -> None:
    err = invalid_params({"to": ["+1"], "text": "hi", "bcc": "x"})
    assert "unknown param 'bcc'" in err.message
    assert "'to', 'text', 'subject'" in err.message


def test_wrong_type_names_the_param() -> None:
    err = invalid_params({"to": ["+1"], "text": 5})
    assert "param 'text'" in err.message
    assert "is not of type 'string'" in err.message


def test_nested_error_names_the_path() -> None:
    err = invalid_params({"to": ["+1", 2], "text": "hi"})
    assert "param 'to.1'" in err.message


def test_first_declared_param_is_reported() -> None:
    assert "param 'to'" in invalid_params({"to": [], "text": 5}).message


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "+15550001004", "+1555", "ab12" * 16, "x" * 70, "a" * 300])
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(sorted(wire.PARAMS)),
    data=st.data(),
)
def test_explaining_one_param_names_what_explaining_all_of_them_does(
    method: str, data: st.DataObject
) -> None:
    """A refusal is explained from the first failing param alone (the soak's fuzzer spent
    a fifth of the server's loop explaining every param); the words must be the ones
    jsonschema gives when it is handed the whole call."""
    schema = rpc.Method(method, print, wire.PARAMS[method]).params_schema()
    names = [*schema["properties"], "extra"]
    params = data.draw(st.dictionaries(st.sampled_from(names), _JSON, max_size=len(names)))
    check = rpc._ParamsCheck(schema)
    assert check._explain(params) == check._explain_whole(params)


def test_bool_is_not_an_integer() -> None:
    assert "param 'minuend'" in invalid_params([True, 1], "subtract").message


@pytest.mark.parametrize("number", ["1.0", "2.5", "1e20", "1E2", "-0.0"])
def test_a_number_written_with_a_fraction_or_exponent_is_not_an_integer(number: str) -> None:
    """JSON Schema counts 1.0 as an integer; the handlers behind these schemas take Python
    ints (SQLite, str methods), so a float must never reach them (issue 13 item 12)."""
    reply = call(
        make_table(), f'{{"jsonrpc":"2.0","method":"subtract","params":[{number},1],"id":1}}'
    )
    assert reply["error"]["code"] == -32602, reply
    assert "param 'minuend'" in reply["error"]["message"]
    assert "not an integer" in reply["error"]["message"]
    nested = call(make_table(), '{"jsonrpc":"2.0","method":"ints","params":{"xs":[1,2.0]},"id":1}')
    assert nested["error"]["code"] == -32602, nested
    assert "param 'xs.1'" in nested["error"]["message"]


def test_a_whole_number_and_a_number_param_still_bind() -> None:
    assert (
        call(make_table(), '{"jsonrpc":"2.0","method":"subtract","params":[7,2],"id":1}')["result"]
        == 5
    )
    ok = call(make_table(), '{"jsonrpc":"2.0","method":"ints","params":{"xs":[1],"f":1.5},"id":1}')
    assert ok["result"] == [[1], 1.5]


@pytest.mark.parametrize(
    ("params", "where"),
    [
        (r'{"to":["+1"],"text":"a\udc80"}', "param 'text'"),
        (r'{"to":["\ud800"],"text":"x"}', "param 'to.0'"),
        (r'[["+1"],"\uDFFFx"]', "param 'text'"),
        (r'{"to":["+1"],"text":"x","subject":"\ud83d"}', "param 'subject'"),
        (r'{"to":["+1"],"text":"x","\udc80":1}', "a param name"),
    ],
)
def test_a_lone_surrogate_in_a_param_is_invalid_params(params: str, where: str) -> None:
    """A lone surrogate can be written as a JSON escape but is not Unicode text: it has no
    UTF-8 form, so SQLite cannot store it (issue 13 item 12: UnicodeEncodeError, -32603)."""
    reply = call(make_table(), f'{{"jsonrpc":"2.0","method":"send","params":{params},"id":1}}')
    assert reply["error"]["code"] == -32602, reply
    assert where in reply["error"]["message"]
    assert "lone surrogate" in reply["error"]["message"]


@pytest.mark.parametrize(
    "text",
    [
        r"\ud83d\ude42",  # an escaped pair is one emoji
        r"a\\udc80",  # an escaped backslash: plain text that reads \udc80
        "\U0001f642",
    ],
)
def test_escapes_that_are_text_still_bind(text: str) -> None:
    line = f'{{"jsonrpc":"2.0","method":"send","params":{{"to":["+1"],"text":"{text}"}},"id":1}}'
    reply = call(make_table(), line)
    assert reply["result"]["text"] == json.loads(f'"{text}"')


def test_huge_bad_value_is_clipped_in_the_message() -> None:
    err = invalid_params({"to": ["+1"], "text": ["x" * 100_000]})
    assert len(err.message) < 400


def test_invalid_params_reply_shape() -> None:
    reply = call(make_table(), '{"jsonrpc":"2.0","method":"subtract","params":[1],"id":"p"}')
    assert reply["id"] == "p"
    assert reply["error"]["code"] == -32602
    assert "param 'subtrahend' is required" in reply["error"]["message"]


# --------------------------------------------------------------------------- application errors


def test_unknown_exception_is_internal_error_without_details() -> None:
    out = dispatch(make_table(), '{"jsonrpc":"2.0","method":"crash","id":1}')
    assert out is not None
    assert b"secret" not in out
    assert b"alice" not in out
    assert b"KeyError" not in out
    reply = json.loads(out)
    assert reply["error"]["code"] == -32603
    assert reply["error"]["message"].startswith("Internal error")
    assert "data" not in reply["error"]


@pytest.mark.parametrize(
    ("which", "code", "kind", "extra"),
    [
        ("not-found", -32009, "not-found", {"id": 7}),
        ("limit", -32008, "limit-exceeded", {"max": 10}),
        ("send", -32006, "send-failed", {}),
    ],
)
def test_application_error_reply(which: str, code: int, kind: str, extra: dict[str, Any]) -> None:
    reply = call(make_table(), f'{{"jsonrpc":"2.0","method":"fail","params":["{which}"],"id":1}}')
    assert reply["id"] == 1
    assert reply["error"]["code"] == code
    assert reply["error"]["data"] == {**extra, "kind": kind}
    assert -32099 <= code <= -32000


def test_error_object_maps_every_error() -> None:
    assert rpc.error_object(BadInput("Bad number: use +E.164.")) == {
        "code": -32010,
        "message": "Bad number: use +E.164.",
        "data": {"kind": "bad-input"},
    }
    assert rpc.error_object(RpcError(-32601, "Method not found"))["code"] == -32601
    assert rpc.error_object(KeyboardInterrupt())["code"] == -32603


def test_error_for_a_notification_is_not_sent() -> None:
    assert dispatch(make_table(), '{"jsonrpc":"2.0","method":"crash"}') is None
    assert dispatch(make_table(), '{"jsonrpc":"2.0","method":"subtract","params":[1]}') is None


@pytest.mark.parametrize("method", ["nan", "opaque"])
def test_unencodable_result_becomes_internal_error(method: str) -> None:
    line = (
        f'[{{"jsonrpc":"2.0","method":"{method}","id":1}},'
        '{"jsonrpc":"2.0","method":"get_data","id":2}]'
    )
    first, second = call(make_table(), line)
    assert first["id"] == 1
    assert first["error"]["code"] == -32603
    assert "encoded" in first["error"]["message"]
    assert second == {"jsonrpc": "2.0", "result": ["hello", 5], "id": 2}
    single = call(make_table(), f'{{"jsonrpc":"2.0","method":"{method}","id":"s"}}')
    assert single["id"] == "s"
    assert single["error"]["code"] == -32603


def test_encode_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError):
        rpc.encode({"x": math.inf})
    with pytest.raises(TypeError):
        rpc.encode({"x": object()})


def test_encode_keeps_utf8_and_escapes_newlines() -> None:
    assert rpc.encode({"t": "héllo\nwörld\u2028"}) == '{"t":"héllo\\nwörld\u2028"}\n'.encode()


# --------------------------------------------------------------------------- the table


def test_table_registration_and_lookup() -> None:
    table = make_table()
    assert "subtract" in table
    assert "nope" not in table
    assert table.get("nope") is None
    subtract = table.get("subtract")
    assert subtract is not None
    assert [p.name for p in subtract.params] == ["minuend", "subtrahend"]
    names = [m.name for m in table]
    assert names == sorted(names)
    with pytest.raises(ValueError, match="registered twice"):
        table.add(rpc.Method("subtract", lambda: None))


def test_method_summary_and_schema() -> None:
    table = rpc.MethodTable()

    @table.method("ping", rpc.Param("n", {"type": "integer"}, required=False))
    def ping(n: int = 0) -> int:
        """Answer with the number sent."""
        return n

    method = table.get("ping")
    assert method is not None
    assert method.summary == "Answer with the number sent."
    assert method.params_schema() == {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": [],
        "additionalProperties": False,
    }
    added = table.add(rpc.Method("pong", ping, summary="explicit"))
    assert added.summary == "explicit"


def test_rpc_does_not_import_jsonschema() -> None:
    code = "import sys, glosmsd.core.rpc; sys.exit('jsonschema' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------- client side


def test_request_and_notification_shapes() -> None:
    assert rpc.request("sum", [1, 2], 1) == {
        "jsonrpc": "2.0",
        "method": "sum",
        "params": [1, 2],
        "id": 1,
    }
    assert rpc.request("get_data", None, "x") == {"jsonrpc": "2.0", "method": "get_data", "id": "x"}
    assert rpc.notification("ping") == {"jsonrpc": "2.0", "method": "ping"}
    assert rpc.notification("event", {"a": 1}) == {
        "jsonrpc": "2.0",
        "method": "event",
        "params": {"a": 1},
    }


def test_id_source_counts_up() -> None:
    ids = rpc.IdSource()
    assert [ids(), ids(), ids()] == [1, 2, 3]
    assert rpc.IdSource()() == 1


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"jsonrpc": "2.0", "result": 19, "id": 1}, rpc.Reply(1, result=19)),
        ({"jsonrpc": "2.0", "result": None, "id": "a"}, rpc.Reply("a")),
        (
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "m"}, "id": None},
            rpc.Reply(None, error={"code": -32601, "message": "m"}),
        ),
        (
            {"jsonrpc": "2.0", "method": "event", "params": {"a": 1}},
            rpc.Request("event", {"a": 1}, None, is_notification=True),
        ),
        (
            {"jsonrpc": "2.0", "method": "hello", "params": [1], "id": 9},
            rpc.Request("hello", [1], 9),
        ),
    ],
)
def test_classify(obj: Any, expected: rpc.Reply | rpc.Request) -> None:
    assert rpc.classify(obj) == expected


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        [{"jsonrpc": "2.0", "result": 1, "id": 1}],
        "x",
        {},
        {"result": 1, "id": 1},
        {"jsonrpc": "1.0", "result": 1, "id": 1},
        {"jsonrpc": "2.0", "result": 1},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "result": 1, "error": None, "id": 1},
        {"jsonrpc": "2.0", "result": 1, "error": {"code": 1, "message": "m"}, "id": 1},
        {"jsonrpc": "2.0", "result": 1, "id": True},
        {"jsonrpc": "2.0", "result": 1, "id": {}},
        {"jsonrpc": "2.0", "result": 1, "id": math.nan},
        {"jsonrpc": "2.0", "error": "boom", "id": 1},
        {"jsonrpc": "2.0", "error": {"message": "m"}, "id": 1},
        {"jsonrpc": "2.0", "error": {"code": True, "message": "m"}, "id": 1},
        {"jsonrpc": "2.0", "error": {"code": "1", "message": "m"}, "id": 1},
        {"jsonrpc": "2.0", "error": {"code": 1}, "id": 1},
        {"jsonrpc": "2.0", "method": 5, "id": 1},
        {"jsonrpc": "2.0", "method": "m", "params": 5, "id": 1},
        {"jsonrpc": "2.0", "method": "m", "id": False},
    ],
)
def test_classify_refuses_garbage(obj: Any) -> None:
    with pytest.raises(RpcError) as info:
        rpc.classify(obj)
    assert info.value.rpc_code == -32600


def test_reply_unwrap() -> None:
    assert rpc.Reply(1, result={"ok": True}).unwrap() == {"ok": True}
    assert rpc.Reply(1).unwrap() is None
    with pytest.raises(NotFound) as nf:
        rpc.Reply(1, error=NotFound("gone", data={"id": 3}).to_rpc()).unwrap()
    assert nf.value.data == {"id": 3}
    with pytest.raises(RemoteProtocolError):
        rpc.Reply(1, error=RemoteProtocolError("bad frame").to_rpc()).unwrap()
    with pytest.raises(RpcError) as rpc_err:
        rpc.Reply(1, error={"code": -32601, "message": "Method not found"}).unwrap()
    assert rpc_err.value.rpc_code == -32601
    assert type(rpc_err.value) is RpcError


def test_server_reply_round_trips_to_the_client() -> None:
    out = dispatch(make_table(), '{"jsonrpc":"2.0","method":"fail","params":["limit"],"id":4}')
    assert out is not None
    reply = rpc.classify(json.loads(out))
    assert isinstance(reply, rpc.Reply)
    assert reply.id == 4
    with pytest.raises(LimitExceeded) as info:
        reply.unwrap()
    assert info.value.data == {"max": 10}


# --------------------------------------------------------------------------- framing


def test_framer_basics() -> None:
    framer = rpc.LineFramer(max_line=8)
    assert framer.feed(b"ab") == []
    assert framer.pending == 2
    assert framer.feed(b"c\r\n\n  \r\nde\nf") == [b"abc", b"de"]
    assert framer.pending == 1
    assert framer.feed(b"0123456789") == [rpc.Overflow(8)]
    assert framer.pending == 0
    assert framer.feed(b"more junk") == []
    assert framer.pending == 0
    assert framer.feed(b"junk\nok\n") == [b"ok"]


def test_framer_exact_limit_is_allowed() -> None:
    framer = rpc.LineFramer(max_line=4)
    assert framer.feed(b"abcd\nabcde\nab") == [b"abcd", rpc.Overflow(4)]
    assert framer.feed(b"cd\n") == [b"abcd"]


def test_framer_default_limit_is_one_mib() -> None:
    assert rpc.LineFramer().max_line == rpc.DEFAULT_MAX_LINE == 1024 * 1024


@pytest.mark.parametrize("limit", [0, -1])
def test_framer_refuses_a_useless_limit(limit: int) -> None:
    with pytest.raises(ValueError, match="max_line"):
        rpc.LineFramer(limit)


def frame_model(stream: bytes, max_line: int) -> list[bytes | rpc.Overflow]:
    """What the framer must produce, written the obvious (unbounded-memory) way."""
    *complete, tail = stream.split(b"\n")
    out: list[bytes | rpc.Overflow] = []
    for line in complete:
        if len(line) > max_line:
            out.append(rpc.Overflow(max_line))
        elif line.rstrip(b"\r").strip():
            out.append(line.rstrip(b"\r"))
    if len(tail) > max_line:
        out.append(rpc.Overflow(max_line))
    return out


frame_streams = st.lists(
    st.sampled_from([b"a", b"{}", b"\n", b"\r", b" ", b"\r\n", b"xyzw", b"\n\n"]), max_size=40
).map(b"".join)


@given(stream=frame_streams, max_line=st.integers(1, 12), data=st.data())
def test_framer_any_split_gives_the_same_lines(stream: bytes, max_line: int, data: Any) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    expected = frame_model(stream, max_line)

    whole = rpc.LineFramer(max_line)
    assert whole.feed(stream) == expected

    framer = rpc.LineFramer(max_line)
    got: list[bytes | rpc.Overflow] = []
    for chunk in chunks:
        got += framer.feed(chunk)
        assert framer.pending <= max_line
    assert got == expected
    assert framer.pending == whole.pending
    assert all(len(x) <= max_line for x in got if isinstance(x, bytes))


@given(
    max_line=st.integers(1, 64),
    excess=st.integers(1, 200),
    after=st.lists(st.binary(min_size=1, max_size=8).filter(lambda b: b"\n" not in b), max_size=4),
    data=st.data(),
)
def test_framer_overflow_once_then_recovers(
    max_line: int, excess: int, after: list[bytes], data: Any
) -> None:
    after = [a for a in after if len(a) <= max_line and a.rstrip(b"\r").strip()]
    stream = b"L" * (max_line + excess) + b"\n" + b"".join(a + b"\n" for a in after)
    step = data.draw(st.integers(1, max_line + excess + 1))
    framer = rpc.LineFramer(max_line)
    got: list[bytes | rpc.Overflow] = []
    for i in range(0, len(stream), step):
        got += framer.feed(stream[i : i + step])
        assert framer.pending <= max_line
    assert got == [rpc.Overflow(max_line), *(a.rstrip(b"\r") for a in after)]


# --------------------------------------------------------------------------- parse properties

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
valid_ids = (
    st.none()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
params = (
    st.none()
    | st.lists(json_values, max_size=4)
    | st.dictionaries(st.text(max_size=6), json_values, max_size=4)
)

METHODS = ["subtract", "sum", "get_data", "notify_hello", "send", "crash", "fail", "nan", "opaque"]
member_values: dict[str, st.SearchStrategy[Any]] = {
    "jsonrpc": st.just("2.0") | json_values,
    "method": st.sampled_from(METHODS) | json_values,
    "params": st.lists(st.integers(), max_size=4) | params | json_values,
    "id": valid_ids | json_values,
}
call_like = st.fixed_dictionaries({}, optional=member_values) | json_values
messages = st.one_of(
    call_like,
    st.lists(call_like, max_size=5),
)
raw_lines: st.SearchStrategy[bytes | str] = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64),
    messages.map(json.dumps),
    messages.map(lambda m: json.dumps(m).encode()),
    # Valid messages with the last character cut off: near misses.
    messages.map(lambda m: json.dumps(m)[:-1]),
)

TABLE = make_table()


def check_reply(reply: Any) -> None:
    assert isinstance(reply, dict)
    assert reply["jsonrpc"] == "2.0"
    assert set(reply) in ({"jsonrpc", "result", "id"}, {"jsonrpc", "error", "id"})
    assert reply["id"] is None or (
        isinstance(reply["id"], str | int | float) and not isinstance(reply["id"], bool)
    )
    if "error" in reply:
        error = reply["error"]
        assert isinstance(error, dict)
        assert type(error["code"]) is int
        assert isinstance(error["message"], str)
        assert set(error) <= {"code", "message", "data"}


@given(line=raw_lines)
def test_parse_never_raises_and_every_reply_is_valid(line: bytes | str) -> None:
    parsed = rpc.parse(line)
    assert parsed.items
    out = dispatch(TABLE, line)
    owed = [
        item
        for item in parsed.items
        if not (isinstance(item, rpc.Request) and item.is_notification)
    ]
    if out is None:
        assert not owed
        return
    assert out.endswith(b"\n")
    assert b"\n" not in out[:-1]
    decoded = json.loads(out.decode("utf-8"))
    replies = decoded if parsed.is_batch else [decoded]
    if parsed.is_batch:
        assert isinstance(decoded, list)
        assert decoded
    assert len(replies) == len(owed)
    for reply, item in zip(replies, owed, strict=True):
        check_reply(reply)
        if isinstance(item, rpc.Request):
            assert reply["id"] == item.id
            assert type(reply["id"]) is type(item.id)


@given(method=st.text(max_size=16), params=params, req_id=valid_ids)
def test_request_encode_parse_round_trip(method: str, params: Any, req_id: Any) -> None:
    line = rpc.encode(rpc.request(method, params, req_id))
    assert line.endswith(b"\n")
    assert b"\n" not in line[:-1]
    parsed = rpc.parse(line)
    assert parsed == rpc.Parsed((rpc.Request(method, params, req_id),), is_batch=False)
    (req,) = parsed.items
    assert isinstance(req, rpc.Request)
    assert type(req.id) is type(req_id)
    assert rpc.classify(json.loads(line)) == req


@given(method=st.text(max_size=16), params=params)
def test_notification_encode_parse_round_trip(method: str, params: Any) -> None:
    parsed = rpc.parse(rpc.encode(rpc.notification(method, params)))
    assert parsed.items == (rpc.Request(method, params, None, is_notification=True),)


@settings(max_examples=50)
@given(calls=st.lists(st.tuples(st.text(max_size=8), params, valid_ids), min_size=1, max_size=5))
def test_batch_round_trip_keeps_order(calls: list[tuple[str, Any, Any]]) -> None:
    parsed = rpc.parse(rpc.encode([rpc.request(m, p, i) for m, p, i in calls]))
    assert parsed.is_batch
    assert parsed.items == tuple(rpc.Request(m, p, i) for m, p, i in calls)


# ---------------------------------------------------------------- the fast params check

_leaf_schemas = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])},
        optional={
            "minimum": st.integers(-5, 5),
            "maximum": st.integers(-5, 5),
            "minLength": st.integers(0, 4),
            "maxLength": st.integers(0, 4),
            "pattern": st.sampled_from(["^[0-9]+$", "a", "^\\+?[0-9]{1,3}$", "^$"]),
            "description": st.just("annotation"),
        },
    ),
    st.just(True),
)


def _object_schemas(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    names = st.sampled_from(["a", "b", "c"])
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": inner},
            optional={"minItems": st.integers(0, 2), "maxItems": st.integers(0, 3)},
        ),
        st.builds(
            lambda props, req, closed: {
                "type": "object",
                "properties": props,
                "required": sorted(set(req) & set(props)),
                **({"additionalProperties": False} if closed else {}),
            },
            st.dictionaries(names, inner, max_size=3),
            st.lists(names, max_size=3),
            st.booleans(),
        ),
    )


_schemas = st.recursive(_leaf_schemas, _object_schemas, max_leaves=6)
_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-10, 10),
        st.floats(-10, 10, allow_nan=False),
        st.sampled_from([1.0, -0.0, 1e20, 2**70, -(2**63)]),
        st.text(alphabet="0123+a", max_size=5),
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=1500)
@given(schema=_schemas, value=_values)
def test_the_compiled_validator_and_jsonschema_agree(schema: Any, value: Any) -> None:
    """fastjsonschema decides and jsonschema words the refusal: they must agree on every
    schema and value, or a call would be refused with no reason, or a reason given for a
    call that passed. Both count only ints as integers."""
    check = rpc._ParamsCheck({"type": "object", "properties": {"p": schema}, "required": ["p"]})
    problem = check({"p": value})
    valid = rpc._strict_validator(check.schema).is_valid({"p": value})
    assert (problem is None) == valid, (schema, value, problem)
    if problem is not None:
        assert problem.validator, problem  # worded by jsonschema, not the fallback
        assert problem.path[:1] in ((), ("p",))
