"""`glosms` against a real daemon and server: every command, --json, exit codes, terminals.

Each command runs as its own process, as a shell would run it. One world (see
tests/support/ipcworld.py) serves the module; commands that change things run last.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glosmsd.cli import glosms as cli
from glosmsd.cli.glosms.parser import COMMANDS
from tests.support.ipcworld import ANN, BOB_MOBILE, BOB_WORK, CY, World, running_world

HEAVY = ("asyncio", "websockets", "PIL", "jsonschema", "sqlite3")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("clid")) as w:
        yield w


def glosms(
    world: World | None, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    base = world.env if world is not None else dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosms", *args],
        input=stdin,
        capture_output=True,
        env={**base, "LC_ALL": "C.UTF-8", **(env or {})},
        timeout=60,
        check=False,
    )


def ok(world: World, *args: str, stdin: bytes = b"") -> str:
    proc = glosms(world, *args, stdin=stdin)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, (args, out, err)
    assert "Traceback" not in err
    return out


def as_json(world: World, *args: str) -> Any:
    out = ok(world, *args, "--json")
    assert out.count("\n") == 1
    return json.loads(out)


def fails(world: World | None, code: int, *args: str, stdin: bytes = b"") -> str:
    proc = glosms(world, *args, stdin=stdin)
    err = proc.stderr.decode()
    assert proc.returncode == code, (args, proc.stdout, err)
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------- no daemon


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("number",),
        ("ls",),
        ("read", "1"),
        ("send", "+15557654321", "hi"),
        ("resend", "1"),
        ("delete", "1"),
        ("mark-read", "--all"),
        ("search", "x"),
        ("contacts", "x"),
        ("download", "1"),
        ("export", "/tmp"),
        ("watch",),
        ("prefs",),
    ],
)
def test_no_daemon_is_one_line_and_exit_3(tmp_path: Path, args: tuple[str, ...]) -> None:
    err = fails(None, cli.EXIT_NO_DAEMON, *args, "--json")
    assert err.count("\n") == 1
    assert "glosmsd is not running" in err
    assert "`glosmsd &`" in err
    assert "make demo" in err


def test_stale_socket_file_is_also_not_running(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "socket"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    proc = glosms(None, "--socket", str(path), "status")
    assert proc.returncode == cli.EXIT_NO_DAEMON
    assert b"not running" in proc.stderr


def test_help_documents_commands_and_exit_codes() -> None:
    out = glosms(None, "--help").stdout.decode()
    for command in COMMANDS:
        assert command.name in out
    for words in ("0 ok", "1 failed", "2 bad input", "3 daemon not running", "4 refused"):
        assert words in " ".join(out.split())


# --------------------------------------------------------------------------- reading


def test_status(world: World) -> None:
    out = ok(world, "status")
    assert out.splitlines()[0] == f"Ann Lee (extension 1001) · SMS number {ANN}"
    assert "Multiple users share this number: Bo Diaz (1002)" in out
    assert "Unread: 3" in out
    assert as_json(world, "status")["number"] == ANN


def test_number(world: World) -> None:
    assert ok(world, "number").splitlines() == [
        ANN,
        "Multiple users share this number: Bo Diaz (1002)",
    ]
    assert as_json(world, "number")["shared_with"][0]["name"] == "Bo Diaz"


def test_number_copy_without_a_clipboard_is_a_clear_line(world: World) -> None:
    # A display but no tool (without a display it says that: tests/cli/test_glosms_honest.py).
    env = {"PATH": "/nonexistent", "DISPLAY": ":987", "WAYLAND_DISPLAY": ""}
    proc = glosms(world, "number", "--copy", env=env)
    assert proc.returncode == cli.EXIT_FAIL
    assert proc.stderr.startswith(b"glosms: cannot copy: no clipboard tool found")
    assert proc.stderr.count(b"\n") == 1
    assert proc.stdout.splitlines()[0] == ANN.encode()  # printed all the same


def test_ls(world: World) -> None:
    lines = ok(world, "ls").splitlines()
    assert "Bob Roe (+15557654321)  [2 unread]  → Bo here: I will join you too" in lines[0]
    assert "Cy Ng (+15557650000)  [1 unread]  ← The scans, as promised" in lines[1]
    assert [c["unread"] for c in as_json(world, "ls")] == [2, 1]


def test_read_shows_arrows_files_and_the_sharer(world: World) -> None:
    lines = ok(world, "read", "Bob Roe").splitlines()
    assert lines[0] == f"Bob Roe · {BOB_MOBILE} · your number {ANN}"
    assert lines[1].endswith("← Hi Ann, lunch at noon?")
    assert lines[2].endswith("← Here is the list")
    assert "file: list.txt (1 KB, " in lines[3]
    assert "→ — Bo Diaz: Bo here: I will join you too" in lines[4]
    assert as_json(world, "read", BOB_MOBILE)["conversation"]["name"] == "Bob Roe"


def test_search_and_contacts(world: World) -> None:
    out = ok(world, "search", "lunch")
    assert out.splitlines()[0] == "Messages:"
    assert "Hi Ann, lunch at noon?" in out
    assert ok(world, "search", "zzzz") == "Nothing matches 'zzzz'.\n"
    assert ok(world, "contacts", "bob") == f"Bob Roe: mobile {BOB_MOBILE}, work {BOB_WORK}\n"
    assert as_json(world, "contacts", "cy")[0]["name"] == "Cy Ng"
    assert as_json(world, "search", "Cy")["contacts"][0]["name"] == "Cy Ng"


def test_prefs_read(world: World) -> None:
    assert "notify = false" in ok(world, "prefs").splitlines()
    assert ok(world, "prefs", "sound") == "true\n"
    assert as_json(world, "prefs")["auto_download"] is True
    assert "Unknown preference 'colour'" in fails(world, cli.EXIT_USAGE, "prefs", "colour")


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("read", "Nobody Here"), cli.EXIT_USAGE, "No conversation matches"),
        (("read", "999"), cli.EXIT_USAGE, "No conversation 999"),
        (("read", " "), cli.EXIT_USAGE, "name a conversation"),
        (("send", CY, "hi", "/nonexistent/photo.jpg"), cli.EXIT_USAGE, "no such file"),
        (("send", CY, "hi", "/etc"), cli.EXIT_USAGE, "not a regular file"),
        (("send", CY, "x" * 20000), cli.EXIT_USAGE, "at most 1000"),
        (("send", CY, "x" * 1001), cli.EXIT_REFUSED, "1000"),
        (("send", "", "hi"), cli.EXIT_USAGE, "TO is empty"),
        (("send", "Zed Nobody", "hi"), cli.EXIT_USAGE, "No contact named"),
        (("send", CY, ""), cli.EXIT_USAGE, "Nothing to send"),
        (("download", "1"), cli.EXIT_USAGE, "has no files"),
        (("download", "0"), cli.EXIT_USAGE, "must be 1 or more"),
        (("export", "/nonexistent/dir"), cli.EXIT_USAGE, "is not a folder"),
        (("resend", "9999"), cli.EXIT_USAGE, "9999"),
        (("delete",), cli.EXIT_USAGE, "required"),
        (("mark-read", "1", "--all"), cli.EXIT_USAGE, "not allowed"),
    ],
)
def test_bad_input_is_a_clear_line(
    world: World, args: tuple[str, ...], code: int, words: str
) -> None:
    err = fails(world, code, *args)
    assert words in err


# --------------------------------------------------------------------------- sending


def test_send_with_pick_wait_and_json(world: World) -> None:
    out = ok(world, "send", "Bob Roe", "--pick", "2", "hello work", "--wait")
    assert out.startswith("#")
    assert out.endswith(f" to {BOB_WORK}: sent\n")
    res = as_json(world, "send", CY, "retry me", "--client-id", "cli-1")
    assert res["message"]["text"] == "retry me"
    again = as_json(world, "send", CY, "retry me", "--client-id", "cli-1")
    assert again["message"]["id"] == res["message"]["id"]


def test_send_reads_stdin_and_attaches_files(world: World, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("a file\n")
    proc = glosms(world, "send", CY, "-", "note.txt", "--json", stdin=b"from stdin\n")
    assert proc.returncode == cli.EXIT_USAGE  # a relative path from another directory
    res = subprocess.run(
        [sys.executable, "-m", "glosmsd.cli.glosms", "send", CY, "-", "note.txt", "--json"],
        input=b"from stdin\n",
        capture_output=True,
        env=world.env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    message = json.loads(res.stdout)["message"]
    assert message["text"] == "from stdin"
    assert [f["name"] for f in message["files"]] == ["note.txt"]


def test_numbers_are_parsed_before_anything_is_queued(world: World) -> None:
    # Issue 12 item 6. In the user's country (that of Ann's own number, +1): the national
    # form is the number, and what is not a number is refused with the form to use,
    # exit 2, nothing queued and no conversation left behind.
    # Numbers of this run's own (pytest --count runs it again in the same world).
    n = int.from_bytes(os.urandom(2)) % 1000
    us, uk = f"+1555123{4000 + n}", f"+44207946{n:04d}"
    before = as_json(world, "ls")
    res = as_json(world, "send", f"555-123-{4000 + n}", "national form", "--wait")
    assert res["message"]["remote"] == us
    assert res["message"]["state"] == "sent"
    assert ok(world, "send", f"+1 (555) 123-{4000 + n}", "again").endswith(f" to {us}: queued\n")
    assert as_json(world, "send", f"0044 20 7946 {n:04d}", "abroad")["message"]["remote"] == uk
    for bad in ("555-123-45", "+1 555", "1234567", "+1 555 123 4567 9999"):
        err = fails(world, cli.EXIT_USAGE, "send", bad, "never queued")
        assert err.count("\n") == 1, err
        assert "+1 201-555-0123" in err, err  # the form to use, for this country
    after = as_json(world, "ls")
    remotes = {c["remote"] for c in after}
    assert len(after) == len(before) + 2
    assert remotes >= {us, uk}
    texts = {m["text"] for c in after for m in as_json(world, "read", str(c["id"]))["messages"]}
    assert "never queued" not in texts


def test_a_short_code_is_one_conversation_for_send_and_read(world: World) -> None:
    # Issue 12 item 6: `send 12345` took it as a number, `read 12345` as an id.
    code = str(20000 + int.from_bytes(os.urandom(2)) % 70000)  # this run's own (--count)
    sent = as_json(world, "send", code, "STOP")["message"]
    assert sent["remote"] == code
    got = as_json(world, "read", code)
    assert got["conversation"]["id"] == sent["conversation_id"]
    assert [m["text"] for m in got["messages"]] == ["STOP"]
    # An id still reads as an id.
    assert as_json(world, "read", str(sent["conversation_id"]))["conversation"]["remote"] == code
    assert "No conversation 98765: none has that id or that number" in fails(
        world, cli.EXIT_USAGE, "read", "98765"
    )


def test_several_numbers_without_a_terminal_is_exit_2_with_the_list(world: World) -> None:
    err = fails(world, cli.EXIT_USAGE, "send", "Bob Roe", "hi")
    assert f"1) mobile {BOB_MOBILE}; 2) work {BOB_WORK}" in err
    assert "--pick N" in err


def _on_a_terminal(world: World, *args: str, answer: bytes) -> tuple[int, str]:
    """Run glosms with a pty as stdin and stderr; type `answer` when it asks."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "glosmsd.cli.glosms", *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**world.env, "LC_ALL": "C.UTF-8"},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    answered = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"Which one?" in seen:
            os.write(master, answer)
            answered = True
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read().decode()
    code = proc.wait(30)
    os.close(master)
    return code, seen.decode(errors="replace") + out


