"""The daemon's API: the methods (`glosmsd.daemon.methods`) bound into one table.

The methods name use cases of the service layer (`glosmsd.daemon.service.Service`) or of
the desktop (`on="desktop"`, bound to what the entry point gives `build_table`), with
their params and result shapes (`glosmsd.daemon.shapes`). Both transports serve this one
table: the Unix socket and the SMS window's WebSocket. The same table validates calls on
the socket, answers `rpc.discover`, and generates `ipc/openrpc.json` (`python -m
glosmsd.daemon.api`), so the spec, the schema and the code cannot drift apart.

This module must never do I/O or hold state: it only binds and documents.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from glosmsd import __version__
from glosmsd.core import rpc
from glosmsd.core.errors import Unsupported
from glosmsd.daemon.methods import DESKTOP_SPECS, MAX_INT, SPECS, Spec
from glosmsd.daemon.shapes import BUILTIN_RESULTS, EMPTY, NOTIFICATIONS, SCHEMAS, ResultSchema

__all__ = ["DESKTOP_SPECS", "MAX_INT", "SPECS", "Spec", "build_table", "full_table", "openrpc"]


def build_table(service: object | None, desktop: object | None = None) -> rpc.MethodTable:
    """The method table bound to `service` (None: handlers refuse, for docs generation)
    and to `desktop` for the desktop's methods (None: they say the window is not here)."""
    table = rpc.MethodTable()
    for spec in (*SPECS, *DESKTOP_SPECS):
        owner = desktop if spec.on == "desktop" else service
        handler: Callable[..., Any]
        if owner is not None:
            handler = getattr(owner, spec.attr)
        elif spec.on == "desktop" and service is not None:
            handler = _no_desktop(spec.name)
        else:
            handler = _unbound(spec.name)
        table.add(rpc.Method(spec.name, handler, spec.params, spec.summary))
    table.add(
        rpc.Method(
            "rpc.discover",
            lambda: openrpc(table),
            (),
            "This API as an OpenRPC document.",
        )
    )
    return table


def _no_desktop(name: str) -> Callable[..., Any]:
    def refuse(**_: Any) -> Any:
        raise Unsupported(
            f"{name}: this glosmsd runs without its desktop side (the SMS window); "
            "start it with `glosmsd`."
        )

    return refuse


def _unbound(name: str) -> Callable[..., Any]:
    def refuse(**_: Any) -> Any:
        raise RuntimeError(f"{name}: no service bound")

    return refuse


def openrpc(table: rpc.MethodTable) -> dict[str, Any]:
    """An OpenRPC 1.2 document for the table, with the shared result shapes as
    `components/schemas` and the notifications as `x-notifications`."""
    results = {**{s.name: s.result for s in (*SPECS, *DESKTOP_SPECS)}, **BUILTIN_RESULTS}
    methods = [
        {
            "name": m.name,
            "summary": m.summary,
            "paramStructure": "either",
            "params": [
                {
                    "name": p.name,
                    "required": p.required,
                    **({"description": p.description} if p.description else {}),
                    "schema": dict(p.schema),
                }
                for p in m.params
            ],
            "result": _result(m, results),
        }
        for m in table
    ]
    return {
        "openrpc": "1.2.6",
        "info": {
            "title": "glosmsd local API",
            "version": __version__,
            "description": "JSON-RPC 2.0 over two transports with one method table: "
            "newline-delimited on the daemon's Unix socket, and one message per text frame "
            "on the SMS window's WebSocket (http://127.0.0.1:PORT/rpc, for the page the "
            "daemon serves there). See ipc/SPEC.md.",
        },
        "servers": [
            {
                "name": "unix-socket",
                "url": "unix:{socket}",
                "summary": "Newline-delimited JSON-RPC 2.0; only its user can connect.",
                "variables": {
                    "socket": {
                        "default": "$XDG_RUNTIME_DIR/glosmsd/socket",
                        "description": "GLOSMSD_SOCKET moves it (see ipc/SPEC.md).",
                    }
                },
            },
            {
                "name": "window-websocket",
                "url": "ws://127.0.0.1:{port}/rpc",
                "summary": "One JSON value per text frame; needs the SMS window's session "
                "cookie and its Origin (see ipc/SPEC.md, The SMS window's WebSocket).",
                "variables": {
                    "port": {
                        "default": "0",
                        "description": "window_port from the config, or the free port the "
                        "daemon took (the URL `window.open` returns says which).",
                    }
                },
            },
        ],
        "methods": methods,
        "components": {"schemas": {name: dict(schema) for name, schema in SCHEMAS.items()}},
        "x-notifications": [
            {
                "name": name,
                "summary": summary,
                "params": {"name": name, "schema": dict(schema)},
            }
            for name, summary, schema in NOTIFICATIONS
        ],
    }


def _result(method: rpc.Method, results: Mapping[str, ResultSchema]) -> dict[str, Any]:
    if method.result:
        return {"name": "result", "schema": dict(method.result)}
    found = results.get(method.name, EMPTY)
    return {"name": found.name, "schema": dict(found.schema)}


def full_table() -> rpc.MethodTable:
    """The table as the daemon serves it, socket built-ins included, for docs."""
    from pathlib import Path

    from glosmsd.daemon.hub import Hub
    from glosmsd.daemon.ipc import IpcServer

    async def no_replay(_a: int, _b: int) -> tuple[list[Any], bool]:
        return [], False

    async def no_last() -> int:
        return 0

    table = build_table(None)
    IpcServer(Path("/nonexistent"), table, Hub(), no_replay, no_last)
    return table


def main() -> int:
    json.dump(openrpc(full_table()), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
