"""`glosms`: the command-line frontend of glosmsd.

This module owns argument parsing, what each command prints (a friendly format, or the
method's result as JSON with `--json`), and the exit codes. Each command is one row of
`COMMANDS`: a name, a help line, a function that adds its arguments and a function that
runs it. Commands that need the daemon import `glosmsd.client.ipc` inside their `run`,
so `glosms count` and `glosms --help` never pay for it.

It must start fast and stay a thin frontend: it must never import asyncio, websockets,
Pillow, jsonschema or sqlite3 (tests/cli/test_glosms.py checks), never talk to the server or
the store directly, and never show a traceback for bad input: one line on stderr and
a documented exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from glosmsd import __version__
from glosmsd.core.errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    AmbiguousRecipient,
    AuthFailed,
    BadInput,
    ConfigError,
    ConnectionLost,
    GlosmsdError,
    LimitExceeded,
    NotFound,
    RpcError,
    SendFailed,
    Unsupported,
)
from glosmsd.core.rules import Count, Limits, count_text

if TYPE_CHECKING:
    from glosmsd.client.ipc import Client

#: Success, including `count` for a text that does not fit (the answer was printed).
EXIT_OK: Final = 0
#: Anything else that went wrong (the server unreachable, a failed send with --wait, ...).
EXIT_FAIL: Final = 1
#: Bad input: wrong arguments, unknown conversation or message, unreadable file, bad text.
EXIT_USAGE: Final = 2
#: No daemon answers on the socket.
EXIT_NO_DAEMON: Final = 3
#: The daemon or the server refused the request (a limit, MMS off, no SMS number, ...).
EXIT_REFUSED: Final = 4

PROG: Final = "glosms"
#: More than any message can hold (1000 characters of MMS); checked before the socket.
MAX_TEXT: Final = 10_000
EXIT_HELP: Final = (
    f"exit codes: {EXIT_OK} ok, {EXIT_FAIL} failed, {EXIT_USAGE} bad input or usage, "
    f"{EXIT_NO_DAEMON} daemon not running (start it with `glosmsd &` or `make demo`), "
    f"{EXIT_REFUSED} refused by the daemon or the server"
)


@dataclass(frozen=True, slots=True)
class Command:
    """One `glosms` subcommand."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A problem with what the user typed; `main` prints it and exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def exit_code_for(exc: GlosmsdError) -> int:
    """The documented exit code for an error from the rules, the daemon or the server."""
    if isinstance(exc, BadInput | ConfigError | NotFound):
        return EXIT_USAGE
    if isinstance(exc, RpcError):
        bad = exc.rpc_code in (INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR)
        return EXIT_USAGE if bad else EXIT_REFUSED
    # Matched by kind so this module need not import the socket client to know the class.
    if exc.kind == "daemon-not-running":
        return EXIT_NO_DAEMON
    if isinstance(exc, LimitExceeded | SendFailed | Unsupported | AuthFailed):
        return EXIT_REFUSED
    return EXIT_FAIL


# --------------------------------------------------------------------------- plumbing


def _connect(args: argparse.Namespace, timeout: float | None = 30.0) -> Client:
    from glosmsd.client.ipc import Client

    path = Path(args.socket) if args.socket else None
    return Client(path, timeout=timeout).connect()


def _call(args: argparse.Namespace, method: str, params: dict[str, Any] | None = None) -> Any:
    with _connect(args) as client:
        return client.call(method, params)


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _emit_json(obj: Any) -> None:
    _emit(json.dumps(obj, ensure_ascii=False))


def _note(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _when(at: float | None, now: float | None = None) -> str:
    """A short local time: `14:05` today, `Mon 14:05` this week, else the date."""
    if at is None:
        return ""
    stamp = dt.datetime.fromtimestamp(at)
    today = dt.datetime.fromtimestamp(time.time() if now is None else now).date()
    days = (today - stamp.date()).days
    if days == 0:
        return stamp.strftime("%H:%M")
    if 0 < days < 7:
        return stamp.strftime("%a %H:%M")
    return stamp.strftime("%Y-%m-%d")


def _one_line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _size(n: int | None) -> str:
    if n is None:
        return "? KB"
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} KB" if n else "0 KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


