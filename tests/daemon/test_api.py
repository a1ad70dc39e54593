"""The OpenRPC document of the socket (`glosmsd.daemon.api`, checked in as `ipc/openrpc.json`).

Every method has a named result schema and every notification the schema of its params;
the document has the structure OpenRPC requires; every schema in it is valid draft-07 (the
dialect OpenRPC uses) and every `$ref` resolves; the enums equal the code's; closed shapes
reject what they should; and the replies SPEC.md shows outside the replayed examples fit.
Real replies from a real daemon are held to these shapes in tests/docs/test_spec.py and
tests/daemon/test_ipc_daemon.py.

The published OpenRPC meta-schema is not available offline here, so `OPENRPC` below
restates what it requires of the parts this document uses.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any, Final, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from glosmsd.core import rules
from glosmsd.core.protocol import State
from glosmsd.daemon import api
from glosmsd.daemon.service import PREFS
from glosmsd.daemon.store import EVENT_KINDS, STEPS
from tests.support import specdoc

_EXT: Final[dict[str, Any]] = {"^x-": {}}
_TEXT: Final = {"type": "string"}
_CONTENT_DESCRIPTOR: Final = {
    "type": "object",
    "required": ["name", "schema"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "summary": _TEXT,
        "description": _TEXT,
        "schema": {"type": ["object", "boolean"]},
        "required": {"type": "boolean"},
        "deprecated": {"type": "boolean"},
    },
    "patternProperties": _EXT,
    "additionalProperties": False,
}
#: What OpenRPC 1.x requires of a document, for the parts this one uses.
OPENRPC: Final = {
    "type": "object",
    "required": ["openrpc", "info", "methods"],
    "properties": {
        "openrpc": {"type": "string", "pattern": r"^1\.[0-3]\.\d+$"},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "properties": {
                "title": _TEXT,
                "description": _TEXT,
                "termsOfService": _TEXT,
                "version": _TEXT,
                "contact": {"type": "object"},
                "license": {"type": "object"},
            },
            "patternProperties": _EXT,
            "additionalProperties": False,
        },
        "servers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "url"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "url": _TEXT,
                    "summary": _TEXT,
                    "description": _TEXT,
                    "variables": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["default"],
                            "properties": {
                                "default": _TEXT,
                                "description": _TEXT,
                                "enum": {"type": "array", "items": _TEXT},
                            },
                            "additionalProperties": False,
                        },
                    },
                },
                "patternProperties": _EXT,
                "additionalProperties": False,
            },
        },
        "methods": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "params", "result"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "summary": _TEXT,
                    "description": _TEXT,
                    "tags": {"type": "array"},
                    "paramStructure": {"enum": ["by-position", "by-name", "either"]},
                    "params": {"type": "array", "items": _CONTENT_DESCRIPTOR},
                    "result": _CONTENT_DESCRIPTOR,
                    "errors": {"type": "array"},
                    "links": {"type": "array"},
                    "examples": {"type": "array"},
                    "deprecated": {"type": "boolean"},
                },
                "patternProperties": _EXT,
                "additionalProperties": False,
            },
        },
        "components": {
            "type": "object",
            "properties": {
                "schemas": {
                    "type": "object",
                    "patternProperties": {"[0-z]+": {"type": ["object", "boolean"]}},
                },
            },
        },
    },
    "patternProperties": _EXT,
    "additionalProperties": False,
}
#: This document's own extension: the notifications the socket sends.
NOTIFICATIONS: Final = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "summary", "params"],
        "properties": {"name": _TEXT, "summary": _TEXT, "params": _CONTENT_DESCRIPTOR},
        "additionalProperties": False,
    },
}
SCHEMA_REF: Final = "#/components/schemas/"


@cache
def document() -> dict[str, Any]:
    return api.openrpc(api.full_table())


def _methods() -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in document()["methods"]}


def _component(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document()["components"]["schemas"][name]
    return schema


def _schemas() -> Iterator[tuple[str, Any]]:
    """Every JSON Schema in the document, with where it is."""
    doc = document()
    for m in doc["methods"]:
        for p in m["params"]:
            yield f"{m['name']} param {p['name']}", p["schema"]
        yield f"{m['name']} result", m["result"]["schema"]
    for name, schema in doc["components"]["schemas"].items():
        yield f"components.schemas.{name}", schema
    for n in doc["x-notifications"]:
        yield f"notification {n['name']}", n["params"]["schema"]


def _refs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --------------------------------------------------------------------------- the document


def test_every_method_and_notification_has_a_shape() -> None:
    table = {m.name for m in api.full_table()}
    assert set(_methods()) == table
    assert len(document()["methods"]) == len(table)
    for name, method in _methods().items():
        result = method["result"]
        assert result["schema"], f"{name} has no result schema"
        assert result["name"] != "result", f"{name}: name what it answers"
    assert [n["name"] for n in document()["x-notifications"]] == [
        "event",
        "progress",
        "window.show",
    ]


def test_the_document_has_the_structure_openrpc_requires() -> None:
    doc = document()
    assert not [e.message for e in Draft7Validator(OPENRPC).iter_errors(doc)]
    assert not [
        e.message for e in Draft7Validator(NOTIFICATIONS).iter_errors(doc["x-notifications"])
    ]
    # The checked-in copy is this document (tests/docs/test_spec.py compares the bytes).
    assert json.loads((specdoc.SPEC.parent / "openrpc.json").read_text()) == doc


def test_every_schema_is_draft07_and_every_ref_resolves() -> None:
    components = document()["components"]["schemas"]
    for where, schema in _schemas():
        Draft7Validator.check_schema(schema)
        for node in _refs(schema):
            # draft-07 ignores whatever stands beside a $ref: nothing may.
            assert set(node) == {"$ref"}, f"{where}: {node}"
            assert node["$ref"].startswith(SCHEMA_REF), f"{where}: {node}"
            assert node["$ref"].removeprefix(SCHEMA_REF) in components, f"{where}: {node}"


def test_every_shared_shape_is_used() -> None:
    doc = document()
    components = doc["components"]["schemas"]
    roots = [m["result"]["schema"] for m in doc["methods"]]
    roots += [n["params"]["schema"] for n in doc["x-notifications"]]
    used: set[str] = set()
    todo = [node["$ref"].removeprefix(SCHEMA_REF) for root in roots for node in _refs(root)]
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo += [node["$ref"].removeprefix(SCHEMA_REF) for node in _refs(components[name])]
    assert used == set(components)


def test_the_schemas_stay_out_of_the_dispatch_table() -> None:
    # Described beside the table, never bound into it: nothing on a call's path can
    # validate a result, so describing replies costs the daemon nothing per call.
    assert all(not m.result for m in api.build_table(None))


def _leaves(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema of a param schema that names a type, with where it is."""
    if not isinstance(schema, dict):
        return
    if "type" in schema:
        yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _leaves(sub, f"{path}.{key}")
    yield from _leaves(schema.get("items"), f"{path}[]")


