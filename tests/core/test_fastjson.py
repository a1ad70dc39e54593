"""The hot paths' JSON: orjson's speed, and exactly strict JSON's answers."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from glosmsd.core import fastjson


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


#: Python's json held to strict JSON: what `loads` must answer like.
STRICT = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(values)
@example("\ud800")  # a lone surrogate: valid JSON text that orjson will not decode
@example({"text": "\udfff and \ud83d"})
@example(2**64 - 1)
def test_loads_reads_what_json_writes_as_strict_json_does(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert fastjson.loads(text) == STRICT.decode(text)


@given(values)
@example("\ud800")
@example({"k": [1.5e-7, 1e16, -0.0]})
def test_dumps_is_compact_json_that_reads_back(value: Any) -> None:
    assert json.loads(fastjson.dumps(value)) == value


def test_dumps_is_compact() -> None:
    assert fastjson.dumps({"a": [1, 2.5, None], "b": "x"}) == '{"a":[1,2.5,null],"b":"x"}'


@pytest.mark.parametrize(
    "text",
    ["NaN", "[Infinity]", "-Infinity", "1e400", '{"at": -1e999}', "[1] x", "", "{", "\ufeff[1]"],
)
def test_loads_refuses_what_is_not_strict_json(text: str) -> None:
    with pytest.raises(ValueError):
        fastjson.loads(text)


def test_loads_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(ValueError):
        fastjson.loads(b'"\xff"')


def test_loads_takes_bytes_and_str_alike() -> None:
    assert fastjson.loads(b'{"a":"caf\xc3\xa9"}') == fastjson.loads('{"a":"café"}') == {"a": "café"}


def test_loads_of_a_deep_nesting_raises_value_error_not_a_crash() -> None:
    with pytest.raises((ValueError, RecursionError)):
        fastjson.loads("[" * 100_000 + "]" * 100_000)


def test_an_integer_past_64_bits_reads_as_a_float_which_no_id_check_takes() -> None:
    assert fastjson.loads('{"id": 1180591620717411303424}') == {"id": 1.1805916207174113e21}


def test_dumps_falls_back_for_what_orjson_cannot_carry() -> None:
    assert fastjson.dumps({"n": 2**70}) == '{"n":1180591620717411303424}'
    assert fastjson.dumps({1: "one"}) == '{"1":"one"}'
    assert fastjson.dumps("\ud800") == '"\ud800"'
    assert fastjson.dumps({"t": "café"}) == '{"t":"café"}'  # UTF-8 kept, not escaped


def test_dumps_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(TypeError):
        fastjson.dumps({"s": {1, 2}})


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)))
@example([1796594371.5843418, 1e16, 1.5e-7, 1e-05, 0.0, -0.0, 5e-324, 1e308])
def test_float_texts_read_back_as_each_value(vals: list[float]) -> None:
    texts = fastjson.float_texts(vals)
    assert len(texts) == len(vals)
    for v, text in zip(vals, texts, strict=True):
        read = json.loads(text)
        assert isinstance(read, float)
        assert read == float(v)
        assert math.copysign(1, read) == math.copysign(1, float(v))


@given(st.floats(min_value=1e-3, max_value=4e9))
@example(1796594371.5843418)
def test_float_texts_of_times_are_reprs(at: float) -> None:
    """Times (what the server splices: seconds since 1970) come out as `repr` writes them."""
    assert fastjson.float_texts([at]) == [repr(at)]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_float_texts_refuse_what_json_has_no_number_for(bad: float) -> None:
    with pytest.raises(ValueError):
        fastjson.float_texts([1.0, bad])
