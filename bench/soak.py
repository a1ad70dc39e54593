"""The daemon soak (issue 13 "Must show"): one real glosmsd daemon, linked to a real
reference server process on 127.0.0.1, under a random socket fuzzer, a batch flood, a
client that never reads and 300 held connections, while a well-behaved client makes real
calls; each call's latency and the daemon's RSS are sampled. bench/soak_server.py is the
same against the server; bench/soaklib.py holds what both share.

- fuzzer: FUZZERS connections sending random lines (garbage bytes, random JSON, calls of
  every method the daemon's `rpc.discover` lists with random params, batches up to and
  past the 100-call cap, deep nesting, lines past the 1 MiB line limit and just under it)
  and reading every reply, reconnecting when the daemon closes one; counts -32603 replies.
- batch flood: batches of 100 calls (`rpc.discover`, `search`, `messages` over 1,500
  stored messages: each batch reaches the 1 MiB reply budget), one in flight at a time;
  plus one connection that sends such batches and never reads a byte.
- 300 connections: held open on the socket (half said hello, half never sent a byte),
  opened again a second after the daemon closes one (it serves 128 at once and closes
  the longest idle to make room).
- the well-behaved client: one subscribed connection alternating `count` of a short
  text and `send` of a short SMS to another extension, every 50 ms; each call is one
  latency sample. The floor: the same calls on the idle daemon first, in the same run.

Run: `python -m bench.soak --minutes 10` (or `--seconds N`). Prints its figures; exits 1
if p99 >= 50 ms, RSS >= 150 MB, the fuzzer drew a -32603, or the daemon died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from bench.soaklib import (
    Latencies,
    duration,
    floor_seconds,
    fuzz_call,
    fuzz_value,
    internal_errors,
    load_process,
    log_lines,
    measure,
    run_all,
    run_load,
    sample_rss,
    until_stopped,
    verdict,
)
from tests.support.daemonproc import DaemonProcess, wait_until
from tests.support.serverproc import ServerProcess

SEED = 1313
ANN, BEA = "+15550001001", "+15550001004"
FUZZERS = 4
HOLDERS = 300
CALL_EVERY = 0.05
STORED = 1500
MAX_BATCH = 100
MAX_LINE = 1024 * 1024
READ_LIMIT = 64 * 1024 * 1024
#: Methods the fuzzer leaves alone: they stop the daemon or start programs on the desktop
#: (a browser, a dialer), or write files wherever a random path points.
UNFUZZED = frozenset({"daemon.quit", "call", "open_link", "window.open", "export"})


class Figures:
    def __init__(self) -> None:
        self.fuzz_lines = 0
        self.fuzz_replies = 0
        self.fuzz_internal = 0
        self.fuzz_reconnects = 0
        self.flood_batches = 0
        self.flood_refused = 0
        self.never_read_reopened = 0
        self.held_max = 0
        self.held_dropped = 0


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


async def _open(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(path, limit=READ_LIMIT)


# --------------------------------------------------------------------------- fuzzer


async def _methods(path: str) -> dict[str, list[str]]:
    reader, writer = await _open(path)
    try:
        writer.write(_line({"jsonrpc": "2.0", "id": 1, "method": "rpc.discover"}))
        doc = json.loads(await reader.readline())["result"]
    finally:
        writer.close()
    return {
        m["name"]: [p["name"] for p in m["params"]]
        for m in doc["methods"]
        if m["name"] not in UNFUZZED
    }


def fuzz_line(rng: random.Random, methods: dict[str, list[str]], n: int) -> bytes:
    pick = rng.randrange(200)
    if pick == 0:  # past the line limit: one -32600, the connection goes on
        return b'"' + b"x" * (MAX_LINE + rng.randrange(1, 4096)) + b'"\n'
    if pick == 1:  # just under it: parsed off the loop
        return _line(
            {"jsonrpc": "2.0", "id": n, "method": "count", "params": {"text": "y" * 900_000}}
        )
    pick %= 10
    if pick == 0:
        return (
            bytes(rng.choice(range(256)) for _ in range(rng.randrange(200))).replace(b"\n", b" ")
            + b"\n"
        )
    if pick == 1:
        return (
            "".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(rng.randrange(300))).encode()
            + b"\n"
        )
    if pick == 2:
        depth = rng.randrange(10, 5000)
        return b"[" * depth + b"]" * depth + b"\n"
    if pick == 3:
        size = (
            rng.randrange(1, MAX_BATCH + 1)
            if rng.random() < 0.9
            else MAX_BATCH + rng.randrange(1, 50)
        )
        return _line([fuzz_call(rng, methods, n * 1000 + i) for i in range(size)])
    if pick == 4:
        return _line(fuzz_value(rng))
    return _line(fuzz_call(rng, methods, n))


async def fuzzer(path: str, i: int, methods: dict[str, list[str]], stop: Any, fig: Figures) -> None:
    rng = random.Random(SEED + i)
    n = 0
    while not stop.is_set():
        try:
            reader, writer = await _open(path)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        got = asyncio.Event()

        async def read_replies(
            reader: asyncio.StreamReader = reader, got: asyncio.Event = got
        ) -> None:
            while line := await reader.readline():
                fig.fuzz_replies += 1
                with contextlib.suppress(ValueError):
                    fig.fuzz_internal += internal_errors(json.loads(line))
                got.set()

        replies = asyncio.create_task(read_replies())
        try:
            if rng.random() < 0.9:
                writer.write(_line({"jsonrpc": "2.0", "id": 0, "method": "hello", "params": {}}))
            while not stop.is_set() and not replies.done():
                n += 1
                got.clear()
                writer.write(fuzz_line(rng, methods, n))
                fig.fuzz_lines += 1
                await asyncio.wait_for(writer.drain(), 10)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(got.wait(), 0.5)  # none is owed to notifications
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            replies.cancel()
            writer.close()
            fig.fuzz_reconnects += 1


# --------------------------------------------------------------------------- flood


def flood_line(n: int) -> bytes:
    calls: list[dict[str, Any]] = []
    for i in range(MAX_BATCH):
        method, params = (
            ("rpc.discover", None),
            ("search", {"query": "stored", "limit": 100}),
            ("messages", {"conversation": "+15557654321", "limit": 100}),
        )[(n + i) % 3]
        call: dict[str, Any] = {"jsonrpc": "2.0", "id": i, "method": method}
        if params is not None:
            call["params"] = params
        calls.append(call)
    return _line(calls)


async def flood(path: str, stop: Any, fig: Figures) -> None:
    n = 0
    while not stop.is_set():
        try:
            reader, writer = await _open(path)
            try:
                while not stop.is_set():
                    n += 1
                    writer.write(flood_line(n))
                    replies = json.loads(await asyncio.wait_for(reader.readline(), 30))
                    fig.flood_batches += 1
                    fig.flood_refused += sum(
                        1 for r in replies if r.get("error", {}).get("code") == -32008
                    )
            finally:
                writer.close()
        except (OSError, TimeoutError, ValueError, AttributeError, TypeError):
            await asyncio.sleep(0.1)


async def never_reads(path: str, stop: Any, fig: Figures) -> None:
    """Sends flood batches and never reads: the daemon must bound what it queues for it."""
    while not stop.is_set():
        try:
            _reader, writer = await _open(path)
            try:
                n = 0
                while not stop.is_set():
                    n += 1
                    writer.write(flood_line(n))
                    await asyncio.wait_for(writer.drain(), 5)
                    await asyncio.sleep(0.05)
            finally:
                writer.close()
        except (OSError, TimeoutError):
            fig.never_read_reopened += 1
            await asyncio.sleep(0.5)


# --------------------------------------------------------------------------- connections


async def holders(path: str, stop: Any, fig: Figures) -> None:
    held: set[int] = set()

    async def hold(i: int) -> None:
        while not stop.is_set():
            try:
                reader, writer = await _open(path)
            except OSError:
                await asyncio.sleep(1)
                continue
            held.add(i)
            fig.held_max = max(fig.held_max, len(held))
            try:
                if i % 2:
                    writer.write(_line({"jsonrpc": "2.0", "id": 1, "method": "hello"}))
                while await reader.read(65536):
                    pass  # the hello's reply, or the refusal
            except OSError:
                pass
            finally:
                held.discard(i)
                writer.close()
            fig.held_dropped += 1
            await asyncio.sleep(1)

    await asyncio.gather(*(hold(i) for i in range(HOLDERS)))


# --------------------------------------------------------------------------- the load


def load(path: str, stop: Any) -> dict[str, Any]:
    """The load, in its own process (`soaklib.load_process`); returns its figures."""
    fig = Figures()

    # SOAK_PARTS=holders,fuzz,flood,never_reads (any of them; flood includes never_reads)
    # runs only those: to find which part of the load a figure comes from.
    parts = set(os.environ.get("SOAK_PARTS", "holders,fuzz,flood").split(","))

    async def main() -> None:
        methods = await _methods(path)  # before the held connections fill the table
        tasks: list[Awaitable[Any]] = [until_stopped(stop)]
        if "holders" in parts:
            tasks.append(holders(path, stop, fig))
        if "fuzz" in parts:
            tasks += [fuzzer(path, i, methods, stop, fig) for i in range(FUZZERS)]
        if "flood" in parts:
            tasks.append(flood(path, stop, fig))
        if "flood" in parts or "never_reads" in parts:
            tasks.append(never_reads(path, stop, fig))
        await run_all(stop, tasks)

    run_load(main())
    return vars(fig)


# --------------------------------------------------------------------------- measure


class WellBehaved:
    """One subscribed connection (a subscribed one is never closed to make room), calls
    one at a time, events skipped."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.n = 0
        self.tag = time.monotonic_ns()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await _open(self.path)
            self.writer.write(_line({"jsonrpc": "2.0", "id": "s", "method": "subscribe"}))
            while json.loads(await self.reader.readline()).get("id") != "s":
                pass
        self.n += 1
        try:
            self.writer.write(
                _line({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params or {}})
            )
            while True:
                line = await self.reader.readline()
                if not line:
                    raise ConnectionResetError("the daemon closed the connection")
                msg = json.loads(line)
                if msg.get("id") == self.n:
                    break
        except BaseException:
            self.close()
            raise
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]

    async def round(self, n: int) -> None:
        if n % 2:
            await self.call("count", {"text": f"soak {n}: on my way"})
        else:
            text = f"soak {self.tag} {n}"
            await self.call("send", {"to": BEA, "text": text, "client_id": f"soak{self.tag}-{n}"})

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _measured(daemon: DaemonProcess, seconds: float, rss: list[int]) -> Latencies:
    assert daemon.proc is not None
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(daemon.proc.pid, stop, rss))
    lat = Latencies()
    client = WellBehaved(str(daemon.socket))
    try:
        await measure(
            client.round, seconds, CALL_EVERY, lat, failures=(OSError, RuntimeError, ValueError)
        )
    finally:
        client.close()
        stop.set()
        await sampler
    return lat


