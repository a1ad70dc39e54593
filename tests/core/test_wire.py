"""The protocol's vocabulary: builders, splicing, and the checks a client runs on events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from glosmsd.core import wire
from glosmsd.core.errors import PoisonEvent, RemoteProtocolError

SHA = "0f" * 32


def message(**over: Any) -> dict[str, Any]:
    base = wire.message(
        id=17,
        client_id="c7f1",
        number="+15550001001",
        remote="+15557654321",
        direction="out",
        text="hi",
        state="sent",
        reason=None,
        at=1764050000.123,
        files=[wire.file_ref(SHA, "cat.jpg", "image/jpeg", 48213)],
        sender=wire.person("1002", "Bo Diaz", None),
    )
    return {**base, **over}


def test_a_well_formed_event_comes_back_equal() -> None:
    ev = wire.event(5, "message", 1.5, wire.message_body(message()))
    assert wire.check_event(ev) == ev
    for kind, body in (
        ("message_state", wire.state_body(17, "failed", "Number blocked")),
        ("read", wire.mark_body("+15550001001", "+15557654321", 17)),
        ("delete_message", wire.delete_body(17)),
        ("delete_conversation", wire.mark_body("+15550001001", "+15557654321", 17)),
    ):
        ev = wire.event(6, kind, 2.0, body)
        assert wire.check_event(ev) == ev


def test_splice_is_the_event_encoded() -> None:
    body = wire.encode_body(wire.message_body(message(text="é 🙂")))
    text = wire.splice_event(9, "message", 12.25, body)
    assert json.loads(text) == wire.event(9, "message", 12.25, json.loads(body))
    assert json.loads(wire.splice_event(3, "delete_message", 1.0, "{}")) == {
        "seq": 3,
        "kind": "delete_message",
        "at": 1.0,
    }
    result = wire.sync_result_text([text], 9, True, True, (0, 17))
    assert json.loads(result) == {
        "events": [json.loads(text)],
        "cursor": 9,
        "more": True,
        "reset": True,
        "snapshot": {"after": 0, "next": 17},
    }
    assert json.loads(wire.sync_result_text([], 3, False, False))["events"] == []


@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 2**62),
            st.sampled_from(["message", "read", "delete_message"]),
            st.floats(0, 4e9) | st.integers(0, 2**31).map(float),
            st.dictionaries(  # a body never holds the envelope's names
                st.text(max_size=5).filter(lambda k: k not in ("seq", "kind", "at")),
                st.text(max_size=5),
                max_size=3,
            ).map(wire.encode_body),
        ),
        max_size=8,
    )
)
@example(rows=[(1, "message", 1.192092896e-07, "{}")])
def test_splicing_a_page_at_once_is_splicing_each_event(
    rows: list[tuple[int, str, float, str]],
) -> None:
    """`splice_events` (a sync page's rows in one pass) makes the very texts
    `splice_event` makes, and each is the event encoded whole."""
    texts = wire.splice_events(rows)
    assert texts == [wire.splice_event(*row) for row in rows]
    for text, (seq, kind, at, body) in zip(texts, rows, strict=True):
        whole = wire.encode_body(wire.event(seq, kind, at, json.loads(body)))
        assert json.loads(text) == json.loads(whole)
        if at == 0 or at >= 1e-3:  # a time: the very digits (a tiny float may say 1e-7)
            assert text == whole


def test_poison_names_the_event_and_the_field() -> None:
    bad = wire.event(8, "message", 1.0, wire.message_body(message(id=2**70)))
    with pytest.raises(PoisonEvent, match=r"message event seq 8: message\.id") as err:
        wire.check_event(bad)
    assert (err.value.seq, err.value.event_kind) == (8, "message")
    with pytest.raises(PoisonEvent, match=r"files\[0\]\.sha256"):
        wire.check_event(
            wire.event(8, "message", 1.0, {"message": message(files=[{"sha256": "../x"}])})
        )
    with pytest.raises(PoisonEvent, match="'exploded'"):
        wire.check_event({"seq": 2, "kind": "message_state", "id": 1, "state": "exploded"})
    with pytest.raises(PoisonEvent, match="not an object"):
        wire.check_event([1])


def test_strings_are_cleaned_not_refused() -> None:
    ev = wire.event(
        1,
        "message",
        float("1e300"),
        {
            "message": message(
                text="a\udc80b\x00c\nd",
                files=[wire.file_ref(SHA, "../../\udc80evil\u202e.png", None, None)],
                sender=wire.person("1002\u202e", "Bo\x07 \udcff", "not-a-sha"),
                number=" +15550001001\n",
            )
        },
    )
    clean = wire.check_event(ev)
    assert clean is not None
    msg = clean["message"]
    assert msg["text"] == "a\ufffdbc\nd"
    assert msg["files"][0]["name"] == "evil.png"
    assert msg["sender"] == {"ext": "1002", "name": "Bo \ufffd", "avatar": None}
    assert msg["number"] == "+15550001001"
    assert clean["at"] == wire.MAX_TIME
    long = wire.check_event({**ev, "message": message(text="x" * 10**6)})
    assert long is not None
    assert len(long["message"]["text"]) == wire.MAX_TEXT


def test_unknown_kinds_and_fields_are_dropped() -> None:
    assert wire.check_event({"seq": 4, "kind": "from_the_future", "x": 1}) is None
    ev = {**wire.event(4, "delete_message", 1.0, wire.delete_body(3)), "new": [1]}
    assert wire.check_event(ev) == {"seq": 4, "kind": "delete_message", "at": 1.0, "id": 3}


def test_hello_is_checked_and_cleaned() -> None:
    hello = {
        "protocol": 1,
        "server": "glosmsd-server/0.1.0",
        "extension": wire.person("1001", "Ann\u202e Lee", None),
        "numbers": [{"number": "+15550001001", "shared_with": [wire.person("1002", "Bo", None)]}],
        "settings": {"mms_enabled": True},
        "capabilities": ["sync"],
        "extra": 1,
    }
    clean = wire.check_hello(hello)
    assert clean["extension"]["name"] == "Ann Lee"
    assert "extra" not in clean
    assert clean["numbers"] == hello["numbers"]
    for bad in (None, {"protocol": 2}, {"protocol": 1, "numbers": {}}):
        with pytest.raises(RemoteProtocolError):
            wire.check_hello(bad)
    with pytest.raises(RemoteProtocolError, match=r"numbers\[0\]"):
        wire.check_hello({"protocol": 1, "numbers": [{"number": 5}]})


def test_lone_surrogates_are_found_in_params() -> None:
    assert wire.lone_surrogate({"a": ["ok", {"b": "x\udc80"}]}) == "a[1].b"
    assert wire.lone_surrogate({"\ud800": 1}) == "\ud800"
    assert wire.lone_surrogate({"a": "é 🙂", "n": 5}) is None


def test_fit_event_cuts_an_oversized_event_to_the_bounds() -> None:
    small = wire.splice_event(1, "message", 1.0, wire.encode_body({"message": message()}))
    assert wire.fit_event(small) is small
    big = wire.splice_event(
        2, "message", 1.0, wire.encode_body({"message": message(text="🙂" * 300_000)})
    )
    fitted = json.loads(wire.fit_event(big))
    assert len(fitted["message"]["text"]) == wire.MAX_TEXT
    assert wire.byte_size(wire.fit_event(big)) <= wire.MAX_EVENT_BYTES


# --------------------------------------------------------------------------- properties

texts = st.text(st.characters(codec=None), max_size=50)
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
messages = st.fixed_dictionaries(
    {
        "id": st.integers(-5, 2**64),
        "number": texts,
        "remote": texts,
        "direction": st.sampled_from(["in", "out", "sideways"]),
        "text": texts,
        "state": st.sampled_from([*wire.STATES, "lost"]),
        "at": st.floats(allow_nan=True) | st.integers(),
        "client_id": st.none() | texts,
        "reason": st.none() | texts | st.integers(),
        "files": st.lists(
            st.fixed_dictionaries(
                {"sha256": st.sampled_from([SHA, "x"]), "name": texts, "size": anything}
            ),
            max_size=2,
        ),
        "sender": st.none() | st.fixed_dictionaries({"ext": texts, "name": texts | st.none()}),
    }
)
events = st.one_of(
    st.builds(
        lambda seq, m: {"seq": seq, "kind": "message", "at": 1.0, "message": m},
        st.integers(0, 10),
        messages,
    ),
    st.dictionaries(
        st.sampled_from(["seq", "kind", "id", "state", "number", "remote", "up_to", "at"]),
        anything | st.sampled_from(sorted(wire.EVENT_KINDS)),
    ),
    anything,
)


@given(events)
@example({"seq": 1, "kind": "message", "at": 1.0, "message": {**message(), "text": "\udc80"}})
def test_whatever_a_server_sends_is_clean_and_bounded_or_refused(obj: Any) -> None:
    try:
        clean = wire.check_event(obj)
    except PoisonEvent:
        return  # refused, with the event named: the caller logs and skips it
    if clean is None:
        return
    # What passes is UTF-8 encodable (a database can store it), bounded, and a fixed
    # point: checking it again changes nothing.
    text = json.dumps(clean, ensure_ascii=False)
    text.encode("utf-8")
    assert wire.byte_size(text) <= wire.MAX_EVENT_BYTES
    assert wire.check_event(clean) == clean
    if clean["kind"] == "message":
        assert 1 <= clean["message"]["id"] <= wire.MAX_ID
        assert clean["message"]["direction"] in wire.DIRECTIONS
