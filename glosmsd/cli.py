"""`glosms`: the command-line frontend of glosmsd.

This module owns argument parsing, what each command prints, and the exit codes. Each
command is one row of `COMMANDS`: a name, a help line, a function that adds its
arguments and a function that runs it. Commands that need the daemon import
`glosmsd.ipc_client` inside their `run`, so `glosms count` and `glosms --help` never pay
for it.

It must start fast and stay a thin frontend: it must never import asyncio, websockets,
Pillow, jsonschema or sqlite3 (tests/test_cli.py checks), never talk to the server or
the store directly, and never show a traceback for bad input: one line on stderr and
a documented exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from glosmsd import __version__
from glosmsd.errors import BadInput, ConfigError, GlosmsdError
from glosmsd.rules import Count, Limits, count_text

#: Success, including `count` for a text that does not fit (the answer was printed).
EXIT_OK: Final = 0
#: Anything else that went wrong.
EXIT_FAIL: Final = 1
#: Bad input: wrong arguments, text that is not valid UTF-8, an unreadable file.
EXIT_USAGE: Final = 2
#: No daemon answers on the socket.
EXIT_NO_DAEMON: Final = 3
#: The daemon or the server refused the request (a limit, MMS off, no SMS number, ...).
EXIT_REFUSED: Final = 4

PROG: Final = "glosms"


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
    if isinstance(exc, BadInput | ConfigError):
        return EXIT_USAGE
    # Matched by kind so this module need not import the socket client to know the class.
    if exc.kind == "daemon-not-running":
        return EXIT_NO_DAEMON
    return EXIT_REFUSED


# --------------------------------------------------------------------------- count


def _configure_count(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", metavar="TEXT", help="the message text, or - to read stdin")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
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
    text = _read_stdin() if args.text == "-" else _checked_argument(args.text)
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _count_arg(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {number}")
    return number


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


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- the table

COMMANDS: Final[tuple[Command, ...]] = (
    Command(
        "count",
        "count characters and SMS segments of a text (no daemon needed)",
        _configure_count,
        _run_count,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Send and read SMS/MMS through the glosmsd daemon.",
        epilog=(
            f"exit codes: {EXIT_OK} ok, {EXIT_FAIL} failed, {EXIT_USAGE} bad input, "
            f"{EXIT_NO_DAEMON} no daemon running, {EXIT_REFUSED} refused by the server"
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(child)
        child.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `glosms` with `argv` (default: the process's arguments); return the exit code."""
    parser = build_parser()
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