class Progress:
    """A progress bar on stderr when it is a terminal; nothing when piped."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        frac = min(1.0, done / total) if total > 0 else 0.0
        bar = "#" * int(frac * width)
        self.stream.write(f"\r{self.label} [{bar:<{width}}] {frac * 100:3.0f}%")
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _call_with_progress(
    args: argparse.Namespace, method: str, params: dict[str, Any], label: str
) -> Any:
    bar = Progress(label)
    with _connect(args, timeout=None) as client:
        if bar.enabled:
            client.call("hello", {"client": f"glosms/{__version__}", "progress": True})
        try:
            return client.call(method, params, on_progress=bar if bar.enabled else None)
        finally:
            bar.finish()


# --------------------------------------------------------------------------- text input


def _read_stdin() -> str:
    stream = sys.stdin
    if stream is None:
        raise CliError("standard input is closed: pass the text as an argument instead")
    raw = stream.buffer.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        raise CliError(
            f"standard input is not valid UTF-8 (byte 0x{bad:02x} at offset {exc.start}): "
            "convert it first, e.g. with iconv -t UTF-8"
        ) from None
    # What `echo` and here-strings add is not part of the message.
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def _checked_argument(text: str) -> str:
    # Undecodable argv bytes reach us as lone surrogates (surrogateescape).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CliError(
            f"the text is not valid UTF-8 (at character {exc.start + 1}): check the "
            "terminal's or the script's encoding, or pipe the text in with -"
        ) from None
    return text


def _text_arg(value: str) -> str:
    return _read_stdin() if value == "-" else _checked_argument(value)


def _conversation(value: str) -> str:
    # Passed on as typed: the daemon decides "id or number?" (an id when one exists, else
    # a number), so `read 12345` finds what `send 12345` started.
    text = _checked_argument(value).strip()
    if not text:
        raise CliError("name a conversation: its id from `glosms ls`, a number or a contact")
    return text


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {value!r}") from None
    if not 0 < number <= 86_400:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 86400, not {value}")
    return number


def _count_arg(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {number}")
    return number


# --------------------------------------------------------------------------- count


def _configure_count(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", metavar="TEXT", help="the message text, or - to read stdin")
    _add_json(parser)
    parser.add_argument(
        "--files", type=_count_arg, default=0, metavar="N", help="number of attached files"
    )
    parser.add_argument(
        "--bytes",
        type=_count_arg,
        default=0,
        metavar="B",
        dest="file_bytes",
        help="total size of the attached files in bytes (with --files)",
    )
    parser.add_argument(
        "--no-mms", action="store_true", help="count as if the server had MMS switched off"
    )


def _run_count(args: argparse.Namespace) -> int:
    if args.file_bytes and not args.files:
        raise CliError("--bytes needs --files: how many files make up those bytes?")
    text = _text_arg(args.text)
    limits = Limits(mms_enabled=not args.no_mms)
    count = count_text(text, files=args.files, file_bytes=args.file_bytes, limits=limits)
    if args.json:
        _emit(json.dumps(count.to_json()))
    else:
        _emit(describe(count, files=args.files))
    return EXIT_OK


def describe(count: Count, *, files: int = 0) -> str:
    """The counter as one line for people: kind, encoding, size, what is left."""
    if not count.fits:
        return count.reason or "Does not fit."
    if count.kind == "mms":
        if files and count.bytes_left is not None:
            kb_left = count.bytes_left // 1024
            return f"MMS · {_plural(files, 'file')} · {kb_left} KB left"
        return f"MMS · {_plural(count.chars, 'character')} · {count.chars_left} left"
    size = _plural(count.chars, "character")
    if count.units != count.chars:
        unit = "septets" if count.encoding == "GSM-7" else "units"
        size += f" ({count.units} {unit})"
    where = " in this segment" if count.segments > 1 else ""
    return (
        f"SMS · {count.encoding} · {_plural(count.segments, 'segment')} · {size} · "
        f"{count.remaining} left{where}"
    )


# --------------------------------------------------------------------------- status, number


def _configure_plain(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)


def _sharers(people: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{p.get('name') or '?'} ({p.get('ext') or '?'})" for p in people)


def _run_status(args: argparse.Namespace) -> int:
    st = _call(args, "status")
    if args.json:
        _emit_json(st)
        return EXIT_OK
    ext = st.get("extension") or {}
    link = st.get("link") or {}
    who = f"{ext.get('name') or '?'} (extension {ext.get('ext') or '?'})"
    number = st.get("number") or "no SMS number assigned"
    if link.get("state") == "auth-failed":
        # The account shown is the one cached from the last hello: say it is not in use.
        _emit(
            "Not signed in: the server refused glosmsd's token (get a new one from your "
            "administrator and run `glosmsd setup`); nothing can be sent or received."
        )
        _emit(f"Last signed in as {who} · SMS number {number}")
    elif not ext.get("ext"):
        _emit(
            "Not signed in yet: the server has not answered, so your account and SMS number "
            "are not known."
        )
    else:
        _emit(f"{who} · SMS number {number}")
    if st.get("shared_with"):
        _emit(f"Multiple users share this number: {_sharers(st['shared_with'])}")
    _emit(f"Server: {link.get('line') or link.get('state')}")
    outbox = st.get("outbox") or 0
    waiting = f" · {outbox} waiting to send" if outbox else ""
    _emit(f"Unread: {st.get('unread', 0)}{waiting}")
    if st.get("sms_enabled") is False:
        _emit("SMS messaging on this desktop is switched off (glosms prefs sms_enabled true).")
    return EXIT_OK


def _configure_number(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)
    parser.add_argument("--copy", action="store_true", help="copy the number to the clipboard")


def _run_number(args: argparse.Namespace) -> int:
    info = _call(args, "number")
    number = info.get("number")
    # The number is printed whatever becomes of the copy (`$(glosms number --copy)`).
    copy_failed = _copy(str(number)) if args.copy and number else None
    if args.json:
        _emit_json(info)
    elif number:
        copied = "  (copied to the clipboard)" if args.copy and copy_failed is None else ""
        _emit(str(number) + copied)
        if info.get("shared_with"):
            _emit(f"Multiple users share this number: {_sharers(info['shared_with'])}")
    else:
        _emit(info.get("message") or "No SMS number assigned.")
    if copy_failed is not None:
        _fail(copy_failed)
        return EXIT_FAIL
    if not number:
        return EXIT_REFUSED if args.copy else EXIT_OK
    return EXIT_OK


def has_display() -> bool:
    """Whether a desktop session is reachable: the clipboard tools need one."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _copy(text: str) -> str | None:
    """Copy `text`; None when done, else why not (for the user)."""
    if not has_display():
        return (
            "cannot copy: no display (DISPLAY and WAYLAND_DISPLAY are unset): the clipboard "
            "lives in a desktop session; run this from a terminal inside one"
        )
    from glosmsd.desktop import clip

    try:
        clip.copy(text, detach=True)  # `$(glosms number --copy)` must not wait for xclip
    except clip.ClipboardUnavailable:
        return (
            "cannot copy: no clipboard tool found: install xclip or xsel (X11), "
            "or wl-clipboard (Wayland)"
        )
    except OSError as exc:
        return f"cannot copy: {_one_line(str(exc), 160)}"
    return None


