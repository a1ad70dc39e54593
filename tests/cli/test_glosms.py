"""The `glosms` CLI: `count` end to end in a real process, exit codes, and a light start."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from glosmsd import __version__
from glosmsd.cli import glosms as cli
from glosmsd.cli.glosms.output import describe, message_lines
from glosmsd.cli.glosms.parser import COMMANDS
from glosmsd.client.ipc import DaemonNotRunning
from glosmsd.core.errors import (
    BadInput,
    GlosmsdError,
    LimitExceeded,
    LinkClosed,
    NoSmsNumber,
    NotFound,
    RpcError,
)
from glosmsd.core.rules import count_text

GLOSMS = Path(sys.executable).with_name("glosms")
HEAVY = ("asyncio", "websockets", "PIL", "jsonschema", "sqlite3")


def glosms(
    *args: str | bytes, stdin: bytes | None = None, script: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI as its own process, as a shell would."""
    cmd: list[str | bytes] = (
        [str(GLOSMS)] if script else [sys.executable, "-m", "glosmsd.cli.glosms"]
    )
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": ""}
    return subprocess.run(
        [*cmd, *args], input=stdin or b"", capture_output=True, env=env, timeout=30, check=False
    )


def as_json(proc: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert proc.returncode == cli.EXIT_OK, proc.stderr
    assert proc.stdout.count(b"\n") == 1
    obj = json.loads(proc.stdout)
    assert isinstance(obj, dict)
    return obj


# --------------------------------------------------------------------------- processes


def test_console_script_counts_as_json() -> None:
    assert GLOSMS.exists()
    proc = glosms("count", "--json", "Hello!", script=True)
    assert as_json(proc) == {
        "kind": "sms",
        "encoding": "GSM-7",
        "segments": 1,
        "units": 6,
        "remaining": 154,
        "fits": True,
    }
    assert proc.stderr == b""


def test_stdin_dash_strips_one_trailing_newline() -> None:
    assert as_json(glosms("count", "--json", "-", stdin=b"a" * 160 + b"\n"))["segments"] == 1
    assert as_json(glosms("count", "--json", "-", stdin=b"a" * 160 + b"\r\n"))["units"] == 160
    # Only one: a second newline is part of the text.
    assert as_json(glosms("count", "--json", "-", stdin=b"a" * 159 + b"\n\n"))["units"] == 160


def test_stdin_emoji_counts_utf16_units() -> None:
    obj = as_json(glosms("count", "--json", "-", stdin="😀 hi".encode()))
    assert (obj["encoding"], obj["units"], obj["remaining"]) == ("UCS-2", 5, 65)


def test_nul_characters_on_stdin_switch_to_ucs2() -> None:
    obj = as_json(glosms("count", "--json", "-", stdin=b"a\x00b\x00"))
    assert (obj["encoding"], obj["units"]) == ("UCS-2", 4)


def test_invalid_utf8_on_stdin_is_one_clear_line_and_exit_2() -> None:
    proc = glosms("count", "-", stdin=b"caf\xe9 au lait")
    assert proc.returncode == cli.EXIT_USAGE
    assert proc.stdout == b""
    assert proc.stderr == (
        b"glosms: standard input is not valid UTF-8 (byte 0xe9 at offset 3): "
        b"convert it first, e.g. with iconv -t UTF-8\n"
    )


def test_invalid_utf8_in_argv_is_one_clear_line_and_exit_2() -> None:
    proc = glosms("count", b"caf\xe9")
    assert proc.returncode == cli.EXIT_USAGE
    assert proc.stderr.startswith(b"glosms: the text is not valid UTF-8 (at character 4)")
    assert b"Traceback" not in proc.stderr
    assert proc.stderr.count(b"\n") == 1


def test_files_and_bytes_make_an_mms() -> None:
    obj = as_json(glosms("count", "--json", "--files", "2", "--bytes", "192512", "hi"))
    assert obj == {
        "kind": "mms",
        "encoding": "GSM-7",
        "segments": 1,
        "units": 2,
        "remaining": 158,
        "fits": True,
        "bytes_left": 319_488,
        "chars_left": 998,
    }
    proc = glosms("count", "--files", "2", "--bytes", "192512", "hi")
    assert proc.stdout.decode() == "MMS · 2 files · 312 KB left\n"


def test_too_many_bytes_prints_the_product_message_and_still_exits_0() -> None:
    proc = glosms("count", "--files", "1", "--bytes", "600000", "hi")
    assert proc.returncode == cli.EXIT_OK
    assert proc.stdout.decode().startswith("Maximum size of attached files for MMS reached.")


def test_no_mms_makes_a_long_text_not_fit() -> None:
    obj = as_json(glosms("count", "--json", "--no-mms", "a" * 613))
    assert (obj["kind"], obj["fits"], obj["segments"]) == ("sms", False, 5)
    assert obj["reason"].startswith("Too long for an SMS: 5 segments, at most 4.")


@pytest.mark.parametrize(
    "args",
    [
        ("count", "--bytes", "5", "x"),
        ("count", "--files", "-1", "x"),
        ("count", "--files", "two", "x"),
        ("count",),
        ("frobnicate",),
        (),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(args: tuple[str, ...]) -> None:
    proc = glosms(*args)
    assert proc.returncode == cli.EXIT_USAGE
    assert proc.stderr
    assert b"Traceback" not in proc.stderr


def test_help_and_version() -> None:
    proc = glosms("--help")
    assert proc.returncode == 0
    assert b"count" in proc.stdout
    assert b"exit codes" in proc.stdout
    proc = glosms("--version")
    assert (proc.returncode, proc.stdout) == (0, f"glosms {__version__}\n".encode())


def test_count_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from glosmsd.cli import glosms\n"
        "code = glosms.main(['count', '--json', '--files', '1', '--bytes', '9', 'hi'])\n"
        f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    # Coverage measures subprocesses and itself loads sqlite3: probe without it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, timeout=30, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines()[-1] == "0 []"


# --------------------------------------------------------------------------- in process


def test_main_reads_stdin_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("héllo wôrld\n".encode())))
    assert cli.main(["count", "-"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert (out, err) == ("SMS · UCS-2 · 1 segment · 11 characters · 59 left\n", "")


def test_main_with_surrogates_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    text = b"\xff".decode("utf-8", "surrogateescape")
    assert cli.main(["count", text]) == cli.EXIT_USAGE
    assert capsys.readouterr().err.startswith("glosms: the text is not valid UTF-8")


def test_main_without_a_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert "usage: glosms" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "files", "size", "line"),
    [
        (
            "Hello, this is a test of the counter!!",
            0,
            0,
            "SMS · GSM-7 · 1 segment · 38 characters · 122 left",
        ),
        (
            "Привет" * 25,
            0,
            0,
            "SMS · UCS-2 · 3 segments · 150 characters · 51 left in this segment",
        ),
        ("😀", 0, 0, "SMS · UCS-2 · 1 segment · 1 character (2 units) · 68 left"),
        ("{€}", 0, 0, "SMS · GSM-7 · 1 segment · 3 characters (6 septets) · 154 left"),
        ("", 0, 0, "SMS · GSM-7 · 1 segment · 0 characters · 160 left"),
        ("a" * 700, 0, 0, "MMS · 700 characters · 300 left"),
        ("a" * 613, 0, 0, "MMS · 613 characters · 387 left"),
        ("hi", 1, 512_000, "MMS · 1 file · 0 KB left"),
        ("a" * 1001, 0, 0, "Too long for an MMS: 1001 characters, at most 1000."),
    ],
)
def test_describe(text: str, files: int, size: int, line: str) -> None:
    assert describe(count_text(text, files=files, file_bytes=size), files=files) == line


def test_a_failed_message_offers_resend_until_it_was_resent() -> None:
    failed = {"id": 7, "direction": "out", "state": "failed", "reason": "Number blocked"}
    failed |= {"text": "hi", "at": None, "files": [], "sender": None}
    assert next(message_lines(failed)).endswith("[failed: Number blocked; glosms resend 7]")
    # A daemon before `resent_as` sends none; one that went again itself names itself.
    assert next(message_lines({**failed, "resent_as": 7})).endswith("glosms resend 7]")
    resent = next(message_lines({**failed, "resent_as": 9}))
    assert resent.endswith("[failed: Number blocked; resent as #9]")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadInput("x"), cli.EXIT_USAGE),
        (LimitExceeded("x"), cli.EXIT_REFUSED),
        (NoSmsNumber("x"), cli.EXIT_REFUSED),
        (RpcError(-32601, "x"), cli.EXIT_REFUSED),
        (RpcError(-32602, "x"), cli.EXIT_USAGE),
        (NotFound("x"), cli.EXIT_USAGE),
        (LinkClosed("x"), cli.EXIT_FAIL),
        (DaemonNotRunning("x"), cli.EXIT_NO_DAEMON),
    ],
)
def test_exit_code_for_errors(error: GlosmsdError, code: int) -> None:
    assert cli.exit_code_for(error) == code


