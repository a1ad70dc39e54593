"""The fast path reads a command line exactly as argparse does, or leaves it to argparse.

For every command line it takes, `fast.parse` must give what `parser.parse` gives (the
same names and values); what it does not take, argparse reads (so its errors and --help
stay argparse's). Examples plus a hypothesis property over words that trip argparse up.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glosmsd.cli.glosms import commands, fast, parser


def argparse_reads(argv: Sequence[str]) -> dict[str, object] | int:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        parsed = parser.parse(argv)
    return parsed if isinstance(parsed, int) else vars(parsed)


TAKEN = [
    ["count", "hello"],
    ["count", "-"],
    ["count", ""],
    ["count", "--json", "--files", "1", "--bytes", "9", "hi"],
    ["count", "hi", "--no-mms", "--files", "0"],
    ["--socket", "/run/x/socket", "count", "hi"],
    ["send", "+15557650000", "bench", "--json"],
    ["send", "Bob Roe", "-", "a.txt", "b.png", "--pick", "2", "--drop-excess"],
    ["send", "--wait", "--timeout", "1.5", "--client-id", "k1", "+1555", "hi"],
    ["send", "+1555", "", "--client-id", ""],
    ["status"],
    ["status", "--json"],
    ["ls", "--limit", "3"],
    ["read", "12", "--before", "40", "--limit", "2", "--json"],
]

LEFT = [
    [],
    ["--help"],
    ["--version"],
    ["count"],
    ["count", "-h"],
    ["count", "--fil", "2", "x"],
    ["count", "--files=2", "x"],
    ["count", "--files", "-1", "x"],
    ["count", "--files", "two", "x"],
    ["count", "-5"],
    ["count", "a", "b"],
    ["count", "--", "-x"],
    ["count", "hi", "--socket", "/x"],
    ["--socket=/x", "count", "hi"],
    ["--socket", "-", "count", "hi"],
    ["send", "+1555"],
    ["send", "+1555", "hi", "--json", "more.txt"],
    ["send", "+1555", "hi", "--timeout", "0"],
    ["send", "+1555", "hi", "--pick", "0"],
    ["ls", "extra"],
    ["read"],
    ["number"],
    ["mark-read", "--all"],
]


@pytest.mark.parametrize("argv", TAKEN, ids=" ".join)
def test_plain_lines_are_read_as_argparse_reads_them(argv: list[str]) -> None:
    got = fast.parse(argv)
    assert got is not None
    assert vars(got) == argparse_reads(argv)


@pytest.mark.parametrize("argv", LEFT, ids=" ".join)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert fast.parse(argv) is None


def test_each_fast_command_runs_what_the_table_runs() -> None:
    for name, spec in fast.FAST.items():
        row = next(c for c in parser.COMMANDS if c.name == name)
        assert spec.run is row.run
    assert fast.FAST["count"].run is commands.run_count


def test_every_option_of_a_fast_command_is_known_to_it() -> None:
    """A new option in `parser` must reach the fast path too, or its lines would be left
    to argparse for ever (harmless, but slow) or read without it."""
    for name, spec in fast.FAST.items():
        sub = parser.build_parser(name)._subparsers
        assert sub is not None
        action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
        child = action.choices[name]
        options = {s for a in child._actions for s in a.option_strings if s not in ("-h", "--help")}
        assert options == set(spec.options), name


WORDS = st.sampled_from(
    [
        "count", "send", "status", "ls", "read", "number", "--json", "--files", "--bytes",
        "--no-mms", "--pick", "--client-id", "--wait", "--timeout", "--drop-excess",
        "--limit", "--before", "--socket", "--socket=/s", "--fil", "-h", "--", "-", "",
        "0", "1", "2", "-1", "1.5", "1e3", "nan", " 3", "x", "-x", "a b", "-a b", "+1555",
    ]
)  # fmt: skip


@given(st.lists(WORDS, max_size=8))
def test_whatever_the_fast_path_takes_argparse_reads_the_same(argv: list[str]) -> None:
    got = fast.parse(argv)
    if got is not None:
        assert vars(got) == argparse_reads(argv)
