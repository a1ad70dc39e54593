"""What `glosms` prints: the lines for people (a count, a conversation, a message, an
event), the JSON form, notes on stderr and the progress bar.

Pure formatting of what the daemon answered: no socket, no argument parsing. It loads
on every run that prints, so it imports only what the interpreter has already loaded
(json, sys, time); `datetime` only when a time is shown.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # typing costs the fast path ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from glosmsd.core.rules import Count


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def emit_json(obj: Any) -> None:
    import json  # only here: plain `glosms count` needs no JSON

    emit(json.dumps(obj, ensure_ascii=False))


def note(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def when(at: float | None, now: float | None = None) -> str:
    """A short local time: `14:05` today, `Mon 14:05` this week, else the date."""
    if at is None:
        return ""
    import datetime as dt  # only here: `count` and `send` never show a time

    stamp = dt.datetime.fromtimestamp(at)
    today = dt.datetime.fromtimestamp(time.time() if now is None else now).date()
    days = (today - stamp.date()).days
    if days == 0:
        return stamp.strftime("%H:%M")
    if 0 < days < 7:
        return stamp.strftime("%a %H:%M")
    return stamp.strftime("%Y-%m-%d")


def one_line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def file_size(n: int | None) -> str:
    if n is None:
        return "? KB"
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} KB" if n else "0 KB"
    return f"{n / (1024 * 1024):.1f} MB"


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


def describe(count: Count, *, files: int = 0) -> str:
    """The counter as one line for people: kind, encoding, size, what is left."""
    if not count.fits:
        return count.reason or "Does not fit."
    if count.kind == "mms":
        if files and count.bytes_left is not None:
            kb_left = count.bytes_left // 1024
            return f"MMS · {plural(files, 'file')} · {kb_left} KB left"
        return f"MMS · {plural(count.chars, 'character')} · {count.chars_left} left"
    size = plural(count.chars, "character")
    if count.units != count.chars:
        unit = "septets" if count.encoding == "GSM-7" else "units"
        size += f" ({count.units} {unit})"
    where = " in this segment" if count.segments > 1 else ""
    return (
        f"SMS · {count.encoding} · {plural(count.segments, 'segment')} · {size} · "
        f"{count.remaining} left{where}"
    )


def sharers(people: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{p.get('name') or '?'} ({p.get('ext') or '?'})" for p in people)


def conv_line(c: Mapping[str, Any]) -> str:
    title = c.get("name") or c.get("remote") or "?"
    if c.get("name"):
        title += f" ({c.get('remote')})"
    unread = f"  [{c['unread']} unread]" if c.get("unread") else ""
    arrow = "→" if c.get("last_direction") == "out" else "←"
    last = f"  {arrow} {one_line(c['last_text'], 50)}" if c.get("last_text") else ""
    return f"{c.get('id'):>4}  {when(c.get('last_at')):>10}  {title}{unread}{last}"


def message_lines(m: Mapping[str, Any]) -> Iterator[str]:
    out = m.get("direction") == "out"
    arrow = "→" if out else "←"
    sender = m.get("sender")
    who = f" — {sender.get('name')}:" if out and sender else ""
    state = m.get("state")
    flag = ""
    resent = m.get("resent_as")
    if out and state == "failed" and resent is not None and resent != m.get("id"):
        flag = f"  [failed: {m.get('reason') or 'unknown reason'}; resent as #{resent}]"
    elif out and state == "failed":
        flag = f"  [failed: {m.get('reason') or 'unknown reason'}; glosms resend {m.get('id')}]"
    elif out and state == "sending":
        flag = "  [sending]"
    text = str(m.get("text") or "").replace("\n", "\n" + " " * 8)
    yield f"#{m.get('id'):<5} {when(m.get('at')):>10} {arrow}{who} {text}{flag}".rstrip()
    for f in m.get("files") or ():
        where = f.get("path") if f.get("state") == "done" else f.get("state")
        yield f"{'':18}file: {f.get('name')} ({file_size(f.get('size'))}, {where})"


def sent_line(m: Mapping[str, Any]) -> str:
    files = m.get("files") or ()
    extra = f" with {plural(len(files), 'file')}" if files else ""
    state = m.get("state")
    if state == "failed":
        return f"#{m.get('id')} to {m.get('remote')}{extra}: failed: {m.get('reason')}"
    said = "queued" if state == "sending" else state
    return f"#{m.get('id')} to {m.get('remote')}{extra}: {said}"


def link_words(link: Mapping[str, Any]) -> str:
    return str(link.get("line") or link.get("state") or "no link yet")


def contact_line(c: Mapping[str, Any]) -> str:
    numbers = ", ".join(f"{n.get('label')} {n.get('number')}" for n in c.get("numbers") or ())
    return f"{c.get('name')}: {numbers or 'no number'}"


def one_line_msg(m: Mapping[str, Any]) -> str:
    return next(message_lines({**m, "text": one_line(str(m.get("text") or ""), 70)}))


def describe_event(ev: Mapping[str, Any]) -> str:
    """One line for people per event kind; unknown kinds show their data."""
    kind = ev.get("kind")
    d = ev.get("data") or {}
    head = f"[{ev.get('id')}] {when(ev.get('at'))}"
    if kind == "message":
        m = d.get("message") or {}
        return f"{head} {m.get('remote')}: " + one_line_msg(m)
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
    import json

    return f"{head} {kind}: {json.dumps(d, ensure_ascii=False)}"
