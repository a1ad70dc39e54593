"""`glosms`: the command-line frontend of glosmsd.

The package owns argument parsing, what each command prints (a friendly format, or the
method's result as JSON with `--json`), and the exit codes, one concern a module:

- `codes`: the exit codes, `CliError` and which code an error gets;
- `fast`: the common command lines read without argparse (the start-up path);
- `parser`: the argparse table, one `Command` row per subcommand, for everything else;
- `commands`: what each command does, `inputs`: the checks of what the user typed,
  `output`: what it prints, `completion`: the shells' completion scripts.

It must start fast and stay a thin frontend: it must never import asyncio, websockets,
Pillow, jsonschema or sqlite3 (tests/cli/test_glosms.py checks), never talk to the server or
the store directly, and never show a traceback for bad input: one line on stderr and
a documented exit code. `glosms count` loads codes, fast, commands, inputs, output and
the rules; argparse, the socket client, typing and datetime only where a command needs
them (`python -X importtime` shows it).
"""

from __future__ import annotations

import os
import sys

from glosmsd.cli.glosms.codes import (
    EXIT_FAIL,
    EXIT_NO_DAEMON,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    CliError,
    exit_code_for,
    fail,
)
from glosmsd.core.errors import GlosmsdError

TYPE_CHECKING = False  # typing costs the fast path ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import SimpleNamespace

__all__ = [
    "EXIT_FAIL",
    "EXIT_NO_DAEMON",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "exit_code_for",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run `glosms` with `argv` (default: the process's arguments); return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    from glosmsd.cli.glosms import fast

    args: SimpleNamespace | argparse.Namespace | None = fast.parse(argv)
    if args is None:
        from glosmsd.cli.glosms import parser

        parsed = parser.parse(argv)
        if isinstance(parsed, int):
            return parsed
        args = parsed
    try:
        code: int = args.run(args)
    except CliError as exc:
        fail(exc.message)
        return exc.code
    except GlosmsdError as exc:
        fail(exc.message)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except BrokenPipeError:
        # The reader of our output left (`| head`). Point stdout at /dev/null so the
        # interpreter's final flush does not fail a second time with a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAIL
    return code