def test_exit_codes_are_the_documented_numbers() -> None:
    assert (
        cli.EXIT_OK,
        cli.EXIT_FAIL,
        cli.EXIT_USAGE,
        cli.EXIT_NO_DAEMON,
        cli.EXIT_REFUSED,
    ) == (0, 1, 2, 3, 4)
    assert [c.name for c in COMMANDS] == [
        "status",
        "number",
        "ls",
        "read",
        "send",
        "resend",
        "delete",
        "mark-read",
        "search",
        "contacts",
        "download",
        "export",
        "watch",
        "prefs",
        "count",
        "open",
        "compose",
        "completion",
    ]


@pytest.mark.parametrize(
    ("argv", "stdin", "code", "out", "err"),
    [
        (["count", "--json", "-"], b"{x}", 0, '"units": 5', ""),
        (["count", "-"], b"ok\xc3", 2, "", "not valid UTF-8 (byte 0xc3 at offset 2)"),
        (["count", "--bytes", "9", "x"], b"", 2, "", "--bytes needs --files"),
        (["count", "--files", "x1", "x"], b"", 2, "", "expected a whole number, not 'x1'"),
        (["count", "--", "-starts with a dash"], b"", 0, "19 characters", ""),
    ],
)
def test_main_in_process(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: bytes,
    code: int,
    out: str,
    err: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    assert out in captured.out
    assert err in captured.err
    assert (captured.out == "") == (code != 0)


def test_closed_stdin_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    assert cli.main(["count", "-"]) == cli.EXIT_USAGE
    assert "standard input is closed" in capsys.readouterr().err


def test_a_reader_that_leaves_is_not_a_traceback() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "glosmsd.cli.glosms", "count", "hi"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=30,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == cli.EXIT_FAIL
    assert proc.stderr == b""
