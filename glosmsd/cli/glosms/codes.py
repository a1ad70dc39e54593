"""`glosms`'s exit codes, the error for what the user typed, and which code an error gets.

Loaded by every run, the fast path's too: it must import nothing but the error tree.
"""

from __future__ import annotations

import sys

from glosmsd.core.errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    AuthFailed,
    BadInput,
    ConfigError,
    GlosmsdError,
    LimitExceeded,
    NotFound,
    RpcError,
    SendFailed,
    Unsupported,
)

TYPE_CHECKING = False  # typing costs the fast path ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Final

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


def fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
