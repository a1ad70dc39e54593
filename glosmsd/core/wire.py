"""The server protocol's vocabulary, written once (docs/protocol.md is its prose).

Owns what travels between a daemon and an SMS server: the bounds of every field, the
shape of a MESSAGE, its files and its sender, the event kinds and their bodies, the
params of every server method (as JSON Schema, so the server's method table validates
them and the docs and fuzz tests read them), how a stored event body is spliced into a
frame without decoding it, and the check a client runs on whatever a server sends.

The reference server builds what it sends with the builders here; the daemon's link runs
`check_event`/`check_hello` on every frame before anything reaches the store, so a field
a server that is not ours gets wrong (a lone surrogate in a file name, an id past what
SQLite holds, a text of megabytes) is cleaned or the event refused as a `PoisonEvent`,
never handed on. This module must never do I/O, read a clock or import an adapter.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeGuard

from glosmsd.core import fastjson, rpc
from glosmsd.core.errors import PoisonEvent, RemoteProtocolError

PROTOCOL: Final = 1

# --------------------------------------------------------------------------- bounds

#: Ids, seqs, cursors and offsets: what SQLite's INTEGER holds (a larger one is refused
#: before any query sees it, never an OverflowError).
MAX_ID: Final = 2**63 - 1
MAX_NUMBER: Final = 40  # a phone number or short code, as typed (spaces and dashes too)
MAX_EXT: Final = 32
MAX_PERSON_NAME: Final = 200
MAX_FILE_NAME: Final = 255
MAX_MIME: Final = 255
MAX_TEXT: Final = 20_000  # characters of one message's text (an MMS allows 1,000 by default)
MAX_REASON: Final = 1000
MAX_CLIENT_ID: Final = 64
MAX_FILES: Final = 100  # files on one message (an MMS allows 10 by default)
MAX_CLIENT_NAME: Final = 200
MAX_QUERY: Final = 200
MAX_CONTACTS: Final = 500
MAX_DEVICE: Final = 64
#: Timestamps (`at`) outside [0, this] are clamped: year 3000 is far enough for any clock.
MAX_TIME: Final = 32_503_680_000.0

#: One frame, either way. A peer that sends more is closed with code 1009.
MAX_FRAME: Final = 4 * 1024 * 1024
#: Bytes of events in one `sync` page (besides the count limit). A page may exceed it by
#: one event, and no event exceeds `MAX_EVENT_BYTES`, so no page ever reaches `MAX_FRAME`.
SYNC_PAGE_BYTES: Final = 1024 * 1024
#: The most one event takes on the wire. The field bounds above keep every event well
#: under it (the largest possible, every character 4 bytes of UTF-8, is about 200 KB);
#: an older event past it is cut to the bounds on its way out (`fit_event`).
MAX_EVENT_BYTES: Final = 1024 * 1024
SYNC_LIMIT_DEFAULT: Final = 500
SYNC_LIMIT_MAX: Final = 1000
#: A download chunk; also the avatar limit.
MAX_CHUNK: Final = 262_144

STATES: Final = ("sending", "sent", "failed")
DIRECTIONS: Final = ("in", "out")
#: Event kinds of protocol 1. A client skips other kinds (newer servers add them).
EVENT_KINDS: Final = frozenset(
    {"message", "message_state", "read", "delete_message", "delete_conversation"}
)

SHA256: Final = re.compile(r"[0-9a-f]{64}")
E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
# Control characters a text may not carry (C0 but tab/newline/CR, DEL, C1): they reach
# notifications (D-Bus strings cannot hold NUL) and terminals.
_TEXT_CONTROLS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# In names and numbers nothing below space is kept, nor the Unicode format controls
# that reorder what a reader sees (bidi overrides: a name that shows backwards).
_NAME_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


# --------------------------------------------------------------------------- schemas

ID: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
CURSOR: Final[Mapping[str, Any]] = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
NUMBER: Final[Mapping[str, Any]] = {"type": "string", "minLength": 1, "maxLength": MAX_NUMBER}
SHA: Final[Mapping[str, Any]] = {"type": "string", "pattern": f"^{SHA256.pattern}$"}
FILE_REF: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {"sha256": SHA, "name": {"type": "string", "maxLength": MAX_FILE_NAME}},
    "required": ["sha256"],
    "additionalProperties": False,
}

#: The params of every server method, in the order a positional call gives them.
PARAMS: Final[Mapping[str, tuple[rpc.Param, ...]]] = {
    "hello": (
        rpc.Param("protocol", {"type": "integer", "minimum": 0, "maximum": 1_000_000}),
        rpc.Param("client", {"type": "string", "maxLength": MAX_CLIENT_NAME}, required=False),
    ),
    "sync": (
        rpc.Param("cursor", CURSOR),
        rpc.Param(
            "limit", {"type": "integer", "minimum": 1, "maximum": SYNC_LIMIT_MAX}, required=False
        ),
        rpc.Param("snapshot_after", CURSOR, required=False),
    ),
    "send": (
        rpc.Param("client_id", {"type": "string", "minLength": 1, "maxLength": MAX_CLIENT_ID}),
        rpc.Param("to", NUMBER),
        rpc.Param("text", {"type": "string", "maxLength": MAX_TEXT}),
        rpc.Param(
            "files", {"type": "array", "maxItems": MAX_FILES, "items": FILE_REF}, required=False
        ),
        rpc.Param("from", {"type": "string", "pattern": f"^{E164.pattern}$"}, required=False),
    ),
    "read": (
        rpc.Param("number", NUMBER),
        rpc.Param("remote", NUMBER),
        rpc.Param("up_to", CURSOR),
    ),
    "delete_message": (rpc.Param("id", ID),),
    "delete_conversation": (
        rpc.Param("number", NUMBER),
        rpc.Param("remote", NUMBER),
        rpc.Param("up_to", ID, required=False),
    ),
    "contacts": (
        rpc.Param("query", {"type": "string", "maxLength": MAX_QUERY}, required=False),
        rpc.Param(
            "limit", {"type": "integer", "minimum": 1, "maximum": MAX_CONTACTS}, required=False
        ),
    ),
    "upload": (
        # base64 of at most `mms_max_bytes`; the frame limit bounds it first.
        rpc.Param("data", {"type": "string", "maxLength": MAX_FRAME}),
        rpc.Param("name", {"type": "string", "maxLength": MAX_FILE_NAME * 4}, required=False),
    ),
    "download": (
        rpc.Param("sha256", SHA),
        rpc.Param("offset", CURSOR, required=False),
        rpc.Param(
            "length", {"type": "integer", "minimum": 1, "maximum": MAX_CHUNK}, required=False
        ),
    ),
    "avatar": (rpc.Param("ext", {"type": "string", "minLength": 1, "maxLength": MAX_EXT}),),
}

SUMMARIES: Final[Mapping[str, str]] = {
    "hello": "Start the session: protocol version, account, numbers, settings.",
    "sync": "Events after the cursor (or a snapshot page); live push follows more=false.",
    "send": "Send an SMS or MMS, once per client_id.",
    "read": "Mark a conversation read up to a message id.",
    "delete_message": "Hide a message for this extension.",
    "delete_conversation": "Hide a conversation for this extension (up to a message id).",
    "contacts": "Search the company directory by name or number.",
    "upload": "Store a file for a later send; its type is checked by content.",
    "download": "A chunk of a file attached to one of your messages.",
    "avatar": "An extension's avatar image.",
}


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """The path of the first string in `value` holding a lone surrogate (not Unicode a
    database or a UTF-8 frame can carry), or None. Params are checked with it before
    any handler runs, so such a string is a -32602, not a -32603 from deep inside."""
    if isinstance(value, str):
        return path if not value.isascii() and _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key):
                return where
            found = lone_surrogate(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = lone_surrogate(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- builders


def person(ext: str, name: str | None, avatar: str | None) -> dict[str, Any]:
    """An extension as a message's `sender` or a sharer: `{"ext", "name", "avatar"}`."""
    return {"ext": ext, "name": name, "avatar": avatar}