def test_every_param_bounds_its_integers_and_strings() -> None:
    """Issue 13 item 12: an unbounded integer reached SQLite as 1e20 or 2^70 (OverflowError,
    -32603). Every integer a client may send has a minimum and a maximum no larger than
    2^53 - 1, and every string a maxLength; `prefs_set`'s `value` is any JSON value by
    design (the key says which type), and bounded by the line."""
    unbounded = []
    for method in document()["methods"]:
        for param in method["params"]:
            where = f"{method['name']}.{param['name']}"
            if where == "prefs_set.value":
                assert param["schema"] == {}
                continue
            leaves = list(_leaves(param["schema"], where))
            assert leaves, where
            for path, leaf in leaves:
                types = leaf["type"] if isinstance(leaf["type"], list) else [leaf["type"]]
                if "integer" in types and not (
                    "minimum" in leaf and leaf.get("maximum", 2**53) <= api.MAX_INT
                ):
                    unbounded.append(f"{path}: integer")
                if "string" in types and "maxLength" not in leaf and "enum" not in leaf:
                    unbounded.append(f"{path}: string")
                assert "number" not in types, f"{path}: integers only, nothing takes a float"
    assert not unbounded


# --------------------------------------------------------------------------- precision


def _checks(table: str) -> dict[str, list[str]]:
    sql = "".join(f"{statement};\n" for step in STEPS for statement in step.sql)
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\s*\);", sql, re.S)
    assert body is not None, table
    return {
        column: re.findall(r"'([^']*)'", values)
        for column, values in re.findall(r"CHECK \((\w+) IN \(([^)]*)\)\)", body.group(1))
    }