def _stored(daemon: DaemonProcess) -> bool:
    return bool(daemon.call("search", query="stored", limit=1)["messages"])


def soak(seconds: float, tmp: Path) -> tuple[bool, dict[str, Any]]:
    srv = ServerProcess.start(tmp)
    daemon: DaemonProcess | None = None
    try:
        t_a = srv.add_extension("1001", "Ann Lee", ANN)
        srv.add_extension("1004", "Bea Ng", BEA)
        with srv.store() as st:
            for i in range(STORED):
                st.receive("+15557654321", ANN, f"stored {i:05d} " + "y" * 300)
        daemon = DaemonProcess.start(tmp / "ann", srv, t_a)
        daemon.wait_online()
        wait_until(lambda: _stored(daemon), 60, "the stored messages to reach the daemon")
        floor = asyncio.run(_measured(daemon, floor_seconds(seconds), []))
        rss: list[int] = []
        with load_process(load, str(daemon.socket)) as fig:
            loaded = asyncio.run(_measured(daemon, seconds, rss))
        alive = daemon.proc is not None and daemon.proc.poll() is None
    finally:
        code = daemon.stop() if daemon is not None else -1
        srv.stop()
    log = daemon.log_path.read_text(errors="replace") if daemon is not None else ""
    internal = fig.get("fuzz_internal", -1)
    lines = [
        f"fuzzer: {FUZZERS} connections, {fig.get('fuzz_lines')} lines, "
        f"{fig.get('fuzz_replies')} replies, {internal} internal errors, "
        f"{fig.get('fuzz_reconnects')} reconnects",
        f"batch flood: {fig.get('flood_batches')} batches of {MAX_BATCH}, "
        f"{fig.get('flood_refused')} calls refused past the 1 MiB budget; one client that "
        f"never reads ({fig.get('never_read_reopened')} times reopened)",
        f"connections: {HOLDERS} held (at most {fig.get('held_max')} open at once, "
        f"{fig.get('held_dropped')} closed by the daemon and reopened)",
        *log_lines("daemon", log, code),
    ]
    if "load_error" in fig:
        lines.append(f"the load failed: {fig['load_error']}")
    return verdict(
        f"daemon soak, {seconds:.0f} s on one glosmsd daemon (Unix socket, real server)",
        floor.summary(),
        loaded.summary(),
        rss,
        lines,
        unit="calls (count, send)",
        extra_ok=internal == 0 and alive and code == 0,
    )


def main(argv: list[str] | None = None) -> int:
    seconds = duration(argv, "python -m bench.soak", __doc__)
    with tempfile.TemporaryDirectory(prefix="glosmsd-soak-") as tmp:
        ok, _ = soak(seconds, Path(tmp))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
