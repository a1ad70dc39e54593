"""What the two soaks (bench/soak.py: the daemon, bench/soak_server.py: the server) share.

Each soak has the same shape: one real process under test; a floor first (the
well-behaved client's calls against that process while nothing else runs); then the
load (fuzzers, floods, held connections) in a child process of its own, so the load's
own JSON parsing never stalls the measuring client's event loop (it did when both ran
on one loop: the measurement then timed the bench, not the process under test); and
the well-behaved client measured again under load while the process's RSS is sampled
from /proc/PID/status. Then one printed report and a PASS/FAIL against the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

P99_GOAL_MS: Final = 50.0
RSS_GOAL_MB: Final = 150.0


def duration(argv: list[str] | None, prog: str, doc: str | None) -> float:
    """`--minutes N` or `--seconds N` (default 10 minutes), in seconds."""
    p = argparse.ArgumentParser(prog=prog, description=doc)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float)
    g.add_argument("--seconds", type=float)
    args = p.parse_args(argv)
    return float(args.seconds if args.seconds is not None else (args.minutes or 10) * 60)


def floor_seconds(seconds: float) -> float:
    """How long the floor is measured: a tenth of the soak, between 2 and 30 s."""
    return min(30.0, max(2.0, seconds / 10))


def rss_kib(pid: int) -> int:
    """A process's resident memory now (Linux), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


# --------------------------------------------------------------------------- figures