def test_the_enums_are_the_codes_values() -> None:
    message = _component("message")["properties"]
    assert message["state"]["enum"] == _checks("messages")["state"]
    assert message["direction"]["enum"] == _checks("messages")["direction"]
    assert (
        _component("event_message_state")["properties"]["state"]["enum"]
        == (_checks("messages")["state"])
    )
    assert _component("conversation")["properties"]["last_direction"]["enum"] == [
        *_checks("messages")["direction"],
        None,
    ]
    file_states = _checks("files")["state"]
    assert _component("attachment")["properties"]["state"]["enum"] == file_states
    download = _methods()["download"]["result"]["schema"]
    assert download["properties"]["files"]["items"]["properties"]["state"]["enum"] == file_states
    assert _component("link")["properties"]["state"]["enum"] == [s.value for s in State]
    count = _component("count")["properties"]
    assert count["kind"]["enum"] == list(get_args(rules.Kind))
    assert count["encoding"]["enum"] == list(get_args(rules.Encoding))


def test_every_event_kind_has_its_data_shape() -> None:
    event = _component("event")
    assert event["properties"]["kind"]["enum"] == list(EVENT_KINDS)
    by_kind = {
        rule["if"]["properties"]["kind"]["const"]: rule["then"]["properties"]["data"]["$ref"]
        for rule in event["allOf"]
    }
    assert by_kind == {kind: f"{SCHEMA_REF}event_{kind}" for kind in EVENT_KINDS}


def test_the_prefs_shape_is_the_services_prefs() -> None:
    prefs = _component("prefs")
    assert list(prefs["properties"]) == list(PREFS)
    assert prefs["required"] == list(PREFS)
    assert {kind for _default, kind, _desc in PREFS.values()} == {bool}
    assert all(p == {"type": "boolean"} for p in prefs["properties"].values())
    assert _component("event_prefs")["properties"]["key"]["enum"] == list(PREFS)


MESSAGE: Final[dict[str, Any]] = {
    "id": 4,
    "conversation_id": 1,
    "number": "+15550001001",
    "remote": "+15557654321",
    "server_id": 4,
    "client_id": "bo-1",
    "direction": "out",
    "text": "Bo here",
    "state": "sent",
    "reason": None,
    "at": 1795592805.1,
    "sender": {"ext": "1002", "name": "Bo Diaz", "avatar": None},
    "files": [
        {
            "sha256": "3" * 64,
            "name": "list.txt",
            "mime": "text/plain",
            "size": 30,
            "path": None,
            "state": "none",
        }
    ],
}
CONVERSATION: Final[dict[str, Any]] = {
    "id": 1,
    "number": "+15550001001",
    "remote": "+15557654321",
    "name": None,
    "title": "+15557654321",
    "last_at": None,
    "unread": 0,
    "last_message_id": None,
    "last_text": None,
    "last_direction": None,
}
DROP = object()


def _changed(obj: Any, path: tuple[str | int, ...], value: Any) -> Any:
    out = copy.deepcopy(obj)
    *parents, last = path
    node = out
    for key in parents:
        node = node[key]
    if value is DROP:
        del node[last]
    else:
        node[last] = value
    return out


def _page(message: Any) -> dict[str, Any]:
    return {"conversation": CONVERSATION, "messages": [message]}


