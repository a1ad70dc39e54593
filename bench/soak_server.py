"""The server soak (issue 13 "Must show"): one real server process on 127.0.0.1 under a
random frame fuzzer, a batch flood, a reader that never reads and 300 connections, while a
well-behaved client sends and receives; its latency and the server's RSS are sampled.

- fuzzer: a signed-in connection sending random frames (garbage text, random JSON, calls of
  every method with random params, batches of up to 60, binary frames, deep nesting),
  reading every reply, reconnecting when the server closes it; counts -32603 replies.
- batch flood: batches of 50 `sync` calls from cursor 0 over 3,000 messages of 1,000
  characters (each batch reaches the 2 MiB reply budget), one batch in flight at a time;
  plus one connection that sends such batches and never reads a byte.
- 300 connections: 250 idle TCP connections from ten loopback addresses, opened again
  whenever the server drops one, and 50 signed-in websocket clients that only answer pings.
- the well-behaved client: extension A sends a short SMS to extension B every 20 ms and
  waits for B's pushed event; each round trip is one latency sample.

Run: `python -m bench.soak_server --minutes 10` (or `--seconds N`). Prints a figures
table; exits 1 if p99 >= 50 ms, RSS >= 150 MB, or the fuzzer drew a -32603.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from glosmsd.core import wire
from tests.support.serverproc import Client, ServerProcess

SEED = 1313
ANN, BEA = "+15550001001", "+15550001004"
P99_GOAL_MS = 50.0
RSS_GOAL_MB = 150.0
IDLE_TCP = 250
IDLE_WS = 50
SEND_EVERY = 0.02


class Figures:
    def __init__(self) -> None:
        self.latency: list[float] = []
        self.rss: list[int] = []
        self.fuzz_frames = 0
        self.fuzz_replies = 0
        self.fuzz_internal = 0
        self.fuzz_closes: dict[int, int] = {}
        self.flood_batches = 0
        self.flood_refused = 0
        self.idle_reopened = 0
        self.lost = 0


# --------------------------------------------------------------------------- fuzzer


def _value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(12 if depth < 4 else 8)
    if pick == 0:
        return rng.randrange(-(2**70), 2**70)
    if pick == 1:
        return rng.choice([0, -1, 1, 2**53, 2**63, 1e308, -0.0, 1.5])
    if pick == 2:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(40)))
    if pick == 3:
        return rng.choice(["", "+15550001004", "+1555", "\u202e", "a" * 5000, "../../x"])
    if pick == 4:
        return rng.choice([True, False, None])
    if pick in (5, 6, 7):
        return rng.choice(["0", "1001", "x" * 64, "ab12" * 16])
    if pick in (8, 9):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {str(_value(rng, 3))[:20]: _value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _call(rng: random.Random, n: int) -> dict[str, Any]:
    method = rng.choice([*wire.PARAMS, "nosuch", "rpc.discover", ""])
    params: Any
    if rng.random() < 0.8 and method in wire.PARAMS:
        names = [p.name for p in wire.PARAMS[method]]
        params = {name: _value(rng) for name in names if rng.random() < 0.8}
    else:
        params = _value(rng)
    call: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": n}
    if rng.random() < 0.1:
        del call["id"]
    if rng.random() < 0.05:
        call["jsonrpc"] = "1.0"
    return call


def fuzz_frame(rng: random.Random, n: int) -> str | bytes:
    pick = rng.randrange(10)
    if pick == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
    if pick == 1:
        return "".join(chr(rng.randrange(1, 0x7F)) for _ in range(rng.randrange(300)))
    if pick == 2:
        depth = rng.randrange(10, 5000)
        return "[" * depth + "]" * depth
    if pick == 3:
        return json.dumps([_call(rng, n * 100 + i) for i in range(rng.randrange(1, 61))])
    if pick == 4:
        return json.dumps(_value(rng))
    return json.dumps(_call(rng, n))


def _count_internal(reply: Any) -> int:
    items = reply if isinstance(reply, list) else [reply]
    return sum(
        1
        for r in items
        if isinstance(r, dict)
        and isinstance(r.get("error"), dict)
        and r["error"].get("code") == -32603
    )


async def fuzzer(url: str, token: str, stop: asyncio.Event, fig: Figures) -> None:
    rng = random.Random(SEED)
    n = 0
    while not stop.is_set():
        try:
            async with connect(
                url,
                additional_headers={"Authorization": f"Bearer {token}"},
                compression=None,
                max_size=8 * 1024 * 1024,
            ) as ws:
                if rng.random() < 0.9:
                    await ws.send(
                        json.dumps(
                            {
                                "jsonrpc": "2.0",
                                "id": 0,
                                "method": "hello",
                                "params": {"protocol": 1},
                            }
                        )
                    )
                    await ws.recv()
                while not stop.is_set():
                    n += 1
                    frame = fuzz_frame(rng, n)
                    await ws.send(frame)
                    fig.fuzz_frames += 1
                    expect_reply = not (
                        isinstance(frame, str) and '"id"' not in frame and frame.startswith("{")
                    )
                    if not expect_reply:
                        continue
                    try:
                        text = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue  # a notification-only batch: nothing is owed
                    fig.fuzz_replies += 1
                    with contextlib.suppress(ValueError):
                        fig.fuzz_internal += _count_internal(json.loads(text))
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 0
            fig.fuzz_closes[code] = fig.fuzz_closes.get(code, 0) + 1
        except (OSError, InvalidHandshake):
            await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- flood


def _flood_frame() -> str:
    return json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": "sync", "params": {"cursor": 0}} for i in range(50)]
    )


async def flood(url: str, token: str, stop: asyncio.Event, fig: Figures) -> None:
    frame = _flood_frame()
    while not stop.is_set():
        try:
            async with await Client.connect(url, token, device="flood") as c:
                while not stop.is_set():
                    replies = await c.raw(frame, timeout=30)
                    fig.flood_batches += 1
                    fig.flood_refused += sum(1 for r in replies if "error" in r)
        except (ConnectionClosed, OSError, InvalidHandshake, TimeoutError):
            await asyncio.sleep(0.1)


async def never_reads(url: str, token: str, stop: asyncio.Event) -> None:
    """Sends flood batches and never reads: the server must not buffer its replies
    without bound (the kernel's buffers fill, then the server waits on this one peer)."""
    frame = _flood_frame()
    while not stop.is_set():
        try:
            async with connect(
                url,
                additional_headers={"Authorization": f"Bearer {token}"},
                compression=None,
                max_queue=1,
                max_size=None,
            ) as ws:
                ws.transport.pause_reading()  # never read a byte again
                await ws.send(
                    json.dumps(
                        {"jsonrpc": "2.0", "id": 0, "method": "hello", "params": {"protocol": 1}}
                    )
                )
                while not stop.is_set():
                    await asyncio.wait_for(ws.send(frame), 5)
                    await asyncio.sleep(0.05)
        except (ConnectionClosed, OSError, InvalidHandshake, TimeoutError):
            await asyncio.sleep(0.5)


# --------------------------------------------------------------------------- connections


async def idle_tcp(port: int, stop: asyncio.Event, fig: Figures) -> None:
    """IDLE_TCP connections that never send a byte, opened again when dropped."""
    socks: dict[int, socket.socket] = {}

    def open_one(i: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((f"127.0.0.{2 + i % 10}", 0))
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        socks[i] = s

    for i in range(IDLE_TCP):
        open_one(i)
    try:
        while not stop.is_set():
            await asyncio.sleep(0.5)
            for i, s in list(socks.items()):
                try:
                    dropped = s.recv(1, socket.MSG_PEEK) == b""
                except BlockingIOError:
                    dropped = False
                except OSError:
                    dropped = True
                if dropped:
                    s.close()
                    open_one(i)
                    fig.idle_reopened += 1
    finally:
        for s in socks.values():
            s.close()


async def idle_ws(url: str, token: str, stop: asyncio.Event) -> None:
    clients: list[Client] = []
    try:
        for i in range(IDLE_WS):
            with contextlib.suppress(OSError, InvalidHandshake):
                clients.append(await Client.connect(url, token, device=f"idle{i}"))
        await stop.wait()
    finally:
        for c in clients:
            await c.close()


# --------------------------------------------------------------------------- measure


async def well_behaved(url: str, t_a: str, t_b: str, stop: asyncio.Event, fig: Figures) -> None:
    async with (
        await Client.connect(url, t_a, device="a") as a,
        await Client.connect(url, t_b, device="b") as b,
    ):
        await a.sync_live()
        await b.sync_live()
        n = 0
        while not stop.is_set():
            n += 1
            t0 = time.perf_counter()
            try:
                await a.call("send", client_id=f"soak{n}", to=BEA, text=f"soak {n}")
                await b.wait_event("message", direction="in", text=f"soak {n}", timeout=10)
            except (TimeoutError, ConnectionClosed):
                fig.lost += 1
                continue
            fig.latency.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(SEND_EVERY)


async def sample_rss(srv: ServerProcess, stop: asyncio.Event, fig: Figures) -> None:
    while not stop.is_set():
        fig.rss.append(srv.rss_kib())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def seed(srv: ServerProcess) -> tuple[str, str, str]:
    t_a = srv.add_extension("1001", "Ann Lee", ANN)
    t_b = srv.add_extension("1004", "Bea Ng", BEA)
    t_f = srv.add_extension("1002", "Flo Od", "+15550001002")
    with srv.store() as st:
        for i in range(3000):
            st.receive("+15557654321", "+15550001002", f"{i:05d} " + "y" * 994)
    return t_a, t_b, t_f


async def soak(seconds: float, tmp: Path) -> dict[str, Any]:
    srv = ServerProcess.start(tmp)
    fig = Figures()
    try:
        t_a, t_b, t_f = seed(srv)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(sample_rss(srv, stop, fig)),
            asyncio.create_task(idle_tcp(srv.port, stop, fig)),
            asyncio.create_task(idle_ws(srv.url, t_f, stop)),
            asyncio.create_task(fuzzer(srv.url, t_f, stop, fig)),
            asyncio.create_task(flood(srv.url, t_f, stop, fig)),
            asyncio.create_task(never_reads(srv.url, t_f, stop)),
            asyncio.create_task(well_behaved(srv.url, t_a, t_b, stop, fig)),
        ]
        await asyncio.sleep(seconds)
        stop.set()
        done, pending = await asyncio.wait(tasks, timeout=30)
        for t in pending:
            t.cancel()
        for t in done:
            if t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        alive = srv.proc is not None and srv.proc.poll() is None
        log = srv.log_path.read_text(errors="replace")
    finally:
        code = srv.stop()
    lat = sorted(fig.latency)
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("inf")
    return {
        "seconds": seconds,
        "messages": len(lat),
        "lost": fig.lost,
        "p50_ms": statistics.median(lat) if lat else float("inf"),
        "p99_ms": p99,
        "max_ms": lat[-1] if lat else float("inf"),
        "rss_max_mb": max(fig.rss) / 1024,
        "rss_end_mb": fig.rss[-1] / 1024,
        "rss_start_mb": fig.rss[0] / 1024,
        "fuzz_frames": fig.fuzz_frames,
        "fuzz_replies": fig.fuzz_replies,
        "fuzz_internal_errors": fig.fuzz_internal,
        "fuzz_closes": fig.fuzz_closes,
        "flood_batches": fig.flood_batches,
        "flood_calls_refused": fig.flood_refused,
        "idle_reopened": fig.idle_reopened,
        "server_alive": alive,
        "server_exit": code,
        "log_tracebacks": log.count("Traceback"),
        "log_lines": log.count("\n"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak_server", description=__doc__)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float)
    g.add_argument("--seconds", type=float)
    args = p.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (args.minutes or 10) * 60
    with tempfile.TemporaryDirectory(prefix="glosmsd-soak-server-") as tmp:
        r = asyncio.run(soak(seconds, Path(tmp)))
    ok = (
        r["p99_ms"] < P99_GOAL_MS
        and r["rss_max_mb"] < RSS_GOAL_MB
        and r["fuzz_internal_errors"] == 0
        and r["server_alive"]
    )
    print(f"server soak, {r['seconds']:.0f} s on one server process (loopback)")
    print(
        f"  well-behaved client: {r['messages']} sends, p50 {r['p50_ms']:.1f} ms, "
        f"p99 {r['p99_ms']:.1f} ms (goal < {P99_GOAL_MS:g}), max {r['max_ms']:.1f} ms, "
        f"lost {r['lost']}"
    )
    print(
        f"  server RSS: start {r['rss_start_mb']:.1f} MB, max {r['rss_max_mb']:.1f} MB "
        f"(goal < {RSS_GOAL_MB:g}), end {r['rss_end_mb']:.1f} MB"
    )
    print(
        f"  fuzzer: {r['fuzz_frames']} frames, {r['fuzz_replies']} replies, "
        f"{r['fuzz_internal_errors']} internal errors, closes {r['fuzz_closes']}"
    )
    print(
        f"  batch flood: {r['flood_batches']} batches of 50, {r['flood_calls_refused']} "
        "calls refused past the 2 MiB budget; one peer that never reads"
    )
    print(
        f"  connections: {IDLE_TCP} idle TCP ({r['idle_reopened']} dropped by the server "
        f"and reopened), {IDLE_WS} idle signed-in websockets"
    )
    print(
        f"  server log: {r['log_lines']} lines, {r['log_tracebacks']} tracebacks; "
        f"exit {r['server_exit']}"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