# --------------------------------------------------------------------------- ls, read


def _configure_ls(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)
    parser.add_argument("--limit", type=_positive, default=50, help="at most this many")


def _conv_line(c: Mapping[str, Any]) -> str:
    title = c.get("name") or c.get("remote") or "?"
    if c.get("name"):
        title += f" ({c.get('remote')})"
    unread = f"  [{c['unread']} unread]" if c.get("unread") else ""
    arrow = "→" if c.get("last_direction") == "out" else "←"
    last = f"  {arrow} {_one_line(c['last_text'], 50)}" if c.get("last_text") else ""
    return f"{c.get('id'):>4}  {_when(c.get('last_at')):>10}  {title}{unread}{last}"


def _run_ls(args: argparse.Namespace) -> int:
    convs = _call(args, "conversations", {"limit": args.limit})
    if args.json:
        _emit_json(convs)
    elif not convs:
        _emit("No conversations yet. Start one with: glosms send NUMBER TEXT")
    else:
        for c in convs:
            _emit(_conv_line(c))
    return EXIT_OK


def _configure_read(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("conversation", metavar="CONV", help="conversation id, number or name")
    _add_json(parser)
    parser.add_argument("--limit", type=_positive, default=50, help="at most this many")
    parser.add_argument("--before", type=_positive, metavar="ID", help="older than message ID")


def _message_lines(m: Mapping[str, Any]) -> Iterator[str]:
    out = m.get("direction") == "out"
    arrow = "→" if out else "←"
    sender = m.get("sender")
    who = f" — {sender.get('name')}:" if out and sender else ""
    state = m.get("state")
    flag = ""
    if out and state == "failed":
        flag = f"  [failed: {m.get('reason') or 'unknown reason'}; glosms resend {m.get('id')}]"
    elif out and state == "sending":
        flag = "  [sending]"
    text = str(m.get("text") or "").replace("\n", "\n" + " " * 8)
    yield f"#{m.get('id'):<5} {_when(m.get('at')):>10} {arrow}{who} {text}{flag}".rstrip()
    for f in m.get("files") or ():
        where = f.get("path") if f.get("state") == "done" else f.get("state")
        yield f"{'':18}file: {f.get('name')} ({_size(f.get('size'))}, {where})"


def _run_read(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"conversation": _conversation(args.conversation)}
    params["limit"] = args.limit
    if args.before:
        params["before"] = args.before
    res = _call(args, "messages", params)
    if args.json:
        _emit_json(res)
        return EXIT_OK
    conv = res["conversation"]
    title = conv.get("name") or conv.get("remote")
    _emit(f"{title} · {conv.get('remote')} · your number {conv.get('number')}")
    for m in reversed(res["messages"]):
        for line in _message_lines(m):
            _emit(line)
    if not res["messages"]:
        _emit("(no messages)")
    return EXIT_OK


# --------------------------------------------------------------------------- send, resend


def _configure_send(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("to", metavar="TO", help="a phone number or a contact name")
    parser.add_argument("text", metavar="TEXT", help="the text, or - to read stdin ('' for none)")
    # default=[]: without one argparse lists the optional FILE as required (issue 12 item 13).
    parser.add_argument(
        "files", metavar="FILE", nargs="*", default=[], help="files to attach (MMS)"
    )
    _add_json(parser)
    parser.add_argument(
        "--pick", type=_positive, metavar="N", help="which number of a contact with several"
    )
    parser.add_argument(
        "--client-id", metavar="ID", help="idempotency key: retrying with it never sends twice"
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait until the server accepts or fails it"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="with --wait: stop waiting after this long (the message stays queued)",
    )
    parser.add_argument(
        "--drop-excess",
        action="store_true",
        help="past 10 files or 500 KB, send what fits and leave the rest out "
        "(without it nothing is sent)",
    )


def _file_ref(value: str) -> str:
    if value.startswith("data:"):
        return value
    path = Path(_checked_argument(value)).expanduser()
    try:
        if not path.exists():
            raise CliError(f"no such file: {value}")
        if not path.is_file():
            raise CliError(f"{value} is not a regular file")
        if not os.access(path, os.R_OK):
            raise CliError(f"cannot read {value}: permission denied")
    except OSError as exc:  # e.g. a name too long for the file system
        raise CliError(f"cannot use {value}: {exc.strerror or exc}") from None
    # The daemon has its own working directory: send it an absolute path.
    return str(path.resolve())


def _run_send(args: argparse.Namespace) -> int:
    to = _checked_argument(args.to).strip()
    if not to:
        raise CliError("TO is empty: give a phone number or a contact name")
    text = _text_arg(args.text)
    if len(text) > MAX_TEXT:
        raise CliError(f"the text has {len(text)} characters; a message holds at most 1000")
    files = [_file_ref(f) for f in args.files]
    params: dict[str, Any] = {"to": to, "text": text, "files": files}
    if files and not args.drop_excess:
        # A command line must not send part of what it was given (issue 12 item 7).
        params["drop_excess"] = False
    if args.timeout is not None and not args.wait:
        raise CliError("--timeout goes with --wait: how long to wait for the server")
    # Always an idempotency key: if the daemon goes away mid-call, it is how we ask
    # whether the message was queued, and how a retry never sends twice.
    params["client_id"] = args.client_id or f"glosms-{os.urandom(12).hex()}"
    if args.pick:
        params["pick"] = args.pick
    with _connect(args, timeout=90) as client:
        if args.wait:
            client.call("subscribe", {})
        try:
            res = _send_asking(client, params, args)
        except ConnectionLost:
            return _after_lost_send(args, params["client_id"])
        message = res["message"]
        for d in res.get("dropped") or ():
            _note(f"{PROG}: not sent: {d.get('name')}: {d.get('reason')}")
        if res.get("notice"):
            _note(f"{PROG}: {res['notice']}")
        if args.wait:
            message = _wait_for_state(client, message, args.timeout)
    if args.json:
        _emit_json({**res, "message": message})
    else:
        _emit(_sent_line(message))
    return EXIT_REFUSED if message.get("state") == "failed" else EXIT_OK


def _send_asking(client: Client, params: dict[str, Any], args: argparse.Namespace) -> Any:
    """`send`, asking which number when the contact has several and a person is there."""
    try:
        return client.call("send", params)
    except AmbiguousRecipient as exc:
        choices = (exc.data or {}).get("choices")
        if not choices or not _can_ask(args):
            raise
        params["pick"] = _ask_pick(str((exc.data or {}).get("contact") or params["to"]), choices)
        return client.call("send", params)


#: How long `glosms send` tries to reach a daemon again after losing it mid-send.
RECONNECT_WINDOW: Final = 3.0


def _after_lost_send(args: argparse.Namespace, client_id: str) -> int:
    """The daemon went away during `send`: ask it (once it answers again) whether the
    message was stored, by its client id, and say so in one line (issue 13 item 13)."""
    retry = f"`glosms send ... --client-id {client_id}` retries without ever sending twice"
    deadline = time.monotonic() + RECONNECT_WINDOW
    while True:
        try:
            with _connect(args, timeout=10) as again:
                found = again.call("sent", {"client_id": client_id}).get("message")
            break
        except GlosmsdError:
            if time.monotonic() >= deadline:
                raise CliError(
                    "glosmsd stopped during the send and is not running now, so whether it "
                    f"queued the message is unknown: once it runs again, {retry}",
                    EXIT_FAIL,
                ) from None
            time.sleep(0.2)
    if found is None:
        raise CliError(
            "glosmsd stopped during the send before it queued the message: nothing was "
            f"queued; {retry}",
            EXIT_FAIL,
        )
    _note(f"{PROG}: glosmsd restarted during the send; the message had been queued")
    if args.json:
        _emit_json({"message": found, "dropped": [], "notice": None})
    else:
        _emit(_sent_line(found))
    return EXIT_REFUSED if found.get("state") == "failed" else EXIT_OK


def _sent_line(m: Mapping[str, Any]) -> str:
    files = m.get("files") or ()
    extra = f" with {_plural(len(files), 'file')}" if files else ""
    state = m.get("state")
    if state == "failed":
        return f"#{m.get('id')} to {m.get('remote')}{extra}: failed: {m.get('reason')}"
    said = "queued" if state == "sending" else state
    return f"#{m.get('id')} to {m.get('remote')}{extra}: {said}"


def _can_ask(args: argparse.Namespace) -> bool:
    return bool(not args.json and args.text != "-" and sys.stdin and sys.stdin.isatty())


def _ask_pick(contact: str, choices: Sequence[Mapping[str, Any]]) -> int:
    _note(f"{contact} has {len(choices)} numbers:")
    for c in choices:
        _note(f"  {c.get('pick')}) {c.get('label')} {c.get('number')}")
    for _ in range(3):
        sys.stderr.write(f"Which one? [1-{len(choices)}] ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            break
        answer = answer.strip()
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            return int(answer)
    raise CliError("no number chosen; pass --pick N to choose without asking")


def _wait_for_state(
    client: Client, message: Mapping[str, Any], timeout: float | None
) -> dict[str, Any]:
    """The message once the server accepted or failed it; says on stderr why it waits."""
    if message.get("state") != "sending":
        return dict(message)
    mid = message.get("id")
    link = (client.call("status").get("link") or {}) if isinstance(mid, int) else {}
    if not link.get("online"):
        _note(f"{PROG}: #{mid} queued; the server is unreachable: waiting ({_link_words(link)})")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        ev = client.next_event(left) if left is None or left > 0 else None
        if ev is None:
            raise CliError(
                f"#{mid} is still queued after {timeout:g} s; glosmsd sends it when the "
                "server answers (glosms read shows its state)",
                EXIT_FAIL,
            )
        data = ev.get("data") or {}
        state = data.get("state")
        if ev.get("kind") == "message_state" and data.get("id") == mid and state != "sending":
            return {**message, "state": state, "reason": data.get("reason")}
        if ev.get("kind") == "link":
            online = bool(data.get("online"))
            if online != bool(link.get("online")):
                word = "connected: waiting for its answer" if online else "unreachable: waiting"
                _note(f"{PROG}: #{mid} queued; the server is {word} ({_link_words(data)})")
            link = data


def _link_words(link: Mapping[str, Any]) -> str:
    return str(link.get("line") or link.get("state") or "no link yet")


def _configure_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", metavar="ID", type=_positive, help="the message id (glosms read)")
    _add_json(parser)


def _run_resend(args: argparse.Namespace) -> int:
    res = _call(args, "resend", {"id": args.id})
    if args.json:
        _emit_json(res)
    else:
        _emit(_sent_line(res["message"]) if res.get("message") else f"#{args.id}: queued")
    return EXIT_OK


# --------------------------------------------------------------------------- delete, mark-read


def _configure_delete(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("id", metavar="MSG", type=_positive, nargs="?", help="a message id")
    which.add_argument(
        "--conversation", metavar="CONV", help="delete a whole conversation (id, number, name)"
    )
    _add_json(parser)


def _run_delete(args: argparse.Namespace) -> int:
    if args.conversation is not None:
        res = _call(args, "delete_conversation", {"conversation": _conversation(args.conversation)})
        line = f"Deleted conversation {res['deleted']}."
    else:
        res = _call(args, "delete_message", {"id": args.id})
        line = f"Deleted message #{res['deleted']}."
    _emit_json(res) if args.json else _emit(line)
    return EXIT_OK


def _configure_mark_read(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("conversation", metavar="CONV", nargs="?", help="a conversation")
    which.add_argument("--all", action="store_true", help="mark every conversation read")
    _add_json(parser)


def _run_mark_read(args: argparse.Namespace) -> int:
    params = {} if args.all else {"conversation": _conversation(args.conversation)}
    res = _call(args, "mark_read", params)
    if args.json:
        _emit_json(res)
        return EXIT_OK
    named = res.get("conversations") or []
    which = ", ".join(f"{c.get('title')} ({c.get('remote')})" for c in named)
    if args.all or not named:
        _emit(f"Marked {_plural(res['marked'], 'conversation')} read; {res['unread']} unread.")
    else:
        _emit(f"Marked {which} read; {res['unread']} unread.")
    return EXIT_OK


# --------------------------------------------------------------------------- search, contacts


def _configure_query(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", metavar="QUERY", help="words, a name or a number")
    _add_json(parser)
    parser.add_argument("--limit", type=_positive, default=20, help="at most this many")


def _contact_line(c: Mapping[str, Any]) -> str:
    numbers = ", ".join(f"{n.get('label')} {n.get('number')}" for n in c.get("numbers") or ())
    return f"{c.get('name')}: {numbers or 'no number'}"


def _run_search(args: argparse.Namespace) -> int:
    res = _call(args, "search", {"query": _checked_argument(args.query), "limit": args.limit})
    if args.json:
        _emit_json(res)
        return EXIT_OK
    sections = (
        ("Contacts", [_contact_line(c) for c in res["contacts"]]),
        ("Conversations", [_conv_line(c) for c in res["conversations"]]),
        (
            "Messages",
            [f"(conv {m['conversation_id']}) " + _one_line_msg(m) for m in res["messages"]],
        ),
    )
    found = False
    for title, lines in sections:
        if lines:
            found = True
            _emit(f"{title}:")
            for line in lines:
                _emit(f"  {line}")
    if not found:
        _emit(f"Nothing matches {args.query!r}.")
    return EXIT_OK


def _one_line_msg(m: Mapping[str, Any]) -> str:
    return next(_message_lines({**m, "text": _one_line(str(m.get("text") or ""), 70)}))


def _run_contacts(args: argparse.Namespace) -> int:
    res = _call(args, "contacts", {"query": _checked_argument(args.query), "limit": args.limit})
    if args.json:
        _emit_json(res)
    elif not res:
        _emit(f"No contact matches {args.query!r}.")
    else:
        for c in res:
            _emit(_contact_line(c))
    return EXIT_OK


# --------------------------------------------------------------------------- download, export


def _configure_download(parser: argparse.ArgumentParser) -> None:
    _configure_id(parser)
    parser.add_argument("--file", type=_count_arg, metavar="N", help="only file N (from 0)")


def _run_download(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"id": args.id}
    if args.file is not None:
        params["file"] = args.file
    res = _call_with_progress(args, "download", params, f"Downloading #{args.id}")
    if args.json:
        _emit_json(res)
        return EXIT_OK
    for f in res["files"]:
        where = f.get("path") if f.get("state") == "done" else f"not downloaded ({f.get('state')})"
        _emit(f"{f.get('name')} ({_size(f.get('size'))}): {where}")
    return EXIT_OK


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="an existing folder; a new SMS folder goes in")
    _add_json(parser)


def _run_export(args: argparse.Namespace) -> int:
    target = Path(_checked_argument(args.dir)).expanduser()
    if not target.is_dir():
        raise CliError(f"{args.dir} is not a folder: pick an existing folder to export into")
    res = _call_with_progress(args, "export", {"dir": str(target.resolve())}, "Exporting")
    if args.json:
        _emit_json(res)
    else:
        missing = res.get("missing_files") or 0
        tail = f"; {_plural(missing, 'file')} not downloaded" if missing else ""
        _emit(
            f"Exported {_plural(res['conversations'], 'conversation')} and "
            f"{_plural(res['files'], 'file')} to {res['folder']}{tail}"
        )
    return EXIT_OK


# --------------------------------------------------------------------------- watch


def _configure_watch(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)
    parser.add_argument(
        "--since", type=_count_arg, metavar="ID", help="first replay every event after ID"
    )


def describe_event(ev: Mapping[str, Any]) -> str:
    """One line for people per event kind; unknown kinds show their data."""
    kind = ev.get("kind")
    d = ev.get("data") or {}
    head = f"[{ev.get('id')}] {_when(ev.get('at'))}"
    if kind == "message":
        m = d.get("message") or {}
        return f"{head} {m.get('remote')}: " + _one_line_msg(m)
    if kind == "message_state":
        reason = f": {d.get('reason')}" if d.get("reason") else ""
        return f"{head} #{d.get('id')} {d.get('state')}{reason}"
    if kind == "read":
        return f"{head} conversation {d.get('conversation_id')} read"
    if kind == "deleted":
        if d.get("conversation"):
            return f"{head} conversation {d.get('conversation_id')} deleted"
        ids = ", ".join(f"#{i}" for i in d.get("message_ids") or ())
        return f"{head} deleted {ids}"
    if kind == "unread":
        return f"{head} unread: {d.get('total')}"
    if kind == "link":
        return f"{head} server: {d.get('line') or d.get('state')}"
    return f"{head} {kind}: {json.dumps(d, ensure_ascii=False)}"


def _run_watch(args: argparse.Namespace) -> int:
    import signal

    from glosmsd.core.errors import LinkClosed

    # Ctrl+C (or SIGTERM from a script) ends the watch quietly with 0, also when it was
    # started with SIGINT ignored (a shell script's background job); and within 2 s even
    # if the orderly way out gets stuck (each event line is already flushed).
    def stop(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGALRM, lambda _s, _f: os._exit(EXIT_OK))
        signal.alarm(2)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    try:
        with _connect(args, timeout=None) as client:
            params = {} if args.since is None else {"since": args.since}
            res = client.call("subscribe", params)
            if res.get("gap"):
                _note(
                    f"{PROG}: some events after {args.since} are older than the daemon keeps "
                    "(or from another daemon); reload what you show."
                )
            for ev in client.events():
                _emit_json(ev) if args.json else _emit(describe_event(ev))
    except KeyboardInterrupt:
        return EXIT_OK
    except LinkClosed as exc:
        if exc.kind == "daemon-not-running":
            raise
        raise CliError("glosmsd stopped; watch ended.", EXIT_FAIL) from None
    return EXIT_OK


# --------------------------------------------------------------------------- prefs


def _configure_prefs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar="KEY", nargs="?", help="one preference")
    parser.add_argument("value", metavar="VALUE", nargs="?", help="set it (true/false)")
    _add_json(parser)


def _run_prefs(args: argparse.Namespace) -> int:
    if args.value is not None:
        try:
            value: Any = json.loads(args.value)
        except ValueError:
            value = args.value
        res = _call(args, "prefs_set", {"key": args.key, "value": value})
    elif args.key is not None:
        res = _call(args, "prefs_get", {"key": args.key})
    else:
        res = _call(args, "prefs_get", {})
    if args.json:
        _emit_json(res)
    elif isinstance(res, dict):
        for key, val in res.items():
            _emit(f"{key} = {json.dumps(val)}")
    else:
        _emit(json.dumps(res))
    return EXIT_OK


# --------------------------------------------------------------------------- compose


def _configure_compose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("to", metavar="TO", nargs="?", help="prefill the recipient")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _run_compose(args: argparse.Namespace) -> int:
    import importlib

    try:
        popup = importlib.import_module("glosmsd.desktop.popup")
    except ImportError:
        raise CliError(
            "the quick-send popup is not part of this build; use glosms send", EXIT_FAIL
        ) from None
    argv = ([args.to] if args.to else []) + list(args.rest)
    code: int = popup.main(argv)
    return code


# --------------------------------------------------------------------------- open


def _configure_open(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "conversation",
        metavar="CONVERSATION",
        nargs="?",
        help="a conversation id, number or contact name (default: the conversation list)",
    )
    parser.add_argument(
        "--url",
        action="store_true",
        help="print the window's one-time URL (valid 60 s, once) and exit; open nothing",
    )
    _add_json(parser)


def _run_open(args: argparse.Namespace) -> int:
    """Ask the daemon for a one-time URL of the SMS window and show it (issue 15)."""
    params: dict[str, Any] = {}
    if args.conversation is not None:
        params["conversation"] = _conversation(args.conversation)
    if args.url:
        res = _window_open(args, {**params, "launch": False})
        _emit_json(res) if args.json else _emit(str(res["url"]))
        return EXIT_OK
    if not has_display():
        raise CliError(
            "cannot show the SMS window: no display (DISPLAY and WAYLAND_DISPLAY are unset). "
            "Run it in your desktop session, or `glosms open --url` prints a one-time link "
            "to open in a browser within 60 s",
            EXIT_FAIL,
        )
    res = _window_open(args, params)
    from glosmsd.desktop.window import launch

    profile = Path(str(res["profile"]))
    where = "the conversation list" if res.get("conversation_id") is None else "the conversation"
    if res["action"] == "focus":
        raised = launch.raise_window(profile)
        line = f"The SMS window is already open: showing {where} there"
        line += " (brought to the front)." if raised else "."
    else:
        started = launch.launch(str(res["url"]), command=res.get("command"), profile=profile)
        line = f"Opened the SMS window at {where} ({started.name})."
    _emit_json({**res, "line": line}) if args.json else _emit(line)
    return EXIT_OK


def _window_open(args: argparse.Namespace, params: dict[str, Any]) -> dict[str, Any]:
    try:
        res: dict[str, Any] = _call(args, "window.open", params)
    except RpcError as exc:
        if exc.rpc_code != METHOD_NOT_FOUND:
            raise
        raise CliError(
            "this glosmsd has no SMS window: update it, or restart it with `glosmsd --replace`",
            EXIT_REFUSED,
        ) from None
    return res


# --------------------------------------------------------------------------- completion

SHELLS: Final = ("bash", "zsh", "fish")
COMPLETION_EPILOG: Final = """\
install it once (make the folder first); new shells pick it up:
  bash: glosms completion bash > ~/.local/share/bash-completion/completions/glosms
        (read by the bash-completion package; without it, source the file in ~/.bashrc)
  zsh:  glosms completion zsh > ~/.zfunc/_glosms
        (and in ~/.zshrc, before compinit: fpath+=(~/.zfunc))
  fish: glosms completion fish > ~/.config/fish/completions/glosms.fish
Conversation ids and numbers are asked of the running daemon when completed."""
#: Conversation ids (described by name in zsh and fish) and the numbers one can send to,
#: asked of the daemon only when that argument is being completed.
_LISTED: Final = {
    "conversations": ("_glosms_conversations", "conversation"),
    "numbers": ("_glosms_numbers", "number"),
}


#: Shell functions that offer what `glosms completion --list WHAT` prints (value TAB
#: description per line); zsh shows the descriptions, bash only the values.
_BASH_LISTER: Final = r"""@FN@() {
  compgen -W "$(glosms completion --list @WHAT@ 2>/dev/null | cut -f1)" -- "$1"
}"""
_ZSH_LISTER: Final = r"""@FN@() {
  local -a items
  local line
  for line in ${(f)"$(glosms completion --list @WHAT@ 2>/dev/null)"}; do
    items+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}")
  done
  _describe -t @WHAT@ @NOUN@ items
}"""


def _dynamic(what: str) -> dict[str, Any]:
    fn, noun = _LISTED[what]

    def fill(template: str) -> str:
        return template.replace("@FN@", fn).replace("@WHAT@", what).replace("@NOUN@", noun)

    return {
        "bash": fn,
        "zsh": fn,
        "fish": f"(glosms completion --list {what} 2>/dev/null)",
        "preamble": {"bash": fill(_BASH_LISTER), "zsh": fill(_ZSH_LISTER)},
    }


def _configure_completion(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "shell", metavar="SHELL", nargs="?", choices=SHELLS, help="bash, zsh or fish"
    )
    parser.add_argument("--list", choices=tuple(_LISTED), help=argparse.SUPPRESS)
    parser.epilog = COMPLETION_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _run_completion(args: argparse.Namespace) -> int:
    if args.list:
        return _list_for_completion(args)
    if args.shell is None:
        raise CliError("name a shell: glosms completion bash|zsh|fish")
    import shtab  # only here: no other command pays for it

    parser = build_parser()
    file, folder = shtab.FILE, shtab.DIRECTORY
    special = {
        ("send", "files"): file,
        ("send", "to"): _dynamic("numbers"),
        ("export", "dir"): folder,
        ("read", "conversation"): _dynamic("conversations"),
        ("mark-read", "conversation"): _dynamic("conversations"),
        ("delete", "conversation"): _dynamic("conversations"),
        ("compose", "to"): _dynamic("numbers"),
        ("open", "conversation"): _dynamic("conversations"),
    }
    for action in parser._actions:
        if action.dest == "socket":
            action.complete = file  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                for arg in child._actions:
                    if (name, arg.dest) in special:
                        arg.complete = special[name, arg.dest]
    _emit(shtab.complete(parser, shell=args.shell).rstrip("\n"))
    return EXIT_OK


def _list_for_completion(args: argparse.Namespace) -> int:
    """Candidates for the shell, one per line (`value<TAB>description`); quiet on failure."""
    try:
        with _connect(args, timeout=2.0) as client:
            convs = client.call("conversations", {"limit": 200})
    except GlosmsdError:
        return EXIT_OK  # no daemon: nothing to offer, and no noise in the middle of a line
    for c in convs:
        title = _one_line(str(c.get("name") or c.get("remote") or ""), 40)
        if args.list == "conversations":
            _emit(f"{c.get('id')}\t{title}")
        elif c.get("remote"):
            _emit(f"{c.get('remote')}\t{title}")
    return EXIT_OK


# --------------------------------------------------------------------------- the table

COMMANDS: Final[tuple[Command, ...]] = (
    Command(
        "status", "the link, your account and number, unread count", _configure_plain, _run_status
    ),
    Command(
        "number",
        "your SMS number and who shares it (--copy: to clipboard)",
        _configure_number,
        _run_number,
    ),
    Command("ls", "conversations, most recent first, with unread counts", _configure_ls, _run_ls),
    Command("read", "the messages of a conversation", _configure_read, _run_read),
    Command("send", "send an SMS, or an MMS with files", _configure_send, _run_send),
    Command("resend", "send a failed message again", _configure_id, _run_resend),
    Command("delete", "delete a message, or a conversation", _configure_delete, _run_delete),
    Command(
        "mark-read", "mark a conversation (or --all) read", _configure_mark_read, _run_mark_read
    ),
    Command("search", "search contacts, conversations and messages", _configure_query, _run_search),
    Command("contacts", "look contacts up by name or number", _configure_query, _run_contacts),
    Command("download", "download a message's files", _configure_download, _run_download),
    Command("export", "export the history into a new SMS folder", _configure_export, _run_export),
    Command("watch", "print events as they happen (Ctrl+C ends)", _configure_watch, _run_watch),
    Command("prefs", "show or change preferences", _configure_prefs, _run_prefs),
    Command(
        "count",
        "count characters and SMS segments of a text (no daemon needed)",
        _configure_count,
        _run_count,
    ),
    Command(
        "open",
        "open the SMS window, at a conversation (--url: print its one-time link)",
        _configure_open,
        _run_open,
    ),
    Command("compose", "open the quick-send popup", _configure_compose, _run_compose),
    Command(
        "completion",
        "print a tab-completion script for bash, zsh or fish",
        _configure_completion,
        _run_completion,
    ),
)


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named in `argv`, when the rest of the table need not be built."""
    args = iter(argv)
    for arg in args:
        if arg == "--socket":
            next(args, None)
        elif not arg.startswith("--socket="):
            return None if arg.startswith("-") else arg
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that command's (17 sub-parsers cost ~14 ms to build)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Send and read SMS/MMS through the glosmsd daemon.",
        epilog=EXIT_HELP + ". Every command takes --json. See ipc/SPEC.md for the socket.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=None,
        help="the daemon's socket (default: $GLOSMSD_SOCKET, else $XDG_RUNTIME_DIR/glosmsd/socket)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        if only is not None and command.name != only:
            continue
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(child)
        child.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `glosms` with `argv` (default: the process's arguments); return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    named = _command_in(argv)
    parser = build_parser(named if any(c.name == named for c in COMMANDS) else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # --help, --version and usage errors: argparse has already printed them.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.run(args)
    except CliError as exc:
        _fail(exc.message)
        return exc.code
    except GlosmsdError as exc:
        _fail(exc.message)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        # The reader of our output left (`| head`). Point stdout at /dev/null so the
        # interpreter's final flush does not fail a second time with a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAIL
    return code


def _fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
