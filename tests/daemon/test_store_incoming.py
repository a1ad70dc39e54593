"""glosmsd/daemon/store/incoming.py: the checks and shapes of a server MESSAGE.

The catch-up builds each new message's event payload with `row_json` instead of
`row(...).to_json()`; both must give the same JSON for every message `parse` accepts.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from glosmsd.daemon.store.incoming import IncomingMessage, valid_message

_TEXT = st.text(max_size=8)
_OPT_TEXT = st.none() | _TEXT
_FILE = st.fixed_dictionaries(
    {"sha256": st.sampled_from(["a" * 64, "b" * 64])},
    optional={
        "name": _TEXT,
        "mime": _OPT_TEXT,
        "size": st.none() | st.integers(0, 10**9),
        "path": _TEXT,
    },
)
_SENDER = st.fixed_dictionaries(
    {"ext": st.sampled_from(["1001", "1002"])},
    optional={"name": _OPT_TEXT, "avatar": _OPT_TEXT},
)
_MESSAGE = st.fixed_dictionaries(
    {
        "id": st.integers(0, 2**63 - 1),
        "number": _TEXT,
        "remote": _TEXT,
        "direction": st.sampled_from(["in", "out"]),
        "text": _TEXT,
        "state": st.sampled_from(["sending", "sent", "failed"]),
        "at": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**9), 10**9),
    },
    optional={
        "client_id": _OPT_TEXT,
        "reason": _OPT_TEXT,
        "files": st.lists(_FILE, max_size=3),
        "sender": st.none() | _SENDER,
    },
)


@given(
    _MESSAGE,
    st.sampled_from([None, "1001"]),
    st.dictionaries(
        st.sampled_from(["a" * 64, "c" * 64]),
        st.tuples(_OPT_TEXT, st.sampled_from(["none", "downloading", "done", "failed"])),
    ),
)
def test_row_json_is_the_row_as_json(
    msg: dict[str, Any], own_ext: str | None, states: dict[str, tuple[str | None, str]]
) -> None:
    m = IncomingMessage.parse(msg, own_ext)
    assert m is not None
    assert m.row_json(7, 3, states) == m.row(7, 3, states).to_json()


def _good() -> dict[str, Any]:
    return {
        "id": 5,
        "number": "+15550001001",
        "remote": "+15550002002",
        "direction": "in",
        "text": "hi",
        "state": "sent",
        "at": 1.7e9,
        "client_id": None,
        "reason": None,
        "files": [{"sha256": "a" * 64, "name": "p.jpg", "mime": "image/jpeg", "size": 3}],
        "sender": {"ext": "1002", "name": "Bo", "avatar": None},
    }


def test_valid_message_rejects_every_wrong_field() -> None:
    assert valid_message(_good())
    wrong: list[tuple[str, Any]] = [
        ("id", True),
        ("id", "5"),
        ("id", None),
        ("number", 1),
        ("remote", None),
        ("direction", "sideways"),
        ("text", b"hi"),
        ("state", "lost"),
        ("at", math.inf),
        ("at", math.nan),
        ("at", False),
        ("at", "1"),
        ("client_id", 3),
        ("reason", 3),
        ("files", {}),
        ("files", [None]),
        ("files", [{"name": "x"}]),
        ("files", [{"sha256": "a", "size": True}]),
        ("files", [{"sha256": "a", "mime": 1}]),
        ("files", [{"sha256": "a", "name": None}]),
        ("sender", "1002"),
        ("sender", {"name": "Bo"}),
        ("sender", {"ext": "1002", "name": 1}),
        ("sender", {"ext": "1002", "avatar": 1}),
    ]
    for key, value in wrong:
        assert not valid_message({**_good(), key: value}), (key, value)
    for key in ("id", "number", "remote", "direction", "text", "state", "at"):
        bad = _good()
        del bad[key]
        assert not valid_message(bad), key
    for key in ("client_id", "reason", "files", "sender"):
        ok = _good()
        del ok[key]
        assert valid_message(ok), key
    assert not valid_message([_good()])


def test_parse_drops_the_users_own_sharer() -> None:
    own = IncomingMessage.parse({**_good(), "sender": {"ext": "1001"}}, "1001")
    other = IncomingMessage.parse(_good(), "1001")
    assert own is not None
    assert own.sender is None
    assert own.sharer is None
    assert other is not None
    assert other.sharer == {"ext": "1002", "name": "Bo", "avatar": None}
