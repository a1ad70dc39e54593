"""What each `glosms` command does: ask the daemon (through `glosmsd.client.ipc`) and
print the answer with `output`; `count` needs no daemon.

A command's `run` takes the parsed arguments, from argparse (`parser`) or from the fast
path (`fast`), and returns the exit code; what the user got wrong is a `CliError`. It
must stay a thin frontend: never import asyncio, websockets, Pillow, jsonschema or
sqlite3 (tests/cli/test_glosms.py checks), never talk to the server or the store
directly. The socket client and the rules tables are imported inside the commands that
use them, so `glosms count` never loads the one and `glosms send` never the other.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from glosmsd import __version__
from glosmsd.cli.glosms.codes import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_REFUSED,
    MAX_TEXT,
    PROG,
    CliError,
    fail,
)
from glosmsd.cli.glosms.inputs import checked_argument, conversation_ref, text_arg
from glosmsd.cli.glosms.output import (
    Progress,
    contact_line,
    conv_line,
    describe,
    describe_event,
    emit,
    emit_json,
    file_size,
    link_words,
    message_lines,
    note,
    one_line,
    one_line_msg,
    plural,
    sent_line,
    sharers,
)
from glosmsd.core.errors import (
    METHOD_NOT_FOUND,
    AmbiguousRecipient,
    ConnectionLost,
    GlosmsdError,
    RpcError,
)

TYPE_CHECKING = False  # typing costs the fast path ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence
    from typing import Any, Final

    from glosmsd.client.ipc import Client


def connect(args: argparse.Namespace, timeout: float | None = 30.0) -> Client:
    from glosmsd.client.ipc import Client

    path = Path(args.socket) if args.socket else None
    return Client(path, timeout=timeout).connect()


def _call(args: argparse.Namespace, method: str, params: dict[str, Any] | None = None) -> Any:
    with connect(args) as client:
        return client.call(method, params)


def _call_with_progress(
    args: argparse.Namespace, method: str, params: dict[str, Any], label: str
) -> Any:
    bar = Progress(label)
    with connect(args, timeout=None) as client:
        if bar.enabled:
            client.call("hello", {"client": f"glosms/{__version__}", "progress": True})
        try:
            return client.call(method, params, on_progress=bar if bar.enabled else None)
        finally:
            bar.finish()


def run_count(args: argparse.Namespace) -> int:
    if args.file_bytes and not args.files:
        raise CliError("--bytes needs --files: how many files make up those bytes?")
    from glosmsd.core.rules import Limits, count_text  # only here: `send` never needs it

    text = text_arg(args.text)
    limits = Limits(mms_enabled=not args.no_mms)
    count = count_text(text, files=args.files, file_bytes=args.file_bytes, limits=limits)
    if args.json:
        import json  # only here: plain `glosms count` needs no JSON

        emit(json.dumps(count.to_json()))
    else:
        emit(describe(count, files=args.files))
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    st = _call(args, "status")
    if args.json:
        emit_json(st)
        return EXIT_OK
    ext = st.get("extension") or {}
    link = st.get("link") or {}
    who = f"{ext.get('name') or '?'} (extension {ext.get('ext') or '?'})"
    number = st.get("number") or "no SMS number assigned"
    if link.get("state") == "auth-failed":
        # The account shown is the one cached from the last hello: say it is not in use.
        emit(
            "Not signed in: the server refused glosmsd's token (get a new one from your "
            "administrator and run `glosmsd setup`); nothing can be sent or received."
        )
        emit(f"Last signed in as {who} · SMS number {number}")
    elif not ext.get("ext"):
        emit(
            "Not signed in yet: the server has not answered, so your account and SMS number "
            "are not known."
        )
    else:
        emit(f"{who} · SMS number {number}")
    if st.get("shared_with"):
        emit(f"Multiple users share this number: {sharers(st['shared_with'])}")
    emit(f"Server: {link.get('line') or link.get('state')}")
    outbox = st.get("outbox") or 0
    waiting = f" · {outbox} waiting to send" if outbox else ""
    emit(f"Unread: {st.get('unread', 0)}{waiting}")
    if st.get("sms_enabled") is False:
        emit("SMS messaging on this desktop is switched off (glosms prefs sms_enabled true).")
    return EXIT_OK


def run_number(args: argparse.Namespace) -> int:
    info = _call(args, "number")
    number = info.get("number")
    # The number is printed whatever becomes of the copy (`$(glosms number --copy)`).
    copy_failed = _copy(str(number)) if args.copy and number else None
    if args.json:
        emit_json(info)
    elif number:
        copied = "  (copied to the clipboard)" if args.copy and copy_failed is None else ""
        emit(str(number) + copied)
        if info.get("shared_with"):
            emit(f"Multiple users share this number: {sharers(info['shared_with'])}")
    else:
        emit(info.get("message") or "No SMS number assigned.")
    if copy_failed is not None:
        fail(copy_failed)
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
        return f"cannot copy: {one_line(str(exc), 160)}"
    return None


def run_ls(args: argparse.Namespace) -> int:
    convs = _call(args, "conversations", {"limit": args.limit})
    if args.json:
        emit_json(convs)
    elif not convs:
        emit("No conversations yet. Start one with: glosms send NUMBER TEXT")
    else:
        for c in convs:
            emit(conv_line(c))
    return EXIT_OK


def run_read(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"conversation": conversation_ref(args.conversation)}
    params["limit"] = args.limit
    if args.before:
        params["before"] = args.before
    res = _call(args, "messages", params)
    if args.json:
        emit_json(res)
        return EXIT_OK
    conv = res["conversation"]
    title = conv.get("name") or conv.get("remote")
    emit(f"{title} · {conv.get('remote')} · your number {conv.get('number')}")
    for m in reversed(res["messages"]):
        for line in message_lines(m):
            emit(line)
    if not res["messages"]:
        emit("(no messages)")
    return EXIT_OK


def _file_ref(value: str) -> str:
    if value.startswith("data:"):
        return value
    path = Path(checked_argument(value)).expanduser()
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


def run_send(args: argparse.Namespace) -> int:
    to = checked_argument(args.to).strip()
    if not to:
        raise CliError("TO is empty: give a phone number or a contact name")
    text = text_arg(args.text)
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
    with connect(args, timeout=90) as client:
        if args.wait:
            client.call("subscribe", {})
        try:
            res = _send_asking(client, params, args)
        except ConnectionLost:
            return _after_lost_send(args, params["client_id"])
        message = res["message"]
        for d in res.get("dropped") or ():
            note(f"{PROG}: not sent: {d.get('name')}: {d.get('reason')}")
        if res.get("notice"):
            note(f"{PROG}: {res['notice']}")
        if args.wait:
            message = _wait_for_state(client, message, args.timeout)
    if args.json:
        emit_json({**res, "message": message})
    else:
        emit(sent_line(message))
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
            with connect(args, timeout=10) as again:
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
    note(f"{PROG}: glosmsd restarted during the send; the message had been queued")
    if args.json:
        emit_json({"message": found, "dropped": [], "notice": None})
    else:
        emit(sent_line(found))
    return EXIT_REFUSED if found.get("state") == "failed" else EXIT_OK


def _can_ask(args: argparse.Namespace) -> bool:
    return bool(not args.json and args.text != "-" and sys.stdin and sys.stdin.isatty())


def _ask_pick(contact: str, choices: Sequence[Mapping[str, Any]]) -> int:
    note(f"{contact} has {len(choices)} numbers:")
    for c in choices:
        note(f"  {c.get('pick')}) {c.get('label')} {c.get('number')}")
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
        note(f"{PROG}: #{mid} queued; the server is unreachable: waiting ({link_words(link)})")
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
                note(f"{PROG}: #{mid} queued; the server is {word} ({link_words(data)})")
            link = data


def run_resend(args: argparse.Namespace) -> int:
    res = _call(args, "resend", {"id": args.id})
    if args.json:
        emit_json(res)
    else:
        emit(sent_line(res["message"]) if res.get("message") else f"#{args.id}: queued")
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    if args.conversation is not None:
        res = _call(
            args, "delete_conversation", {"conversation": conversation_ref(args.conversation)}
        )
        line = f"Deleted conversation {res['deleted']}."
    else:
        res = _call(args, "delete_message", {"id": args.id})
        line = f"Deleted message #{res['deleted']}."
    emit_json(res) if args.json else emit(line)
    return EXIT_OK


def run_mark_read(args: argparse.Namespace) -> int:
    params = {} if args.all else {"conversation": conversation_ref(args.conversation)}
    res = _call(args, "mark_read", params)
    if args.json:
        emit_json(res)
        return EXIT_OK
    named = res.get("conversations") or []
    which = ", ".join(f"{c.get('title')} ({c.get('remote')})" for c in named)
    if args.all or not named:
        emit(f"Marked {plural(res['marked'], 'conversation')} read; {res['unread']} unread.")
    else:
        emit(f"Marked {which} read; {res['unread']} unread.")
    return EXIT_OK


def run_search(args: argparse.Namespace) -> int:
    res = _call(args, "search", {"query": checked_argument(args.query), "limit": args.limit})
    if args.json:
        emit_json(res)
        return EXIT_OK
    sections = (
        ("Contacts", [contact_line(c) for c in res["contacts"]]),
        ("Conversations", [conv_line(c) for c in res["conversations"]]),
        (
            "Messages",
            [f"(conv {m['conversation_id']}) " + one_line_msg(m) for m in res["messages"]],
        ),
    )
    found = False
    for title, lines in sections:
        if lines:
            found = True
            emit(f"{title}:")
            for line in lines:
                emit(f"  {line}")
    if not found:
        emit(f"Nothing matches {args.query!r}.")
    return EXIT_OK


def run_contacts(args: argparse.Namespace) -> int:
    res = _call(args, "contacts", {"query": checked_argument(args.query), "limit": args.limit})
    if args.json:
        emit_json(res)
    elif not res:
        emit(f"No contact matches {args.query!r}.")
    else:
        for c in res:
            emit(contact_line(c))
    return EXIT_OK


def run_download(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"id": args.id}
    if args.file is not None:
        params["file"] = args.file
    res = _call_with_progress(args, "download", params, f"Downloading #{args.id}")
    if args.json:
        emit_json(res)
        return EXIT_OK
    for f in res["files"]:
        where = f.get("path") if f.get("state") == "done" else f"not downloaded ({f.get('state')})"
        emit(f"{f.get('name')} ({file_size(f.get('size'))}): {where}")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    target = Path(checked_argument(args.dir)).expanduser()
    if not target.is_dir():
        raise CliError(f"{args.dir} is not a folder: pick an existing folder to export into")
    res = _call_with_progress(args, "export", {"dir": str(target.resolve())}, "Exporting")
    if args.json:
        emit_json(res)
    else:
        missing = res.get("missing_files") or 0
        tail = f"; {plural(missing, 'file')} not downloaded" if missing else ""
        emit(
            f"Exported {plural(res['conversations'], 'conversation')} and "
            f"{plural(res['files'], 'file')} to {res['folder']}{tail}"
        )
    return EXIT_OK


def run_watch(args: argparse.Namespace) -> int:
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
        with connect(args, timeout=None) as client:
            params = {} if args.since is None else {"since": args.since}
            res = client.call("subscribe", params)
            if res.get("gap"):
                note(
                    f"{PROG}: some events after {args.since} are older than the daemon keeps "
                    "(or from another daemon); reload what you show."
                )
            for ev in client.events():
                emit_json(ev) if args.json else emit(describe_event(ev))
    except KeyboardInterrupt:
        return EXIT_OK
    except LinkClosed as exc:
        if exc.kind == "daemon-not-running":
            raise
        raise CliError("glosmsd stopped; watch ended.", EXIT_FAIL) from None
    return EXIT_OK


def run_prefs(args: argparse.Namespace) -> int:
    import json

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
        emit_json(res)
    elif isinstance(res, dict):
        for key, val in res.items():
            emit(f"{key} = {json.dumps(val)}")
    else:
        emit(json.dumps(res))
    return EXIT_OK


def run_compose(args: argparse.Namespace) -> int:
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


def run_open(args: argparse.Namespace) -> int:
    """Ask the daemon for a one-time URL of the SMS window and show it (issue 15)."""
    params: dict[str, Any] = {}
    if args.conversation is not None:
        params["conversation"] = conversation_ref(args.conversation)
    if args.url:
        res = _window_open(args, {**params, "launch": False})
        emit_json(res) if args.json else emit(str(res["url"]))
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
    emit_json({**res, "line": line}) if args.json else emit(line)
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