def file_ref(sha256: str, name: str, mime: str | None, size: int | None) -> dict[str, Any]:
    """A file on a message: `{"sha256", "name", "mime", "size"}`."""
    return {"sha256": sha256, "name": name, "mime": mime, "size": size}


def message(
    *,
    id: int,
    client_id: str | None,
    number: str,
    remote: str,
    direction: str,
    text: str,
    state: str,
    reason: str | None,
    at: float,
    files: list[dict[str, Any]],
    sender: dict[str, Any] | None,
) -> dict[str, Any]:
    """The MESSAGE object, its keys in the documented order."""
    return {
        "id": id,
        "client_id": client_id,
        "number": number,
        "remote": remote,
        "direction": direction,
        "text": text,
        "state": state,
        "reason": reason,
        "at": at,
        "files": files,
        "sender": sender,
    }


def message_body(msg: Mapping[str, Any]) -> dict[str, Any]:
    return {"message": msg}


def state_body(message_id: int, state: str, reason: str | None) -> dict[str, Any]:
    return {"id": message_id, "state": state, "reason": reason}


def mark_body(number: str, remote: str, up_to: int) -> dict[str, Any]:
    """The body of a `read` or `delete_conversation` event."""
    return {"number": number, "remote": remote, "up_to": up_to}


