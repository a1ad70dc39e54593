"""What a daemon loads before it needs it: nothing of Pillow, the file-type tables, the
emoji data or the schema compiler (issue 16: ~7 MB of a headless daemon's RSS), nor what
shows the SMS window (`launch`, webbrowser) while it only serves the page.

Pillow loads at the first picture (fit, thumbnail, metadata strip), the tray's drawing at
the first icon, `filetype` at the first file sniffed, the emoji catalogue at the first
`emoji_catalog` call, fastjsonschema at the first call with params; each is checked in a
fresh interpreter (coverage, which loads sqlite3 and more, left out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

LAZY = (
    "PIL",
    "filetype",
    "fastjsonschema",
    "jsonschema",
    "glosmsd.core.emojicatalog",
    "glosmsd.desktop.window.launch",
    "webbrowser",
)


def loaded_after(code: str) -> list[str]:
    which = f"sorted(m for m in {LAZY!r} if m in sys.modules)"
    probe = f"import json, sys\n{code}\nprint(json.dumps({which}))\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, timeout=60, check=True, env=env
    )
    loaded: list[str] = json.loads(proc.stdout.decode().splitlines()[-1])
    return loaded


def test_the_daemon_and_its_frontends_import_none_of_it() -> None:
    code = (
        "import glosmsd.cli.glosmsd, glosmsd.daemon.root, glosmsd.desktop.window.frontend\n"
        "import glosmsd.desktop.bridge, glosmsd.desktop.tray"
    )
    assert loaded_after(code) == []


def test_a_call_without_params_compiles_no_schema() -> None:
    code = (
        "from glosmsd.core import rpc\n"
        "t = rpc.MethodTable()\n"
        "@t.method('status')\n"
        "def status(): return {}\n"
        "t.bind(rpc.Request('status', None, 1))\n"
        "t.bind(rpc.Request('status', {}, 2))"
    )
    assert loaded_after(code) == []


def test_each_loads_when_first_used() -> None:
    code = (
        "from glosmsd.core import filetypes\n"
        "from glosmsd.daemon import media\n"
        "from glosmsd.desktop import icon\n"
        "filetypes.sniff(b'\\x89PNG\\r\\n\\x1a\\n' + bytes(32))\n"
        "icon.draw_icon(16, 3)"
    )
    assert loaded_after(code) == ["PIL", "filetype"]


def test_the_shortcut_still_refuses_a_missing_required_param() -> None:
    from glosmsd.core import rpc
    from glosmsd.core.errors import INVALID_PARAMS, RpcError

    table = rpc.MethodTable()

    @table.method("get", rpc.Param("key", {"type": "string"}))
    def get(key: str) -> str:
        return key

    @table.method("opt", rpc.Param("key", {"type": "string"}, required=False))
    def opt(key: str = "") -> str:
        return key

    nothing: tuple[dict[str, str] | list[str] | None, ...] = (None, {}, [])
    for params in nothing:
        with pytest.raises(RpcError) as refused:
            table.bind(rpc.Request("get", params, 1))
        assert refused.value.rpc_code == INVALID_PARAMS
        assert table.bind(rpc.Request("opt", params, 1))[1] == {}


def test_the_attachment_code_loads_at_the_first_file() -> None:
    """glosmsd.daemon.media (and what it imports) is ~0.2 MB of an idle daemon: the
    modules that name files (send, downloads, export, the window's file replies, the
    attach check) import it when they first need it."""
    probe = (
        "import sys\n"
        "import glosmsd.cli.glosmsd, glosmsd.daemon.root, glosmsd.desktop.window.frontend\n"
        "print('glosmsd.daemon.media' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, timeout=60, check=True, env=env
    )
    assert proc.stdout.decode().split() == ["False"]
