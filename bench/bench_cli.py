"""`glosms` start-up: wall time of `glosms count` and `glosms send` against a real daemon,
next to the floor `python -c "import json,socket"` (the same interpreter), same run.

Run: `.venv/bin/python -m bench.bench_cli` (about 10 s). `run()` returns the figures.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.ipcworld import CY, running_world

RUNS = 15


def wall(cmd: list[str], env: dict[str, str]) -> float:
    """Median wall seconds of `cmd` over RUNS runs (after one warm-up)."""
    times = []
    for i in range(RUNS + 1):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True, timeout=60)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, running_world(Path(tmp)) as world:
        env = {k: v for k, v in world.env.items() if not k.startswith("COVERAGE")}
        glosms = str(Path(sys.executable).with_name("glosms"))
        floor = wall([sys.executable, "-c", "import json,socket"], env)
        count = wall([glosms, "count", "hello"], env)
        send = wall([glosms, "send", CY, "bench", "--json"], env)
    return {"floor_s": floor, "count_s": count, "send_s": send}


def main() -> None:
    res = run()
    floor = res["floor_s"]
    print(f"glosms wall time, median of {RUNS} (floor: python -c 'import json,socket')")
    print(f"  floor                 {floor * 1000:7.1f} ms")
    for key, label in (("count_s", "glosms count"), ("send_s", "glosms send")):
        print(f"  {label:20}  {res[key] * 1000:7.1f} ms   {res[key] / floor:5.2f}x floor")


if __name__ == "__main__":
    os.environ.pop("COVERAGE_PROCESS_START", None)
    main()
