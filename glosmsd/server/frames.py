"""The reference server's outgoing frames: replies, batches within their limits, pushes.

Owns what a peer gets back for one frame: each reply as JSON text (a `sync` result is
spliced from the stored event texts, never decoded and encoded again), a batch joined in
order, and the limits on both (`MAX_BATCH` calls in one frame, `REPLY_BUDGET` bytes of
replies before the rest of a batch is refused unrun), plus the `event` notification
frame a pusher sends. Errors a handler did not mean (not a `GlosmsdError`) become one
-32603 that says the server logged them, never their details. This module must never
touch the network or the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from glosmsd.core import rpc, wire
from glosmsd.core.errors import INTERNAL_ERROR, INVALID_REQUEST, GlosmsdError, LimitExceeded

#: Calls in one batch frame. One 87 KB frame of 1,000 `sync` calls drew 344 MB of replies.
MAX_BATCH: Final = 50
#: Once one frame's replies reach this many bytes, the batch's later calls are refused
#: without being run (-32008). Every single reply is under 2 MiB by the wire bounds (a
#: sync page is at most `SYNC_PAGE_BYTES` plus one event), so a reply frame always fits
#: in `wire.MAX_FRAME`, the limit clients read with.
REPLY_BUDGET: Final = 2 * 1024 * 1024

#: A reply frame longer than this goes out as WebSocket fragments of this many characters,
#: one a turn of the event loop. Written whole, the batch flood's 2 MiB reply held the
#: loop for its encode, framing and one 2 MiB `send()` (the soak caught the loop there in
#: most of its stalls over 15 ms), so every other connection waited behind it.
FRAGMENT: Final = 64 * 1024

INTERNAL: Final = {
    "code": INTERNAL_ERROR,
    "message": "Internal error: the server logged the details; try again, and if it "
    "keeps failing tell the server's administrator",
}
_EVENT_PREFIX: Final = '{"jsonrpc":"2.0","method":"event","params":'

_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_ASCII: Final = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def encode(obj: Any) -> str:
    """Compact JSON, non-ASCII as is; `ValueError`/`TypeError` for what JSON cannot carry.

    A lone surrogate (no UTF-8 form: the frame could not be sent) is escaped instead.
    """
    text = _ENCODER.encode(obj)
    if not text.isascii() and wire.lone_surrogate(text) is not None:
        return _ASCII.encode(obj)
    return text


def _id_text(req: rpc.Request) -> str:
    return encode(req.id)


def result_envelope(req: rpc.Request) -> tuple[str, str] | None:
    """What goes before and after a result's JSON text in the reply to `req` (None for
    a notification): a sync page joins its events straight into it."""
    if req.is_notification:
        return None
    return '{"jsonrpc":"2.0","result":', f',"id":{_id_text(req)}}}'


def raw_result(req: rpc.Request, result_text: str) -> str | None:
    """The reply to `req` whose result is already JSON text (None for a notification)."""
    envelope = result_envelope(req)
    if envelope is None:
        return None
    return f"{envelope[0]}{result_text}{envelope[1]}"


@dataclass(frozen=True, slots=True)
class Encoded:
    """A method's result whose JSON text was made already (a send's MESSAGE, encoded
    for its event): `text` is `value` as `encode` would write it, bar lone surrogates."""

    value: Any
    text: str


def encoded_result(req: rpc.Request, enc: Encoded) -> str | None:
    """`result(req, enc.value)`, reusing `enc.text` (encoded without the lone-surrogate
    escape `encode` adds; a text holding one is encoded again)."""
    if not enc.text.isascii() and wire.lone_surrogate(enc.text) is not None:
        return result(req, enc.value)
    return raw_result(req, enc.text)


def result(req: rpc.Request, value: Any) -> str | None:
    """The reply carrying `value` (None for a notification); a value JSON cannot carry
    becomes the internal error, for the same id."""
    if req.is_notification:
        return None
    try:
        return raw_result(req, encode(value))
    except (TypeError, ValueError, RecursionError):
        return encode(rpc.error_reply(req.id, INTERNAL))


def error(req: rpc.Request, exc: BaseException) -> str | None:
    """The error reply for `exc` (None for a notification)."""
    if req.is_notification:
        return None
    obj = exc.to_rpc() if isinstance(exc, GlosmsdError) else INTERNAL
    return encode(rpc.error_reply(req.id, obj))


def over_budget(req: rpc.Request) -> str | None:
    """The reply to a call refused unrun because the batch's replies reached the budget."""
    exc = LimitExceeded(
        f"The replies to this batch reached {REPLY_BUDGET // 1024 // 1024} MiB, so this call "
        "was not run: send it again, in a smaller batch.",
        data={"limit_bytes": REPLY_BUDGET},
    )
    return error(req, exc)


def batch_too_long(count: int) -> str:
    """The one reply to a batch of more than `MAX_BATCH` calls (none of them is run)."""
    err = {
        "code": INVALID_REQUEST,
        "message": f"Invalid Request: a batch holds at most {MAX_BATCH} calls, this one "
        f"{count}: send them in smaller batches",
        "data": {"limit": MAX_BATCH},
    }
    return encode(rpc.error_reply(None, err))


def ready(reply: dict[str, Any]) -> str:
    """A reply `rpc.parse` already decided (a parse error, an invalid request)."""
    return encode(reply)


def assemble(texts: list[str], is_batch: bool) -> str | None:
    """One frame of the replies owed, in order; None when nothing is owed."""
    if not texts:
        return None
    return f"[{','.join(texts)}]" if is_batch else texts[0]


def pieces(texts: list[str], is_batch: bool, size: int = FRAGMENT) -> Iterator[str]:
    """The frame `assemble` builds, in pieces of `size` characters (the last one
    shorter), without ever joining the whole of it."""
    parts: list[str] = texts[:1] if not is_batch else ["[", *_commas(texts), "]"]
    held: list[str] = []
    room = size
    for part in parts:
        start = 0
        while len(part) - start >= room:
            held.append(part[start : start + room])
            yield "".join(held)
            start += room
            held, room = [], size
        if start < len(part):
            held.append(part[start:] if start else part)
            room -= len(part) - start
    if held:
        yield "".join(held)


def _commas(texts: list[str]) -> Iterator[str]:
    for i, text in enumerate(texts):
        if i:
            yield ","
        yield text


def event(text: str) -> str:
    """The `event` notification frame of one event's JSON text."""
    return f"{_EVENT_PREFIX}{text}}}"
