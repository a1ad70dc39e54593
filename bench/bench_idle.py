"""Idle cost of the daemon with and without the tray, and how fast the badge reacts.

    .venv/bin/python -m bench.bench_idle            # one 60 s idle window
    .venv/bin/python -m bench.bench_idle --seconds 10

Floors measured in the same run and the same window: a bare
`python -c "import time; time.sleep(N)"` and an idle asyncio loop. The daemons run
against a real reference server (keepalive pings every 20 s); the tray daemon runs on
Xvfb with trayer and dunst on a private bus. All four processes idle side by side over
one window (an idle process barely competes with another), so the figure costs one
window, not four. CPU seconds come from /proc (each thread's schedstat run time over the
window, or utime + stime in 10 ms ticks without it), RSS from /proc/PID/status at its end.

Reaction: from the moment the daemon publishes the new message on its socket (a
subscriber sees the `message` event) to the moment the tray icon's window name (its
tooltip, set together with the badge) changes, seen as an X PropertyNotify.

`run()` returns the figures; without the desktop programs or python-xlib, the tray
figures are left out and `missing` names what is needed.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import glosmsd
from glosmsd.client.ipc import Client
from tests.support.daemonproc import DaemonProcess, wait_until
from tests.support.desktop import PROGRAMS, DesktopEnv, TrayDaemon
from tests.support.serverproc import running_server

TICK = os.sysconf("SC_CLK_TCK")
OWN = "+15550001001"
BOB = "+15557654321"


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`: from schedstat (nanoseconds) where the kernel
    has it, since utime + stime count whole 10 ms ticks and an idle daemon uses less
    than one a minute."""
    try:
        return (
            sum(
                int((task / "schedstat").read_text().split()[0])
                for task in Path(f"/proc/{pid}/task").iterdir()
            )
            / 1e9
        )
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def missing_desktop() -> list[str]:
    """What the tray figures need and this machine lacks."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if importlib.util.find_spec("Xlib") is None:
        missing.append("python-xlib")
    return missing


@contextlib.contextmanager
def floor_process(code: str) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def reaction(
    desk: DesktopEnv, daemon: DaemonProcess, receive: Callable[[str], None], rounds: int
) -> list[float]:
    import Xlib.display
    import Xlib.X

    wid = int(desk.tray_icon())
    display = Xlib.display.Display(desk.display)
    window = display.create_resource_object("window", wid)
    window.change_attributes(event_mask=Xlib.X.PropertyChangeMask)
    display.sync()
    wm_name = display.intern_atom("WM_NAME")
    results: list[float] = []
    for i in range(rounds):
        seen = threading.Event()
        arrived: list[float] = []

        def listen(seen: threading.Event = seen, arrived: list[float] = arrived) -> None:
            with Client(daemon.socket, timeout=10) as c:
                c.call("subscribe", None)
                seen.set()
                for ev in c.events():
                    if ev.get("kind") == "message":
                        arrived.append(time.monotonic())
                        return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        seen.wait(5)
        receive(f"ping {i}")
        changed = None
        deadline = time.monotonic() + 5
        while changed is None and time.monotonic() < deadline:
            while display.pending_events():
                ev = display.next_event()
                if ev.type == Xlib.X.PropertyNotify and ev.atom == wm_name:
                    changed = time.monotonic()
            if changed is None:
                time.sleep(0.001)
        t.join(5)
        if changed is not None and arrived:
            results.append((changed - arrived[0]) * 1000)
        daemon.call("mark_read")
        wait_until(lambda: "no unread" in desk.window_name(str(wid)), 10, "the badge to clear")
        while display.pending_events():
            display.next_event()
    display.close()
    return results


def run(seconds: float = 60.0, rounds: int = 10) -> dict[str, Any]:
    """CPU seconds and RSS MB of each process over one idle window, and reaction ms."""
    # Byte-compiled first, as installing the wheel does: with PYTHONDONTWRITEBYTECODE
    # nothing else writes the .pyc, and a daemon compiling its modules from source keeps
    # the compiler's memory (about 1 MB of its RSS) and its start-up time.
    compileall.compile_dir(Path(glosmsd.__file__).parent, quiet=1)
    missing = missing_desktop()
    pids: dict[str, int] = {}
    samples: list[float] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sleep_for = seconds + 60  # outlives the window and the daemons' start
        pids["floor_sleep"] = stack.enter_context(
            floor_process(f"import time; time.sleep({sleep_for})")
        )
        pids["floor_asyncio"] = stack.enter_context(
            floor_process(f"import asyncio; asyncio.run(asyncio.sleep({sleep_for}))")
        )
        srv = stack.enter_context(running_server(tmp))
        token = srv.add_extension("1001", "Ann Lee", OWN)
        srv.admin("add-contact", "Bob Roe", "--number", f"mobile={BOB}")
        plain = stack.enter_context(DaemonProcess.start(tmp / "headless", srv, token))
        plain.wait_online()
        assert plain.proc is not None
        pids["headless"] = plain.proc.pid
        tray: TrayDaemon | None = None
        desk: DesktopEnv | None = None
        if not missing:
            desk = stack.enter_context(DesktopEnv.start(tmp / "desk"))
            token2 = srv.admin("token", "1001").strip().split()[-1]
            tray = TrayDaemon.start_on(desk, tmp / "tray", srv, token2)
            stack.enter_context(tray)
            tray.wait_online()
            desk.tray_icon()
            assert tray.proc is not None
            pids["tray"] = tray.proc.pid
        time.sleep(1)  # let start-up work (sync, first paint) finish
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(seconds)
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        rss = {name: rss_mb(pid) for name, pid in pids.items()}
        if tray is not None and desk is not None:

            def receive(text: str) -> None:
                with srv.store() as st:
                    st.receive(BOB, OWN, text, [])

            samples = reaction(desk, tray, receive, rounds)
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "rss_mb": rss,
        "reaction_ms": samples,
        "missing": missing,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="idle window (default 60)")
    p.add_argument("--rounds", type=int, default=10, help="badge reaction samples")
    args = p.parse_args()
    res = run(args.seconds, args.rounds)
    n = res["seconds"]
    labels = {
        "floor_sleep": "floor: python time.sleep",
        "floor_asyncio": "floor: idle asyncio loop",
        "headless": "glosmsd --headless",
        "tray": "glosmsd with tray (xorg/trayer)",
    }
    print(f"idle window: {n:.0f} s (keepalive ping every 20 s)")
    print(f"{'process':<34}{'CPU ms':>10}{'CPU %':>9}{'RSS MB':>9}")
    for key, label in labels.items():
        if key in res["cpu_s"]:
            cpu = res["cpu_s"][key]
            print(f"{label:<34}{cpu * 1e3:>10.2f}{cpu / n * 100:>8.3f}%{res['rss_mb'][key]:>9.1f}")
    if res["missing"]:
        print(f"tray figures skipped: needs {', '.join(res['missing'])}")
    elif samples := res["reaction_ms"]:
        print(
            f"badge reaction after arrival: median {statistics.median(samples):.1f} ms, "
            f"max {max(samples):.1f} ms over {len(samples)} messages (target < 100 ms)"
        )
    else:
        print("badge reaction: no samples")


if __name__ == "__main__":
    main()