def delete_body(message_id: int) -> dict[str, Any]:
    return {"id": message_id}


def event(seq: int, kind: str, at: float, body: Mapping[str, Any]) -> dict[str, Any]:
    """An EVENT: the envelope first, then the kind's fields."""
    return {"seq": seq, "kind": kind, "at": at, **body}


_BODY_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_body(body: Mapping[str, Any]) -> str:
    """An event body as stored and sent: compact JSON, non-ASCII kept as is (an escaped
    emoji takes 12 bytes, in UTF-8 it takes 4)."""
    return _BODY_ENCODER.encode(body)


def byte_size(text: str) -> int:
    """How many bytes `text` takes in a UTF-8 frame."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def splice_event(seq: int, kind: str, at: float, body: str) -> str:
    """The JSON text of `event(seq, kind, at, json.loads(body))`, built without decoding
    and encoding `body` again (a catch-up spent most of its time doing that).

    `kind` is one of ours (plain ASCII, nothing to escape); `body` is `encode_body`'s
    output, a JSON object.
    """
    head = f'{{"seq":{seq},"kind":"{kind}","at":{fastjson.float_texts([at])[0]}'
    return head + "}" if body == "{}" else f"{head},{body[1:]}"


def splice_events(rows: Sequence[tuple[int, str, float, str]]) -> list[str]:
    """`splice_event` of each (seq, kind, at, body) row, in one pass: a sync page of 500
    events spent a fifth of its splicing time calling `splice_event`, and then two
    thirds of the rest in `repr` of its times (0.42 of 0.64 us an event; orjson writes
    all of a page's at once, the same shortest round-trip digits, in 0.03)."""
    ats = fastjson.float_texts([at for _seq, _kind, at, _body in rows])
    return [
        f'{{"seq":{seq},"kind":"{kind}","at":{at},{body[1:]}'
        if body != "{}"
        else f'{{"seq":{seq},"kind":"{kind}","at":{at}}}'
        for (seq, kind, _at, body), at in zip(rows, ats, strict=True)
    ]


def sync_result_text(
    events: list[str],
    cursor: int,
    more: bool,
    reset: bool,
    snapshot: tuple[int, int | None] | None = None,
    *,
    before: str = "",
    after: str = "",
) -> str:
    """A `sync` result from spliced event texts (see `splice_event`). `snapshot` is
    (after, next) of a snapshot page: it lists the messages with `after < id`, up to
    `next` when another page follows (`next` is then that page's `snapshot_after`).

    `before` and `after` go around it (a reply's envelope, `frames.result_envelope`), in
    the same one join: a page of 500 events (170 KB) joined, then copied into the
    result and again into its reply, took ~120 us a copy here (each a fresh large
    allocation), the one join 10 us."""
    tail = ""
    if snapshot is not None:
        following = snapshot[1]
        nxt = "null" if following is None else str(following)
        tail = f',"snapshot":{{"after":{snapshot[0]},"next":{nxt}}}'
    head = f'{before}{{"events":['
    end = (
        f'],"cursor":{cursor},"more":{"true" if more else "false"},'
        f'"reset":{"true" if reset else "false"}{tail}}}{after}'
    )
    if len(events) < 2:
        return f"{head}{''.join(events)}{end}"
    return ",".join([head + events[0], *events[1:-1], events[-1] + end])


def fit_event(text: str) -> str:
    """`text` (one event's JSON) if it fits in `MAX_EVENT_BYTES`; else the event cut to
    the field bounds (its text, file names and lists shortened), which always fits.

    Events written within the bounds never need it; one an older server stored past
    them would otherwise be too big for any frame and hold the log up forever.
    """
    if len(text) <= MAX_EVENT_BYTES // 4 or byte_size(text) <= MAX_EVENT_BYTES:
        return text
    obj = json.loads(text)
    msg = obj.get("message")
    if isinstance(msg, dict) and isinstance(msg.get("files"), list):
        msg["files"] = msg["files"][:MAX_FILES]
    try:
        clean = check_event(obj)
    except PoisonEvent:
        clean = None
    if clean is None:  # the envelope alone still moves a client's cursor past it
        clean = {"seq": obj.get("seq"), "kind": str(obj.get("kind"))[:40], "at": 0.0}
    return _BODY_ENCODER.encode(clean)


# --------------------------------------------------------------------------- checks


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Bad(Exception):  # noqa: N818 - internal: becomes a PoisonEvent with the event named
    def __init__(self, where: str, what: str, got: Any = None) -> None:
        shown = "" if got is None else f" (got {_clip(got)})"
        super().__init__(f"{where} {what}{shown}")


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def clean_text(value: str, limit: int) -> str:
    """`value` as a client may store and show it: lone surrogates become U+FFFD, control
    characters (but tab and newlines) go, and it stops at `limit` characters."""
    if len(value) > limit:
        value = value[:limit]
    if value.isascii():
        return _TEXT_CONTROLS.sub("", value) if not value.isprintable() else value
    value = _SURROGATE.sub("\ufffd", value)
    return _TEXT_CONTROLS.sub("", value)


def clean_name(value: str, limit: int) -> str:
    """A name or number for display: as `clean_text`, with no line breaks, no bidi
    overrides and no surrounding blanks."""
    if len(value) > limit * 4:
        value = value[: limit * 4]
    if not value.isascii():
        value = _SURROGATE.sub("\ufffd", value)
    if not value.isprintable():
        value = _NAME_CONTROLS.sub("", value)
    return value.strip()[:limit]


def _str(obj: Mapping[str, Any], key: str, where: str, limit: int, *, name: bool = False) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _Bad(f"{where}{key}", "must be text")
    return clean_name(value, limit) if name else clean_text(value, limit)


def _opt_str(
    obj: Mapping[str, Any], key: str, where: str, limit: int, *, name: bool = False
) -> str | None:
    if obj.get(key) is None:
        return None
    return _str(obj, key, where, limit, name=name)


def _int(obj: Mapping[str, Any], key: str, where: str, low: int = 0) -> int:
    value = obj.get(key)
    if not _is_int(value) or not low <= value <= MAX_ID:
        raise _Bad(f"{where}{key}", f"must be a whole number from {low} to 2^63-1", value)
    return value


def _number(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _str(obj, key, where, MAX_NUMBER, name=True)
    if not value:
        raise _Bad(f"{where}{key}", "must be a phone number, not empty")
    return value


def _time(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad(where, "must be a time in unix seconds")
    return min(max(float(value), 0.0), MAX_TIME)


def _person(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(where, "must be an object")
    ext = _str(value, "ext", f"{where}.", MAX_EXT, name=True)
    if not ext:
        raise _Bad(f"{where}.ext", "must not be empty")
    avatar = value.get("avatar")
    if avatar is not None and not (isinstance(avatar, str) and SHA256.fullmatch(avatar)):
        avatar = None  # not a file we could ever fetch: show no avatar
    return person(ext, _opt_str(value, "name", f"{where}.", MAX_PERSON_NAME, name=True), avatar)


def _file(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(where, "must be an object")
    sha = value.get("sha256")
    if not (isinstance(sha, str) and SHA256.fullmatch(sha)):
        raise _Bad(f"{where}.sha256", "must be 64 lowercase hex digits")
    name = value.get("name")
    shown = clean_file_name(name) if isinstance(name, str) else "file"
    mime = _opt_str(value, "mime", f"{where}.", MAX_MIME, name=True)
    size = value.get("size")
    if size is not None and not (_is_int(size) and 0 <= size <= MAX_ID):
        raise _Bad(f"{where}.size", "must be a byte count")
    return file_ref(sha, shown, mime or None, size)


def clean_file_name(raw: str) -> str:
    """A display name only: no directories, no control or format characters, no leading
    dots, never empty (`../../etc/passwd` becomes `passwd`). Never a path: a client saving
    a file still chooses its own."""
    base = re.split(r"[/\\]", raw)[-1]
    if not base.isprintable():
        # Lone surrogates, controls, bidi overrides: none of them belongs in a name.
        base = "".join(ch for ch in base if ch.isprintable())
    return base.strip().lstrip(".").strip()[:MAX_FILE_NAME] or "file"


def _message(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad("message", "must be an object")
    w = "message."
    direction, state = value.get("direction"), value.get("state")
    if direction not in DIRECTIONS:
        raise _Bad(f"{w}direction", "must be 'in' or 'out'", direction)
    if state not in STATES:
        raise _Bad(f"{w}state", "must be sending, sent or failed", state)
    files = value.get("files", [])
    if not isinstance(files, list) or len(files) > MAX_FILES:
        raise _Bad(f"{w}files", f"must be a list of at most {MAX_FILES} files")
    sender = value.get("sender")
    client_id = value.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise _Bad(f"{w}client_id", "must be text or null")
    return message(
        id=_int(value, "id", w, low=1),
        client_id=None if client_id is None else clean_name(client_id, MAX_CLIENT_ID) or None,
        number=_number(value, "number", w),
        remote=_number(value, "remote", w),
        direction=direction,
        text=_str(value, "text", w, MAX_TEXT),
        state=state,
        reason=_opt_str(value, "reason", w, MAX_REASON),
        at=_time(value.get("at"), f"{w}at"),
        files=[_file(f, f"{w}files[{i}]") for i, f in enumerate(files)],
        sender=None if sender is None else _person(sender, f"{w}sender"),
    )


def _body(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "message":
        return message_body(_message(obj.get("message")))
    if kind == "message_state":
        state = obj.get("state")
        if state not in STATES:
            raise _Bad("state", "must be sending, sent or failed", state)
        return state_body(_int(obj, "id", "", 1), state, _opt_str(obj, "reason", "", MAX_REASON))
    if kind == "delete_message":
        return delete_body(_int(obj, "id", "", 1))
    # read, delete_conversation
    return mark_body(_number(obj, "number", ""), _number(obj, "remote", ""), _int(obj, "up_to", ""))


def check_event(obj: Any, *, need_seq: bool = True) -> dict[str, Any] | None:
    """A clean copy of the event a server sent, or None for a kind this protocol does
    not know (skipped, as the protocol says; its seq still counts).

    Every field is checked against the bounds above; strings are cleaned (`clean_text`,
    `clean_name`, `clean_file_name`), fields the protocol does not define are dropped,
    and anything else wrong raises `PoisonEvent` naming the event and the field, so the
    caller can log it, skip it and go on. `need_seq=False` for a snapshot page, whose
    events all carry the page's cursor anyway.
    """
    if not isinstance(obj, dict):
        raise PoisonEvent(f"an event that is not an object ({type(obj).__name__})")
    seq = obj.get("seq")
    kind = obj.get("kind")
    named = seq if _is_int(seq) else None
    label = kind[:40] if isinstance(kind, str) else None
    if not isinstance(kind, str):
        raise PoisonEvent(f"event seq {named}: no 'kind'", seq=named)
    if need_seq and not (_is_int(seq) and 0 <= seq <= MAX_ID):
        raise PoisonEvent(f"{label} event: 'seq' must be a whole number", event_kind=label)
    if kind not in EVENT_KINDS:
        return None
    try:
        at = _time(obj.get("at", 0.0), "at")
        body = _body(kind, obj)
    except _Bad as bad:
        raise PoisonEvent(f"{kind} event seq {named}: {bad}", seq=named, event_kind=kind) from None
    return event(seq if _is_int(seq) else 0, kind, at, body)


def check_hello(result: Any) -> dict[str, Any]:
    """A clean copy of a hello result, or `RemoteProtocolError` saying what is wrong.

    `settings` is passed on as sent (the client's `Limits.from_settings` checks it, and
    falls back to defaults); every other field is checked and cleaned as in `check_event`.
    """
    if not isinstance(result, dict):
        raise RemoteProtocolError("hello result is not an object")
    if result.get("protocol") != PROTOCOL:
        raise RemoteProtocolError(
            f"server speaks protocol {repr(result.get('protocol'))[:20]}, we speak {PROTOCOL}"
        )
    numbers, settings = result.get("numbers", []), result.get("settings", {})
    if not isinstance(numbers, list) or len(numbers) > MAX_FILES:
        raise RemoteProtocolError("hello result: 'numbers' must be a list")
    if not isinstance(settings, dict):
        raise RemoteProtocolError("hello result: 'settings' must be an object")
    try:
        ext = result.get("extension")
        clean: dict[str, Any] = {
            **{k: v for k, v in result.items() if k in ("server", "capabilities")},
            "protocol": PROTOCOL,
            "extension": None if ext is None else _person(ext, "extension"),
            "numbers": [_own_number(n, f"numbers[{i}]") for i, n in enumerate(numbers)],
            "settings": settings,
        }
    except _Bad as bad:
        raise RemoteProtocolError(f"hello result: {bad}") from None
    server = clean.get("server")
    clean["server"] = clean_name(server, MAX_CLIENT_NAME) if isinstance(server, str) else ""
    caps = clean.get("capabilities")
    clean["capabilities"] = (
        [clean_name(c, 40) for c in caps[:100] if isinstance(c, str)]
        if isinstance(caps, list)
        else []
    )
    return clean


def _own_number(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(where, "must be an object")
    sharers = value.get("shared_with", [])
    if not isinstance(sharers, list):
        raise _Bad(f"{where}.shared_with", "must be a list")
    return {
        "number": _number(value, "number", f"{where}."),
        "shared_with": [
            _person(s, f"{where}.shared_with[{i}]") for i, s in enumerate(sharers[:1000])
        ],
    }
