"""The fast path: the common command lines of `glosms`, read without argparse.

Importing argparse and building a sub-parser cost `glosms count` about as much as the
rest of its run (issue 16). `parse` takes a command line only when it is plain: the
command is one of `FAST`, any `--socket PATH` comes before it, each option is spelled in
full with its value in the next word, the positionals come in one run, and every value
is one argparse would take. It then returns what argparse would have made of it (the
same names and values; tests/cli/test_fast.py compares the two). Anything else (--help,
an abbreviation, `--opt=value`, a value starting with `-`, a bad number, a missing or
an extra word) gives None, and argparse reads the line: every usage error and its
message stay argparse's.
"""

from __future__ import annotations

from types import SimpleNamespace

from glosmsd.cli.glosms import commands
from glosmsd.cli.glosms.inputs import seconds, whole_number

TYPE_CHECKING = False  # typing costs the fast path ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, Final

# What an option takes: nothing (store_true), a whole number from 0 or from 1, seconds,
# or any word.
FLAG: Final = "flag"
COUNT: Final = "count"
POSITIVE: Final = "positive"
SECONDS: Final = "seconds"
WORD: Final = "word"


class Spec:
    """One command as `parser` configures it: its positionals in order (`rest` takes
    any number after them, as nargs="*"), its options (`--name`: (dest, kind)) and the
    defaults argparse gives."""

    __slots__ = ("defaults", "options", "positionals", "rest", "run")

    def __init__(
        self,
        run: Callable[[Any], int],
        positionals: tuple[str, ...] = (),
        options: dict[str, tuple[str, str]] | None = None,
        defaults: dict[str, Any] | None = None,
        rest: str | None = None,
    ) -> None:
        self.run = run
        self.positionals = positionals
        self.options = {"--json": ("json", FLAG), **(options or {})}
        self.defaults = {
            **{dest: False for dest, kind in self.options.values() if kind == FLAG},
            **(defaults or {}),
        }
        if rest is not None:
            self.defaults[rest] = []
        self.rest = rest


FAST: Final = {
    "count": Spec(
        commands.run_count,
        ("text",),
        {
            "--files": ("files", COUNT),
            "--bytes": ("file_bytes", COUNT),
            "--no-mms": ("no_mms", FLAG),
        },
        {"files": 0, "file_bytes": 0},
    ),
    "send": Spec(
        commands.run_send,
        ("to", "text"),
        {
            "--pick": ("pick", POSITIVE),
            "--client-id": ("client_id", WORD),
            "--wait": ("wait", FLAG),
            "--timeout": ("timeout", SECONDS),
            "--drop-excess": ("drop_excess", FLAG),
        },
        {"pick": None, "client_id": None, "timeout": None},
        rest="files",
    ),
    "status": Spec(commands.run_status),
    "ls": Spec(commands.run_ls, (), {"--limit": ("limit", POSITIVE)}, {"limit": 50}),
    "read": Spec(
        commands.run_read,
        ("conversation",),
        {"--limit": ("limit", POSITIVE), "--before": ("before", POSITIVE)},
        {"limit": 50, "before": None},
    ),
}


def _value(kind: str, word: str) -> Any:
    """`word` as an option of `kind` takes it, or None where argparse must say why not."""
    if kind == COUNT:
        return whole_number(word, 0)
    if kind == POSITIVE:
        return whole_number(word, 1)
    if kind == SECONDS:
        return seconds(word)
    return word


def parse(argv: Sequence[str]) -> SimpleNamespace | None:
    """The arguments argparse would make of `argv`, or None to let argparse read it."""
    socket = None
    at = 0
    while at < len(argv) and argv[at].startswith("-"):
        if argv[at] != "--socket" or at + 1 == len(argv) or argv[at + 1].startswith("-"):
            return None
        socket = argv[at + 1]
        at += 2
    if at == len(argv) or argv[at] not in FAST:
        return None
    name = argv[at]
    spec = FAST[name]
    values = dict(spec.defaults)
    words: list[str] = []
    after_words = False
    at += 1
    while at < len(argv):
        word = argv[at]
        if word.startswith("-") and word != "-":
            after_words = bool(words)
            option = spec.options.get(word)
            if option is None:
                return None
            dest, kind = option
            if kind == FLAG:
                values[dest] = True
                at += 1
                continue
            if at + 1 == len(argv) or argv[at + 1].startswith("-"):
                return None
            value = _value(kind, argv[at + 1])
            if value is None:
                return None
            values[dest] = value
            at += 2
        elif after_words:
            return None  # argparse reads positionals split by an option its own way
        else:
            words.append(word)
            at += 1
    wanted = len(spec.positionals)
    if len(words) < wanted or (len(words) > wanted and spec.rest is None):
        return None
    values.update(zip(spec.positionals, words, strict=False))
    if spec.rest is not None and len(words) > wanted:
        values[spec.rest] = words[wanted:]
    return SimpleNamespace(socket=socket, command=name, run=spec.run, **values)
