"""`glosms`'s argparse parser: one `Command` row per subcommand (its name, help line, the
function that adds its arguments and the one that runs it), the argument types, and
`build_parser`, which builds only the named command's sub-parser when it can.

The fast path (`fast`) parses the common command lines without this module; whatever it
does not take comes here, so every usage error, --help and --version is argparse's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from glosmsd import __version__
from glosmsd.cli.glosms import commands
from glosmsd.cli.glosms.codes import EXIT_HELP, EXIT_USAGE, PROG
from glosmsd.cli.glosms.completion import COMPLETION_EPILOG, LISTED, SHELLS, run_completion


@dataclass(frozen=True, slots=True)
class Command:
    """One `glosms` subcommand."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


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


def _configure_plain(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)


def _configure_number(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)
    parser.add_argument("--copy", action="store_true", help="copy the number to the clipboard")


def _configure_ls(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)
    parser.add_argument("--limit", type=_positive, default=50, help="at most this many")


def _configure_read(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("conversation", metavar="CONV", help="conversation id, number or name")
    _add_json(parser)
    parser.add_argument("--limit", type=_positive, default=50, help="at most this many")
    parser.add_argument("--before", type=_positive, metavar="ID", help="older than message ID")


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


def _configure_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", metavar="ID", type=_positive, help="the message id (glosms read)")
    _add_json(parser)


def _configure_delete(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("id", metavar="MSG", type=_positive, nargs="?", help="a message id")
    which.add_argument(
        "--conversation", metavar="CONV", help="delete a whole conversation (id, number, name)"
    )
    _add_json(parser)


def _configure_mark_read(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("conversation", metavar="CONV", nargs="?", help="a conversation")
    which.add_argument("--all", action="store_true", help="mark every conversation read")
    _add_json(parser)


def _configure_query(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", metavar="QUERY", help="words, a name or a number")
    _add_json(parser)
    parser.add_argument("--limit", type=_positive, default=20, help="at most this many")


def _configure_download(parser: argparse.ArgumentParser) -> None:
    _configure_id(parser)
    parser.add_argument("--file", type=_count_arg, metavar="N", help="only file N (from 0)")


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="an existing folder; a new SMS folder goes in")
    _add_json(parser)


def _configure_watch(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)
    parser.add_argument(
        "--since", type=_count_arg, metavar="ID", help="first replay every event after ID"
    )


def _configure_prefs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar="KEY", nargs="?", help="one preference")
    parser.add_argument("value", metavar="VALUE", nargs="?", help="set it (true/false)")
    _add_json(parser)


def _configure_compose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("to", metavar="TO", nargs="?", help="prefill the recipient")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


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


def _configure_completion(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "shell", metavar="SHELL", nargs="?", choices=SHELLS, help="bash, zsh or fish"
    )
    parser.add_argument("--list", choices=tuple(LISTED), help=argparse.SUPPRESS)
    parser.epilog = COMPLETION_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


COMMANDS: Final[tuple[Command, ...]] = (
    Command(
        "status",
        "the link, your account and number, unread count",
        _configure_plain,
        commands.run_status,
    ),
    Command(
        "number",
        "your SMS number and who shares it (--copy: to clipboard)",
        _configure_number,
        commands.run_number,
    ),
    Command(
        "ls", "conversations, most recent first, with unread counts", _configure_ls, commands.run_ls
    ),
    Command("read", "the messages of a conversation", _configure_read, commands.run_read),
    Command("send", "send an SMS, or an MMS with files", _configure_send, commands.run_send),
    Command("resend", "send a failed message again", _configure_id, commands.run_resend),
    Command(
        "delete", "delete a message, or a conversation", _configure_delete, commands.run_delete
    ),
    Command(
        "mark-read",
        "mark a conversation (or --all) read",
        _configure_mark_read,
        commands.run_mark_read,
    ),
    Command(
        "search",
        "search contacts, conversations and messages",
        _configure_query,
        commands.run_search,
    ),
    Command(
        "contacts", "look contacts up by name or number", _configure_query, commands.run_contacts
    ),
    Command("download", "download a message's files", _configure_download, commands.run_download),
    Command(
        "export", "export the history into a new SMS folder", _configure_export, commands.run_export
    ),
    Command(
        "watch", "print events as they happen (Ctrl+C ends)", _configure_watch, commands.run_watch
    ),
    Command("prefs", "show or change preferences", _configure_prefs, commands.run_prefs),
    Command(
        "count",
        "count characters and SMS segments of a text (no daemon needed)",
        _configure_count,
        commands.run_count,
    ),
    Command(
        "open",
        "open the SMS window, at a conversation (--url: print its one-time link)",
        _configure_open,
        commands.run_open,
    ),
    Command("compose", "open the quick-send popup", _configure_compose, commands.run_compose),
    Command(
        "completion",
        "print a tab-completion script for bash, zsh or fish",
        _configure_completion,
        run_completion,
    ),
)


def command_in(argv: Sequence[str]) -> str | None:
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


def parse(argv: Sequence[str]) -> argparse.Namespace | int:
    """argparse's reading of `argv`, or the exit code once it printed the help, the
    version or a usage error."""
    named = command_in(argv)
    parser = build_parser(named if any(c.name == named for c in COMMANDS) else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # --help, --version and usage errors: argparse has already printed them.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return args
