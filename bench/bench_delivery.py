"""Delivery latency A -> server -> B with two real daemons, next to a floor from the same run.

Ann's daemon and Dan's daemon (two extensions, two numbers) run against one reference
server process on 127.0.0.1. Each sample is the time from Ann's `send` call on her socket
until Dan's socket streams the `message` event of it (a subscriber on Dan's daemon): the
send is committed in Ann's store, uploaded by her outbox, stored by the server, pushed to
Dan's daemon, committed in his store and published to his socket.

Floor, measured in the same run on the same machine: two WebSocket round trips to the
same server (ping/pong: A -> server, server -> B) plus two durable SQLite commits (WAL,
`synchronous=FULL`: the sender's accept and the server's store of it). Everything else
(JSON, the receiver's commit, asyncio scheduling in three processes) is overhead on top.

Run: `.venv/bin/python -m bench.bench_delivery`. `run()` returns the figures as a dict.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from glosmsd.client.ipc import Client
from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import running_server

ANN = "+15550001001"
DAN = "+15550001003"
SAMPLES = 120
WARMUP = 10


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _latencies(ann: DaemonProcess, dan: DaemonProcess) -> list[float]:
    out: list[float] = []
    with Client(dan.socket, timeout=20) as watcher, Client(ann.socket, timeout=20) as sender:
        watcher.call("subscribe")
        events = watcher.events()
        for i in range(WARMUP + SAMPLES):
            marker = f"latency probe {i}"
            start = time.perf_counter()
            sender.call("send", {"to": DAN, "text": marker, "client_id": f"bench-{i}"})
            for event in events:
                if event.get("kind") == "message" and marker in json.dumps(event):
                    break
            if i >= WARMUP:
                out.append(time.perf_counter() - start)
    return out


async def _ping_rtts(url: str, token: str, count: int = 200) -> list[float]:
    headers = {"Authorization": f"Bearer {token}", "X-Glosmsd-Device": "bench"}
    rtts: list[float] = []
    async with connect(url, additional_headers=headers, compression=None) as ws:
        for _ in range(count):
            start = time.perf_counter()
            pong = await ws.ping()
            await pong
            rtts.append(time.perf_counter() - start)
    return rtts


def _durable_commits(folder: Path, count: int = 200) -> list[float]:
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    times: list[float] = []
    try:
        for i in range(count):
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (text) VALUES (?)", (f"row {i}",))
            conn.execute("COMMIT")
            times.append(time.perf_counter() - start)
    finally:
        conn.close()
    return times


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="glosmsd-bench-") as tmp:
        root = Path(tmp)
        with running_server(root) as srv:
            ann_token = srv.add_extension("1001", "Ann Lee", ANN)
            dan_token = srv.add_extension("1003", "Dan Wu", DAN)
            with (
                DaemonProcess.start(root / "ann", srv, ann_token) as ann,
                DaemonProcess.start(root / "dan", srv, dan_token) as dan,
            ):
                ann.wait_online()
                dan.wait_online()
                latencies = _latencies(ann, dan)
                rtts = asyncio.run(_ping_rtts(srv.url, ann_token))
                commits = _durable_commits(root)
    rtt = statistics.median(rtts)
    commit = statistics.median(commits)
    floor = 2 * rtt + 2 * commit
    median = statistics.median(latencies)
    p99 = _percentile(latencies, 0.99)
    return {
        "samples": len(latencies),
        "delivery_median_ms": round(median * 1000, 2),
        "delivery_p99_ms": round(p99 * 1000, 2),
        "ws_round_trip_median_ms": round(rtt * 1000, 3),
        "durable_commit_median_ms": round(commit * 1000, 3),
        "floor_ms": round(floor * 1000, 2),
        "median_over_floor": round(median / floor, 1),
        "p99_over_floor": round(p99 / floor, 1),
    }


def main() -> None:
    result = run()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
