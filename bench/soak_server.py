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
  waits for B's pushed event; each round trip is one latency sample. The floor: the same
  round trips on the idle server first, in the same run. The load runs in a child process
  (bench/soaklib.py says why).

Run: `python -m bench.soak_server --minutes 10` (or `--seconds N`). Prints its figures;
exits 1 if p99 >= 50 ms, RSS >= 150 MB, or the fuzzer drew a -32603.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

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
from glosmsd.core import wire
from tests.support.serverproc import Client, ServerProcess

SEED = 1313
ANN, BEA = "+15550001001", "+15550001004"
METHODS = {name: [p.name for p in params] for name, params in wire.PARAMS.items()}
IDLE_TCP = 250
IDLE_WS = 50
SEND_EVERY = 0.02


class Figures:
    def __init__(self) -> None:
        self.fuzz_frames = 0
        self.fuzz_replies = 0
        self.fuzz_internal = 0
        self.fuzz_closes: dict[int, int] = {}
        self.flood_batches = 0
        self.flood_refused = 0
        self.idle_reopened = 0


# --------------------------------------------------------------------------- fuzzer


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
        return json.dumps(
            [fuzz_call(rng, METHODS, n * 100 + i) for i in range(rng.randrange(1, 61))]
        )
    if pick == 4:
        return json.dumps(fuzz_value(rng))
    return json.dumps(fuzz_call(rng, METHODS, n))


async def fuzzer(url: str, token: str, stop: Any, fig: Figures) -> None:
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
                        fig.fuzz_internal += internal_errors(json.loads(text))
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


async def flood(url: str, token: str, stop: Any, fig: Figures) -> None:
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


async def never_reads(url: str, token: str, stop: Any) -> None:
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


async def idle_tcp(port: int, stop: Any, fig: Figures) -> None:
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


async def idle_ws(url: str, token: str, stop: Any) -> None:
    clients: list[Client] = []
    try:
        for i in range(IDLE_WS):
            with contextlib.suppress(OSError, InvalidHandshake):
                clients.append(await Client.connect(url, token, device=f"idle{i}"))
        await until_stopped(stop)
    finally:
        for c in clients:
            await c.close()


# --------------------------------------------------------------------------- the load


def load(url: str, port: int, t_f: str, stop: Any) -> dict[str, Any]:
    """The load, in its own process (`soaklib.load_process`); returns its figures."""
    fig = Figures()

    async def main() -> None:
        await run_all(
            stop,
            [
                idle_tcp(port, stop, fig),
                idle_ws(url, t_f, stop),
                fuzzer(url, t_f, stop, fig),
                flood(url, t_f, stop, fig),
                never_reads(url, t_f, stop),
            ],
        )

    run_load(main())
    return vars(fig)


# --------------------------------------------------------------------------- measure


async def well_behaved(url: str, t_a: str, t_b: str, seconds: float, lat: Latencies) -> None:
    """Extension A sends B a short SMS every SEND_EVERY s and waits for B's pushed event."""
    async with (
        await Client.connect(url, t_a, device="a") as a,
        await Client.connect(url, t_b, device="b") as b,
    ):
        await a.sync_live()
        await b.sync_live()
        tag = time.monotonic_ns()

        async def one(n: int) -> None:
            text = f"soak {tag} {n}"
            await a.call("send", client_id=f"soak{tag}-{n}", to=BEA, text=text)
            await b.wait_event("message", direction="in", text=text, timeout=10)

        await measure(one, seconds, SEND_EVERY, lat, failures=(ConnectionClosed,))


def seed(srv: ServerProcess) -> tuple[str, str, str]:
    t_a = srv.add_extension("1001", "Ann Lee", ANN)
    t_b = srv.add_extension("1004", "Bea Ng", BEA)
    t_f = srv.add_extension("1002", "Flo Od", "+15550001002")
    with srv.store() as st:
        for i in range(3000):
            st.receive("+15557654321", "+15550001002", f"{i:05d} " + "y" * 994)
    return t_a, t_b, t_f


async def _measured(
    srv: ServerProcess, t_a: str, t_b: str, seconds: float, rss: list[int]
) -> Latencies:
    assert srv.proc is not None
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(srv.proc.pid, stop, rss))
    lat = Latencies()
    try:
        await well_behaved(srv.url, t_a, t_b, seconds, lat)
    finally:
        stop.set()
        await sampler
    return lat


def soak(seconds: float, tmp: Path) -> tuple[bool, dict[str, Any]]:
    srv = ServerProcess.start(tmp)
    try:
        t_a, t_b, t_f = seed(srv)
        floor = asyncio.run(_measured(srv, t_a, t_b, floor_seconds(seconds), []))
        rss: list[int] = []
        with load_process(load, srv.url, srv.port, t_f) as fig:
            loaded = asyncio.run(_measured(srv, t_a, t_b, seconds, rss))
        alive = srv.proc is not None and srv.proc.poll() is None
        log = srv.log_path.read_text(errors="replace")
    finally:
        code = srv.stop()
    internal = fig.get("fuzz_internal", -1)
    lines = [
        f"fuzzer: {fig.get('fuzz_frames')} frames, {fig.get('fuzz_replies')} replies, "
        f"{internal} internal errors, closes {fig.get('fuzz_closes')}",
        f"batch flood: {fig.get('flood_batches')} batches of 50, "
        f"{fig.get('flood_refused')} calls refused past the 2 MiB budget; one peer that "
        "never reads",
        f"connections: {IDLE_TCP} idle TCP ({fig.get('idle_reopened')} dropped by the server "
        f"and reopened), {IDLE_WS} idle signed-in websockets",
        *log_lines("server", log, code),
    ]
    if "load_error" in fig:
        lines.append(f"the load failed: {fig['load_error']}")
    return verdict(
        f"server soak, {seconds:.0f} s on one server process (loopback)",
        floor.summary(),
        loaded.summary(),
        rss,
        lines,
        unit="sends (A -> server -> B's push)",
        extra_ok=internal == 0 and alive and code == 0,
    )


def main(argv: list[str] | None = None) -> int:
    seconds = duration(argv, "python -m bench.soak_server", __doc__)
    with tempfile.TemporaryDirectory(prefix="glosmsd-soak-server-") as tmp:
        ok, _ = soak(seconds, Path(tmp))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
