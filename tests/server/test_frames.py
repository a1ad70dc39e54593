"""glosmsd/server/frames.py: a big reply in pieces is the frame `assemble` builds."""

from __future__ import annotations

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
