"""One performance report: every figure next to its floor, measured in the same run.

    make bench                                  # the whole report, about 5 minutes
    .venv/bin/python -m bench.report --quick    # a smoke run with tiny sizes, ~1 minute
    .venv/bin/python -m bench.report --only ipc,cli --repeat 5

Each benchmark runs in its own process (`--child`), so one's threads, caches and garbage
never weigh on the next, and one that fails or hangs costs its own rows only. Its
`run()` dict is turned into rows {figure, ours, floor, ratio, unit, note}:

    ratio = how many times the floor's cost ours is: ours / floor for times, CPU and
            memory, floor / ours for rates and for SSIM. 1.00 is at the floor, 2.00 is
            twice its cost, below 1 is better than the floor (a naive method).

Noisy figures (the socket, the CLI, delivery, the server) are measured `--repeat` times
(3 by default) and the run with the median ratio is reported whole, so ours, floor and
ratio in a row always come from one run; the note gives the spread of ours. The
machines these run on are shared: the load average before and after goes into the JSON.

Everything is seeded and stays on loopback. The full report prints the table and writes
`bench/results.json` (date, machine, rows, and each run's raw figures); `--quick` writes
nothing unless given `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
BUDGET_S = 570.0  # the whole report stays under 10 minutes on two shared cores
REPEAT = 3

Row = dict[str, Any]


# --------------------------------------------------------------------------- rows


def row(
    figure: str,
    ours: float | None,
    floor: float | None,
    unit: str,
    note: str,
    *,
    higher_is_better: bool = False,
) -> Row:
    """One figure. `ratio` is in floor-cost units (see the module docstring)."""
    ratio = None
    if ours is not None and floor is not None and ours > 0 and floor > 0:
        ratio = floor / ours if higher_is_better else ours / floor
    return {
        "figure": figure,
        "ours": ours,
        "floor": floor,
        "ratio": ratio,
        "unit": unit,
        "note": note,
    }


def skipped(figure: str, unit: str, why: str) -> Row:
    return {
        "figure": figure,
        "ours": None,
        "floor": None,
        "ratio": None,
        "unit": unit,
        "note": f"skipped: {why}",
    }


def rows_ipc(r: dict[str, Any]) -> list[Row]:
    d, f = r["daemon"], r["floor"]
    floor = "floor: bare asyncio newline-JSON echo in its own process, same client"
    return [
        row("socket round trip, median", d["median_us"], f["median_us"], "µs", floor),
        row("socket round trip, p99", d["p99_us"], f["p99_us"], "µs", floor),
        row(
            f"socket pipelined ({r['params']['PIPELINED']:,} calls)",
            d["pipelined_per_s"],
            f["pipelined_per_s"],
            "calls/s",
            floor + "; the call is `count` (validated, dispatched, answered)",
            higher_is_better=True,
        ),
        row(
            "params check (count), per call",
            r["bind"]["bind_us"],
            r["bind"]["by_hand_us"],
            "µs",
            "MethodTable.bind in-process; floor: the same checks written out by hand for `count`",
        ),
    ]


def rows_cli(r: dict[str, Any]) -> list[Row]:
    note = f'floor: python3 -c "import json,socket"; median of {r["params"]["RUNS"]} starts'
    return [
        row("glosms count, wall time", r["count_s"] * 1e3, r["floor_s"] * 1e3, "ms", note),
        row("glosms send, wall time", r["send_s"] * 1e3, r["floor_s"] * 1e3, "ms", note),
    ]


def rows_delivery(r: dict[str, Any]) -> list[Row]:
    note = (
        f"floor: 2 websocket round trips ({r['ws_round_trip_median_ms']:.3f} ms) + 2 durable "
        f"SQLite commits ({r['durable_commit_median_ms']:.3f} ms); {r['samples']} messages, "
        "two daemons and a server"
    )
    return [
        row("delivery A → server → B, median", r["delivery_median_ms"], r["floor_ms"], "ms", note),
        row("delivery A → server → B, p99", r["delivery_p99_ms"], r["floor_ms"], "ms", note),
    ]


def rows_server(r: dict[str, Any]) -> list[Row]:
    p = r["params"]
    return [
        row(
            f"server: messages A → B, one at a time ({p['MESSAGES']:,})",
            r["messages_per_s"],
            r["echo_round_trips_per_s"],
            "msgs/s",
            "floor: websocket echo round trips/s, echo server in its own process "
            f"(in the client's process: {r['echo_in_process_round_trips_per_s']:,.0f}/s)",
            higher_is_better=True,
        ),
        row(
            f"server: catch-up sync to a device ({r['catch_up_events']:,} events)",
            r["catch_up_events_per_s"],
            r["sqlite_insert_rows_per_s"],
            "events/s",
            "floor: the same number of rows inserted into SQLite in one transaction",
            higher_is_better=True,
        ),
    ]


def rows_store(r: dict[str, Any]) -> list[Row]:
    p = r["params"]
    ms = 1e3
    big = f"{p['BIG_MESSAGES']:,}"
    convs = f"{p['BIG_CONVERSATIONS']:,}"
    worst = (
        f"worst LIKE case {r['search_like_worst_s'] * ms:.0f} ms vs search "
        f"{r['search_at_like_worst_s'] * ms:.2f} ms"
    )
    return [
        row(
            f"catch-up sync of {p['CATCH_UP']:,} messages (batches of {p['BATCH']})",
            r["catch_up_s"] * ms,
            r["catch_up_floor_s"] * ms,
            "ms",
            "floor: plain batched executemany into one bare table; the same rows into the "
            f"store's own tables (messages, FTS, events): {r['catch_up_schema_floor_s'] * ms:.0f}"
            " ms",
        ),
        row(
            f"search at {big} messages",
            r["search_s"] * ms,
            r["search_fts_floor_s"] * ms,
            "ms",
            f"floor: the raw FTS5 MATCH alone; median of {len(r['search_queries'])} queries, "
            "ours also finds contacts and conversations",
        ),
        row(
            f"search at {big} messages vs LIKE scan",
            r["search_s"] * ms,
            r["search_like_s"] * ms,
            "ms",
            f"floor: LIKE '%word%' (what a store without FTS does); {worst}",
        ),
        row(
            f"conversation list, first 50 of {convs}",
            r["list_page_s"] * ms,
            r["list_page_floor_s"] * ms,
            "ms",
            "floor: bare ordered SELECT; ours adds unread counts and previews",
        ),
        row(
            f"conversation list, all {convs}",
            r["list_all_s"] * ms,
            r["list_all_floor_s"] * ms,
            "ms",
            "floor: bare ordered SELECT; ours adds unread counts and previews",
        ),
    ]


def rows_media(r: dict[str, Any]) -> list[Row]:
    runs = r["rows"]
    n = len({x["photo"] for x in runs})
    budgets = sorted({x["budget"] for x in runs}, reverse=True)
    what = (
        f"{n} photo{'s' if n != 1 else ''} at {'x'.join(map(str, r['params']['SIZE']))} to "
        + " and ".join(f"{b // 1000} kB" for b in budgets)
    )
    failures = "; ".join(r["failures"]) or "none"
    return [
        row(
            "image fit, time per photo (mean)",
            statistics.mean(x["ours_s"] for x in runs),
            statistics.mean(x["naive_s"] for x in runs),
            "s",
            f"floor: naive JPEG quality stepping; {what}",
        ),
        row(
            "image fit, SSIM (mean)",
            r["mean_ours"],
            r["mean_naive"],
            "SSIM",
            f"floor: naive quality stepping (below 1: better than it); checks failed: {failures}",
            higher_is_better=True,
        ),
    ]


def rows_idle(r: dict[str, Any]) -> list[Row]:
    n = r["seconds"]
    cpu, rss = r["cpu_s"], r["rss_mb"]
    floor_note = (
        f"floor: an idle asyncio loop (time.sleep: {fmt(cpu['floor_sleep'] * 1e3)} ms); keepalive "
        "ping every 20 s"
    )
    rss_note = f"floor: an idle asyncio loop (time.sleep: {rss['floor_sleep']:.1f} MB)"
    out = [
        row(
            f"idle CPU over {n:.0f} s, headless",
            cpu["headless"] * 1e3,
            cpu["floor_asyncio"] * 1e3,
            "CPU ms",
            floor_note,
        ),
    ]
    need = "needs " + ", ".join(r["missing"])
    if "tray" in cpu:
        out.append(
            row(
                f"idle CPU over {n:.0f} s, with tray",
                cpu["tray"] * 1e3,
                cpu["floor_asyncio"] * 1e3,
                "CPU ms",
                floor_note,
            )
        )
    else:
        out.append(skipped(f"idle CPU over {n:.0f} s, with tray", "CPU ms", need))
    out.append(row("RSS, headless", rss["headless"], rss["floor_asyncio"], "MB", rss_note))
    if "tray" in rss:
        out.append(row("RSS, with tray", rss["tray"], rss["floor_asyncio"], "MB", rss_note))
    else:
        out.append(skipped("RSS, with tray", "MB", need))
    samples = r["reaction_ms"]
    if samples:
        out.append(
            row(
                "tray badge reaction after arrival, median",
                statistics.median(samples),
                None,
                "ms",
                f"no floor: target < 100 ms; max {max(samples):.1f} ms over "
                f"{len(samples)} messages",
            )
        )
    else:
        why = need if r["missing"] else "no sample (the badge never changed)"
        out.append(skipped("tray badge reaction after arrival, median", "ms", why))
    return out


def rows_window(r: dict[str, Any]) -> list[Row]:
    p = r["params"]
    convs = f"{p['CONVERSATIONS']:,}"
    msgs = f"{p['MESSAGES']:,}"
    return [
        row(
            f"SMS window usable with {convs} conversations, median",
            r["usable_ms"],
            r["usable_floor_ms"],
            "ms",
            f"goal < 300 ms; navigation start to the page's ready mark (connected, "
            f"subscribed, first 100 shown, the rest right after); floor: Chromium loading a "
            f"static page of the same {convs} items with the same stylesheet",
        ),
        row(
            f"SMS window opens a conversation of {msgs} messages, median",
            r["open_ms"],
            r["open_floor_ms"],
            "ms",
            f"#/c/ID to the frame painting the newest ({r['open_in_dom']} in the DOM, paged); "
            "floor: the same bubbles as static markup put into the same log",
        ),
        row(
            "SMS window arrival to on-screen, median",
            r["arrival_ms"],
            r["arrival_socket_ms"],
            "ms",
            f"a message written into the server's database until its bubble is in the DOM "
            f"(max {r['arrival_max_ms']:.0f} ms); floor: the same messages' events on the "
            "daemon's Unix socket",
        ),
    ]


# --------------------------------------------------------------------------- benchmarks


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    rows: Callable[[dict[str, Any]], list[Row]]
    noisy: bool  # repeated, median run reported
    quick: dict[str, Any]  # module constants for --quick
    params: tuple[str, ...]  # module constants the rows name


BENCHES: tuple[Bench, ...] = (
    Bench(
        "ipc",
        "bench.bench_ipc",
        rows_ipc,
        True,
        {"ROUNDS": 200, "PIPELINED": 500, "BINDS": 2000},
        ("ROUNDS", "PIPELINED"),
    ),
    Bench("cli", "bench.bench_cli", rows_cli, True, {"RUNS": 3}, ("RUNS",)),
    Bench(
        "delivery",
        "bench.bench_delivery",
        rows_delivery,
        True,
        {"SAMPLES": 20, "WARMUP": 3},
        ("SAMPLES",),
    ),
    Bench(
        "server",
        "bench.bench_server",
        rows_server,
        True,
        {"MESSAGES": 100, "CATCH_UP": 1000, "ECHO_ROUNDS": 200},
        ("MESSAGES", "CATCH_UP"),
    ),
    Bench(
        "store",
        "bench.bench_store",
        rows_store,
        False,
        {"CATCH_UP": 1000, "BATCH": 100, "BIG_MESSAGES": 50_000, "BIG_CONVERSATIONS": 200},
        ("CATCH_UP", "BATCH", "BIG_MESSAGES", "BIG_CONVERSATIONS"),
    ),
    Bench(
        "media",
        "bench.bench_media",
        rows_media,
        False,
        {"SIZE": (1600, 1200), "BUDGETS": (128_000,)},
        ("SIZE",),
    ),
    Bench("idle", "bench.bench_idle", rows_idle, False, {"SECONDS": 2.0, "ROUNDS": 1}, ()),
    Bench(
        "window",
        "bench.bench_window",
        rows_window,
        False,  # one run (about 40 s): each figure is already a median of its samples
        {"CONVERSATIONS": 200, "MESSAGES": 1000, "LOADS": 2, "OPENS": 2, "ARRIVALS": 5},
        ("CONVERSATIONS", "MESSAGES"),
    ),
)
BY_NAME = {b.name: b for b in BENCHES}
IDLE_SECONDS = 60.0
IDLE_ROUNDS = 10


def run_child(name: str, quick: bool, out: Path) -> None:
    """In the child process: run one benchmark and write its dict as JSON to `out`."""
    bench = BY_NAME[name]
    mod = importlib.import_module(bench.module)
    with contextlib.ExitStack() as stack:
        if quick:
            for key, value in bench.quick.items():
                if hasattr(mod, key):
                    setattr(mod, key, value)
            if name == "store":  # a small database of its own, not the cached 1M one
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                setattr(mod, "BIG_DB", tmp / "store-quick.db")  # noqa: B010
            if name == "media":
                photos = importlib.import_module("tests.support.photos")
                setattr(photos, "PHOTOS", photos.PHOTOS[:1])  # noqa: B010
        # The benchmarks print their own tables; keep this process's stdout for nothing.
        with contextlib.redirect_stdout(sys.stderr):
            if name == "idle":
                result = mod.run(
                    bench.quick["SECONDS"] if quick else IDLE_SECONDS,
                    bench.quick["ROUNDS"] if quick else IDLE_ROUNDS,
                )
            else:
                result = mod.run()
    result["params"] = {k: getattr(mod, k) for k in bench.params}
    out.write_text(json.dumps(result, default=list))


def run_bench(bench: Bench, quick: bool, timeout: float, log: Path) -> dict[str, Any]:
    """One run of `bench` in its own process; its output goes to `log`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "bench.report", "--child", bench.name, "--out", str(out)]
        if quick:
            cmd.append("--quick")
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        with open(log, "ab") as fh:
            fh.write(f"==== {bench.name} {dt.datetime.now().isoformat()}\n".encode())
            fh.flush()
            proc = subprocess.run(
                cmd, stdout=fh, stderr=fh, cwd=ROOT, env=env, timeout=timeout, check=False
            )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"exited with {proc.returncode} (see {log})")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def pick_median(runs: list[list[Row]]) -> list[Row]:
    """Per figure, the row of the run with the median ratio, with the spread in its note."""
    if len(runs) == 1:
        return runs[0]
    picked = []
    for i, first in enumerate(runs[0]):
        same = [r[i] for r in runs if i < len(r) and r[i]["figure"] == first["figure"]]
        measured = [r for r in same if r["ratio"] is not None]
        if not measured:
            picked.append(first)
            continue
        measured.sort(key=lambda r: r["ratio"])
        chosen = dict(measured[(len(measured) - 1) // 2])
        ours = [r["ours"] for r in measured]
        chosen["note"] = (
            f"median of {len(measured)} runs (ours {fmt(min(ours))}–{fmt(max(ours))}); "
            + chosen["note"]
        )
        picked.append(chosen)
    return picked


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


# --------------------------------------------------------------------------- output


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    a = abs(value)
    if a >= 10_000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}" if a >= 0.01 or a == 0 else f"{value:.2g}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if ratio >= 10:
        return f"{ratio:.1f}"
    # Three decimals near 1, where SSIM and close calls live.
    return f"{ratio:.3f}" if ratio < 1.1 else f"{ratio:.2f}"


def table(rows: list[Row], *, notes: bool = True) -> str:
    """The rows as an aligned text table (ratio: times the floor's cost)."""
    head = ["figure", "ours", "floor", "ratio", "unit"] + (["note"] if notes else [])
    body = [
        [
            r["figure"],
            fmt(r["ours"]),
            fmt(r["floor"]),
            fmt_ratio(r["ratio"]),
            r["unit"],
        ]
        + ([r["note"]] if notes else [])
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    right = {1, 2, 3}

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(b) for b in body)])


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table (for the README)."""
    out = [
        "| figure | ours | floor | ratio | unit | note |",
        "|---|--:|--:|--:|---|---|",
    ]
    for r in rows:
        ratio = fmt_ratio(r["ratio"])
        note = r["note"].replace("|", "\\|")
        cells = [r["figure"], fmt(r["ours"]), fmt(r["floor"]), ratio, r["unit"], note]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def report(names: list[str], *, quick: bool, repeat: int, log: Path) -> dict[str, Any]:
    start = time.monotonic()
    started = dt.datetime.now().astimezone()
    load_before = os.getloadavg()
    rows: list[Row] = []
    raw: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        bench = BY_NAME[name]
        times = repeat if bench.noisy else 1
        runs: list[list[Row]] = []
        raw[name] = []
        took = 0.0
        for i in range(times):
            left = BUDGET_S - (time.monotonic() - start)
            if i and left < 2 * took:  # leave room for the benchmarks still to come
                print(f"  {name}: skipping run {i + 1} of {times} (time budget)", file=sys.stderr)
                break
            print(f"  {name}: run {i + 1} of {times}...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                result = run_bench(bench, quick, max(60.0, left), log)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"  {name}: failed: {exc}", file=sys.stderr)
                if not runs:
                    runs.append(failed_rows(bench, str(exc)))
                break
            took = time.monotonic() - t0
            raw[name].append(result)
            runs.append(bench.rows(result))
            print(f"  {name}: {took:.0f} s", file=sys.stderr)
        rows += pick_median(runs)
    return {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "shared_machine": "other jobs used the same cores during the run; see load_average",
        "quick": quick,
        "repeat": repeat,
        "elapsed_s": round(time.monotonic() - start, 1),
        "ratio": "times the floor's cost: ours/floor for time, CPU, memory; "
        "floor/ours for rates and SSIM; 1.00 = at the floor",
        "rows": rows,
        "raw": raw,
    }


def failed_rows(bench: Bench, why: str) -> list[Row]:
    return [skipped(bench.name, "", f"the benchmark failed: {why}")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    p.add_argument("--only", help=f"comma-separated subset of {','.join(BY_NAME)}")
    p.add_argument("--repeat", type=int, default=REPEAT, help="runs of the noisy benchmarks")
    p.add_argument("--out", type=Path, help=f"JSON results (default {RESULTS}; none if --quick)")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_child(args.child, args.quick, args.out)
        return 0
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    repeat = 1 if args.quick else max(1, args.repeat)
    out = args.out if args.out or args.quick else RESULTS
    with tempfile.NamedTemporaryFile(prefix="glosmsd-bench-", suffix=".log", delete=False) as f:
        log = Path(f.name)
    print(f"benchmarks: {', '.join(names)} (their output: {log})", file=sys.stderr)
    res = report(names, quick=args.quick, repeat=repeat, log=log)
    m = res["machine"]
    print(
        f"{res['date']} · {m['cpu']}, {m['cores']} cores · Python {m['python']} · "
        f"load {res['load_average']['before'][0]:.2f} → {res['load_average']['after'][0]:.2f}"
        f" · {res['elapsed_s']:.0f} s{' · QUICK (tiny sizes)' if res['quick'] else ''}"
    )
    print("ratio: times the floor's cost (ours/floor; floor/ours for rates and SSIM)")
    print(table(res["rows"]))
    if args.markdown:
        print()
        print(markdown(res["rows"]))
    if out is not None:
        out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
