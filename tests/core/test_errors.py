"""The error tree: each class's JSON-RPC shape, and rebuilding it from a peer's reply."""

from __future__ import annotations

from typing import Any

import pytest

from glosmsd.core import errors
from glosmsd.core.errors import (
    APPLICATION_ERRORS,
    GlosmsdError,
    NotFound,
    PoisonEvent,
    ProtocolError,
    RemoteProtocolError,
    RpcError,
    StoreError,
    error_from_rpc,
)

ALL_CLASSES: tuple[type[GlosmsdError], ...] = errors.ALL_ERRORS


def test_application_codes_are_unique_and_in_the_server_range() -> None:
    codes = [cls.code for cls in APPLICATION_ERRORS]
    assert len(set(codes)) == len(codes)
    assert all(-32099 <= code <= -32000 for code in codes)


def test_kinds_are_unique() -> None:
    kinds = [cls.kind for cls in ALL_CLASSES]
    assert len(set(kinds)) == len(kinds)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_to_rpc_shape_without_data(cls: type[GlosmsdError]) -> None:
    assert cls("what happened; what to do").to_rpc() == {
        "code": cls.code,
        "message": "what happened; what to do",
        "data": {"kind": cls.kind},
    }


def test_to_rpc_merges_data_and_keeps_kind() -> None:
    exc = NotFound("No message 7.", data={"id": 7, "kind": "something-else"})
    assert exc.to_rpc() == {
        "code": -32009,
        "message": "No message 7.",
        "data": {"id": 7, "kind": "not-found"},
    }


def test_rpc_error_carries_its_own_code() -> None:
    assert RpcError(-32601, "Method not found").to_rpc() == {
        "code": -32601,
        "message": "Method not found",
    }
    assert RpcError(-32602, "Invalid params", data={"x": 1}).to_rpc() == {
        "code": -32602,
        "message": "Invalid params",
        "data": {"x": 1},
    }


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("data", [None, {"id": 3, "path": "/tmp/a.jpg"}])
def test_round_trip(cls: type[GlosmsdError], data: dict[str, Any] | None) -> None:
    sent = cls("Something failed: try again.", data=data)
    got = error_from_rpc(sent.to_rpc())
    assert type(got) is cls
    assert got.message == sent.message
    assert got.data == data
    assert got.to_rpc() == sent.to_rpc()


@pytest.mark.parametrize("code", [-32700, -32600, -32601, -32602, -32603, -32050, 1, 0])
def test_unknown_code_gives_rpc_error(code: int) -> None:
    got = error_from_rpc({"code": code, "message": "m", "data": {"kind": "not-found"}})
    assert type(got) is RpcError
    assert got.rpc_code == code
    assert got.message == "m"
    # An unknown code keeps the peer's data as sent, kind included.
    assert got.data == {"kind": "not-found"}


@pytest.mark.parametrize("code", [None, "oops", 1.5, True, [1]])
def test_malformed_code_gives_internal_error(code: object) -> None:
    got = error_from_rpc({"code": code, "message": "m"})
    assert type(got) is RpcError
    assert got.rpc_code == errors.INTERNAL_ERROR


def test_missing_or_odd_message_and_data() -> None:
    got = error_from_rpc({"code": -32009, "message": 42, "data": ["not", "a", "dict"]})
    assert type(got) is NotFound
    assert got.message == "42"
    assert got.data is None
    assert error_from_rpc({"code": -32009}).message == "error"


def test_kind_of_another_code_is_ignored() -> None:
    # schema-too-new belongs to -32005; on -32002 it must not pick SchemaTooNew.
    got = error_from_rpc({"code": -32002, "message": "m", "data": {"kind": "schema-too-new"}})
    assert type(got) is ProtocolError


def test_unknown_kind_keeps_the_code_class() -> None:
    got = error_from_rpc({"code": -32005, "message": "m", "data": {"kind": "new-in-v9", "a": 1}})
    assert type(got) is StoreError
    assert got.data == {"a": 1}


def test_peer_data_is_not_mutated() -> None:
    sent = {"code": -32009, "message": "m", "data": {"kind": "not-found", "id": 1}}
    error_from_rpc(sent)
    assert sent["data"] == {"kind": "not-found", "id": 1}


def test_rebuilt_errors_are_caught_by_their_parents() -> None:
    with pytest.raises(ProtocolError):
        raise error_from_rpc(RemoteProtocolError("bad frame").to_rpc())
    with pytest.raises(GlosmsdError):
        raise error_from_rpc({"code": -32601, "message": "Method not found"})


def test_poison_event_names_its_event_and_survives_the_wire() -> None:
    exc = PoisonEvent(
        "message event seq 17: files[0].name is not text", seq=17, event_kind="message"
    )
    assert (exc.seq, exc.event_kind) == (17, "message")
    assert isinstance(exc, RemoteProtocolError)
    back = error_from_rpc(exc.to_rpc())
    assert type(back) is PoisonEvent
    assert isinstance(back, PoisonEvent)
    assert (back.seq, back.event_kind, back.message) == (17, "message", exc.message)
    assert PoisonEvent("no seq").seq is None


def _tree_classes() -> set[type[GlosmsdError]]:
    found: set[type[GlosmsdError]] = set()
    todo: list[type[GlosmsdError]] = [GlosmsdError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return {c for c in found if c.__module__ == errors.__name__}


def test_the_docstring_draws_every_class_with_its_parent_code_and_kind() -> None:
    doc = errors.__doc__ or ""
    drawing = [line for line in doc.splitlines() if line.startswith("    ") and line.strip()]
    rows: dict[str, tuple[int, list[str]]] = {}
    for line in drawing:
        words = line.replace("│", " ").replace("├──", "   ").replace("└──", "   ").split()
        if words and words[0].isidentifier() and words[0][0].isupper():
            depth = (len(line) - len(line.lstrip(" │├└─"))) // 4
            rows[words[0]] = (depth, words[1:])
    classes = _tree_classes()
    assert {c.__name__ for c in classes} == set(rows)
    for cls in classes:
        _depth, rest = rows[cls.__name__]
        if cls is not errors.RpcError:
            assert cls.kind in rest, cls
            own_code = cls is GlosmsdError or cls.code != cls.__mro__[1].code  # type: ignore[attr-defined]
            assert (str(cls.code) in rest) == own_code, cls
    # The indentation draws the parent of each class.
    order = list(rows)
    for cls in classes - {GlosmsdError}:
        depth = rows[cls.__name__][0]
        above = order[: order.index(cls.__name__)]
        parent = next(n for n in reversed(above) if rows[n][0] == depth - 1)
        assert cls.__mro__[1].__name__ == parent, cls


def test_every_class_but_rpc_error_is_rebuilt_from_its_kind() -> None:
    assert set(errors.ALL_ERRORS) == _tree_classes() - {errors.RpcError}


def test_an_ambiguous_recipient_is_bad_input_with_its_choices() -> None:
    choices = [{"pick": 1, "label": "mobile", "number": "+15557654321"}]
    sent = errors.AmbiguousRecipient("Bob Roe has 2 numbers", data={"choices": choices})
    got = error_from_rpc(sent.to_rpc())
    assert isinstance(got, errors.BadInput)
    assert type(got) is errors.AmbiguousRecipient
    assert got.data == {"choices": choices}
