"""Benchmark of the reference server on loopback, each figure next to a floor from the same run.

- messages/s: extension A sends to extension B (hosted number: direct delivery) and waits
  for B's pushed event, one at a time; floor: a bare websockets echo round trip with a
  message-sized frame, the echo server in its own process like the real server (a
  kernel wake-up each way; an echo in the client's own process, also reported, skips
  them and did ~1.8x the round trips here).
- catch-up events/s: a device syncs N events from cursor 0 in batches of 500, each page
  parsed and let go as a device applies it (`Client.catch_up`, which decodes a frame as
  the daemon's link does), after one untimed catch-up by another device; floor:
  inserting the same number of rows into SQLite in one batched transaction.

Run: `.venv/bin/python -m bench.bench_server` (about 10-30 s, loopback only, seeded).
`run()` returns the figures as a dict for a combined report.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from tests.support.serverproc import Client, ServerProcess

SEED = 1234
MESSAGES = 1000
CATCH_UP = 20000
ECHO_ROUNDS = 2000


ECHO_SERVER = r"""
import asyncio
from websockets.asyncio.server import serve
async def echo(ws):
    async for frame in ws:
        await ws.send(frame)
async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None) as srv:
        print(next(iter(srv.sockets)).getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""
PAYLOAD = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "send",
        "params": {"client_id": "x" * 16, "to": "+15550001004", "text": "y" * 60},
    }
)


async def _echo_rate(port: int, rounds: int) -> float:
    async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
        for _ in range(min(100, rounds)):  # warm up
            await ws.send(PAYLOAD)
            await ws.recv()
        t0 = time.perf_counter()
        for _ in range(rounds):
            await ws.send(PAYLOAD)
            await ws.recv()
        return rounds / (time.perf_counter() - t0)


async def echo_floor(rounds: int) -> float:
    """Round trips per second of a bare websocket echo server in its own process."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        return await _echo_rate(port, rounds)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def echo_in_process(rounds: int) -> float:
    """The same echo served by this process's own loop (no kernel wake-up between them)."""

    async def echo(ws: ServerConnection) -> None:
        async for frame in ws:
            await ws.send(frame)

    async with serve(echo, "127.0.0.1", 0, compression=None) as srv:
        return await _echo_rate(next(iter(srv.sockets)).getsockname()[1], rounds)


def insert_floor(rows: int, tmp: Path) -> float:
    """Rows per second into SQLite (WAL), one transaction, event-sized JSON bodies."""
    conn = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE e (seq INTEGER PRIMARY KEY, number TEXT, body TEXT)")
    body = json.dumps({"message": {"text": "z" * 60, "files": []}})
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO e (number, body) VALUES (?, ?)", (("+15550001001", body) for _ in range(rows))
    )
    conn.execute("COMMIT")
    rate = rows / (time.perf_counter() - t0)
    conn.close()
    return rate


async def measure(tmp: Path) -> dict[str, Any]:
    rng = random.Random(SEED)
    srv = ServerProcess.start(tmp)
    try:
        t_a = srv.add_extension("1001", "Ann Lee", "+15550001001")
        t_b = srv.add_extension("1004", "Dee Ng", "+15550001004")
        async with (
            await Client.connect(srv.url, t_a) as a,
            await Client.connect(srv.url, t_b) as b,
        ):
            await a.sync_live()
            await b.sync_live()
            for i in range(20):  # warm up
                await a.call("send", client_id=f"w{i}", to="+15550001004", text="warm")
                await b.wait_event("message", direction="in")
            # Made before the clock starts, as the floor's payload is (60 random choices
            # a message were ~20 us of the client's ~250 us).
            texts = ["".join(rng.choice("abcdefgh ") for _ in range(60)) for _ in range(MESSAGES)]
            t0 = time.perf_counter()
            for i, text in enumerate(texts):
                await a.call("send", client_id=f"m{i}", to="+15550001004", text=text)
                await b.wait_event("message", direction="in")
            msg_rate = MESSAGES / (time.perf_counter() - t0)
        with srv.store() as st:
            for i in range(CATCH_UP):
                st.receive("+15557654321", "+15550001001", f"c{i}")
        # One catch-up untimed first, as the sends above follow 20 untimed ones: the
        # first after the seeding ran ~20% slower in every run (first-touch memory on
        # both sides), a cost of the process starting, not of a catch-up.
        async with await Client.connect(srv.url, t_a, device="warm-up") as c:
            await c.catch_up(0, limit=500)
        async with await Client.connect(srv.url, t_a, device="offline") as c:
            t0 = time.perf_counter()
            caught_up = await c.catch_up(0, limit=500)
            catch_rate = caught_up / (time.perf_counter() - t0)
    finally:
        srv.stop()
    echo = await echo_floor(ECHO_ROUNDS)
    echo_here = await echo_in_process(ECHO_ROUNDS)
    floor = insert_floor(caught_up, tmp)
    return {
        "messages_per_s": msg_rate,
        "echo_round_trips_per_s": echo,
        "echo_in_process_round_trips_per_s": echo_here,
        "messages_vs_echo": msg_rate / echo,
        "catch_up_events_per_s": catch_rate,
        "catch_up_events": caught_up,
        "sqlite_insert_rows_per_s": floor,
        "catch_up_vs_insert": catch_rate / floor,
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(measure(Path(tmp)))
    print(f"messages A->B (send + pushed delivery): {result['messages_per_s']:8.0f} /s")
    print(
        f"  floor: bare websocket echo round trip: {result['echo_round_trips_per_s']:8.0f} /s"
        f"   ratio {result['messages_vs_echo']:.3f}"
        f"   (echo in this process: {result['echo_in_process_round_trips_per_s']:.0f} /s)"
    )
    print(
        f"catch-up sync ({result['catch_up_events']} events):  "
        f"{result['catch_up_events_per_s']:8.0f} events/s"
    )
    print(
        f"  floor: SQLite batched insert:         {result['sqlite_insert_rows_per_s']:8.0f} rows/s"
        f"   ratio {result['catch_up_vs_insert']:.3f}"
    )
    return result


if __name__ == "__main__":
    run()
