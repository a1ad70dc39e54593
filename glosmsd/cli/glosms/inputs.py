"""What the user typed, checked before anything is sent: a text from an argument or from
stdin (UTF-8 only), a conversation reference, and whole numbers and seconds.

`whole_number` and `seconds` only say whether a value is good (None when not), so the
fast path can take it without argparse; the argparse types in `parser` say what is wrong
with it (the fast path leaves every value it does not take to them).
"""

from __future__ import annotations

import sys

from glosmsd.cli.glosms.codes import CliError


def read_stdin() -> str:
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


def checked_argument(text: str) -> str:
    # Undecodable argv bytes reach us as lone surrogates (surrogateescape).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CliError(
            f"the text is not valid UTF-8 (at character {exc.start + 1}): check the "
            "terminal's or the script's encoding, or pipe the text in with -"
        ) from None
    return text


def text_arg(value: str) -> str:
    return read_stdin() if value == "-" else checked_argument(value)


def conversation_ref(value: str) -> str:
    # Passed on as typed: the daemon decides "id or number?" (an id when one exists, else
    # a number), so `read 12345` finds what `send 12345` started.
    text = checked_argument(value).strip()
    if not text:
        raise CliError("name a conversation: its id from `glosms ls`, a number or a contact")
    return text


def whole_number(value: str, least: int) -> int | None:
    """`value` as an int of at least `least`, or None when it is not one."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= least else None


def seconds(value: str) -> float | None:
    """`value` as more than 0 and at most a day of seconds, or None when it is not."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 < number <= 86_400 else None