def test_the_valid_examples_are_valid() -> None:
    shapes = specdoc.Shapes(document())
    assert shapes.result_problems("messages", _page(MESSAGE)) == []
    assert shapes.result_problems("messages", _page({**MESSAGE, "sender": None})) == []
    assert shapes.result_problems("prefs_get", True) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("extra",), 1),
        (("state",), "delivered"),
        (("direction",), None),
        (("files",), DROP),
        (("text",), None),
        (("server_id",), "4"),
        (("server_id",), 0),
        (("at",), "today"),
        (("sender",), {}),
        (("sender", "avatar"), DROP),
        (("files", 0, "state"), "gone"),
        (("files", 0, "sha256"), "not-a-hash"),
        (("files", 0, "size"), -1),
        (("files", 0, "thumbnail"), "x"),
    ],
)
def test_a_message_off_its_shape_is_rejected(path: tuple[str | int, ...], value: Any) -> None:
    shapes = specdoc.Shapes(document())
    assert shapes.result_problems("messages", _page(_changed(MESSAGE, path, value)))


@pytest.mark.parametrize(
    ("method", "result"),
    [
        ("conversations", [{**CONVERSATION, "unread": -1}]),
        ("conversations", [{**CONVERSATION, "last_direction": "sideways"}]),
        ("prefs_get", "yes"),
        ("prefs_get", {"notify": True}),
        ("prefs_set", {**dict.fromkeys(PREFS, True), "colour": True}),
        ("count", {"kind": "fax", "encoding": "GSM-7", "segments": 1, "units": 1}),
        ("subscribe", {"subscribed": False, "last_id": 1, "replayed": 0, "gap": False}),
        ("send", {"message": MESSAGE, "dropped": [], "notice": None, "queued": True}),
        ("resend", {}),
        ("rpc.discover", {"methods": []}),
    ],
)
def test_an_off_shape_result_is_rejected(method: str, result: Any) -> None:
    assert specdoc.Shapes(document()).result_problems(method, result)


@pytest.mark.parametrize(
    "event",
    [
        {"id": 1, "kind": "read", "at": 1.0, "data": {"message": MESSAGE}},
        {"id": 1, "kind": "gone", "at": 1.0, "data": {}},
        {"id": 0, "kind": "reset", "at": 1.0, "data": {"cursor": 3}},
        {"id": 1, "kind": "reset", "at": 1.0, "data": {"cursor": 3}, "extra": 1},
        {"id": 1, "kind": "link", "at": 1.0, "data": {"state": "live", "online": True}},
        {"id": 1, "kind": "message", "at": 1.0, "data": {"message": {**MESSAGE, "id": "4"}}},
    ],
)
def test_an_off_shape_event_is_rejected(event: dict[str, Any]) -> None:
    assert specdoc.Shapes(document()).params_problems("event", event)


@given(
    text=st.text(max_size=2000),
    files=st.integers(0, 20),
    size=st.integers(0, 10**8),
)
def test_every_count_has_its_shape(text: str, files: int, size: int) -> None:
    result = rules.count_text(text, files=files, file_bytes=size).to_json()
    assert specdoc.shapes().result_problems("count", result) == []


# --------------------------------------------------------------------------- SPEC.md


PLAIN_BLOCK = re.compile(r"```json\n(.*?)```", re.S)


def test_the_specs_plain_examples_have_their_shapes() -> None:
    # The `json` blocks are not replayed (export writes folders); their shape still counts.
    blocks = PLAIN_BLOCK.findall(specdoc.SPEC.read_text())
    assert blocks
    for body in blocks:
        requests = [ln[4:] for ln in body.splitlines() if ln.startswith("--> ")]
        replies = [json.loads(ln[4:]) for ln in body.splitlines() if ln.startswith("<-- ")]
        assert requests
        assert replies
        assert specdoc.shapes().exchange_problems(requests, replies) == []


def test_the_whole_emoji_catalogue_has_its_shape() -> None:
    # SPEC.md shows a shortened reply; the daemon's real one (about 140 KB) must fit too.
    from glosmsd.daemon import emojidata

    request = '{"jsonrpc":"2.0","id":1,"method":"emoji_catalog"}'
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "result": emojidata.catalog_json()}
    assert specdoc.shapes().exchange_problems([request], [reply]) == []
    bad = copy.deepcopy(reply)
    bad["result"]["groups"][1]["emoji"][0]["tones"] = ["👋🏻"]
    assert specdoc.shapes().exchange_problems([request], [bad]) != []
