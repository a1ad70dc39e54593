"""`ipc/SPEC.md` and `ipc/examples/` against a real daemon, and `ipc/openrpc.json`.

Every `json-rpc` example in the spec is sent to a daemon seeded like the one that
generated it (tests/support/ipcworld.py); replies must have the same keys and the same values
except times, paths and random ids (tests/support/specdoc.py), and both the documented and the
real replies must match their method's result schema in the OpenRPC document. The example
clients run as their own processes. The checked-in OpenRPC document must equal the
generated one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glosmsd.core import rpc
from glosmsd.daemon.store import EVENT_HORIZON_COUNT, EVENT_HORIZON_SECONDS
from tests.support import specdoc
from tests.support.ipcworld import CY, World, running_world

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "ipc" / "examples"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("spec")) as w:
        yield w


def _is_note(msg: Any) -> bool:
    return isinstance(msg, dict) and "method" in msg


def _without_event_ids(msg: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in msg["params"].items() if k not in ("id", "at")}
    return {**msg, "params": params}


def test_every_example_in_the_spec_is_what_the_daemon_answers(tmp_path: Path) -> None:
    # A world of its own: the examples send and mark messages, and the world they were
    # written from is the seeded one; run again in the module's (pytest --count), a
    # send's client_id is already known and its event never comes.
    with running_world(tmp_path) as world:
        _every_example_answers(world)


def _every_example_answers(world: World) -> None:
    examples = specdoc.parse(specdoc.SPEC.read_text())
    assert len(examples) >= 15
    for ex in examples:
        assert ex.replies, f"example {ex.requests} has no documented reply"
        notes = [m for m in ex.replies if _is_note(m)]
        got = specdoc.run(world.daemon.socket, ex, events=len(notes))
        replies = [m for m in got if not _is_note(m)]
        documented = [m for m in ex.replies if not _is_note(m)]
        problems = specdoc.shape_diff(documented, replies)
        problems += specdoc.shapes().exchange_problems(ex.requests, ex.replies)
        problems += specdoc.shapes().exchange_problems(ex.requests, got)
        real_notes = [_without_event_ids(m) for m in got if _is_note(m)]
        for note in notes:
            want = _without_event_ids(note)
            if not any(not specdoc.shape_diff(want, real) for real in real_notes):
                problems.append(f"no notification like {want} in {real_notes}")
        assert not problems, f"{ex.requests}: {problems}"


def test_spec_states_the_real_limits() -> None:
    text = specdoc.SPEC.read_text()
    assert text.startswith('# The glosmsd local socket\n\n```sh\necho \'{"jsonrpc"')
    assert f"{EVENT_HORIZON_COUNT:,} events, none older than " in text
    assert f"{int(EVENT_HORIZON_SECONDS // 86400)} days" in text
    assert rpc.DEFAULT_MAX_LINE == 1 << 20
    assert "**1 MiB** (1,048,576 bytes" in text
    order = ["## Transport", "## Framing", "## Hello", "## Subscribe", "## Methods", "## Errors"]
    assert [text.index(h) for h in order] == sorted(text.index(h) for h in order)
    from glosmsd.core.errors import APPLICATION_ERRORS

    for cls in APPLICATION_ERRORS:
        assert re.search(rf"\| {cls.code} \| [^|]*`{cls.kind}`", text), cls


def test_the_limits_table_gives_the_values_the_daemon_enforces() -> None:
    """Issue 13: every limit in one table, each with what a client past it gets."""
    from glosmsd.daemon import attachments, ipc

    text = specdoc.SPEC.read_text()
    table = text[text.index("## Limits") : text.index("## The second transport")]
    rows = {
        line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")
    }
    assert f"{rpc.DEFAULT_MAX_LINE:,} bytes, `max_line`" in rows["one line"]
    assert f"{ipc.MAX_BATCH} (`max_batch`)" in rows["calls in one batch"]
    assert ipc.REPLY_BUDGET == 1 << 20
    assert "1 MiB (`reply_bytes`)" in rows["replies to one line"]
    queued = rows["replies and events queued unread, per connection"]
    assert f"{ipc.OUT_QUEUE:,} lines or {ipc.OUT_BYTES >> 20} MiB" in queued
    assert f"{ipc.MAX_CONNECTIONS} (`max_connections`" in rows["connections at once"]
    assert f"{ipc.WRITE_STALL:g} s without any reply moving" in rows["replies not taken"]
    assert f"{attachments.MAX_SOURCE_FILE >> 20} MiB read" in rows["a file to send"]
    for line in rows.values():
        if line.startswith("| limit |"):
            continue
        past = line.rstrip(" |").rsplit("|", 1)[1]
        assert re.search(r"-32\d\d\d|code 1009|left out|waits for room|is closed", past), (
            f"no error named: {line}"
        )


def test_spec_says_where_the_reply_shapes_are() -> None:
    text = specdoc.SPEC.read_text()
    for where in ("methods[].result.schema", "components.schemas", "x-notifications"):
        assert f"`{where}`" in text, where
    doc = json.loads((ROOT / "ipc" / "openrpc.json").read_text())
    for name in doc["components"]["schemas"]:
        if not name.startswith("event_"):
            assert f"`{name}`" in text, f"SPEC.md does not name the shared shape {name}"


def test_openrpc_json_is_generated_from_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "glosmsd.daemon.api"], capture_output=True, timeout=60, check=True
    )
    checked_in = (ROOT / "ipc" / "openrpc.json").read_bytes()
    assert proc.stdout == checked_in, "run: python -m glosmsd.daemon.api > ipc/openrpc.json"
    names = {m["name"] for m in json.loads(checked_in)["methods"]}
    text = specdoc.SPEC.read_text()
    for name in names:
        assert name in text, f"SPEC.md does not document {name}"


def test_python_example_client(world: World) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "client.py"), "count", '{"text": "hi"}'],
        capture_output=True,
        text=True,
        env=world.env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["segments"] == 1
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "client.py"), "messages", '{"conversation": "x"}'],
        capture_output=True,
        text=True,
        env=world.env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error -32009: No conversation matches")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_example_client(world: World) -> None:
    proc = subprocess.run(
        ["node", str(EXAMPLES / "client.mjs"), "number"],
        capture_output=True,
        text=True,
        env=world.env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["number"] == "+15550001001"


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
def test_quick_send_example(world: World) -> None:
    proc = subprocess.run(
        ["sh", str(EXAMPLES / "quick-send.sh"), CY, 'Quoted "text" \\ too'],
        capture_output=True,
        text=True,
        env=world.env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["result"]["message"]["text"] == 'Quoted "text" \\ too'
    assert reply["result"]["message"]["state"] == "sending"


def test_hotkey_examples_run_glosms_compose() -> None:
    files = sorted((EXAMPLES / "hotkeys").iterdir())
    assert len(files) == 5
    for path in files:
        assert "glosms compose" in path.read_text(), path
        assert path.name in (EXAMPLES / "README.md").read_text()