@dataclass
class Latencies:
    """One client's call latencies (ms) and its failed calls."""

    ms: list[float] = field(default_factory=list)
    errors: int = 0

    def summary(self) -> dict[str, float | int]:
        lat = sorted(self.ms)
        inf = float("inf")
        return {
            "calls": len(lat),
            "errors": self.errors,
            "p50_ms": statistics.median(lat) if lat else inf,
            "p99_ms": lat[max(0, -(-len(lat) * 99 // 100) - 1)] if lat else inf,
            "max_ms": lat[-1] if lat else inf,
        }


async def measure(
    one_round: Callable[[int], Awaitable[None]],
    seconds: float,
    every: float,
    lat: Latencies,
    *,
    timeout: float = 10.0,
    failures: tuple[type[BaseException], ...] = (),
) -> None:
    """Call `one_round(n)` every `every` s for `seconds`; each round is one latency sample
    unless it raises one of `failures` or times out (then it is an error)."""
    end = time.monotonic() + seconds
    caught: tuple[type[BaseException], ...] = (TimeoutError, *failures)
    n = 0
    while time.monotonic() < end:
        n += 1
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(one_round(n), timeout)
        except caught:
            lat.errors += 1
            continue
        lat.ms.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(every)


async def sample_rss(pid: int, stop: asyncio.Event, out: list[int], every: float = 1.0) -> None:
    """Append `pid`'s RSS (KiB) to `out` every `every` s until `stop`."""
    while not stop.is_set():
        with contextlib.suppress(OSError, RuntimeError):
            out.append(rss_kib(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


# --------------------------------------------------------------------------- the load


LoadMain = Callable[..., dict[str, Any]]


def _load_child(target: LoadMain, args: tuple[Any, ...], stop: Any, out: Any) -> None:
    out.put(target(*args, stop))


@contextlib.contextmanager
def load_process(target: LoadMain, *args: Any) -> Iterator[dict[str, Any]]:
    """Run `target(*args, stop)` in a child process for the length of the `with`; `stop` is a
    `multiprocessing.Event` set at the end, and `target` returns its figures (a dict of
    plain values), which fill the dict this yields once the `with` ends."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    out = ctx.Queue()
    figures: dict[str, Any] = {}
    proc = ctx.Process(target=_load_child, args=(target, args, stop, out), name="soak-load")
    proc.start()
    try:
        yield figures
    finally:
        stop.set()
        try:
            figures.update(out.get(timeout=180))  # a 10-minute load took over 60 s to wind down
        except Exception as exc:  # the load's own failure is reported, not hidden
            figures["load_error"] = repr(exc)
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()


async def until_stopped(stop: Any, poll: float = 0.2) -> None:
    """Wait (in a child's loop) for the parent's `multiprocessing.Event`."""
    while not stop.is_set():
        await asyncio.sleep(poll)


#: How long the load's coroutines get to wind down once stopped; past it they are left.
WIND_DOWN: Final = 30.0


def run_load(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run(main)` without its wait for every task at the end: a load coroutine
    stuck in its clean-up (a close handshake to a peer that is not read) must not keep the
    load's figures from the parent (a 10-minute server soak lost them that way)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
        rest = asyncio.all_tasks(loop)  # the websockets connections' own tasks
        for t in rest:
            t.cancel()
        if rest:
            loop.run_until_complete(asyncio.wait(rest, timeout=WIND_DOWN))
    finally:
        loop.close()


async def run_all(stop: Any, tasks: list[Awaitable[Any]]) -> None:
    """Run the load's coroutines until `stop` (each also checks it: Python 3.11's wait_for
    can swallow a cancellation), then cancel what is left, giving it `WIND_DOWN` seconds;
    a coroutine that failed before that re-raises its error."""
    running = [asyncio.ensure_future(t) for t in tasks]
    waiter = asyncio.ensure_future(until_stopped(stop))
    done, _ = await asyncio.wait([*running, waiter], return_when=asyncio.FIRST_COMPLETED)
    for t in running:
        t.cancel()
    waiter.cancel()
    _, stuck = await asyncio.wait([*running, waiter], timeout=WIND_DOWN)
    for t in stuck:
        print(f"soak load: {t.get_coro()!r} did not wind down; left", file=sys.stderr)
    for t in done:
        if t is not waiter and not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


# --------------------------------------------------------------------------- fuzzing


def fuzz_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, biased to what breaks param checks: huge and odd numbers,
    odd text, wrong types, nesting."""
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
        return [fuzz_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {
        str(fuzz_value(rng, 3))[:20]: fuzz_value(rng, depth + 1) for _ in range(rng.randrange(5))
    }


def fuzz_call(rng: random.Random, methods: dict[str, list[str]], n: int) -> dict[str, Any]:
    """A JSON-RPC call of a random method (`methods`: name -> its param names) with random
    params; sometimes an unknown method, a notification or the wrong `jsonrpc`."""
    method = rng.choice([*methods, "nosuch", "rpc.discover", ""])
    params: Any
    if rng.random() < 0.8 and method in methods:
        params = {name: fuzz_value(rng) for name in methods[method] if rng.random() < 0.8}
    else:
        params = fuzz_value(rng)
    call: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": n}
    if rng.random() < 0.1:
        del call["id"]
    if rng.random() < 0.05:
        call["jsonrpc"] = "1.0"
    return call


def internal_errors(reply: Any) -> int:
    """How many -32603 (internal error) replies a reply or batch reply holds."""
    items = reply if isinstance(reply, list) else [reply]
    return sum(
        1
        for r in items
        if isinstance(r, dict)
        and isinstance(r.get("error"), dict)
        and r["error"].get("code") == -32603
    )


# --------------------------------------------------------------------------- report


def log_lines(process: str, log: str, code: int) -> list[str]:
    """The report's lines on a process's log: its size, its tracebacks (the first one's
    last lines shown, so a failure names itself) and its exit code."""
    lines = [
        f"{process} log: {log.count(chr(10))} lines, {log.count('Traceback')} tracebacks; "
        f"exit {code}"
    ]
    at = log.find("Traceback")
    if at >= 0:
        lines += ["  " + t for t in log[at:].splitlines()[:40] if t.strip()][-6:]
    return lines


def verdict(
    title: str,
    floor: dict[str, Any],
    loaded: dict[str, Any],
    rss_kib_samples: list[int],
    lines: list[str],
    *,
    unit: str,
    extra_ok: bool = True,
) -> tuple[bool, dict[str, Any]]:
    """Print the report; returns (passed, the figures as one dict)."""
    mb = [r / 1024 for r in rss_kib_samples] or [float("inf")]
    rss = {"rss_start_mb": mb[0], "rss_max_mb": max(mb), "rss_end_mb": mb[-1]}
    ok = (
        loaded["p99_ms"] < P99_GOAL_MS
        and rss["rss_max_mb"] < RSS_GOAL_MB
        and loaded["calls"] > 0
        and extra_ok
    )
    print(title)
    for name, r in (("under load", loaded), ("floor (idle)", floor)):
        print(
            f"  well-behaved {unit}, {name}: {r['calls']} done, {r['errors']} errors, "
            f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms"
        )
    print(f"  p99 goal < {P99_GOAL_MS:g} ms; p99 over the floor's: x{_ratio(loaded, floor):.1f}")
    print(
        f"  RSS: start {rss['rss_start_mb']:.1f} MB, max {rss['rss_max_mb']:.1f} MB "
        f"(goal < {RSS_GOAL_MB:g}), end {rss['rss_end_mb']:.1f} MB"
    )
    for line in lines:
        print(f"  {line}")
    print("PASS" if ok else "FAIL")
    return ok, {"floor": floor, "loaded": loaded, **rss}


def _ratio(loaded: dict[str, Any], floor: dict[str, Any]) -> float:
    f = floor["p99_ms"]
    return float(loaded["p99_ms"] / f) if f and f != float("inf") else float("inf")
