"""The local socket: round trip and pipelined throughput, each next to its floor.

Floor: a bare asyncio newline-JSON server on a Unix socket in its own process (parse the
line, answer `{"jsonrpc":"2.0","result":...,"id":...}`), measured in the same run with
the same client loop. The daemon runs against a real reference server
(tests/support/ipcworld.py); the call is `count` (validated, dispatched, answered by the service).

The params check alone is measured in-process too, where the socket's noise cannot hide
it: `MethodTable.bind` for a `count` call against the same checks written out by hand
(the least any validator can cost).

Run: `.venv/bin/python -m bench.bench_ipc` (about 10 s). `run()` returns the figures.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from glosmsd.core import rpc
from glosmsd.daemon import api
from tests.support.ipcworld import running_world

ROUNDS = 2000
PIPELINED = 5000
BINDS = 100_000
REQUEST = b'{"jsonrpc":"2.0","id":1,"method":"count","params":{"text":"hello"}}\n'

ECHO_SERVER = r"""
import asyncio, json, sys
async def serve(reader, writer):
    while line := await reader.readline():
        req = json.loads(line)
        writer.write(json.dumps({"jsonrpc": "2.0", "result": req.get("params"),
                                 "id": req.get("id")}).encode() + b"\n")
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_unix_server(serve, path=sys.argv[1])
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def round_trips(path: Path, rounds: int) -> list[float]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        reader = s.makefile("rb")
        for _ in range(50):  # warm up
            s.sendall(REQUEST)
            reader.readline()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            s.sendall(REQUEST)
            json.loads(reader.readline())
            times.append(time.perf_counter() - t0)
        reader.close()
    return times


def pipelined(path: Path, n: int) -> float:
    """Calls per second with `n` requests written at once and all replies read."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        reader = s.makefile("rb")
        # Write from a thread while this one reads, as a pipelining client must.
        writer = threading.Thread(target=s.sendall, args=(REQUEST * n,))
        t0 = time.perf_counter()
        writer.start()
        for _ in range(n):
            json.loads(reader.readline())
        elapsed = time.perf_counter() - t0
        writer.join()
        reader.close()
    return n / elapsed


def figures(path: Path) -> dict[str, float]:
    rt = sorted(round_trips(path, ROUNDS))
    return {
        "median_us": statistics.median(rt) * 1e6,
        "p99_us": rt[int(len(rt) * 0.99)] * 1e6,
        "pipelined_per_s": pipelined(path, PIPELINED),
    }


def _by_hand(params: Any) -> bool:
    """`count`'s params schema, checked the way one would write it for this method only."""
    if not isinstance(params, dict) or not params.keys() <= {"text", "files", "bytes"}:
        return False
    text = params.get("text")
    if not isinstance(text, str) or len(text) > 100_000:
        return False
    for key in ("files", "bytes"):
        n = params.get(key, 0)
        if type(n) is not int or n < 0 or n > api.MAX_INT:
            return False
    return True


def bind_costs() -> dict[str, float]:
    """Median µs per call of binding `count`'s params, ours and by hand (5 rounds)."""
    table = api.full_table()
    req = rpc.Request("count", {"text": "hello", "files": 1}, 1)
    table.bind(req)  # compile once, as the first call does
    assert _by_hand(req.params)
    ours, floor = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(BINDS):
            table.bind(req)
        ours.append((time.perf_counter() - t0) / BINDS * 1e6)
        t0 = time.perf_counter()
        for _ in range(BINDS):
            _by_hand(req.params)
        floor.append((time.perf_counter() - t0) / BINDS * 1e6)
    return {"bind_us": statistics.median(ours), "by_hand_us": statistics.median(floor)}


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        echo_path = Path(tmp) / "echo.sock"
        echo = subprocess.Popen(
            [sys.executable, "-c", ECHO_SERVER, str(echo_path)], stdout=subprocess.PIPE
        )
        try:
            assert echo.stdout is not None
            echo.stdout.readline()
            floor = figures(echo_path)
        finally:
            echo.terminate()
            echo.wait(10)
            if echo.stdout:
                echo.stdout.close()
        (Path(tmp) / "world").mkdir()
        with running_world(Path(tmp) / "world") as world:
            daemon = figures(world.daemon.socket)
    return {"daemon": daemon, "floor": floor, "bind": bind_costs()}


def main() -> None:
    res = run()
    d, f = res["daemon"], res["floor"]
    print("glosmsd socket vs a bare asyncio newline-JSON server (same client, same run)")
    for key, unit, worse_is_higher in (
        ("median_us", "µs round trip (median)", True),
        ("p99_us", "µs round trip (p99)", True),
        ("pipelined_per_s", "calls/s pipelined", False),
    ):
        ratio = d[key] / f[key] if worse_is_higher else f[key] / d[key]
        print(f"  {unit:26} glosmsd {d[key]:10.1f}   floor {f[key]:10.1f}   {ratio:5.2f}x")
    b = res["bind"]
    ours, by_hand = b["bind_us"], b["by_hand_us"]
    print(f"  params check (count) µs    glosmsd {ours:10.2f}   by hand {by_hand:8.2f}")


if __name__ == "__main__":
    main()
