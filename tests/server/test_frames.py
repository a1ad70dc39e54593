"""glosmsd/server/frames.py: a big reply in pieces is the frame `assemble` builds; a sync
page joined into its reply is the reply of its result."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from glosmsd.core import rpc, wire
from glosmsd.server import frames


@given(
    texts=st.lists(st.text(alphabet="ab,🙂", max_size=40), min_size=1, max_size=6),
    is_batch=st.booleans(),
    size=st.integers(min_value=1, max_value=30),
)
def test_pieces_join_into_the_assembled_frame(texts: list[str], is_batch: bool, size: int) -> None:
    pieces = list(frames.pieces(texts, is_batch, size))
    whole = frames.assemble(texts, is_batch)
    assert "".join(pieces) == whole
    assert all(len(p) == size for p in pieces[:-1])
    assert (not pieces and whole == "") or 0 < len(pieces[-1]) <= size


def test_a_batch_of_one_big_reply_is_cut_at_the_fragment_size() -> None:
    text = "x" * (frames.FRAGMENT * 2)
    pieces = list(frames.pieces([text], is_batch=True))
    assert [len(p) for p in pieces] == [frames.FRAGMENT, frames.FRAGMENT, 2]
    assert pieces[0].startswith("[x")
    assert pieces[-1] == "x]"


@given(
    rid=st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=8), st.none()),
    count=st.integers(min_value=0, max_value=4),
    more=st.booleans(),
    snapshot=st.one_of(st.none(), st.tuples(st.integers(0, 99), st.none() | st.integers(0, 99))),
)
def test_a_sync_page_joined_into_its_reply_is_the_reply_of_its_result(
    rid: int | str | None, count: int, more: bool, snapshot: tuple[int, int | None] | None
) -> None:
    """A sync page joins its events straight into the reply's envelope: the very text
    `raw_result` makes of the page's result, and the JSON-RPC reply a client reads."""
    events = [wire.splice_event(i + 1, "read", 1.5, '{"up_to":7}') for i in range(count)]
    req = rpc.Request(method="sync", params={}, id=rid)
    envelope = frames.result_envelope(req)
    assert envelope is not None
    plain = wire.sync_result_text(events, count, more, snapshot is not None, snapshot)
    joined = wire.sync_result_text(
        events, count, more, snapshot is not None, snapshot, before=envelope[0], after=envelope[1]
    )
    assert joined == frames.raw_result(req, plain)
    assert json.loads(joined) == {"jsonrpc": "2.0", "result": json.loads(plain), "id": rid}
    assert frames.result_envelope(rpc.Request("sync", {}, is_notification=True)) is None


def test_an_encoded_result_is_the_reply_result_would_give() -> None:
    req = rpc.parse('{"jsonrpc":"2.0","id":7,"method":"send"}').items[0]
    assert isinstance(req, rpc.Request)
    value = {"text": "Sure 🍕", "at": 1.5}
    enc = frames.Encoded(value, wire.encode_body(value))
    assert frames.encoded_result(req, enc) == frames.result(req, value)
    # A lone surrogate has no UTF-8 form: the text is made again, escaped, like `result`.
    odd = {"name": "a\udc80"}
    assert frames.encoded_result(req, frames.Encoded(odd, wire.encode_body(odd))) == (
        frames.result(req, odd)
    )
