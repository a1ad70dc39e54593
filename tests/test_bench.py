"""`make bench`'s runner: the table and bench/results.json have the promised shape; and
`make soak`'s two soaks report and serve.

One quick run of two cheap benchmarks (the socket and the store, tiny sizes) through the
real runner and its child processes, plus the pure helpers; and each soak for a few
seconds against its real process. Nothing here asserts a timing: the figures are
whatever this machine gives (a soak this short may print FAIL on its p99; only its
report and what it served are checked).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"figure", "ours", "floor", "ratio", "unit", "note"}


def test_quick_run_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", "--quick", "--only", "ipc,store", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    res = json.loads(out.read_text())
    assert res["quick"] is True
    assert res["date"][:4].isdigit()
    assert {"cpu", "cores", "python"} <= set(res["machine"])
    assert res["machine"]["python"].count(".") == 2
    rows = res["rows"]
    assert [r["figure"] for r in rows[:3]] == [
        "socket round trip, median",
        "socket round trip, p99",
        "socket pipelined (500 calls)",
    ]
    assert any(r["figure"].startswith("search at 50,000 messages") for r in rows)
    for r in rows:
        assert set(r) == KEYS
        assert r["ours"] > 0, r
        assert r["floor"] > 0, r
        assert r["ratio"] > 0, r
        assert "skipped" not in r["note"]
    assert set(res["raw"]) == {"ipc", "store"}

    lines = done.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("figure"))
    assert lines[head].split()[:5] == ["figure", "ours", "floor", "ratio", "unit"]
    assert set(lines[head + 1]) == {"-", " "}
    body = lines[head + 2 : head + 2 + len(rows)]
    assert [line[: len(r["figure"])] for line, r in zip(body, rows, strict=True)] == [
        r["figure"] for r in rows
    ]
    # Aligned: every row's ratio ends in the same column as the header's.
    end = lines[head].index("ratio") + len("ratio")
    assert all(line[end - 1].isdigit() for line in body)


def test_ratio_is_the_floors_cost_both_ways() -> None:
    slow = report.row("t", 30.0, 10.0, "ms", "")
    rate = report.row("r", 250.0, 1000.0, "msgs/s", "", higher_is_better=True)
    assert slow["ratio"] == 3.0
    assert rate["ratio"] == 4.0
    assert report.row("zero floor", 0.01, 0.0, "CPU s", "")["ratio"] is None
    assert report.row("no floor", 7.0, None, "ms", "")["ratio"] is None


def test_the_median_run_is_reported_whole() -> None:
    runs = [[report.row("x", ours, 10.0, "ms", "floor: f")] for ours in (50.0, 20.0, 30.0)]
    (picked,) = report.pick_median(runs)
    assert (picked["ours"], picked["floor"], picked["ratio"]) == (30.0, 10.0, 3.0)
    assert picked["note"].startswith("median of 3 runs (ours 20.0–50.0); floor: f")


def test_tray_rows_say_what_is_missing() -> None:
    idle = {
        "seconds": 60.0,
        "cpu_s": {"floor_sleep": 0.0, "floor_asyncio": 0.01, "headless": 0.05},
        "rss_mb": {"floor_sleep": 10.0, "floor_asyncio": 20.0, "headless": 40.0},
        "reaction_ms": [],
        "missing": ["trayer", "python-xlib"],
    }
    rows = {r["figure"]: r for r in report.rows_idle(idle)}
    assert rows["idle CPU over 60 s, headless"]["ratio"] == 5.0
    for figure in (
        "idle CPU over 60 s, with tray",
        "RSS, with tray",
        "tray badge reaction after arrival, median",
    ):
        assert rows[figure]["note"] == "skipped: needs trayer, python-xlib"
        assert rows[figure]["ours"] is None
    text = report.table(list(rows.values()))
    assert "skipped: needs trayer, python-xlib" in text
    assert "|---|--:|" in report.markdown(list(rows.values()))


@pytest.mark.parametrize(
    ("module", "process"), [("bench.soak", "daemon"), ("bench.soak_server", "server")]
)
def test_a_short_soak_reports_and_serves(module: str, process: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    done = subprocess.run(
        [sys.executable, "-m", module, "--seconds", "4"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=150,
        check=False,
    )
    out = done.stdout
    assert done.returncode in (0, 1), done.stderr
    lines = out.splitlines()
    assert lines[0].startswith(f"{process} soak, 4 s"), out
    assert lines[-1] == ("PASS" if done.returncode == 0 else "FAIL"), out
    served = re.findall(
        r"well-behaved .*, (under load|floor \(idle\)): (\d+) done, (\d+) errors", out
    )
    assert [w for w, _, _ in served] == ["under load", "floor (idle)"], out
    assert all(int(n) > 0 and int(errors) == 0 for _, n, errors in served), out
    assert re.search(r"p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms", out), out
    assert re.search(r"RSS: start [\d.]+ MB, max [\d.]+ MB \(goal < 150\), end [\d.]+ MB", out), out
    fuzzed = re.search(
        r"fuzzer: .*?(\d+) (?:lines|frames), (\d+) replies, (\d+) internal errors", out
    )
    assert fuzzed is not None, out
    assert int(fuzzed[1]) > 0, out
    assert int(fuzzed[2]) > 0, out
    assert fuzzed[3] == "0", out
    assert re.search(r"batch flood: [1-9]\d* batches", out), out
    assert "the load failed" not in out, out
    assert re.search(rf"{process} log: \d+ lines, \d+ tracebacks; exit 0", out), out