def test_several_numbers_on_a_terminal_asks(world: World) -> None:
    code, text = _on_a_terminal(world, "send", "Bob Roe", "asked", answer=b"2\n")
    assert code == 0, text
    assert f"2) work {BOB_WORK}" in text
    assert f" to {BOB_WORK}: queued" in text


def test_download_shows_a_bar_on_a_terminal_and_none_when_piped(world: World) -> None:
    msgs = as_json(world, "read", CY)["messages"]
    mid = next(m["id"] for m in msgs if m["files"] and m["files"][0]["name"] == "scans.txt")
    proc = glosms(world, "download", str(mid))
    assert proc.returncode == 0
    assert proc.stderr == b""
    assert b"scans.txt (768 KB): /" in proc.stdout
    code, text = _on_a_terminal(world, "download", str(mid), answer=b"")
    assert code == 0
    assert "scans.txt (768 KB)" in text
    assert f"Downloading #{mid} [" in text
    assert "100%" in text


def test_watch_prints_events_and_ctrl_c_exits_0(world: World) -> None:
    # communicate() after SIGINT: the replay can outgrow the pipe, and a watcher blocked
    # writing to a reader that stopped reading cannot flush and exit. `with` closes the
    # pipes even when an assertion fails, so nothing leaks into later tests.
    with subprocess.Popen(
        [sys.executable, "-m", "glosmsd.cli.glosms", "watch", "--since", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=world.env,
    ) as proc:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["id"] == 1
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc_dir = Path(f"/proc/{proc.pid}")
            facts = [
                line
                for line in (proc_dir / "status").read_text().splitlines()
                if line.startswith(("State", "Threads", "Sig", "Shd"))
            ]
            facts.append("wchan " + (proc_dir / "wchan").read_text())
            proc.kill()
            _out, err = proc.communicate()
            pytest.fail(f"watch did not end on SIGINT; {facts}; its stderr: {err.decode()!r}")
        assert proc.returncode == 0, err
        assert b"Traceback" not in err
    with subprocess.Popen(
        [sys.executable, "-m", "glosmsd.cli.glosms", "watch", "--since", "0"],
        stdout=subprocess.PIPE,
        env=world.env,
    ) as human:
        assert human.stdout is not None
        ok(world, "send", CY, "watched")
        lines = []
        for raw in human.stdout:
            lines.append(raw.decode())
            if "watched" in lines[-1]:
                break
        human.send_signal(signal.SIGTERM)  # a script stopping its watcher: quiet, 0 too
        human.communicate(timeout=15)
        assert human.returncode == 0
    assert any(f"{CY}: #" in line and "→ watched" in line for line in lines), lines
    assert any("unread: 3" in line for line in lines), lines


def test_cli_paths_import_nothing_heavy(world: World) -> None:
    probe = (
        "import sys, glosmsd.cli.glosms\n"
        "code = glosmsd.cli.glosms.main(sys.argv[1:])\n"
        f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {k: v for k, v in world.env.items() if not k.startswith("COVERAGE")}
    for args in (["status"], ["send", CY, "light", "--json"], ["ls"], ["read", CY]):
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            timeout=30,
            check=False,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode().splitlines()[-1] == "0 []", args


# --------------------------------------------------------------------------- changes (last)


def test_mark_read_delete_resend(tmp_path: Path) -> None:
    # A world of its own: this deletes Bob's conversations, which a second run in the
    # module's world (pytest --count) would not find.
    with running_world(tmp_path) as world:
        _mark_read_delete_resend(world)


def _mark_read_delete_resend(world: World) -> None:
    # Bob Roe has a conversation per number once Ann writes to his work number: marking
    # him read marks both and says which (issue 12 item 19); deleting "him" would have
    # to guess, so it asks for the id.
    as_json(world, "send", BOB_WORK, "At the office today?", "--wait")
    assert ok(world, "mark-read", "Bob Roe") == (
        f"Marked Bob Roe ({BOB_WORK}), Bob Roe ({BOB_MOBILE}) read; 1 unread.\n"
    )
    marked = as_json(world, "mark-read", "--all")
    assert marked["unread"] == 0
    assert [c["remote"] for c in marked["conversations"]] == [CY]
    msgs = as_json(world, "read", BOB_MOBILE)["messages"]
    assert ok(world, "delete", str(msgs[-1]["id"])) == f"Deleted message #{msgs[-1]['id']}.\n"
    assert "No message" in fails(world, cli.EXIT_USAGE, "delete", str(msgs[-1]["id"]))
    err = fails(world, cli.EXIT_USAGE, "delete", "--conversation", "Bob Roe")
    assert "names 2 conversations" in err
    work = as_json(world, "read", BOB_WORK)["conversation"]["id"]
    assert as_json(world, "delete", "--conversation", str(work))["deleted"] == work
    assert as_json(world, "delete", "--conversation", "Bob Roe")["deleted"] >= 1


def test_prefs_set(world: World) -> None:
    assert "notify = true" in ok(world, "prefs", "notify", "true").splitlines()


def test_export(world: World, tmp_path: Path) -> None:
    out = ok(world, "export", str(tmp_path))
    assert out.startswith("Exported ")
    assert (tmp_path / "SMS").is_dir()
