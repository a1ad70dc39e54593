"""`glosms` start-up: wall time of `glosms count` and `glosms send` against a real daemon,
next to the floor `python -c "import json,socket"` (the same interpreter), same run.

Run: `.venv/bin/python -m bench.bench_cli` (about 10 s). `run()` returns the figures.

glosmsd's modules are byte-compiled first, as installing the wheel does: the floor's
standard library comes compiled, and with PYTHONDONTWRITEBYTECODE set (as on the shared
machines) the warm-up run leaves no .pyc behind, so every timed run compiled the CLI
from source (issue 16: that alone made `glosms count` 2.11x its floor, not 1.88x).
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import glosmsd
from tests.support.ipcworld import CY, running_world

RUNS = 15


def walls(cmds: dict[str, list[str]], env: dict[str, str]) -> dict[str, float]:
    """Median wall seconds of each command over RUNS runs (after one warm-up each), run
    in turns (floor, count, send, floor, ...) so that a shared machine's load, which
    comes and goes over seconds, weighs on ours and on the floor alike."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for i in range(RUNS + 1):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=True, timeout=60)
            if i:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def run() -> dict[str, Any]:
    compileall.compile_dir(Path(glosmsd.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as tmp, running_world(Path(tmp)) as world:
        env = {k: v for k, v in world.env.items() if not k.startswith("COVERAGE")}
        glosms = str(Path(sys.executable).with_name("glosms"))
        med = walls(
            {
                "floor": [sys.executable, "-c", "import json,socket"],
                "count": [glosms, "count", "hello"],
                "send": [glosms, "send", CY, "bench", "--json"],
            },
            env,
        )
    return {"floor_s": med["floor"], "count_s": med["count"], "send_s": med["send"]}


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
